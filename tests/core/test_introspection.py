"""Token introspection (RFC 7662): requests, answers, the cache rules and single flight.

HTTP is mocked at the httpx boundary (respx); the clock is the fake one of the core tests.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs

import anyio
import anyio.lowlevel
import httpx
import jwt
import pytest
import respx
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from apiguard import (
    AsyncIntrospector,
    ConfigurationError,
    InactiveToken,
    Introspection,
    IntrospectionFailed,
    Introspector,
    InvalidClaim,
    InvalidToken,
    MalformedToken,
    ServiceUnavailable,
    TokenExpired,
    TokenNotYetValid,
    WrongAudience,
    WrongIssuer,
    WrongTokenType,
)
from apiguard.bearer import render_error
from apiguard.jwks import FetchRequest

from .conftest import NOW, FakeClock

ISSUER = "https://issuer.test/"
AUDIENCE = "https://api.test"
ENDPOINT = "https://issuer.test/oauth/introspect"
DISCOVERY = "https://issuer.test/.well-known/openid-configuration"
RFC8414 = "https://issuer.test/.well-known/oauth-authorization-server"
CLIENT_ID = "organizer-api"
SECRET = "s3cret:with/odd+chars%"
TOKEN = "opaque-" + "x" * 40


def active(**claims: Any) -> dict[str, Any]:
    """A well-formed ``active: true`` answer for TOKEN (``None`` drops a member)."""
    base: dict[str, Any] = {
        "active": True,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "auth0|user-1",
        "client_id": "calendar-app",
        "scope": "read:appointments create:appointments",
        "exp": int(NOW) + 300,
        "iat": int(NOW),
        "token_type": "Bearer",
    }
    base.update(claims)
    return {name: value for name, value in base.items() if value is not None}


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


def settings(**options: Any) -> Introspection:
    options.setdefault("client_id", CLIENT_ID)
    if "private_key" not in options:
        options.setdefault("client_secret", SECRET)
    options.setdefault("endpoint", ENDPOINT)
    return Introspection(**options)


def introspector(clock: FakeClock, *, validator: Any = None, **options: Any) -> Any:
    """An Introspector (or AsyncIntrospector via ``validator``) on the fake clock."""
    kind = validator or Introspector
    claims = {
        name: options.pop(name)
        for name in ("leeway", "max_token_age", "required_claims", "max_token_size")
        if name in options
    }
    return kind(
        issuer=ISSUER, audience=AUDIENCE, introspection=settings(**options), clock=clock, **claims
    )


def serve(mock: respx.MockRouter, *answers: Any) -> respx.Route:
    """The endpoint answering each of ``answers`` in turn (dicts as JSON), the last one after."""
    responses = [
        a if isinstance(a, httpx.Response) else httpx.Response(200, json=a) for a in answers
    ]
    route = mock.post(ENDPOINT)
    if len(responses) == 1:
        return route.mock(return_value=responses[0])
    return route.mock(side_effect=responses + [responses[-1]] * 50)


# -- the request ------------------------------------------------------------------------------


def test_accepted_answer_becomes_an_access_token(mock: respx.MockRouter, clock: FakeClock) -> None:
    """An active answer that passes the JWT checks becomes an AccessToken with its claims."""
    route = serve(mock, active(aud=[AUDIENCE, "https://other"]))
    with introspector(clock) as guard:
        token = guard.validate(TOKEN)
    assert token.scopes == {"read:appointments", "create:appointments"}
    assert (token.subject, token.client_id, token.issuer) == (
        "auth0|user-1",
        "calendar-app",
        ISSUER,
    )
    assert token.audience == (AUDIENCE, "https://other")
    assert token.expires_at == NOW + 300
    assert token.has_scopes("read:appointments")
    request = route.calls.last.request
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = parse_qs(request.content.decode())
    assert form == {"token": [TOKEN], "token_type_hint": ["access_token"]}


def test_client_secret_basic(mock: respx.MockRouter, clock: FakeClock) -> None:
    """client_secret_basic: form-encoded id and secret in the Authorization header only."""
    route = serve(mock, active())
    with introspector(clock) as guard:
        guard.validate(TOKEN)
    request = route.calls.last.request
    scheme, _, value = request.headers["authorization"].partition(" ")
    user, _, password = base64.b64decode(value).decode().partition(":")
    assert scheme == "Basic"
    assert (user, password) == (CLIENT_ID, "s3cret%3Awith%2Fodd%2Bchars%25")
    assert SECRET not in request.content.decode()


def test_client_secret_post(mock: respx.MockRouter, clock: FakeClock) -> None:
    """client_secret_post: id and secret in the form body, no Authorization header."""
    route = serve(mock, active())
    with introspector(clock, auth_method="client_secret_post") as guard:
        guard.validate(TOKEN)
    request = route.calls.last.request
    assert "authorization" not in request.headers
    form = parse_qs(request.content.decode())
    assert form["client_id"] == [CLIENT_ID]
    assert form["client_secret"] == [SECRET]


@pytest.mark.parametrize(
    ("algorithm", "make_key"),
    [
        pytest.param(
            "RS256", lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), id="rs"
        ),
        pytest.param("ES256", lambda: ec.generate_private_key(ec.SECP256R1()), id="es"),
    ],
)
def test_private_key_jwt(
    mock: respx.MockRouter, clock: FakeClock, algorithm: str, make_key: Any
) -> None:
    """private_key_jwt (RFC 7523): a fresh, short-lived assertion signed by the API's key."""
    key = make_key()
    route = serve(mock, active())
    with introspector(
        clock, private_key=key, signing_algorithm=algorithm, key_id="api-key-1", cache_ttl=0
    ) as guard:
        guard.validate(TOKEN)
        guard.validate(TOKEN)
    jtis = set()
    for call in route.calls:
        form = parse_qs(call.request.content.decode())
        assert form["client_id"] == [CLIENT_ID]
        assert form["client_assertion_type"] == [
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        ]
        assertion = form["client_assertion"][0]
        assert jwt.get_unverified_header(assertion)["kid"] == "api-key-1"
        claims = jwt.decode(
            assertion,
            key.public_key(),
            algorithms=[algorithm],
            audience=ISSUER,
            options={"verify_exp": False, "verify_iat": False},
        )
        assert claims["iss"] == claims["sub"] == CLIENT_ID
        assert claims["exp"] - claims["iat"] == 60
        jtis.add(claims["jti"])
        assert "authorization" not in call.request.headers
    assert len(jtis) == 2


def test_private_key_jwt_from_pem_and_jwk(mock: respx.MockRouter, clock: FakeClock) -> None:
    """A private key may be given as PEM text or as a private JWK."""
    from cryptography.hazmat.primitives import serialization

    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key))
    route = serve(mock, active())
    for private in (pem, jwk):
        with introspector(
            clock, private_key=private, signing_algorithm="ES256", cache_ttl=0
        ) as guard:
            guard.validate(TOKEN)
    for call in route.calls:
        assertion = parse_qs(call.request.content.decode())["client_assertion"][0]
        jwt.decode(
            assertion,
            key.public_key(),
            algorithms=["ES256"],
            audience=ISSUER,
            options={"verify_exp": False, "verify_iat": False},
        )


def test_assertion_audience_can_be_the_endpoint(mock: respx.MockRouter, clock: FakeClock) -> None:
    """assertion_audience replaces the issuer as the assertion's aud (servers that want a URL)."""
    key = ec.generate_private_key(ec.SECP256R1())
    route = serve(mock, active())
    with introspector(
        clock, private_key=key, signing_algorithm="ES256", assertion_audience=ENDPOINT
    ) as guard:
        guard.validate(TOKEN)
    assertion = parse_qs(route.calls.last.request.content.decode())["client_assertion"][0]
    assert jwt.decode(assertion, options={"verify_signature": False})["aud"] == ENDPOINT


def test_redirect_is_not_followed(mock: respx.MockRouter, clock: FakeClock) -> None:
    """A redirect from the endpoint is a failure (503); its target is never asked."""
    serve(mock, httpx.Response(307, headers={"Location": "https://evil.test/introspect"}))
    evil = mock.post("https://evil.test/introspect").mock(return_value=httpx.Response(200))
    with introspector(clock) as guard, pytest.raises(IntrospectionFailed):
        guard.validate(TOKEN)
    assert evil.call_count == 0


def test_request_repr_shows_no_token_or_secret(clock: FakeClock) -> None:
    """A FetchRequest for introspection never shows its body or headers in its repr."""
    guard = introspector(clock)
    pending = guard._core.introspect(TOKEN)
    text = repr(pending) + repr(pending.request)
    assert TOKEN not in text
    assert "Basic" not in text
    assert isinstance(pending.request, FetchRequest)
    guard.close()


def test_long_token_is_refused_without_a_call(mock: respx.MockRouter, clock: FakeClock) -> None:
    """A token over max_token_size is malformed and never sent to the server."""
    route = serve(mock, active())
    with introspector(clock, max_token_size=256) as guard, pytest.raises(MalformedToken):
        guard.validate("a" * 257)
    assert route.call_count == 0


# -- the answer -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        pytest.param({"active": False}, InactiveToken, id="inactive"),
        pytest.param(
            {"active": False, "sub": "x", "aud": AUDIENCE}, InactiveToken, id="inactive-with-claims"
        ),
        pytest.param(active(aud="https://other"), WrongAudience, id="other-audience"),
        pytest.param(
            active(aud=["https://a", "https://b"]), WrongAudience, id="audiences-not-ours"
        ),
        pytest.param(active(aud=None), WrongAudience, id="no-audience"),
        pytest.param(active(aud=[]), WrongAudience, id="empty-audience-list"),
        pytest.param(active(aud=[AUDIENCE, 5]), WrongAudience, id="audience-list-with-number"),
        pytest.param(active(aud={"x": AUDIENCE}), WrongAudience, id="audience-object"),
        pytest.param(active(iss="https://evil.test/"), WrongIssuer, id="other-issuer"),
        pytest.param(active(iss="https://issuer.test"), WrongIssuer, id="issuer-without-slash"),
        pytest.param(active(iss=None), WrongIssuer, id="no-issuer"),
        pytest.param(active(exp=int(NOW) - 100), TokenExpired, id="expired"),
        pytest.param(active(exp=None), InvalidClaim, id="no-exp"),
        pytest.param(active(exp="9999999999"), InvalidClaim, id="exp-string"),
        pytest.param(active(exp=True), InvalidClaim, id="exp-bool"),
        pytest.param(active(exp=10**400), InvalidClaim, id="exp-huge"),
        pytest.param(active(nbf=int(NOW) + 600), TokenNotYetValid, id="nbf-future"),
        pytest.param(active(iat=int(NOW) + 600), TokenNotYetValid, id="iat-future"),
        pytest.param(active(sub=42), InvalidClaim, id="sub-number"),
        pytest.param(active(client_id=["a"]), InvalidClaim, id="client-id-list"),
        pytest.param(active(scope=7), InvalidClaim, id="scope-number"),
        pytest.param(active(scope=["read", 1]), InvalidClaim, id="scope-list-with-number"),
        pytest.param(active(cnf={"jkt": "abc"}), InvalidClaim, id="sender-constrained"),
        pytest.param(active(token_type="refresh_token"), WrongTokenType, id="refresh-token-type"),
        pytest.param(active(token_use="refresh_token"), WrongTokenType, id="hydra-refresh-token"),
        pytest.param(active(token_type=5), WrongTokenType, id="token-type-number"),
        pytest.param(active(nonce="n"), WrongTokenType, id="id-token-claims"),
    ],
)
def test_refused_answers(
    answer: dict[str, Any], error: type[InvalidToken], mock: respx.MockRouter, clock: FakeClock
) -> None:
    """active: true alone is not enough: the claims are checked as a JWT's are (401)."""
    serve(mock, answer)
    with introspector(clock) as guard, pytest.raises(error) as caught:
        guard.validate(TOKEN)
    rendered = render_error(caught.value)
    assert rendered.status_code == 401
    assert 'error="invalid_token"' in rendered.headers["WWW-Authenticate"]


def test_inactive_token_has_its_reason(mock: respx.MockRouter, clock: FakeClock) -> None:
    """active: false is InactiveToken, reason inactive_token, a 401 invalid_token."""
    serve(mock, {"active": False})
    with introspector(clock) as guard, pytest.raises(InactiveToken) as caught:
        guard.validate(TOKEN)
    assert caught.value.reason == "inactive_token"
    body = json.loads(render_error(caught.value).body)
    assert body == {"error": "invalid_token", "error_description": "The access token is not active"}


def test_required_claims_and_max_age(mock: respx.MockRouter, clock: FakeClock) -> None:
    """required_claims and max_token_age apply to answers as to JWTs."""
    serve(mock, active(iat=int(NOW) - 3600))
    with introspector(clock, required_claims=["jti"]) as guard, pytest.raises(InvalidClaim):
        guard.validate(TOKEN)
    with introspector(clock, max_token_age=600) as guard, pytest.raises(TokenExpired):
        guard.validate(TOKEN)


class _Broken(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        yield b'{"active": tr'
        raise httpx.ReadError("connection reset")


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(httpx.Response(500), id="500"),
        pytest.param(httpx.Response(502, json=active()), id="502-with-a-body"),
        pytest.param(httpx.Response(503, headers={"Retry-After": "10"}), id="503"),
        pytest.param(httpx.Response(401, json={"error": "invalid_client"}), id="client-refused"),
        pytest.param(httpx.Response(403), id="client-forbidden"),
        pytest.param(httpx.Response(400, json={"error": "invalid_request"}), id="400"),
        pytest.param(httpx.Response(404), id="404"),
        pytest.param(httpx.Response(302, headers={"Location": ENDPOINT}), id="redirect"),
        pytest.param(httpx.Response(204), id="204"),
        pytest.param(httpx.Response(200, content=b""), id="empty-body"),
        pytest.param(httpx.Response(200, content=b"<html>hello</html>"), id="html"),
        pytest.param(httpx.Response(200, content=b"\xff\xfe{"), id="not-utf8"),
        pytest.param(httpx.Response(200, content=b"[" * 100_000 + b"]" * 100_000), id="deep"),
        pytest.param(httpx.Response(200, json=[active()]), id="array"),
        pytest.param(
            httpx.Response(200, content=json.dumps(active(exp=float("inf"))).encode()),
            id="exp-infinity",
        ),
        pytest.param(
            httpx.Response(200, content=json.dumps(active(exp=float("nan"))).encode()),
            id="exp-nan",
        ),
        pytest.param(
            httpx.Response(
                200, content=b'{"active": false, "active": true, "aud": "https://api.test"}'
            ),
            id="duplicate-active",
        ),
        pytest.param(
            httpx.Response(
                200,
                content=json.dumps(
                    active(
                        ext={
                            "a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]
                        }
                    )
                ).encode(),
            ),
            id="too-deep",
        ),
        pytest.param(httpx.Response(200, json="active"), id="string"),
        pytest.param(httpx.Response(200, json=None), id="null"),
        pytest.param(httpx.Response(200, json={"sub": "x"}), id="no-active"),
        pytest.param(httpx.Response(200, json=active(active="true")), id="active-string"),
        pytest.param(httpx.Response(200, json=active(active=1)), id="active-one"),
        pytest.param(httpx.Response(200, json={"active": None}), id="active-null"),
        pytest.param(httpx.Response(200, json={"active": "false"}), id="active-string-false"),
        pytest.param(
            httpx.Response(200, content=json.dumps(active(pad="x" * 70_000)).encode()),
            id="huge-body",
        ),
        pytest.param(httpx.Response(200, stream=_Broken()), id="reset-mid-body"),
        pytest.param(httpx.ConnectError("refused"), id="unreachable"),
        pytest.param(httpx.ConnectTimeout("slow"), id="connect-timeout"),
        pytest.param(httpx.ReadTimeout("slow"), id="read-timeout"),
    ],
)
def test_failures_are_503(answer: Any, mock: respx.MockRouter, clock: FakeClock) -> None:
    """The server unreachable, 5xx, refusing us or answering garbage: 503, never 401 or a token."""
    route = mock.post(ENDPOINT)
    if isinstance(answer, Exception):
        route.mock(side_effect=answer)
    else:
        route.mock(return_value=answer)
    with introspector(clock) as guard, pytest.raises(IntrospectionFailed) as caught:
        guard.validate(TOKEN)
    error = caught.value
    assert isinstance(error, ServiceUnavailable)
    assert error.reason == "introspection_failed"
    rendered = render_error(error)
    assert rendered.status_code == 503
    assert "WWW-Authenticate" not in rendered.headers
    assert int(rendered.headers["Retry-After"]) >= 1


# -- the cache --------------------------------------------------------------------------------


def test_second_call_is_served_from_the_cache(mock: respx.MockRouter, clock: FakeClock) -> None:
    """An accepted answer is reused: one call for many validations of one token."""
    route = serve(mock, active())
    with introspector(clock) as guard:
        first = guard.validate(TOKEN)
        for _ in range(5):
            assert guard.validate(TOKEN) is first
    assert route.call_count == 1


def test_cache_is_keyed_by_the_hash_of_the_token(mock: respx.MockRouter, clock: FakeClock) -> None:
    """Neither cache holds the token itself: entries are keyed by its SHA-256."""
    serve(mock, active(), {"active": False})
    with introspector(clock) as guard:
        guard.validate(TOKEN)
        with pytest.raises(InactiveToken):
            guard.validate("other-token-" + "y" * 30)
        core = guard._core
        keys = list(core._accepted._data) + list(core._refused._data)
    assert hashlib.sha256(TOKEN.encode()).hexdigest() in keys
    assert all(TOKEN not in key and "other-token" not in key for key in keys)
    assert len(keys) == 2


@pytest.mark.parametrize(
    ("cache_ttl", "expires_in", "reused_for"),
    [
        pytest.param(60, 300, 60, id="ttl-shorter-than-token"),
        pytest.param(600, 30, 30, id="token-shorter-than-ttl"),
        pytest.param(60, 60, 60, id="equal"),
    ],
)
def test_entry_lives_min_of_ttl_and_expiry(
    cache_ttl: float,
    expires_in: int,
    reused_for: float,
    mock: respx.MockRouter,
    clock: FakeClock,
) -> None:
    """An entry lives min(cache_ttl, exp - now): reused just before, asked again at the end."""
    route = serve(mock, active(exp=int(NOW) + expires_in), {"active": False})
    with introspector(clock, cache_ttl=cache_ttl) as guard:
        guard.validate(TOKEN)
        clock.advance(reused_for - 0.5)
        guard.validate(TOKEN)
        assert route.call_count == 1
        clock.advance(0.5)
        with pytest.raises(InactiveToken):
            guard.validate(TOKEN)
    assert route.call_count == 2


def test_entry_never_outlives_max_token_age(mock: respx.MockRouter, clock: FakeClock) -> None:
    """With max_token_age, an entry ends when the token grows too old, whatever the TTL."""
    route = serve(mock, active(iat=int(NOW) - 590))
    with introspector(clock, max_token_age=600, leeway=0, cache_ttl=300) as guard:
        guard.validate(TOKEN)
        clock.advance(11)
        with pytest.raises(TokenExpired):
            guard.validate(TOKEN)
    assert route.call_count == 2


def test_zero_ttl_asks_every_time(mock: respx.MockRouter, clock: FakeClock) -> None:
    """cache_ttl=0 turns the cache of accepted answers off."""
    route = serve(mock, active())
    with introspector(clock, cache_ttl=0) as guard:
        for _ in range(3):
            guard.validate(TOKEN)
    assert route.call_count == 3


def test_inactive_is_never_cached_as_valid(mock: respx.MockRouter, clock: FakeClock) -> None:
    """active: false is refused from the short negative cache, then asked again (never valid)."""
    route = serve(mock, {"active": False}, active())
    with introspector(clock, negative_cache_ttl=5) as guard:
        for _ in range(3):
            with pytest.raises(InactiveToken):
                guard.validate(TOKEN)
        assert route.call_count == 1
        clock.advance(5)
        assert guard.validate(TOKEN).subject == "auth0|user-1"
    assert route.call_count == 2


def test_refused_answers_are_cached_as_refusals(mock: respx.MockRouter, clock: FakeClock) -> None:
    """A token for another audience is remembered as refused (same error), briefly."""
    route = serve(mock, active(aud="https://other"))
    with introspector(clock) as guard:
        for _ in range(3):
            with pytest.raises(WrongAudience):
                guard.validate(TOKEN)
    assert route.call_count == 1


def test_negative_cache_can_be_off(mock: respx.MockRouter, clock: FakeClock) -> None:
    """negative_cache_ttl=0 asks again for every refused token."""
    route = serve(mock, {"active": False})
    with introspector(clock, negative_cache_ttl=0) as guard:
        for _ in range(3):
            with pytest.raises(InactiveToken):
                guard.validate(TOKEN)
    assert route.call_count == 3


def test_failures_are_never_cached(mock: respx.MockRouter, clock: FakeClock) -> None:
    """After a failed call the next request asks again, and a good answer is then accepted."""
    route = serve(mock, httpx.Response(500), active())
    with introspector(clock) as guard:
        with pytest.raises(IntrospectionFailed):
            guard.validate(TOKEN)
        assert guard.validate(TOKEN).subject == "auth0|user-1"
    assert route.call_count == 2


@pytest.mark.parametrize(
    "answer", [pytest.param(active(), id="accepted"), pytest.param({"active": False}, id="refused")]
)
def test_caches_are_bounded(answer: Any, mock: respx.MockRouter, clock: FakeClock) -> None:
    """Both caches hold at most cache_size entries, evicting the least recently used."""
    route = serve(mock, answer)
    with introspector(clock, cache_size=3) as guard:
        for index in range(10):
            with contextlib.suppress(InactiveToken):
                guard.validate(f"token-{index}-" + "z" * 30)
        core = guard._core
        assert len(core._accepted) <= 3
        assert len(core._refused) <= 3
        calls = route.call_count
        with contextlib.suppress(InactiveToken):
            guard.validate("token-9-" + "z" * 30)  # the most recent one is still there
    assert route.call_count == calls == 10


def test_cache_clear(mock: respx.MockRouter, clock: FakeClock) -> None:
    """cache_clear() forgets every answer: the next validation asks again."""
    route = serve(mock, active())
    with introspector(clock) as guard:
        guard.validate(TOKEN)
        guard.cache_clear()
        guard.validate(TOKEN)
    assert route.call_count == 2


def test_token_and_secret_never_logged(
    mock: respx.MockRouter, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither the token nor the client secret reaches the logs or an error, whatever happens."""
    serve(mock, {"active": False}, httpx.Response(401), httpx.Response(200, content=b"junk"))
    errors: list[Exception] = []
    with caplog.at_level(logging.DEBUG), introspector(clock, negative_cache_ttl=0) as guard:
        for _ in range(3):
            try:
                guard.validate(TOKEN)
            except (InvalidToken, IntrospectionFailed) as exc:
                errors.append(exc)
    assert [type(e) for e in errors] == [InactiveToken, IntrospectionFailed, IntrospectionFailed]
    assert any(r.levelno == logging.ERROR for r in caplog.records)  # the refused client
    text = " ".join(r.getMessage() + repr(r.args) for r in caplog.records)
    text += " ".join(str(e) + repr(e) for e in errors)
    assert TOKEN not in text
    assert SECRET not in text


# -- discovery --------------------------------------------------------------------------------


def metadata(**members: Any) -> dict[str, Any]:
    doc = {"issuer": ISSUER, "introspection_endpoint": ENDPOINT, "jwks_uri": ISSUER + "jwks"}
    doc.update(members)
    return {name: value for name, value in doc.items() if value is not None}


def test_endpoint_discovered_once(mock: respx.MockRouter, clock: FakeClock) -> None:
    """Without an endpoint, introspection_endpoint comes from the discovery document, once."""
    discovery = mock.get(DISCOVERY).mock(return_value=httpx.Response(200, json=metadata()))
    route = serve(mock, active())
    with introspector(clock, endpoint=None, cache_ttl=0) as guard:
        guard.validate(TOKEN)
        guard.validate(TOKEN)
    assert (discovery.call_count, route.call_count) == (1, 2)


def test_endpoint_discovered_from_rfc8414(mock: respx.MockRouter, clock: FakeClock) -> None:
    """No OpenID configuration (404): the RFC 8414 metadata is asked next."""
    mock.get(DISCOVERY).mock(return_value=httpx.Response(404))
    mock.get(RFC8414).mock(return_value=httpx.Response(200, json=metadata()))
    serve(mock, active())
    with introspector(clock, endpoint=None) as guard:
        assert guard.validate(TOKEN).subject == "auth0|user-1"


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(metadata(issuer="https://evil.test/"), id="other-issuer"),
        pytest.param(metadata(introspection_endpoint=None), id="no-endpoint"),
        pytest.param(
            metadata(introspection_endpoint="http://issuer.test/introspect"), id="plain-http"
        ),
        pytest.param(metadata(introspection_endpoint=["x"]), id="not-a-string"),
        pytest.param("not an object", id="not-an-object"),
    ],
)
def test_unusable_discovery_is_503_and_cools_down(
    document: Any, mock: respx.MockRouter, clock: FakeClock
) -> None:
    """Unusable metadata: 503, the endpoint never guessed, and no new fetch for a few seconds."""
    discovery = mock.get(DISCOVERY).mock(return_value=httpx.Response(200, json=document))
    route = serve(mock, active())
    with introspector(clock, endpoint=None) as guard:
        for _ in range(3):
            with pytest.raises(IntrospectionFailed):
                guard.validate(TOKEN)
        assert discovery.call_count == 1
        clock.advance(5)
        with pytest.raises(IntrospectionFailed):
            guard.validate(TOKEN)
    assert discovery.call_count == 2
    assert route.call_count == 0


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        pytest.param({"client_id": ""}, "client_id", id="empty-client-id"),
        pytest.param({"client_id": "a\nb"}, "client_id", id="client-id-newline"),
        pytest.param({"client_secret": None}, "client_secret", id="no-secret"),
        pytest.param({"client_secret": ""}, "client_secret", id="empty-secret"),
        pytest.param({"auth_method": "none"}, "auth_method", id="unknown-method"),
        pytest.param({"auth_method": "private_key_jwt"}, "private_key", id="jwt-without-key"),
        pytest.param({"endpoint": "http://issuer.test/introspect"}, "endpoint", id="http"),
        pytest.param({"endpoint": "ftp://issuer.test/x"}, "endpoint", id="ftp"),
        pytest.param({"endpoint": "https://u:p@issuer.test/x"}, "endpoint", id="userinfo"),
        pytest.param({"cache_ttl": -1}, "cache_ttl", id="negative-ttl"),
        pytest.param({"cache_ttl": float("nan")}, "cache_ttl", id="nan-ttl"),
        pytest.param({"negative_cache_ttl": 3600}, "negative_cache_ttl", id="long-negative"),
        pytest.param({"cache_size": -1}, "cache_size", id="negative-size"),
        pytest.param({"max_response_size": 10}, "max_response_size", id="tiny-body"),
        pytest.param({"key_id": ""}, "key_id", id="empty-kid"),
        pytest.param(
            {"private_key": "not a pem", "client_secret": None}, "private_key", id="bad-pem"
        ),
        pytest.param(
            {
                "private_key": {"kty": "EC", "crv": "P-256", "x": "a", "y": "b"},
                "client_secret": None,
            },
            "private_key",
            id="public-jwk",
        ),
        pytest.param(
            {
                "private_key": ec.generate_private_key(ec.SECP256R1()),
                "client_secret": None,
                "signing_algorithm": "RS256",
            },
            "private_key",
            id="key-of-another-type",
        ),
        pytest.param(
            {
                "private_key": rsa.generate_private_key(public_exponent=65537, key_size=1024),
                "client_secret": None,
            },
            "private_key",
            id="short-rsa",
        ),
        pytest.param(
            {
                "private_key": secrets.token_bytes(32),
                "client_secret": None,
                "signing_algorithm": "HS256",
            },
            "signing_algorithm",
            id="hmac",
        ),
        pytest.param(
            {"private_key": ec.generate_private_key(ec.SECP256R1())},
            "auth_method",
            id="secret-and-key",
        ),
    ],
)
def test_bad_settings_are_refused(options: dict[str, Any], named: str) -> None:
    """Every unusable setting is a ConfigurationError that names it, at construction."""
    options.setdefault("client_id", CLIENT_ID)
    if "client_secret" not in options:
        options["client_secret"] = SECRET
    elif options["client_secret"] is None:
        del options["client_secret"]
    with pytest.raises(ConfigurationError, match=named):
        Introspection(**options)


def test_settings_hide_credentials_in_repr() -> None:
    """repr() of the settings shows neither the secret nor the key."""
    text = repr(Introspection(client_id=CLIENT_ID, client_secret=SECRET))
    assert SECRET not in text
    assert "client_secret_basic" in text


def test_introspector_needs_introspection_settings() -> None:
    """An Introspector without Introspection settings is a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="introspection"):
        Introspector(issuer=ISSUER, audience=AUDIENCE, introspection={"client_id": "x"})
    with pytest.raises(ConfigurationError, match="http_client"):
        Introspector(
            issuer=ISSUER, audience=AUDIENCE, introspection=settings(), http_client=object()
        )
    with pytest.raises(ConfigurationError, match="http_client"):
        AsyncIntrospector(
            issuer=ISSUER, audience=AUDIENCE, introspection=settings(), http_client=object()
        )


# -- single flight ----------------------------------------------------------------------------

WORKERS = 100


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        pytest.param(active(), "accepted", id="accepted"),
        pytest.param({"active": False}, InactiveToken, id="inactive"),
        pytest.param(httpx.Response(500), IntrospectionFailed, id="failed"),
    ],
)
def test_threads_share_one_call(
    answer: Any, outcome: Any, mock: respx.MockRouter, clock: FakeClock
) -> None:
    """100 threads with one new token cause exactly one call, and all get its verdict."""
    gate, started = threading.Event(), threading.Event()
    calls = 0

    def slow(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        started.set()
        assert gate.wait(10)
        return answer if isinstance(answer, httpx.Response) else httpx.Response(200, json=answer)

    mock.post(ENDPOINT).mock(side_effect=slow)
    with introspector(clock, negative_cache_ttl=0) as guard, ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(guard.validate, TOKEN) for _ in range(WORKERS)]
        assert started.wait(10)
        for _ in range(400):
            if all(f.running() or f.done() for f in futures):
                break
            threading.Event().wait(0.005)
        threading.Event().wait(0.05)
        gate.set()
        if outcome == "accepted":
            results = [f.result(timeout=10) for f in futures]
            assert all(r.subject == "auth0|user-1" for r in results)
        else:
            assert all(isinstance(f.exception(timeout=10), outcome) for f in futures)
    assert calls == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        pytest.param(active(), "accepted", id="accepted"),
        pytest.param(httpx.Response(503), IntrospectionFailed, id="failed"),
    ],
)
async def test_tasks_share_one_call(
    answer: Any, outcome: Any, mock: respx.MockRouter, clock: FakeClock
) -> None:
    """100 tasks with one new token cause exactly one call, and all get its verdict."""
    gate = anyio.Event()
    calls = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        await gate.wait()
        return answer if isinstance(answer, httpx.Response) else httpx.Response(200, json=answer)

    mock.post(ENDPOINT).mock(side_effect=slow)
    results: list[Any] = []
    async with introspector(clock, validator=AsyncIntrospector) as guard:

        async def one() -> None:
            try:
                results.append(await guard.validate(TOKEN))
            except IntrospectionFailed as exc:
                results.append(exc)

        async with anyio.create_task_group() as group:
            for _ in range(WORKERS):
                group.start_soon(one)
            for _ in range(20):
                await anyio.lowlevel.checkpoint()
            gate.set()
    assert calls == 1
    assert len(results) == WORKERS
    if outcome == "accepted":
        assert all(r.subject == "auth0|user-1" for r in results)
    else:
        assert all(isinstance(r, outcome) for r in results)


def test_different_tokens_fly_separately(mock: respx.MockRouter, clock: FakeClock) -> None:
    """Single flight is per token: two new tokens are two calls, each with its own answer."""
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        token = parse_qs(request.content.decode())["token"][0]
        seen.append(token)
        return httpx.Response(200, json=active(sub=token[:8]))

    mock.post(ENDPOINT).mock(side_effect=answer)
    with introspector(clock) as guard, ThreadPoolExecutor(8) as pool:
        tokens = [f"tok{i}-" + "q" * 30 for i in range(2)] * 4
        results = list(pool.map(guard.validate, tokens))
    assert sorted(set(seen)) == sorted(set(tokens))
    assert len(seen) == 2
    assert [r.subject for r in results] == [t[:8] for t in tokens]


@pytest.mark.anyio
async def test_async_shell_applies_the_same_rules(mock: respx.MockRouter, clock: FakeClock) -> None:
    """The async shell accepts, caches, refuses and fails exactly as the sync one."""
    route = serve(mock, active(), {"active": False}, httpx.Response(500))
    async with introspector(clock, validator=AsyncIntrospector, negative_cache_ttl=0) as guard:
        assert (await guard.validate(TOKEN)).subject == "auth0|user-1"
        assert (await guard.validate(TOKEN)).subject == "auth0|user-1"
        other = "other-" + "w" * 30
        with pytest.raises(InactiveToken):
            await guard.validate(other)
        with pytest.raises(IntrospectionFailed):
            await guard.validate(other)
    assert route.call_count == 3
    assert guard._client.is_closed


@pytest.mark.anyio
async def test_async_slow_answer_hits_the_deadline(
    mock: respx.MockRouter, clock: FakeClock
) -> None:
    """An answer trickling its body is cut at the total deadline: 503."""

    class Trickle(httpx.AsyncByteStream):
        async def __aiter__(self) -> Any:
            yield b'{"active": '
            await anyio.sleep(5)
            yield b"true}"

    mock.post(ENDPOINT).mock(return_value=httpx.Response(200, stream=Trickle()))
    async with AsyncIntrospector(
        issuer=ISSUER, audience=AUDIENCE, introspection=settings(), clock=clock, timeout=0.1
    ) as guard:
        with anyio.fail_after(3), pytest.raises(IntrospectionFailed):
            await guard.validate(TOKEN)


# -- the testing kit ---------------------------------------------------------------------------


def test_local_issuer_answers_for_opaque_tokens_and_revokes(clock: FakeClock) -> None:
    """LocalIssuer mints opaque tokens, answers for them, and a revocation is seen at once."""
    from apiguard.testing import LocalIssuer

    issuer = LocalIssuer(clock=clock)
    token = issuer.opaque_token(scope="read:tasks", sub="auth0|ann")
    with issuer.introspector() as guard:
        granted = guard.validate(token)
        assert (granted.subject, granted.scopes) == ("auth0|ann", {"read:tasks"})
        issuer.revoke(token)
        assert guard.validate(token) is granted  # cached: the revocation is not seen yet
        guard.cache_clear()
        with pytest.raises(InactiveToken):
            guard.validate(token)
        with pytest.raises(InactiveToken):
            guard.validate("never-issued-" + "n" * 30)
    assert issuer.requests["/oauth/introspect"] == 3
    assert issuer.requests["/.well-known/openid-configuration"] == 1


def test_local_issuer_introspects_its_jwts(clock: FakeClock) -> None:
    """The kit's endpoint answers for its own JWTs too, until they are revoked or expire."""
    from apiguard.testing import LocalIssuer

    issuer = LocalIssuer(clock=clock)
    token = issuer.token(scope="read:a")
    assert issuer.introspect(token)["active"] is True
    assert issuer.introspect(LocalIssuer(clock=clock, algorithm="ES256").token())["active"] is False
    issuer.revoke(token)
    assert issuer.introspect(token) == {"active": False}
    expired = issuer.opaque_token(expires_in=10)
    clock.advance(10)
    assert issuer.introspect(expired) == {"active": False}


@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param(("test-api", "wrong"), id="wrong-secret"),
        pytest.param(("other-api", "test-api-secret"), id="other-client"),
    ],
)
def test_local_issuer_refuses_other_clients(credentials: tuple[str, str], clock: FakeClock) -> None:
    """The kit's endpoint refuses a client with other credentials (401): a 503 for the API."""
    from apiguard.testing import LocalIssuer

    issuer = LocalIssuer(clock=clock)
    client_id, secret = credentials
    for method in ("client_secret_basic", "client_secret_post"):
        wrong = Introspection(client_id=client_id, client_secret=secret, auth_method=method)
        with issuer.introspector(introspection=wrong) as guard, pytest.raises(IntrospectionFailed):
            guard.validate(issuer.opaque_token())


@pytest.mark.e2e
def test_introspection_over_a_real_socket() -> None:
    """Over loopback HTTP: discovery, then a client_secret_basic POST, answered and cached."""
    from apiguard.testing import serve_issuer

    with serve_issuer(audience=AUDIENCE) as issuer:
        client_id, secret = issuer.introspection_client
        token = issuer.opaque_token(scope="read:contacts")
        with Introspector(
            issuer=issuer.issuer,
            audience=AUDIENCE,
            introspection=Introspection(client_id=client_id, client_secret=secret),
        ) as guard:
            assert guard.validate(token).scopes == {"read:contacts"}
            guard.validate(token)
            with pytest.raises(InactiveToken):
                guard.validate("x" * 40)
    assert issuer.requests["/oauth/introspect"] == 2
