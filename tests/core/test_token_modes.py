"""Token modes per issuer (jwt, introspection, auto) and the per-call revocation check."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from apiguard import (
    AsyncValidator,
    ConfigurationError,
    InactiveToken,
    Introspection,
    IntrospectionFailed,
    IssuerPolicy,
    MalformedToken,
    Validator,
    WrongIssuer,
)
from apiguard._core import looks_like_jwt
from apiguard.testing import LocalIssuer

from .conftest import FakeClock

INTROSPECT = "/oauth/introspect"
JWKS = "/.well-known/jwks.json"


@pytest.fixture
def issuer(clock: FakeClock) -> LocalIssuer:
    return LocalIssuer(clock=clock)


@pytest.mark.parametrize(
    ("token", "shaped"),
    [
        pytest.param("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", True, id="jws"),
        pytest.param("eyJhbGciOiJSU0EtT0FFUCJ9.a.b.c.d", True, id="jwe"),
        pytest.param("2YotnFZFEjr1zCsicMWpAA", False, id="rfc6749-example"),
        pytest.param("ory_at_abc.def", False, id="hydra"),
        pytest.param("a.b.c", False, id="dots-without-json-header"),
        pytest.param("eyJ.x", False, id="one-dot"),
    ],
)
def test_jwt_shape(token: str, shaped: bool) -> None:
    """auto mode tells JWTs (compact JWS/JWE with a JSON header) from opaque tokens."""
    assert looks_like_jwt(token) is shaped


def test_jwt_mode_never_introspects(issuer: LocalIssuer) -> None:
    """The default mode refuses an opaque token as malformed, without asking anyone."""
    with issuer.validator() as validator, pytest.raises(MalformedToken):
        validator.validate(issuer.opaque_token())
    assert issuer.requests[INTROSPECT] == 0


def test_auto_mode_validates_jwts_here_and_introspects_the_rest(issuer: LocalIssuer) -> None:
    """auto: a JWT is checked with the keys, an opaque token at the endpoint (then cached)."""
    opaque = issuer.opaque_token(scope="read:tasks")
    with issuer.validator(token_mode="auto") as validator:
        assert validator.validate(issuer.token()).subject == "auth0|user-1"
        assert issuer.requests[INTROSPECT] == 0
        for _ in range(3):
            granted = validator.validate(opaque)
        assert granted.scopes == {"read:tasks"}
        assert not granted.header
        with pytest.raises(InactiveToken):
            validator.validate("never-issued-" + "n" * 30)
    assert issuer.requests[INTROSPECT] == 2


def test_auto_mode_keeps_jwt_errors(issuer: LocalIssuer) -> None:
    """auto: a JWT-shaped token that does not parse is refused here, never sent anywhere."""
    with issuer.validator(token_mode="auto") as validator, pytest.raises(MalformedToken):
        validator.validate("eyJhbGciOiJSUzI1NiJ9.%%%.x")
    assert issuer.requests[INTROSPECT] == 0


def test_introspection_mode_asks_about_every_token(issuer: LocalIssuer) -> None:
    """introspection: JWTs too are asked about (revocation at once); keys are never fetched."""
    jwt_token, opaque = issuer.token(), issuer.opaque_token()
    with issuer.validator(token_mode="introspection") as validator:
        assert validator.validate(jwt_token).subject == "auth0|user-1"
        assert validator.validate(opaque).subject == "auth0|user-1"
        issuer.revoke(jwt_token)
        validator.cache_clear()
        with pytest.raises(InactiveToken):
            validator.validate(jwt_token)
        with pytest.raises(InactiveToken):
            validator.validate("eyJhbGciOiJub25lIn0.e30.")  # whatever it looks like
    assert issuer.requests[JWKS] == 0
    assert issuer.requests[INTROSPECT] == 4


def test_revocation_check_for_jwts(issuer: LocalIssuer) -> None:
    """check_revocation: a valid JWT is also asked about; revoked, it is InactiveToken."""
    token = issuer.token()
    with issuer.validator(introspection=Introspection(**_kit(issuer), cache_ttl=0)) as v:
        granted = v.validate(token, check_revocation=True)
        assert granted.header["kid"] == issuer.current_key.kid  # the locally validated JWT
        assert v.validate(token).subject == "auth0|user-1"  # no check asked: no call
        assert issuer.requests[INTROSPECT] == 1
        issuer.revoke(token)
        assert v.validate(token).subject == "auth0|user-1"  # a JWT alone cannot know
        with pytest.raises(InactiveToken):
            v.validate(token, check_revocation=True)
    assert issuer.requests[INTROSPECT] == 2


def test_revocation_check_uses_the_introspection_cache(issuer: LocalIssuer) -> None:
    """Repeated revocation checks of one token cost one call while its answer is cached."""
    token = issuer.token()
    with issuer.validator() as validator:
        for _ in range(5):
            validator.validate(token, check_revocation=True)
    assert issuer.requests[INTROSPECT] == 1


def test_revocation_check_of_an_introspected_token_is_free(issuer: LocalIssuer) -> None:
    """An opaque token was just asked about: checking revocation asks nothing more."""
    with issuer.validator(token_mode="auto") as validator:
        validator.validate(issuer.opaque_token(), check_revocation=True)
    assert issuer.requests[INTROSPECT] == 1


def test_revocation_check_without_settings_fails_closed(clock: FakeClock) -> None:
    """A route that checks revocation with no introspection settings gets 503, never a pass."""
    issuer = LocalIssuer(clock=clock)
    policy = IssuerPolicy(issuer.issuer, audience=issuer.audience)
    with issuer.validator(issuers=[policy]) as validator:
        token = issuer.token()
        assert validator.validate(token).subject == "auth0|user-1"
        with pytest.raises(IntrospectionFailed):
            validator.validate(token, check_revocation=True)


def test_revocation_check_when_the_server_is_down(issuer: LocalIssuer) -> None:
    """The introspection endpoint failing makes a revocation check 503, not a pass."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == INTROSPECT:
            return httpx.Response(502)
        return issuer.handle(request)

    with (
        Validator(
            issuer=issuer.issuer,
            audience=issuer.audience,
            introspection=issuer.introspection_settings,
            transport=httpx.MockTransport(handle),
            clock=issuer.clock,
        ) as validator,
        pytest.raises(IntrospectionFailed),
    ):
        validator.validate(issuer.token(), check_revocation=True)


def test_opaque_tokens_go_to_the_one_introspecting_issuer(clock: FakeClock) -> None:
    """With several issuers, opaque tokens go to the one in auto mode; JWTs to their own."""
    tenant_a = LocalIssuer("https://a.test/", clock=clock, algorithm="ES256")
    tenant_b = LocalIssuer("https://b.test/", clock=clock)

    def handle(request: httpx.Request) -> httpx.Response:
        return (tenant_a if request.url.host == "a.test" else tenant_b).handle(request)

    policies = [
        IssuerPolicy(tenant_a.issuer, audience=tenant_a.audience),
        IssuerPolicy(
            tenant_b.issuer,
            audience=tenant_b.audience,
            token_mode="auto",
            introspection=tenant_b.introspection_settings,
        ),
    ]
    with Validator(issuers=policies, transport=httpx.MockTransport(handle), clock=clock) as v:
        assert v.validate(tenant_a.token()).issuer == tenant_a.issuer
        assert v.validate(tenant_b.opaque_token()).issuer == tenant_b.issuer
        # B vouching for a token that names A: an answer must name the issuer asked.
        with pytest.raises(WrongIssuer):
            v.validate(tenant_b.opaque_token(iss=tenant_a.issuer))
    assert tenant_a.requests[INTROSPECT] == 0
    assert tenant_b.requests[INTROSPECT] == 2


@pytest.mark.parametrize(
    ("options", "named"),
    [
        pytest.param({"token_mode": "introspection"}, "introspection", id="no-settings"),
        pytest.param({"token_mode": "auto"}, "introspection", id="auto-no-settings"),
        pytest.param({"token_mode": "opaque", "introspection": None}, "token_mode", id="mode"),
        pytest.param({"introspection": {"client_id": "x"}}, "introspection", id="not-settings"),
    ],
)
def test_bad_modes_are_refused(options: dict[str, Any], named: str) -> None:
    """A mode that cannot work is a ConfigurationError naming the setting, at construction."""
    with pytest.raises(ConfigurationError, match=named):
        IssuerPolicy("https://a.test/", audience="https://api", **options)


def test_two_introspecting_issuers_are_refused() -> None:
    """An opaque token names no issuer: only one issuer may introspect them."""
    settings = Introspection(client_id="api", client_secret="secret")
    policies = [
        IssuerPolicy(
            f"https://{name}.test/",
            audience="https://api",
            token_mode="auto",
            introspection=settings,
        )
        for name in ("a", "b")
    ]
    with pytest.raises(ConfigurationError, match="token_mode"):
        Validator(issuers=policies)


@pytest.mark.anyio
async def test_async_modes_and_revocation(issuer: LocalIssuer) -> None:
    """The async shell routes, introspects and checks revocation as the sync one does."""
    token, opaque = issuer.token(), issuer.opaque_token()
    async with issuer.async_validator(token_mode="auto") as validator:
        assert (await validator.validate(opaque)).subject == "auth0|user-1"
        assert (await validator.validate(token, check_revocation=True)).header
        issuer.revoke(token)
        validator.cache_clear()
        with pytest.raises(InactiveToken):
            await validator.validate(token, check_revocation=True)
    assert isinstance(validator, AsyncValidator)
    assert issuer.requests[INTROSPECT] == 3


def _kit(issuer: LocalIssuer) -> dict[str, str]:
    client_id, secret = issuer.introspection_client
    return {"client_id": client_id, "client_secret": secret}
