"""Claim paths, typed claim reading and the authorization rules beyond scopes (no framework)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

from apiguard import (
    MULTI_FACTOR,
    AccessToken,
    BearerError,
    ClaimPath,
    ClaimRuleFailed,
    ConfigurationError,
    Forbidden,
    InsufficientScope,
    InsufficientUserAuthentication,
    InvalidClaim,
    InvalidSignature,
    MissingPermission,
    MissingRole,
    Rule,
    TokenExpired,
    claim_check,
    claim_equals,
    claim_includes,
    has_permissions,
    has_roles,
    step_up,
)
from apiguard.bearer import challenge, render_error
from apiguard.claims import MISSING, claim_paths, read_strings
from apiguard.testing import LocalIssuer

from .conftest import NOW

ORGANIZER_ROLES = "https://organizer.example/roles"


def token(**claims: Any) -> AccessToken:
    """An AccessToken over ``claims`` (with iss and exp), as the validator would build it."""
    base: dict[str, Any] = {"iss": "https://issuer.test/", "exp": NOW + 300, "sub": "user-1"}
    return AccessToken.from_claims({"alg": "RS256"}, {**base, **claims})


# -- claim paths ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "segments"),
    [
        pytest.param("roles", ("roles",), id="entra-top-level"),
        pytest.param("groups", ("groups",), id="groups"),
        pytest.param("cognito:groups", ("cognito:groups",), id="colon-is-plain"),
        pytest.param("realm_access.roles", ("realm_access", "roles"), id="keycloak-realm"),
        pytest.param(
            "resource_access.my-client.roles",
            ("resource_access", "my-client", "roles"),
            id="keycloak-client",
        ),
        pytest.param(f'"{ORGANIZER_ROLES}"', (ORGANIZER_ROLES,), id="auth0-namespaced-quoted"),
        pytest.param((ORGANIZER_ROLES,), (ORGANIZER_ROLES,), id="auth0-namespaced-tuple"),
        pytest.param([ORGANIZER_ROLES], (ORGANIZER_ROLES,), id="list-of-segments"),
        pytest.param(
            'resource_access."my.client".roles',
            ("resource_access", "my.client", "roles"),
            id="quoted-middle-segment",
        ),
        pytest.param(r'"a\"b\\c".d', ('a"b\\c', "d"), id="escapes-in-quotes"),
        pytest.param('"with space"', ("with space",), id="space-in-quotes"),
        pytest.param(ClaimPath("a.b"), ("a", "b"), id="claim-path-object"),
    ],
)
def test_claim_path_syntax(path: Any, segments: tuple[str, ...]) -> None:
    """Dotted paths split into segments; quoted segments and tuples are taken literally."""
    parsed = ClaimPath(path)
    assert parsed.segments == segments
    # The text form reads back as the same path.
    assert ClaimPath(str(parsed)) == parsed


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("", id="empty"),
        pytest.param(".roles", id="leading-dot"),
        pytest.param("roles.", id="trailing-dot"),
        pytest.param("realm_access..roles", id="empty-segment"),
        pytest.param(ORGANIZER_ROLES, id="unquoted-url"),
        pytest.param('"unclosed', id="unclosed-quote"),
        pytest.param('""', id="empty-quoted"),
        pytest.param('"a"b', id="text-after-quote"),
        pytest.param("a b", id="unquoted-space"),
        pytest.param("a\x00b", id="control-character"),
        pytest.param((), id="no-segments"),
        pytest.param(("a", ""), id="empty-segment-in-tuple"),
        pytest.param(("a", 1), id="non-string-segment"),
        pytest.param(42, id="number"),
        pytest.param(None, id="none"),
    ],
)
def test_claim_path_refused(path: Any) -> None:
    """A path that is not well formed fails at configuration time, never per request."""
    with pytest.raises(ConfigurationError):
        ClaimPath(path)


def test_unquoted_url_error_says_how_to_write_it() -> None:
    """An unquoted URL claim name gets a message showing the quoted form."""
    with pytest.raises(ConfigurationError, match=r'"https://organizer\.example/roles"'):
        claim_paths([ORGANIZER_ROLES], name="role_claims")


def test_claim_paths_setting() -> None:
    """A setting takes one path or several, drops repeats, and names itself in errors."""
    assert claim_paths("realm_access.roles", name="x") == (ClaimPath("realm_access.roles"),)
    assert len(claim_paths(["roles", ("roles",), "groups"], name="x")) == 2
    with pytest.raises(ConfigurationError, match=r"^role_claims: "):
        claim_paths(["a..b"], name="role_claims")
    with pytest.raises(ConfigurationError, match=r"^role_claims: "):
        claim_paths(42, name="role_claims")  # type: ignore[arg-type]


NESTED = {
    "roles": ["reader"],
    "realm_access": {"roles": ["admin", "user"]},
    "resource_access": {"my.client": {"roles": ["editor"]}},
    ORGANIZER_ROLES: ["organizer-admin"],
    "scalar": "text",
    "listed": [{"roles": ["x"]}],
}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        pytest.param("roles", ["reader"], id="top-level"),
        pytest.param("realm_access.roles", ["admin", "user"], id="nested"),
        pytest.param('resource_access."my.client".roles', ["editor"], id="dotted-segment"),
        pytest.param((ORGANIZER_ROLES,), ["organizer-admin"], id="url-claim"),
        pytest.param("missing", MISSING, id="missing-top"),
        pytest.param("realm_access.missing", MISSING, id="missing-leaf"),
        pytest.param("missing.roles", MISSING, id="missing-parent"),
    ],
)
def test_claim_path_read(path: str, value: Any) -> None:
    """Reading follows JSON objects; a claim that is not there reads as MISSING."""
    assert ClaimPath(path).read(NESTED) == value


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("scalar.roles", id="through-a-string"),
        pytest.param("listed.roles", id="through-a-list"),
        pytest.param("roles.0", id="into-a-list"),
    ],
)
def test_claim_path_through_a_non_object(path: str) -> None:
    """A claim on the way that is not an object is an invalid claim, never a TypeError."""
    with pytest.raises(InvalidClaim):
        ClaimPath(path).read(NESTED)


# -- typed reading of string sets (roles, groups) ------------------------------------------


ROLE_PATHS = claim_paths(["roles", "realm_access.roles"], name="role_claims")


@pytest.mark.parametrize(
    ("claims", "roles"),
    [
        pytest.param({"roles": ["a", "b"]}, {"a", "b"}, id="list"),
        pytest.param({"roles": "Organizer Admin"}, {"Organizer Admin"}, id="string-is-one-role"),
        pytest.param({"roles": []}, set(), id="empty-list"),
        pytest.param({}, set(), id="absent"),
        pytest.param({"roles": ["a"], "realm_access": {"roles": ["b"]}}, {"a", "b"}, id="union"),
        pytest.param({"realm_access": {}}, set(), id="absent-leaf"),
    ],
)
def test_read_strings(claims: dict[str, Any], roles: set[str]) -> None:
    """Roles are the union of the configured claims: lists of strings, or one string."""
    assert read_strings(claims, ROLE_PATHS) == roles


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"roles": None}, id="null"),
        pytest.param({"roles": 1}, id="number"),
        pytest.param({"roles": True}, id="boolean"),
        pytest.param({"roles": {"admin": True}}, id="object"),
        pytest.param({"roles": ["a", 1]}, id="list-with-number"),
        pytest.param({"roles": [["a"]]}, id="nested-list"),
        pytest.param({"realm_access": ["roles"]}, id="parent-not-object"),
        pytest.param({"realm_access": {"roles": "a", "x": 1}, "roles": [None]}, id="list-null"),
    ],
)
def test_read_strings_wrong_type(claims: dict[str, Any]) -> None:
    """A role claim of another type is refused as InvalidClaim, never a TypeError."""
    with pytest.raises(InvalidClaim):
        read_strings(claims, ROLE_PATHS)


def test_access_token_roles_and_permissions() -> None:
    """AccessToken reads roles from the given paths, and permissions as their own set."""
    access = AccessToken.from_claims(
        {"alg": "RS256"},
        {"iss": "i", "exp": NOW, ORGANIZER_ROLES: ["organizer-admin"], "permissions": ["p"]},
        role_claims=claim_paths([(ORGANIZER_ROLES,)], name="role_claims"),
    )
    assert access.roles == {"organizer-admin"}
    assert access.permissions == {"p"}
    assert access.has_roles("organizer-admin")
    assert access.has_permissions("p", "q", match="any")
    assert not access.has_permissions("p", "q")
    # Without configured role claims nothing is read.
    assert token(roles=["admin"]).roles == frozenset()


def test_access_token_refuses_mistyped_permissions() -> None:
    """A ``permissions`` claim that is not a list of strings makes the token invalid."""
    with pytest.raises(InvalidClaim):
        token(permissions=[1])


# -- the rules ------------------------------------------------------------------------------

OLD = NOW - 3600
RULES = [
    # permissions
    pytest.param(has_permissions("delete:a"), {"permissions": ["delete:a"]}, None, id="perm-ok"),
    pytest.param(
        has_permissions("delete:a"), {"scope": "delete:a"}, MissingPermission, id="perm-scope-no"
    ),
    pytest.param(
        has_permissions("a", "b"), {"permissions": ["a"]}, MissingPermission, id="perm-all"
    ),
    pytest.param(has_permissions("a", "b", match="any"), {"permissions": ["b"]}, None, id="any"),
    pytest.param(
        has_permissions("read"), {"permissions": ["read:all"]}, MissingPermission, id="perm-prefix"
    ),
    # roles from an explicit claim
    pytest.param(
        has_roles("organizer-admin", claim=(ORGANIZER_ROLES,)),
        {ORGANIZER_ROLES: ["organizer-admin"]},
        None,
        id="role-ok",
    ),
    pytest.param(
        has_roles("organizer-admin", claim=(ORGANIZER_ROLES,)),
        {ORGANIZER_ROLES: ["assistant"]},
        MissingRole,
        id="role-missing",
    ),
    pytest.param(
        has_roles("organizer-admin", claim=(ORGANIZER_ROLES,)), {}, MissingRole, id="role-absent"
    ),
    pytest.param(
        has_roles("organizer-admin", claim=(ORGANIZER_ROLES,)),
        {ORGANIZER_ROLES: "organizer-admin"},
        None,
        id="role-string",
    ),
    pytest.param(
        has_roles("Organizer-Admin", claim=(ORGANIZER_ROLES,)),
        {ORGANIZER_ROLES: ["organizer-admin"]},
        MissingRole,
        id="role-case",
    ),
    pytest.param(
        has_roles("a", "b", match="any", claim="realm_access.roles"),
        {"realm_access": {"roles": ["b"]}},
        None,
        id="role-any-nested",
    ),
    pytest.param(
        has_roles("admin", claim="realm_access.roles"),
        {"realm_access": {"roles": [7]}},
        InvalidClaim,
        id="role-wrong-type",
    ),
    pytest.param(has_roles("admin"), {"roles": ["admin"]}, MissingRole, id="role-unconfigured"),
    # claim_equals
    pytest.param(claim_equals("tid", "t1"), {"tid": "t1"}, None, id="equals-ok"),
    pytest.param(claim_equals("tid", "t1"), {"tid": "t2"}, ClaimRuleFailed, id="equals-other"),
    pytest.param(claim_equals("tid", "t1"), {}, ClaimRuleFailed, id="equals-missing"),
    pytest.param(claim_equals("tid", "1"), {"tid": 1}, ClaimRuleFailed, id="equals-type"),
    pytest.param(claim_equals("n", 1), {"n": True}, ClaimRuleFailed, id="equals-bool-not-1"),
    pytest.param(claim_equals("n", True), {"n": 1}, ClaimRuleFailed, id="equals-1-not-bool"),
    pytest.param(claim_equals("n", 1), {"n": 1.0}, None, id="equals-1-is-1.0"),
    pytest.param(claim_equals("n", None), {"n": None}, None, id="equals-null"),
    pytest.param(claim_equals("n", None), {}, ClaimRuleFailed, id="equals-null-missing"),
    pytest.param(claim_equals("org.id", "o"), {"org": {"id": "o"}}, None, id="equals-nested"),
    pytest.param(claim_equals("org.id", "o"), {"org": "o"}, InvalidClaim, id="equals-not-obj"),
    # claim_includes
    pytest.param(claim_includes("groups", "staff"), {"groups": ["staff"]}, None, id="incl-list"),
    pytest.param(claim_includes("groups", "b"), {"groups": "a b"}, None, id="incl-spaces"),
    pytest.param(
        claim_includes("groups", "a", "c"), {"groups": ["a"]}, ClaimRuleFailed, id="incl-all"
    ),
    pytest.param(
        claim_includes("groups", "a", "c", match="any"), {"groups": ["c"]}, None, id="incl-any"
    ),
    pytest.param(claim_includes("groups", "a"), {}, ClaimRuleFailed, id="incl-missing"),
    pytest.param(claim_includes("groups", "a"), {"groups": 1}, InvalidClaim, id="incl-number"),
    pytest.param(claim_includes("groups", "a"), {"groups": None}, InvalidClaim, id="incl-null"),
    pytest.param(claim_includes("groups", "a"), {"groups": [1]}, InvalidClaim, id="incl-mixed"),
    pytest.param(
        claim_includes("groups", "a"), {"groups": {"a": 1}}, InvalidClaim, id="incl-object"
    ),
    # claim_check
    pytest.param(
        claim_check(lambda t: t.claims.get("email_verified") is True),
        {"email_verified": True},
        None,
        id="check-ok",
    ),
    pytest.param(
        claim_check(lambda t: t.claims.get("email_verified") is True),
        {"email_verified": "true"},
        ClaimRuleFailed,
        id="check-false",
    ),
    pytest.param(claim_check(lambda t: 1), {}, ClaimRuleFailed, id="check-truthy-not-true"),
    # step-up
    pytest.param(step_up([MULTI_FACTOR]), {"acr": MULTI_FACTOR}, None, id="acr-ok"),
    pytest.param(
        step_up([MULTI_FACTOR]), {"acr": "pwd"}, InsufficientUserAuthentication, id="acr-weak"
    ),
    pytest.param(step_up([MULTI_FACTOR]), {}, InsufficientUserAuthentication, id="acr-absent"),
    pytest.param(
        step_up([MULTI_FACTOR]), {"acr": None}, InsufficientUserAuthentication, id="acr-null"
    ),
    pytest.param(step_up([MULTI_FACTOR]), {"acr": [MULTI_FACTOR]}, InvalidClaim, id="acr-list"),
    pytest.param(step_up(["a", "b"]), {"acr": "b"}, None, id="acr-any-of"),
    pytest.param(step_up(max_age=600), {"auth_time": NOW - 600}, None, id="age-edge"),
    pytest.param(
        step_up(max_age=600),
        {"auth_time": NOW - 601},
        InsufficientUserAuthentication,
        id="age-old",
    ),
    pytest.param(step_up(max_age=600), {}, InsufficientUserAuthentication, id="age-no-auth-time"),
    pytest.param(
        step_up(max_age=600),
        {"auth_time": None},
        InsufficientUserAuthentication,
        id="age-null-auth-time",
    ),
    pytest.param(step_up(max_age=600), {"auth_time": str(NOW)}, InvalidClaim, id="age-string"),
    pytest.param(step_up(max_age=600), {"auth_time": True}, InvalidClaim, id="age-bool"),
    pytest.param(step_up(max_age=600), {"auth_time": NOW + 3600}, InvalidClaim, id="age-future"),
    pytest.param(step_up(max_age=600), {"auth_time": NOW + 60}, None, id="age-small-skew"),
    pytest.param(
        step_up([MULTI_FACTOR], max_age=600),
        {"acr": MULTI_FACTOR, "auth_time": OLD},
        InsufficientUserAuthentication,
        id="both-too-old",
    ),
    pytest.param(
        step_up([MULTI_FACTOR], max_age=600),
        {"acr": MULTI_FACTOR, "auth_time": NOW - 5},
        None,
        id="both-ok",
    ),
]


@pytest.mark.parametrize(("rule", "claims", "error"), RULES)
def test_rules(rule: Rule, claims: dict[str, Any], error: type[Exception] | None) -> None:
    """Each rule lets a fitting token through and refuses the others with its own error."""
    access = token(**claims)
    if error is None:
        rule.check(access, NOW)
    else:
        with pytest.raises(error):
            rule.check(access, NOW)


def test_role_rule_reads_configured_roles() -> None:
    """Without a claim of its own, a role rule reads AccessToken.roles."""
    access = AccessToken.from_claims(
        {"alg": "RS256"},
        {"iss": "i", "exp": NOW, "realm_access": {"roles": ["admin"]}},
        role_claims=claim_paths(["realm_access.roles"], name="role_claims"),
    )
    has_roles("admin").check(access, NOW)
    with pytest.raises(MissingRole):
        has_roles("admin", "root").check(access, NOW)


def test_step_up_reads_the_clock_when_not_given() -> None:
    """Without ``now`` the max-age rule compares with the wall clock."""
    step_up(max_age=60).check(token(auth_time=time.time() - 1))
    with pytest.raises(InsufficientUserAuthentication):
        step_up(max_age=60).check(token(auth_time=time.time() - 120))


# -- the answers ----------------------------------------------------------------------------


def answer(rule: Rule, **claims: Any) -> tuple[int, str, dict[str, Any]]:
    with pytest.raises(BearerError) as caught:
        rule.check(token(**claims), NOW)
    rendered = render_error(caught.value, "api")
    return rendered.status_code, rendered.headers["WWW-Authenticate"], json.loads(rendered.body)


@pytest.mark.parametrize(
    ("rule", "claims", "description"),
    [
        pytest.param(
            has_permissions("delete:a"),
            {},
            "The access token lacks a required permission",
            id="permission",
        ),
        pytest.param(
            has_roles("admin", claim="roles"),
            {},
            "The access token lacks a required role",
            id="role",
        ),
        pytest.param(
            claim_equals("tid", "secret-tenant"),
            {"tid": "attacker-tenant"},
            "The access token does not meet a requirement of this resource",
            id="equals",
        ),
        pytest.param(
            claim_includes("groups", "staff"),
            {"groups": ["guests"]},
            "The access token does not meet a requirement of this resource",
            id="includes",
        ),
        pytest.param(
            claim_check(lambda t: False, description="A verified email is required"),
            {},
            "A verified email is required",
            id="predicate-own-text",
        ),
    ],
)
def test_forbidden_answers(rule: Rule, claims: dict[str, Any], description: str) -> None:
    """A failed rule is 403 insufficient_scope with fixed text: no claim value, no scope."""
    status, header, body = answer(rule, **claims)
    assert status == 403
    assert header == (
        f'Bearer realm="api", error="insufficient_scope", error_description="{description}"'
    )
    assert body == {"error": "insufficient_scope", "error_description": description}
    for value in ("secret-tenant", "attacker-tenant", "staff", "guests", "delete:a", "admin"):
        assert value not in header
        assert value not in json.dumps(body)


def test_forbidden_family() -> None:
    """Every 403 shares one base; only InsufficientScope names scopes in the challenge."""
    for error in (MissingPermission, MissingRole, ClaimRuleFailed, InsufficientScope):
        assert issubclass(error, Forbidden)
        assert error.status_code == 403
        assert error.error == "insufficient_scope"
    assert len({MissingPermission.reason, MissingRole.reason, ClaimRuleFailed.reason}) == 3
    assert 'scope="a b"' in challenge(InsufficientScope(["a", "b"]))


@pytest.mark.parametrize(
    ("rule", "claims", "header", "body"),
    [
        pytest.param(
            step_up([MULTI_FACTOR]),
            {"acr": "pwd"},
            'Bearer realm="api", error="insufficient_user_authentication", '
            'error_description="A different authentication level is required", '
            f'acr_values="{MULTI_FACTOR}"',
            {
                "error": "insufficient_user_authentication",
                "error_description": "A different authentication level is required",
                "acr_values": MULTI_FACTOR,
            },
            id="acr",
        ),
        pytest.param(
            step_up(max_age=600),
            {"auth_time": OLD},
            'Bearer realm="api", error="insufficient_user_authentication", '
            'error_description="More recent authentication is required", max_age="600"',
            {
                "error": "insufficient_user_authentication",
                "error_description": "More recent authentication is required",
                "max_age": "600",
            },
            id="max-age",
        ),
        pytest.param(
            step_up(["a", "b"], max_age=0),
            {"acr": "a", "auth_time": NOW - 1},
            'Bearer realm="api", error="insufficient_user_authentication", '
            'error_description="More recent authentication is required", '
            'acr_values="a b", max_age="0"',
            {
                "error": "insufficient_user_authentication",
                "error_description": "More recent authentication is required",
                "acr_values": "a b",
                "max_age": "0",
            },
            id="both",
        ),
    ],
)
def test_step_up_answers(
    rule: Rule, claims: dict[str, Any], header: str, body: dict[str, str]
) -> None:
    """RFC 9470: 401 insufficient_user_authentication naming what a new sign-in must meet."""
    status, got_header, got_body = answer(rule, **claims)
    assert (status, got_header, got_body) == (401, header, body)


def test_step_up_never_echoes_the_tokens_acr() -> None:
    """The token's own acr stays out of the answer (only the resource's values are named)."""
    status, header, body = answer(step_up(["mfa"]), acr="attacker-text")
    assert "attacker-text" not in header + json.dumps(body)
    assert status == 401


# -- declaration errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: has_permissions(), id="perm-none"),
        pytest.param(lambda: has_permissions(""), id="perm-empty"),
        pytest.param(lambda: has_permissions(1), id="perm-number"),
        pytest.param(lambda: has_permissions("a", match="some"), id="perm-match"),
        pytest.param(lambda: has_roles(), id="role-none"),
        pytest.param(lambda: has_roles(" admin"), id="role-padded"),
        pytest.param(lambda: has_roles("a", claim="a..b"), id="role-bad-claim"),
        pytest.param(lambda: claim_equals("a", [1]), id="equals-list"),
        pytest.param(lambda: claim_equals("a", float("nan")), id="equals-nan"),
        pytest.param(lambda: claim_equals("", "x"), id="equals-empty-path"),
        pytest.param(lambda: claim_includes("a"), id="includes-none"),
        pytest.param(lambda: claim_includes("a", "b", match="every"), id="includes-match"),
        pytest.param(lambda: claim_check("not callable"), id="check-not-callable"),
        pytest.param(lambda: claim_check(bool, description='say "hi"'), id="check-quote"),
        pytest.param(lambda: claim_check(bool, description="caf\u00e9"), id="check-non-ascii"),
        pytest.param(lambda: claim_check(bool, reason="Has Spaces"), id="check-reason"),
        pytest.param(lambda: step_up(), id="step-up-nothing"),
        pytest.param(lambda: step_up(["a b"]), id="acr-space"),
        pytest.param(lambda: step_up(['a"b']), id="acr-quote"),
        pytest.param(lambda: step_up([""]), id="acr-empty"),
        pytest.param(lambda: step_up(max_age=-1), id="age-negative"),
        pytest.param(lambda: step_up(max_age=1.5), id="age-float"),
        pytest.param(lambda: step_up(max_age=True), id="age-bool"),
    ],
)
def test_rules_refuse_bad_declarations(build: Any) -> None:
    """A rule that could never work fails where the route is declared."""
    with pytest.raises(ConfigurationError):
        build()


def test_rule_reprs_name_the_rule() -> None:
    """A rule's repr says what it requires (for debugging route tables)."""
    assert repr(has_roles("a", claim="roles")) == "has_roles('a', match='all', claim='roles')"
    assert repr(step_up("x", max_age=5)) == "step_up(acr_values=('x',), max_age=5)"
    assert repr(claim_equals("tid", "t")) == "claim_equals('tid', 't')"
    assert repr(claim_includes("g", "a", match="any")) == "claim_includes('g', 'a', match='any')"
    assert repr(has_permissions("p")) == "has_permissions('p', match='all')"
    assert repr(claim_check(bool)).startswith("claim_check(")


def test_invalid_claim_with_application_text() -> None:
    """An application's InvalidClaim carries its fixed text and reason into the answer."""
    error = InvalidClaim("tid t9 unknown", description="The tenant is not allowed", reason="tenant")
    assert error.reason == "tenant"
    assert InvalidClaim.reason == "invalid_claim"  # the class constant is untouched
    rendered = render_error(error)
    assert json.loads(rendered.body)["error_description"] == "The tenant is not allowed"
    assert "t9" not in rendered.headers["WWW-Authenticate"]
    with pytest.raises(ValueError, match="RFC 6750"):
        InvalidClaim(description="line\nbreak")
    with pytest.raises(TypeError):
        InvalidClaim(description="")


# -- the validator's settings: role_claims and claims_validator ------------------------------


def test_validator_reads_roles_from_configured_paths(issuer: LocalIssuer) -> None:
    """``role_claims`` fills AccessToken.roles from every configured path, nested or URL."""
    with issuer.validator(
        role_claims=[f'"{ORGANIZER_ROLES}"', "realm_access.roles", ("roles",)]
    ) as validator:
        access = validator.validate(
            issuer.token(
                **{ORGANIZER_ROLES: ["organizer-admin"]},
                realm_access={"roles": ["user"]},
                roles="Reader",
            )
        )
    assert access.roles == {"organizer-admin", "user", "Reader"}


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"roles": 3}, id="number"),
        pytest.param({"roles": None}, id="null"),
        pytest.param({"roles": ["a", {"b": 1}]}, id="list-with-object"),
        pytest.param({"realm_access": "admin"}, id="parent-is-a-string"),
    ],
)
def test_validator_refuses_mistyped_roles(issuer: LocalIssuer, claims: dict[str, Any]) -> None:
    """A configured role claim of the wrong type makes the token invalid (401)."""
    with (
        issuer.validator(role_claims=["roles", "realm_access.roles"]) as validator,
        pytest.raises(InvalidClaim),
    ):
        validator.validate(issuer.token(**claims))


def test_validator_ignores_roles_when_not_configured(issuer: LocalIssuer) -> None:
    """Without ``role_claims`` role claims are not read, so a malformed one does not matter."""
    with issuer.validator() as validator:
        assert validator.validate(issuer.token(roles=3)).roles == frozenset()


def test_validator_refuses_bad_role_claims_setting(issuer: LocalIssuer) -> None:
    """A malformed role path fails at construction, naming the setting."""
    with pytest.raises(ConfigurationError, match="role_claims"):
        issuer.validator(role_claims=[ORGANIZER_ROLES])
    with pytest.raises(ConfigurationError, match="claims_validator"):
        issuer.validator(claims_validator="tid")


def _tenant_check(access: AccessToken) -> None:
    if access.claims.get("tid") != "tenant-a":
        raise InvalidClaim(
            "tid is not tenant-a", description="The tenant is not allowed", reason="wrong_tenant"
        )


def test_claims_validator_refuses_with_its_own_text(issuer: LocalIssuer) -> None:
    """The hook's InvalidClaim reaches the caller with the application's text and reason."""
    with issuer.validator(claims_validator=_tenant_check) as validator:
        assert validator.validate(issuer.token(tid="tenant-a")).claims["tid"] == "tenant-a"
        with pytest.raises(InvalidClaim) as caught:
            validator.validate(issuer.token(tid="tenant-b"))
    assert caught.value.reason == "wrong_tenant"
    rendered = render_error(caught.value)
    assert rendered.status_code == 401
    assert json.loads(rendered.body) == {
        "error": "invalid_token",
        "error_description": "The tenant is not allowed",
    }


def test_claims_validator_runs_after_the_signature_and_standard_checks(
    issuer: LocalIssuer,
) -> None:
    """A forged or expired token never reaches the hook: the standard error comes first."""
    seen: list[AccessToken] = []
    header, _, signature = issuer.token().split(".")
    payload = base64.urlsafe_b64encode(json.dumps(issuer.claims(tid="x")).encode()).rstrip(b"=")
    forged = f"{header}.{payload.decode()}.{signature}"
    with issuer.validator(claims_validator=seen.append) as validator:
        with pytest.raises(InvalidSignature):
            validator.validate(forged)
        with pytest.raises(TokenExpired):
            validator.validate(issuer.token(exp=NOW - 3600))
        assert seen == []
        validator.validate(issuer.token())
    assert len(seen) == 1


def test_claims_validator_sees_the_roles(issuer: LocalIssuer) -> None:
    """The hook gets the finished AccessToken, roles included."""
    seen: list[frozenset[str]] = []
    with issuer.validator(
        role_claims=["roles"], claims_validator=lambda t: seen.append(t.roles)
    ) as validator:
        validator.validate(issuer.token(roles=["a"]))
    assert seen == [frozenset({"a"})]
