"""Claim rules (SECURITY §1 D), scope parsing and the AccessToken value object."""

from __future__ import annotations

from typing import Any

import pytest

from apiguard import (
    AccessToken,
    InvalidClaim,
    InvalidSignature,
    InvalidToken,
    MalformedToken,
    TokenExpired,
    TokenNotYetValid,
    Validator,
    WrongAudience,
    WrongIssuer,
    WrongTokenType,
)
from apiguard.claims import check_match, parse_scopes
from apiguard.testing import REMOVE, LocalIssuer

from .conftest import NOW, FakeClock, dumps, signed

ISS = "https://issuer.test/"
AUD = "https://api.test"
LEEWAY = 30

REJECTED = [
    # D1: exp.
    pytest.param({"exp": REMOVE}, InvalidClaim, id="D1-exp-missing"),
    pytest.param({"exp": "1900000000"}, InvalidClaim, id="D1-exp-string"),
    pytest.param({"exp": True}, InvalidClaim, id="D1-exp-true"),
    pytest.param({"exp": None}, InvalidClaim, id="D1-exp-null"),
    pytest.param({"exp": [NOW + 60]}, InvalidClaim, id="D1-exp-list"),
    pytest.param({"exp": NOW - LEEWAY}, TokenExpired, id="D1-exp-now-minus-leeway"),
    pytest.param({"exp": NOW - LEEWAY - 1}, TokenExpired, id="D1-exp-beyond-leeway"),
    pytest.param({"exp": 0}, TokenExpired, id="D1-exp-zero"),
    pytest.param({"exp": 10**400}, InvalidClaim, id="C7-exp-huge-int"),
    pytest.param({"exp": -(10**400)}, InvalidClaim, id="C7-exp-huge-negative"),
    # D2: nbf.
    pytest.param({"nbf": NOW + LEEWAY + 5}, TokenNotYetValid, id="D2-nbf-future"),
    pytest.param({"nbf": "0"}, InvalidClaim, id="D2-nbf-string"),
    pytest.param({"nbf": None}, InvalidClaim, id="D2-nbf-null"),
    pytest.param({"nbf": False}, InvalidClaim, id="D2-nbf-bool"),
    pytest.param({"nbf": 10**400}, InvalidClaim, id="C7-nbf-huge-int"),
    # D3: iat.
    pytest.param({"iat": NOW + 3600}, TokenNotYetValid, id="D3-iat-future"),
    pytest.param({"iat": "1638202770"}, InvalidClaim, id="D3-iat-string"),
    pytest.param({"iat": -(10**400)}, InvalidClaim, id="C7-iat-huge-negative"),
    # D5: aud.
    pytest.param({"aud": [f"{AUD}x", "other"]}, WrongAudience, id="D5-list-without"),
    pytest.param({"aud": []}, WrongAudience, id="D5-empty-list"),
    pytest.param({"aud": ""}, WrongAudience, id="D5-empty-string"),
    pytest.param({"aud": [1]}, WrongAudience, id="D5-number-member"),
    pytest.param({"aud": [[AUD]]}, WrongAudience, id="D5-nested-list"),
    pytest.param({"aud": [AUD, 1]}, WrongAudience, id="D5-mixed-list"),
    pytest.param({"aud": AUD.upper()}, WrongAudience, id="D5-case"),
    pytest.param({"aud": AUD + "/"}, WrongAudience, id="D5-trailing-slash"),
    pytest.param({"aud": REMOVE}, WrongAudience, id="D5-missing"),
    pytest.param({"aud": None}, WrongAudience, id="D5-null"),
    pytest.param({"aud": {"a": AUD}}, WrongAudience, id="D5-object"),
    # D6: iss.
    pytest.param({"iss": ISS.rstrip("/")}, WrongIssuer, id="D6-no-trailing-slash"),
    pytest.param({"iss": ISS.upper()}, WrongIssuer, id="D6-case"),
    pytest.param({"iss": ISS[:-3]}, WrongIssuer, id="D6-prefix"),
    pytest.param({"iss": ISS + "tenant/"}, WrongIssuer, id="D6-extension"),
    pytest.param({"iss": [ISS]}, WrongIssuer, id="D6-list"),
    pytest.param({"iss": REMOVE}, WrongIssuer, id="D6-missing"),
    pytest.param({"iss": "https://other.test/"}, WrongIssuer, id="B5-other-tenant"),
    # D8: an ID token.
    pytest.param({"nonce": "n-0S6_WzA2Mj"}, WrongTokenType, id="D8-nonce"),
    pytest.param({"at_hash": "77QmUPtjPfzWtF2AnpK9RQ"}, WrongTokenType, id="D8-at_hash"),
    pytest.param({"c_hash": "LDktKdoQak3Pk0cnXxCltA"}, WrongTokenType, id="D8-c_hash"),
    # D9: identifiers of the wrong type.
    pytest.param({"sub": 42}, InvalidClaim, id="D9-sub-number"),
    pytest.param({"jti": ["a"]}, InvalidClaim, id="D9-jti-list"),
    pytest.param({"client_id": {"a": 1}}, InvalidClaim, id="D9-client_id-object"),
    pytest.param({"azp": 1}, InvalidClaim, id="D9-azp-number"),
    pytest.param({"sub": None}, InvalidClaim, id="D9-sub-null"),
    pytest.param({"jti": None}, InvalidClaim, id="D9-jti-null"),
    pytest.param({"client_id": None}, InvalidClaim, id="D9-client_id-null-hiding-azp"),
    pytest.param({"azp": None}, InvalidClaim, id="D9-azp-null"),
    # D10: scope types.
    pytest.param({"scope": 7}, InvalidClaim, id="D10-scope-number"),
    pytest.param({"scope": ["a", 1]}, InvalidClaim, id="D10-scope-mixed-list"),
    pytest.param({"scp": {"a": 1}}, InvalidClaim, id="D10-scp-object"),
    pytest.param({"scp": "a b"}, None, id="D10-scp-string-ok"),
    # D11: sender-constrained tokens.
    pytest.param({"cnf": {"jkt": "0ZcOCORZNYy"}}, InvalidClaim, id="D11-dpop"),
    pytest.param({"cnf": {"x5t#S256": "bwcK0esc3ACC3DB2"}}, InvalidClaim, id="D11-mtls"),
]


@pytest.mark.parametrize(("claims", "error"), REJECTED)
def test_claim_rule(
    claims: dict[str, Any],
    error: type[InvalidToken] | None,
    issuer: LocalIssuer,
    validator: Validator,
) -> None:
    """A correctly signed token with this claim is refused as the expected leaf."""
    token = issuer.token(**claims)
    if error is None:
        assert validator.validate(token).scopes == {"a", "b"}
        return
    with pytest.raises(InvalidToken) as caught:
        validator.validate(token)
    assert type(caught.value) is error


ACCEPTED = [
    pytest.param({}, id="plain"),
    pytest.param({"exp": NOW + 0.5}, id="D1-float-exp"),
    pytest.param({"exp": NOW}, id="D1-exp-now-within-leeway"),
    pytest.param({"exp": NOW - LEEWAY + 1}, id="D1-exp-just-within-leeway"),
    pytest.param({"exp": 10**30}, id="D1-far-future"),
    pytest.param({"nbf": NOW + LEEWAY}, id="D2-nbf-within-leeway"),
    pytest.param({"iat": NOW + LEEWAY}, id="D3-iat-within-leeway"),
    pytest.param({"iat": REMOVE}, id="D3-iat-optional-by-default"),
    pytest.param({"aud": [AUD, "other"]}, id="D5-list-with"),
    pytest.param({"aud": ["other", AUD]}, id="D5-list-with-last"),
]


@pytest.mark.parametrize("claims", ACCEPTED)
def test_claims_accepted(claims: dict[str, Any], issuer: LocalIssuer, validator: Validator) -> None:
    """Boundary values that RFC 7519 and the defaults allow are accepted."""
    token = validator.validate(issuer.token(**claims))
    assert token.issuer == ISS


@pytest.mark.parametrize(
    ("typ", "strict", "accepted"),
    [
        pytest.param(REMOVE, False, True, id="absent"),
        pytest.param("JWT", False, True, id="JWT"),
        pytest.param("jwt", False, True, id="jwt-lowercase"),
        pytest.param("application/jwt", False, True, id="application-jwt"),
        pytest.param("at+jwt", False, True, id="at+jwt"),
        pytest.param("AT+JWT", False, True, id="AT+JWT"),
        pytest.param("application/at+jwt", False, True, id="application-at+jwt"),
        pytest.param("", False, False, id="empty"),
        pytest.param("JOSE", False, False, id="JOSE"),
        pytest.param("dpop+jwt", False, False, id="dpop"),
        pytest.param("secevent+jwt", False, False, id="secevent"),
        pytest.param("logout+jwt", False, False, id="logout"),
        pytest.param("at+jwt", True, True, id="strict-at+jwt"),
        pytest.param("AT+JWT", True, True, id="strict-AT+JWT"),
        pytest.param("application/at+jwt", True, True, id="strict-application"),
        pytest.param("JWT", True, False, id="strict-JWT"),
        pytest.param(REMOVE, True, False, id="strict-absent"),
        pytest.param("JOSE", True, False, id="strict-JOSE"),
        pytest.param("dpop+jwt", True, False, id="strict-dpop"),
    ],
)
def test_typ(typ: Any, strict: bool, accepted: bool, issuer: LocalIssuer) -> None:
    """D7: typ absent/JWT/at+jwt pass by default; token_type='at+jwt' requires at+jwt."""
    options = {"token_type": "at+jwt"} if strict else {}
    token = issuer.token(header={"typ": typ}, client_id="c1")
    with issuer.validator(**options) as validator:
        if accepted:
            assert validator.validate(token).client_id == "c1"
        else:
            with pytest.raises(InvalidToken) as caught:
                validator.validate(token)
            assert type(caught.value) is WrongTokenType


@pytest.mark.parametrize("missing", ["sub", "client_id", "jti", "iat", "exp", "aud", "iss"])
def test_strict_mode_requires_rfc9068_claims(missing: str, issuer: LocalIssuer) -> None:
    """D9: in at+jwt mode each RFC 9068 §2.2 claim is required (InvalidClaim when absent)."""
    claims: dict[str, Any] = {"client_id": "c1", missing: REMOVE}
    token = issuer.token(header={"typ": "at+jwt"}, **claims)
    with issuer.validator(token_type="at+jwt") as validator, pytest.raises(InvalidToken) as e:
        validator.validate(token)
    assert type(e.value) is InvalidClaim


def test_strict_mode_refuses_non_string_identifiers(issuer: LocalIssuer) -> None:
    """D9: in at+jwt mode a null sub is an InvalidClaim, not a missing-but-optional claim."""
    token = issuer.token(header={"typ": "at+jwt"}, client_id="c1", sub=None)
    with issuer.validator(token_type="at+jwt") as validator, pytest.raises(InvalidClaim):
        validator.validate(token)


def test_strict_mode_accepts_a_full_rfc9068_token(issuer: LocalIssuer) -> None:
    """An RFC 9068 token with every required claim passes strict mode."""
    token = issuer.token(header={"typ": "at+jwt"}, client_id="c1", scope="read")
    with issuer.validator(token_type="at+jwt") as validator:
        assert validator.validate(token).has_scopes("read")


def test_id_token_in_strict_mode_is_wrong_type(issuer: LocalIssuer) -> None:
    """D8: an ID token (typ JWT, aud = client) is WrongTokenType under at+jwt."""
    token = issuer.token(aud="client-1", nonce="abc")
    with issuer.validator(token_type="at+jwt") as validator, pytest.raises(InvalidToken) as e:
        validator.validate(token)
    assert type(e.value) is WrongTokenType


@pytest.mark.parametrize(
    ("age", "error"),
    [
        pytest.param(60, None, id="young"),
        pytest.param(3600 + LEEWAY, None, id="at-limit"),
        pytest.param(3600 + LEEWAY + 1, TokenExpired, id="too-old"),
    ],
)
def test_max_token_age(age: float, error: Any, issuer: LocalIssuer, clock: FakeClock) -> None:
    """D4: with max_token_age, a token issued longer ago than that (plus leeway) is expired."""
    token = issuer.token(expires_in=10 * 3600)
    clock.advance(age)
    with issuer.validator(max_token_age=3600) as validator:
        if error is None:
            assert validator.validate(token)
        else:
            with pytest.raises(InvalidToken) as caught:
                validator.validate(token)
            assert type(caught.value) is error


def test_max_token_age_requires_iat(issuer: LocalIssuer) -> None:
    """D4: with max_token_age set, a token without iat is InvalidClaim."""
    with issuer.validator(max_token_age=3600) as validator, pytest.raises(InvalidClaim):
        validator.validate(issuer.token(iat=REMOVE))


@pytest.mark.parametrize("name", ["org_id", "permissions"])
def test_required_claims(name: str, issuer: LocalIssuer) -> None:
    """A claim named in required_claims must be present and not null (InvalidClaim otherwise)."""
    with issuer.validator(required_claims=[name]) as validator:
        with pytest.raises(InvalidClaim):
            validator.validate(issuer.token())
        with pytest.raises(InvalidClaim, match="null"):
            validator.validate(issuer.token(**{name: None}))
        assert validator.validate(issuer.token(**{name: ["x"]})).claims[name] == ["x"]
        # Falsy values that are not null are present: the claim's meaning is the app's.
        assert validator.validate(issuer.token(**{name: []})).claims[name] == []


def test_permissions_are_their_own_set_by_default(issuer: LocalIssuer) -> None:
    """Auth0's permissions (the user's whole role) are not scopes unless configured."""
    token = issuer.token(scope="read:appointments", permissions=["delete:contacts"])
    with issuer.validator() as validator:
        access = validator.validate(token)
    assert access.scopes == {"read:appointments"}
    assert access.permissions == {"delete:contacts"}
    assert not access.has_scopes("delete:contacts")


def test_permissions_count_as_scopes_only_when_configured(issuer: LocalIssuer) -> None:
    """scope_claims naming permissions reads them as scopes too; the set stays its own."""
    token = issuer.token(scope="read:appointments", permissions=["delete:contacts"])
    with issuer.validator(scope_claims=["scope", "scp", "permissions"]) as validator:
        access = validator.validate(token)
    assert access.scopes == {"read:appointments", "delete:contacts"}
    assert access.permissions == {"delete:contacts"}


def test_permissions_of_another_type_are_refused(issuer: LocalIssuer) -> None:
    """A permissions claim that is not a list of strings is InvalidClaim, configured or not."""
    with issuer.validator() as validator, pytest.raises(InvalidClaim):
        validator.validate(issuer.token(permissions=[1]))


def test_null_client_id_does_not_hide_azp() -> None:
    """AccessToken.client_id falls back to azp when client_id is null, not only when absent."""
    token = AccessToken.from_claims({}, {"iss": ISS, "exp": NOW, "client_id": None, "azp": "a"})
    assert token.client_id == "a"


def test_any_configured_audience_suffices(issuer: LocalIssuer) -> None:
    """aud is any-of: a token for one of several configured audiences passes."""
    with issuer.validator(audience=["https://a.test", AUD]) as validator:
        assert validator.validate(issuer.token()).audience == (AUD,)
        with pytest.raises(WrongAudience):
            validator.validate(issuer.token(aud="https://b.test"))


def test_leeway_zero_makes_exp_exclusive(issuer: LocalIssuer) -> None:
    """With leeway 0 a token is expired at exactly exp (RFC 7519 §4.1.4)."""
    with issuer.validator(leeway=0) as validator, pytest.raises(TokenExpired):
        validator.validate(issuer.token(exp=NOW))


def test_payload_problems_come_after_the_signature(issuer: LocalIssuer) -> None:
    """A malformed payload with a bad signature reads InvalidSignature, not MalformedToken."""
    good = signed(issuer, payload=b"[1]")
    head, body, sig = good.split(".")
    with issuer.validator() as validator:
        with pytest.raises(MalformedToken):
            validator.validate(good)
        with pytest.raises(InvalidSignature):
            validator.validate(f"{head}.{body}.{'B' if sig[0] == 'A' else 'A'}{sig[1:]}")


def test_hs256_shared_secret(clock: FakeClock) -> None:
    """An HS256 validator accepts its own tokens and refuses other secrets and cut MACs."""
    import jwt

    secret = "s" * 16 + "0123456789abcdef"
    claims = {"iss": ISS, "aud": AUD, "exp": NOW + 60, "sub": "x"}
    good = jwt.encode(claims, secret, algorithm="HS256")
    forged = jwt.encode(claims, "t" * 32, algorithm="HS256")
    head, body, mac = good.split(".")
    with Validator(issuer=ISS, audience=AUD, shared_secret=secret, clock=clock) as validator:
        assert validator.validate(good).subject == "x"
        for token in (forged, f"{head}.{body}.{mac[:-6]}", f"{head}.{body}.", f"{good}AAAA"):
            with pytest.raises(InvalidToken) as caught:
                validator.validate(token)
            assert type(caught.value) in (InvalidSignature, MalformedToken)
        with pytest.raises(InvalidToken) as caught:
            validator.validate(jwt.encode(claims, secret * 2, algorithm="HS512"))
    assert caught.value.reason == "algorithm_not_allowed"


def test_huge_numbers_in_payload_json(issuer: LocalIssuer, validator: Validator) -> None:
    """C7: -0 and 1e-400 are plain (expired) numbers, never a crash."""
    for literal in (b"-0", b"1e-400", b"-0.0"):
        payload = dumps(issuer.claims())[:-1] + b', "exp": ' + literal + b"}"
        payload = payload.replace(b'"exp": ', b'"old": ', 1)
        with pytest.raises(TokenExpired):
            validator.validate(signed(issuer, payload=payload))


# --- scopes and the value object ---------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "scopes"),
    [
        pytest.param({"scope": "read write"}, {"read", "write"}, id="space-string"),
        pytest.param({"scope": "read  write "}, {"read", "write"}, id="extra-spaces"),
        pytest.param({"scope": "read,write"}, {"read,write"}, id="comma-is-no-separator"),
        pytest.param({"scope": "a\tb"}, {"a\tb"}, id="tab-is-no-separator"),
        pytest.param({"scope": ["read", "write"]}, {"read", "write"}, id="list"),
        pytest.param({"scp": "a b"}, {"a", "b"}, id="scp-string"),
        pytest.param({"scp": ["a"], "permissions": ["b"]}, {"a"}, id="permissions-are-no-scopes"),
        pytest.param({"scope": ""}, set(), id="empty"),
        pytest.param({"scope": None}, set(), id="null"),
        pytest.param({}, set(), id="none"),
    ],
)
def test_parse_scopes(claims: dict[str, Any], scopes: set[str]) -> None:
    """Scopes come from scope and scp (not permissions), split on spaces only."""
    assert parse_scopes(claims) == scopes


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"scope": 1}, id="number"),
        pytest.param({"scp": [1]}, id="list-of-number"),
        pytest.param({"permissions": {"a": "b"}}, id="object"),
    ],
)
def test_parse_scopes_wrong_type(claims: dict[str, Any]) -> None:
    """A scope claim of another type is InvalidClaim."""
    with pytest.raises(InvalidClaim):
        parse_scopes(claims, ("scope", "scp", "permissions"))


def test_parse_scopes_only_reads_the_given_claims() -> None:
    """scope_claims restricts where scopes are read."""
    assert parse_scopes({"scope": "a", "scp": "b"}, ("scp",)) == {"b"}


def _token(**claims: Any) -> AccessToken:
    base: dict[str, Any] = {"iss": ISS, "aud": AUD, "exp": NOW, "scope": "read:a write:a"}
    base.update(claims)
    return AccessToken.from_claims({"alg": "RS256"}, base)


@pytest.mark.parametrize(
    ("required", "match", "granted"),
    [
        pytest.param(("read:a",), "all", True, id="one"),
        pytest.param(("read:a", "write:a"), "all", True, id="all-present"),
        pytest.param(("read:a", "admin"), "all", False, id="all-one-missing"),
        pytest.param(("read:a", "admin"), "any", True, id="any-one-present"),
        pytest.param(("admin",), "any", False, id="any-none"),
        pytest.param(("read",), "all", False, id="prefix"),
        pytest.param(("Read:a",), "all", False, id="case"),
        pytest.param(("read:a write:a",), "all", False, id="joined"),
        pytest.param((), "all", True, id="nothing-required"),
    ],
)
def test_has_scopes(required: tuple[str, ...], match: str, granted: bool) -> None:
    """D10: scopes compare exactly; 'all' needs every one, 'any' at least one."""
    assert _token().has_scopes(*required, match=match) is granted


def test_has_scopes_rejects_unknown_match() -> None:
    """A match other than 'all'/'any' is a programming error (ValueError)."""
    with pytest.raises(ValueError, match="match"):
        _token().has_scopes("a", match="some")
    assert check_match("any") == "any"


def test_access_token_attributes() -> None:
    """The value object exposes the claims read-only and never shows the token in repr."""
    token = _token(sub="u1", client_id="c1", azp="other", iat=NOW - 5, jti="j1", aud=[AUD, "b"])
    assert (token.subject, token.client_id, token.token_id) == ("u1", "c1", "j1")
    assert token.audience == (AUD, "b")
    assert (token.expires_at, token.issued_at) == (NOW, NOW - 5)
    assert token.header["alg"] == "RS256"
    with pytest.raises(TypeError):
        token.claims["sub"] = "admin"  # type: ignore[index]
    assert "u1" in repr(token)
    assert "read:a" in repr(token)
    assert _token(azp="c2").client_id == "c2"
    assert _token(azp=5).client_id is None
    assert _token(aud=None).audience == ()
