"""The JWKS cache through the validators, with HTTP mocked at the httpx boundary (respx)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from apiguard import (
    AlgorithmNotAllowed,
    InvalidToken,
    KeySetUnavailable,
    UnknownSigningKey,
    Validator,
)
from apiguard.bearer import render_error
from apiguard.testing import REMOVE, LocalIssuer

from .conftest import FakeClock

JWKS_URI = "https://issuer.test/.well-known/jwks.json"
DISCOVERY = "https://issuer.test/.well-known/openid-configuration"


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


@pytest.fixture
def served(mock: respx.MockRouter, issuer: LocalIssuer) -> respx.Route:
    """The issuer's JWKS served at JWKS_URI (the route counts the calls)."""
    return mock.get(JWKS_URI).mock(side_effect=issuer.handle)


def make_validator(issuer: LocalIssuer, **options: Any) -> Validator:
    options.setdefault("jwks_uri", JWKS_URI)
    return Validator(issuer=issuer.issuer, audience=issuer.audience, clock=issuer.clock, **options)


@pytest.fixture
def jv(issuer: LocalIssuer, served: respx.Route) -> Iterator[Validator]:
    with make_validator(issuer) as v:
        yield v


def test_keys_fetched_once_and_reused(issuer: LocalIssuer, served: respx.Route, jv: Any) -> None:
    """The JWKS is fetched on first use and reused while fresh."""
    for _ in range(5):
        jv.validate(issuer.token())
    assert served.call_count == 1


@pytest.mark.parametrize(
    ("cache_control", "fresh_for"),
    [
        pytest.param(None, 600, id="default-600"),
        pytest.param("max-age=120", 120, id="max-age"),
        pytest.param("public, max-age=120, must-revalidate", 120, id="max-age-in-list"),
        pytest.param('max-age="120"', 120, id="quoted"),
        pytest.param("max-age=5", 30, id="floor-is-cooldown"),
        pytest.param("max-age=0", 30, id="zero"),
        pytest.param("max-age=100000", 600, id="ceiling"),
        pytest.param("no-store", 30, id="no-store"),
        pytest.param("no-cache", 30, id="no-cache"),
        pytest.param("s-maxage=100", 600, id="s-maxage-ignored"),
        pytest.param("max-age=abc", 600, id="junk"),
    ],
)
def test_cache_control_bounds_freshness(
    cache_control: str | None,
    fresh_for: float,
    issuer: LocalIssuer,
    mock: respx.MockRouter,
    clock: FakeClock,
) -> None:
    """B15: keys stay fresh for Cache-Control max-age clamped to [cooldown, cache_max_age]."""
    headers = {"Cache-Control": cache_control} if cache_control else {}
    route = mock.get(JWKS_URI).mock(
        side_effect=lambda request: httpx.Response(200, json=issuer.jwks, headers=headers)
    )
    with make_validator(issuer) as validator:
        validator.validate(issuer.token())
        clock.advance(fresh_for - 1)
        validator.validate(issuer.token())
        assert route.call_count == 1
        clock.advance(1)
        validator.validate(issuer.token())
        assert route.call_count == 2


def test_unknown_kid_refetch_respects_cooldown(
    issuer: LocalIssuer, served: respx.Route, jv: Validator, clock: FakeClock
) -> None:
    """B10: an unknown kid refetches at most once per cooldown, then reads UnknownSigningKey."""
    jv.validate(issuer.token())
    clock.advance(30)
    with pytest.raises(UnknownSigningKey):
        jv.validate(issuer.token(header={"kid": "nope"}))
    assert served.call_count == 2
    clock.advance(29)
    with pytest.raises(UnknownSigningKey):
        jv.validate(issuer.token(header={"kid": "nope"}))
    assert served.call_count == 2
    clock.advance(1)
    with pytest.raises(UnknownSigningKey):
        jv.validate(issuer.token(header={"kid": "nope"}))
    assert served.call_count == 3


def test_unknown_kid_flood(
    issuer: LocalIssuer, served: respx.Route, jv: Validator, clock: FakeClock
) -> None:
    """B10: 1,000 distinct unknown kids cause at most one fetch; good tokens keep passing."""
    good = issuer.token()
    jv.validate(good)
    clock.advance(31)
    token = issuer.token()
    head = token.split(".", 1)[0]
    for index in range(1000):
        # Re-signing 1,000 RSA tokens would be slow; the kid is checked before the signature.
        forged = token.replace(head, _header_with_kid(issuer, f"kid-{index}"), 1)
        with pytest.raises(UnknownSigningKey):
            jv.validate(forged)
        clock.advance(0.001)
    assert served.call_count == 2  # the first fetch, then one for the whole flood
    assert jv.validate(good).subject == "auth0|user-1"


def _header_with_kid(issuer: LocalIssuer, kid: str) -> str:
    from .conftest import b64, dumps

    return b64(dumps({"alg": "RS256", "kid": kid, "typ": "JWT"}))


def test_zero_cooldown_cannot_loop(issuer: LocalIssuer, served: respx.Route) -> None:
    """With cooldown 0 an unknown kid costs one fetch per validation, never an endless loop."""
    with make_validator(issuer, cooldown=0) as validator:
        validator.validate(issuer.token())
        with pytest.raises(UnknownSigningKey):
            validator.validate(issuer.token(header={"kid": "nope"}))
    assert served.call_count == 2


def test_zero_cooldown_failing_discovery_cannot_loop(
    issuer: LocalIssuer, mock: respx.MockRouter
) -> None:
    """With cooldown 0 a failing discovery is tried once per URL, then KeySetUnavailable."""
    route = mock.get(host="issuer.test").mock(return_value=httpx.Response(500))
    with (
        make_validator(issuer, cooldown=0, jwks_uri=None) as validator,
        pytest.raises(KeySetUnavailable),
    ):
        validator.validate(issuer.token())
    assert route.call_count == 1


def test_refresh_failure_keeps_old_keys(
    issuer: LocalIssuer,
    mock: respx.MockRouter,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """B11: a failed refresh keeps serving the last good keys (logged as a warning)."""
    route = mock.get(JWKS_URI).mock(side_effect=issuer.handle)
    with make_validator(issuer) as validator:
        validator.validate(issuer.token())
        route.mock(return_value=httpx.Response(500))
        clock.advance(601)
        with caplog.at_level(logging.WARNING, logger="apiguard"):
            assert validator.validate(issuer.token())
        assert "serving the last good keys" in caplog.text
        clock.advance(10)
        assert validator.validate(issuer.token())
    assert route.call_count == 2  # the failed refresh is not retried within the cooldown


def test_stale_keys_expire_after_max_stale(
    issuer: LocalIssuer, mock: respx.MockRouter, clock: FakeClock
) -> None:
    """Past max_stale the old keys stop serving: KeySetUnavailable, 503 with Retry-After."""
    route = mock.get(JWKS_URI).mock(side_effect=issuer.handle)
    with make_validator(issuer, max_stale=3600) as validator:
        validator.validate(issuer.token())
        route.mock(return_value=httpx.Response(503))
        clock.advance(600 + 3600)
        with pytest.raises(KeySetUnavailable) as caught:
            validator.validate(issuer.token())
    assert 1 <= caught.value.retry_after <= 30


GARBAGE = [
    pytest.param(httpx.Response(200, text="<html>hi</html>"), id="html"),
    pytest.param(httpx.Response(200, text='{"keys": ['), id="invalid-json"),
    pytest.param(httpx.Response(200, content=b"\xff\xfe"), id="not-utf8"),
    pytest.param(httpx.Response(200, json=[]), id="array"),
    pytest.param(httpx.Response(200, json={"keys": "x"}), id="keys-string"),
    pytest.param(httpx.Response(200, json={"nokeys": []}), id="no-keys-member"),
    pytest.param(httpx.Response(200, json={"keys": []}), id="empty-keys"),
    pytest.param(httpx.Response(200, json={"keys": [{"kty": "oct", "k": "AAAA"}]}), id="oct-only"),
    pytest.param(httpx.Response(200, json={"keys": [{}] * 101}), id="too-many-keys"),
    pytest.param(httpx.Response(200, text="[" * 100_000), id="deep-json"),
    pytest.param(httpx.Response(200, content=b" " * (1 << 20) + b"{}"), id="oversized"),
    pytest.param(httpx.Response(404), id="404"),
    pytest.param(httpx.Response(500), id="500"),
    pytest.param(
        httpx.Response(302, headers={"Location": "https://evil.test/jwks"}), id="redirect-302"
    ),
    pytest.param(
        httpx.Response(307, headers={"Location": "http://127.0.0.1/jwks"}), id="redirect-307"
    ),
    pytest.param(httpx.ConnectError("refused"), id="connect-error"),
    pytest.param(httpx.ReadTimeout("slow"), id="timeout"),
]


@pytest.mark.parametrize("answer", GARBAGE)
def test_cold_garbage_is_key_set_unavailable(
    answer: Any, issuer: LocalIssuer, mock: respx.MockRouter
) -> None:
    """B11-B14: with nothing cached, a bad JWKS answer is KeySetUnavailable (503), no redirect."""
    elsewhere = mock.route(host__in=("evil.test", "127.0.0.1")).mock(
        return_value=httpx.Response(200, json=issuer.jwks)
    )
    route = mock.get(JWKS_URI).mock(side_effect=[answer])
    with make_validator(issuer) as validator, pytest.raises(KeySetUnavailable) as caught:
        validator.validate(issuer.token())
    assert route.call_count == 1
    assert elsewhere.call_count == 0
    response = render_error(caught.value)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"


@pytest.mark.parametrize("answer", GARBAGE)
def test_warm_garbage_keeps_old_keys(
    answer: Any, issuer: LocalIssuer, mock: respx.MockRouter, clock: FakeClock
) -> None:
    """B11: after a good fetch, any bad refresh answer leaves the old keys serving."""
    good = httpx.Response(200, json=issuer.jwks)
    route = mock.get(JWKS_URI).mock(side_effect=[good, answer])
    with make_validator(issuer) as validator:
        validator.validate(issuer.token())
        clock.advance(600)
        assert validator.validate(issuer.token()).issuer == issuer.issuer
    assert route.call_count == 2


def test_discovery_then_jwks(issuer: LocalIssuer, mock: respx.MockRouter) -> None:
    """Without jwks_uri the keys are found through the OpenID discovery document."""
    mock.route(host="issuer.test").mock(side_effect=issuer.handle)
    with make_validator(issuer, jwks_uri=None) as validator:
        validator.validate(issuer.token())
        validator.validate(issuer.token())
    assert issuer.requests == {"/.well-known/openid-configuration": 1, "/.well-known/jwks.json": 1}


def test_rfc8414_fallback(mock: respx.MockRouter, clock: FakeClock) -> None:
    """When OpenID discovery is 404, RFC 8414 metadata (well-known before the path) is used."""
    issuer = LocalIssuer("https://issuer.test/tenant1/", clock=clock)
    mock.get("https://issuer.test/tenant1/.well-known/openid-configuration").mock(
        return_value=httpx.Response(404)
    )
    metadata = mock.get("https://issuer.test/.well-known/oauth-authorization-server/tenant1").mock(
        return_value=httpx.Response(200, json=issuer.discovery)
    )
    mock.get(issuer.jwks_uri).mock(side_effect=issuer.handle)
    with make_validator(issuer, jwks_uri=None) as validator:
        assert validator.validate(issuer.token()).issuer == issuer.issuer
    assert metadata.call_count == 1


@pytest.mark.parametrize(
    "document",
    [
        pytest.param({"issuer": "https://evil.test/"}, id="other-issuer"),
        pytest.param({"issuer": "https://issuer.test"}, id="issuer-without-slash"),
        pytest.param({"issuer": REMOVE}, id="no-issuer"),
        pytest.param({"jwks_uri": "http://issuer.test/jwks"}, id="http-jwks_uri"),
        pytest.param({"jwks_uri": 5}, id="jwks_uri-number"),
        pytest.param({"jwks_uri": REMOVE}, id="no-jwks_uri"),
    ],
)
def test_bad_discovery_document(
    document: dict[str, Any], issuer: LocalIssuer, mock: respx.MockRouter
) -> None:
    """RFC 8414 §3.3: metadata of another issuer, or without an https jwks_uri, is a failure."""
    doc = {**issuer.discovery, **document}
    doc = {name: value for name, value in doc.items() if value is not REMOVE}
    mock.get(DISCOVERY).mock(return_value=httpx.Response(200, json=doc))
    jwks = mock.route(host__in=("issuer.test", "evil.test"), path__regex="jwks").mock(
        side_effect=issuer.handle
    )
    with make_validator(issuer, jwks_uri=None) as validator, pytest.raises(KeySetUnavailable):
        validator.validate(issuer.token())
    assert jwks.call_count == 0


def test_loopback_discovery_may_use_http(mock: respx.MockRouter, clock: FakeClock) -> None:
    """A loopback development issuer may publish an http jwks_uri."""
    issuer = LocalIssuer("http://127.0.0.1:9000/", clock=clock)
    mock.route(host="127.0.0.1").mock(side_effect=issuer.handle)
    with make_validator(issuer, jwks_uri=None) as validator:
        assert validator.validate(issuer.token()).issuer == issuer.issuer


def test_key_rotation(
    issuer: LocalIssuer, served: respx.Route, jv: Validator, clock: FakeClock
) -> None:
    """B15: a token of a new key triggers a refresh and passes; the removed key's stop passing."""
    old = issuer.token()
    jv.validate(old)
    clock.advance(30)
    issuer.rotate(keep_previous=False)
    new = issuer.token()
    assert jv.validate(new).issuer == issuer.issuer
    assert served.call_count == 2
    with pytest.raises(UnknownSigningKey):
        jv.validate(old)


def test_removed_key_stops_working_once_stale(
    issuer: LocalIssuer, served: respx.Route, jv: Validator, clock: FakeClock
) -> None:
    """B15: a cached token of a withdrawn key is refused once the key set is refreshed."""
    old = issuer.token(expires_in=3600)
    jv.validate(old)
    issuer.rotate(keep_previous=False)
    clock.advance(600)
    with pytest.raises(UnknownSigningKey):
        jv.validate(old)
    assert served.call_count == 2


@pytest.mark.parametrize("keys", [1, 2])
def test_missing_kid(keys: int, issuer: LocalIssuer, served: respx.Route, jv: Validator) -> None:
    """B16: without kid, one usable key verifies; several are ambiguous (UnknownSigningKey)."""
    if keys == 2:
        issuer.add_key("RS256")
    token = issuer.token(header={"kid": REMOVE})
    if keys == 1:
        assert jv.validate(token).issuer == issuer.issuer
    else:
        with pytest.raises(UnknownSigningKey):
            jv.validate(token)


def test_missing_kid_picks_the_only_key_for_the_alg(
    issuer: LocalIssuer, served: respx.Route, jv: Validator
) -> None:
    """B16: without kid, keys of other algorithms do not make the choice ambiguous."""
    issuer.add_key("ES256")
    assert jv.validate(issuer.token(header={"kid": REMOVE}))


def _jwks(*members: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"keys": list(members)})


def test_duplicate_kid_fails_closed(
    issuer: LocalIssuer, mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """B6: two signing keys with one kid make that kid unusable, with an error log."""
    twin = issuer.add_key("RS256", kid=issuer.current_key.kid)
    issuer.keys.remove(twin)
    mock.get(JWKS_URI).mock(return_value=_jwks(issuer.current_key.public_jwk, twin.public_jwk))
    with make_validator(issuer) as validator, pytest.raises(UnknownSigningKey):
        validator.validate(issuer.token())
    assert any(r.levelno == logging.ERROR for r in caplog.records)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"use": "enc"}, id="use"),
        pytest.param({"alg": "PS256"}, id="alg"),
    ],
)
def test_duplicate_kid_told_apart_by_use_or_alg(
    change: dict[str, Any], issuer: LocalIssuer, mock: respx.MockRouter
) -> None:
    """B6: twins that differ by use or alg are filtered down to one key, which verifies."""
    twin = issuer.add_key("RS256", kid=issuer.current_key.kid)
    issuer.keys.remove(twin)
    mock.get(JWKS_URI).mock(
        return_value=_jwks(issuer.current_key.public_jwk, {**twin.public_jwk, **change})
    )
    with make_validator(issuer) as validator:
        assert validator.validate(issuer.token())


@pytest.mark.parametrize(
    "member",
    [
        pytest.param({"kty": "oct", "k": "A" * 43, "alg": "HS256"}, id="oct"),
        pytest.param("rsa-private", id="rsa-with-d"),
    ],
)
def test_secret_material_is_skipped(
    member: Any, issuer: LocalIssuer, mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    """B9: oct keys and keys with private members are skipped with an error log."""
    if member == "rsa-private":
        member = {**issuer.current_key.public_jwk, "d": "AQAB", "kid": "leaky"}
    else:
        member = {**member, "kid": "leaky"}
    mock.get(JWKS_URI).mock(return_value=_jwks(issuer.current_key.public_jwk, member))
    with make_validator(issuer) as validator:
        assert validator.validate(issuer.token())
        with pytest.raises(InvalidToken) as caught:
            validator.validate(issuer.token(header={"kid": "leaky"}))
    assert type(caught.value) is UnknownSigningKey
    assert any(r.levelno == logging.ERROR and "skipped" in r.getMessage() for r in caplog.records)


def test_jwk_alg_binds_the_key(issuer: LocalIssuer, mock: respx.MockRouter) -> None:
    """A4/B8: a JWK without alg serves its family; with alg only that algorithm."""
    bare = {k: v for k, v in issuer.current_key.public_jwk.items() if k != "alg"}
    mock.get(JWKS_URI).mock(return_value=_jwks(bare))
    with make_validator(issuer) as validator:
        assert validator.validate(issuer.token())
    with (
        make_validator(issuer, algorithms=["PS256"]) as validator,
        pytest.raises(AlgorithmNotAllowed),
    ):
        validator.validate(issuer.token())


def test_keys_belong_to_their_issuer(mock: respx.MockRouter, clock: FakeClock) -> None:
    """B5: a token claiming issuer A but signed with issuer B's key (and kid) is refused."""
    a = LocalIssuer("https://a.test/", clock=clock)
    b = LocalIssuer("https://b.test/", clock=clock)
    b.keys[0] = b.add_key("RS256", kid="b-key")
    b.keys.pop()
    mock.route(host="a.test").mock(side_effect=a.handle)
    mock.route(host="b.test").mock(side_effect=b.handle)
    forged = b.token(iss=a.issuer, aud=a.audience)
    validator = Validator(issuer=a.issuer, audience=a.audience, clock=clock)
    with validator, pytest.raises(UnknownSigningKey):
        validator.validate(forged)
    assert b.requests == {}
    assert a.requests["/.well-known/jwks.json"] == 1


def test_jwks_body_cap(issuer: LocalIssuer, mock: respx.MockRouter) -> None:
    """B12: a JWKS body over max_jwks_size is a failed fetch."""
    padded = json.dumps({**issuer.jwks, "pad": "x" * 4096})
    mock.get(JWKS_URI).mock(return_value=httpx.Response(200, text=padded))
    with (
        make_validator(issuer, max_jwks_size=4096) as validator,
        pytest.raises(KeySetUnavailable),
    ):
        validator.validate(issuer.token())
    with make_validator(issuer, max_jwks_size=8192) as validator:
        assert validator.validate(issuer.token())
