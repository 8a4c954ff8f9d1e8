"""RFC 6750 without I/O: reading the Authorization header and rendering the answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from apiguard import (
    ApiguardError,
    ConfigurationError,
    InsufficientScope,
    InvalidRequest,
    InvalidSignature,
    InvalidToken,
    KeySetUnavailable,
    MissingToken,
    TokenExpired,
    WrongIssuer,
)
from apiguard import errors as errors_module
from apiguard.bearer import (
    DEFAULT_REALM,
    challenge,
    extract_token,
    pick_realm,
    query_names_token,
    render_error,
)

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"


@pytest.mark.parametrize(
    ("header", "token"),
    [
        pytest.param(f"Bearer {TOKEN}", TOKEN, id="plain"),
        pytest.param(f"bearer {TOKEN}", TOKEN, id="lowercase-scheme"),
        pytest.param(f"BEARER {TOKEN}", TOKEN, id="uppercase-scheme"),
        pytest.param(f"Bearer   {TOKEN}", TOKEN, id="several-spaces"),
        pytest.param(f" Bearer {TOKEN} ", TOKEN, id="surrounding-space"),
        pytest.param([f"Bearer {TOKEN}"], TOKEN, id="one-value-list"),
        pytest.param("Bearer abc~+/==", "abc~+/==", id="b64token-charset"),
    ],
)
def test_extract_token(header: Any, token: str) -> None:
    """E3: a single Bearer credential is returned whatever the scheme's case and spacing."""
    assert extract_token(header) == token


@pytest.mark.parametrize(
    ("header", "error"),
    [
        pytest.param(None, MissingToken, id="E1-no-header"),
        pytest.param([], MissingToken, id="E1-no-values"),
        pytest.param("", MissingToken, id="E1-empty-header"),
        pytest.param("Basic dXNlcjpwYXNz", MissingToken, id="E2-basic"),
        pytest.param('Digest username="x"', MissingToken, id="E2-digest"),
        pytest.param(f"DPoP {TOKEN}", MissingToken, id="E2-dpop"),
        pytest.param(f"Bearer{TOKEN}", MissingToken, id="E2-no-space"),
        pytest.param("Bearer", InvalidRequest, id="E4-empty"),
        pytest.param("Bearer    ", InvalidRequest, id="E4-only-spaces"),
        pytest.param("Bearer a b", InvalidRequest, id="E4-space"),
        pytest.param("Bearer a,b", InvalidRequest, id="E4-comma"),
        pytest.param('Bearer "abc"', InvalidRequest, id="E4-quote"),
        pytest.param("Bearer ab=c", InvalidRequest, id="E4-inner-equals"),
        pytest.param("Bearer é", InvalidRequest, id="E4-non-ascii"),
        pytest.param("Bearer a\nb", InvalidRequest, id="E4-newline"),
        pytest.param([f"Bearer {TOKEN}", f"Bearer {TOKEN}"], InvalidRequest, id="E5-twice"),
        pytest.param([f"Bearer {TOKEN}", "Basic x"], InvalidRequest, id="E5-two-schemes"),
    ],
)
def test_extract_token_failures(header: Any, error: type[Exception]) -> None:
    """E1-E5: no credentials is MissingToken; broken or repeated ones are InvalidRequest."""
    with pytest.raises(ApiguardError) as caught:
        extract_token(header)
    assert type(caught.value) is error


def _body(response: Any) -> dict[str, Any]:
    assert response.media_type == "application/json"
    result: dict[str, Any] = json.loads(response.body)
    return result


@pytest.mark.parametrize(
    ("error", "status", "www", "body"),
    [
        pytest.param(
            MissingToken("no header"),
            401,
            'Bearer realm="api"',
            {"error_description": "Authentication required"},
            id="missing-bare-challenge",
        ),
        pytest.param(
            InvalidRequest("twice"),
            400,
            'Bearer realm="api", error="invalid_request", '
            'error_description="The bearer token request is malformed"',
            {"error": "invalid_request", "error_description": InvalidRequest.description},
            id="invalid-request",
        ),
        pytest.param(
            TokenExpired("expired 5 s ago"),
            401,
            'Bearer realm="api", error="invalid_token", '
            'error_description="The access token expired"',
            {"error": "invalid_token", "error_description": "The access token expired"},
            id="invalid-token-leaf",
        ),
        pytest.param(
            InsufficientScope(["read:a", "write:a"]),
            403,
            'Bearer realm="api", error="insufficient_scope", '
            'error_description="The access token lacks a required scope", '
            'scope="read:a write:a"',
            {
                "error": "insufficient_scope",
                "error_description": InsufficientScope.description,
                "scope": "read:a write:a",
            },
            id="insufficient-scope",
        ),
    ],
)
def test_render_error(error: Any, status: int, www: str, body: dict[str, str]) -> None:
    """Each error renders its status, challenge and mirrored JSON body, never cached."""
    response = render_error(error, realm="api")
    assert response.status_code == status
    assert response.headers["WWW-Authenticate"] == www
    assert response.headers["Cache-Control"] == "no-store"
    assert _body(response) == body


def test_key_set_unavailable_is_503_with_retry_after() -> None:
    """KeySetUnavailable is a 503 with Retry-After and no challenge."""
    response = render_error(KeySetUnavailable("down", retry_after=17))
    assert response.status_code == 503
    assert response.headers == {"Retry-After": "17", "Cache-Control": "no-store"}
    assert _body(response)["error"] == "temporarily_unavailable"
    assert KeySetUnavailable(retry_after=0).retry_after == 1


def test_render_error_refuses_configuration_errors() -> None:
    """A ConfigurationError is a start-up bug, not an HTTP answer (TypeError)."""
    with pytest.raises(TypeError, match="ConfigurationError"):
        render_error(ConfigurationError("x"))


def test_challenge_without_realm() -> None:
    """Without a realm a bare challenge is just 'Bearer'."""
    assert challenge(MissingToken()) == "Bearer"
    assert challenge(InvalidSignature()).startswith('Bearer error="invalid_token", ')
    assert challenge(InsufficientScope([])) == (
        'Bearer error="insufficient_scope", '
        'error_description="The access token lacks a required scope"'
    )


@pytest.mark.parametrize("realm", ['a"b', "a\\b", "a\nb"])
def test_challenge_refuses_unquotable_realm(realm: str) -> None:
    """A realm outside the RFC 6750 charset is refused rather than mis-escaped."""
    with pytest.raises(ValueError, match="WWW-Authenticate"):
        challenge(MissingToken(), realm=realm)


def _leaves() -> list[type[Any]]:
    return [
        cls
        for cls in vars(errors_module).values()
        if isinstance(cls, type) and issubclass(cls, InvalidToken)
    ]


@pytest.mark.parametrize("cls", _leaves(), ids=lambda cls: cls.__name__)
def test_descriptions_are_fixed_text(cls: type[InvalidToken]) -> None:
    """Every InvalidToken leaf renders its fixed description, never the detail it was given."""
    hostile = 'iss "https://evil\r\nSet-Cookie: a=b" kid ../../etc/passwd eyJhbGci'
    response = render_error(cls(hostile))
    assert response.status_code == 401
    assert hostile not in response.headers["WWW-Authenticate"]
    assert _body(response)["error_description"] == cls.description
    assert cls.reason
    # RFC 6750 §3: the description charset (no quote, no backslash, printable ASCII).
    assert all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in cls.description)


def test_reasons_are_unique() -> None:
    """Each error class has its own machine-readable reason."""
    classes = [c for c in vars(errors_module).values() if isinstance(c, type)]
    reasons = [c.reason for c in classes if issubclass(c, ApiguardError)]
    assert len(reasons) == len(set(reasons))


def test_error_detail_defaults() -> None:
    """An error without detail carries its docstring; InsufficientScope lists what it needs."""
    assert WrongIssuer().detail.startswith("The ``iss`` claim")
    scope = InsufficientScope(["a", "b"], match="any")
    assert (scope.required, scope.match) == (("a", "b"), "any")
    assert scope.detail == "requires any of: a b"


@pytest.mark.parametrize(
    ("query", "names"),
    [
        pytest.param(b"", False, id="empty"),
        pytest.param(b"page=2", False, id="other-parameters"),
        pytest.param(b"access_token=abc", True, id="plain"),
        pytest.param("x=1&access_token=", True, id="text-blank-value"),
        pytest.param(b"access%5Ftoken=abc", True, id="percent-escaped-name"),
        pytest.param(b"access_tokens=abc", False, id="longer-name"),
        pytest.param(b"x=access_token", False, id="as-a-value"),
        pytest.param(b"q=%41", False, id="escape-elsewhere"),
    ],
)
def test_query_names_token(query: str | bytes, names: bool) -> None:
    """Only an ``access_token`` parameter name, as frameworks decode it, counts."""
    assert query_names_token(query) is names


@pytest.mark.parametrize(
    ("setting", "audiences", "realm"),
    [
        pytest.param(DEFAULT_REALM, ["https://api"], "https://api", id="default-one-audience"),
        pytest.param(DEFAULT_REALM, ["https://a", "https://b"], "api", id="default-several"),
        pytest.param(None, ["https://api"], None, id="none"),
        pytest.param("organizer", [], "organizer", id="explicit"),
    ],
)
def test_pick_realm(setting: object, audiences: list[str], realm: str | None) -> None:
    """The default realm is the one audience (else "api"); None means no realm."""
    assert pick_realm(setting, audiences) == realm


@pytest.mark.parametrize(
    "setting",
    [
        pytest.param('a"b', id="quote"),
        pytest.param("a\\b", id="backslash"),
        pytest.param(7, id="int"),
    ],
)
def test_pick_realm_refuses_what_a_challenge_cannot_carry(setting: object) -> None:
    """A realm that cannot be quoted in WWW-Authenticate is a configuration error, named."""
    with pytest.raises(ConfigurationError, match=r"^APIGUARD_REALM:"):
        pick_realm(setting, [], name="APIGUARD_REALM")


def test_default_realm_reads_as_its_name() -> None:
    """Signatures show the default realm by name (as in help()), not as an anonymous object."""
    assert repr(DEFAULT_REALM) == "DEFAULT_REALM"
