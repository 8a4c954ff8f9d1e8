"""The verified-token cache, and what reaches the logs."""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from typing import Any

import pytest

from apiguard import InvalidToken, TokenExpired, TokenNotYetValid, UnknownSigningKey
from apiguard.jwks import FetchRequest, Response
from apiguard.jws import VerificationKey
from apiguard.testing import LocalIssuer

from .conftest import FakeClock


def cache(validator: Any, token: str) -> Any:
    """Validate ``token`` twice, which caches it (a token enters on its second validation)."""
    validator.validate(token)
    return validator.validate(token)


def test_hit_returns_the_same_result(issuer: LocalIssuer) -> None:
    """A cached token validates to the very same AccessToken, with no new fetch."""
    token = issuer.token()
    with issuer.validator() as validator:
        first = cache(validator, token)
        assert validator.validate(token) is first
    assert issuer.requests["/.well-known/jwks.json"] == 1


def test_a_token_enters_on_its_second_validation(issuer: LocalIssuer) -> None:
    """A token validated once takes no cache entry; the second validation caches it."""
    token = issuer.token()
    with issuer.validator() as validator:
        first = validator.validate(token)
        assert validator.cache_info() == (0, 4096, 1)
        second = validator.validate(token)
        assert second is not first
        assert validator.cache_info().currsize == 1
        assert validator.validate(token) is second


def test_tokens_seen_once_are_remembered_within_bounds(issuer: LocalIssuer) -> None:
    """The record of tokens seen once is bounded like the cache, and nothing else grows."""
    with issuer.validator(token_cache_size=2) as validator:
        for index in range(5):
            validator.validate(issuer.token(sub=f"u{index}"))
        info = validator.cache_info()
        assert info.seen_once <= 2
        assert info.currsize == 0


def test_time_claims_rechecked_on_hit(issuer: LocalIssuer, clock: FakeClock) -> None:
    """A cached token that has since expired is TokenExpired."""
    token = issuer.token(expires_in=60)
    with issuer.validator() as validator:
        cache(validator, token)
        clock.advance(60 + 30)
        with pytest.raises(TokenExpired):
            validator.validate(token)


def test_max_age_rechecked_on_hit(issuer: LocalIssuer, clock: FakeClock) -> None:
    """A cached token that grew older than max_token_age is TokenExpired."""
    token = issuer.token(expires_in=7200)
    with issuer.validator(max_token_age=100) as validator:
        cache(validator, token)
        clock.advance(131)
        with pytest.raises(TokenExpired):
            validator.validate(token)


def test_entry_dropped_when_its_key_leaves(issuer: LocalIssuer, clock: FakeClock) -> None:
    """A cached token is refused once its key has left the (still fresh) key set."""
    old = issuer.token(expires_in=3600)
    with issuer.validator() as validator:
        cache(validator, old)
        clock.advance(30)
        issuer.rotate(keep_previous=False)
        validator.validate(issuer.token())  # unknown kid: refresh, the old key is gone
        with pytest.raises(UnknownSigningKey):
            validator.validate(old)


def test_entry_survives_a_refresh_that_keeps_its_key(issuer: LocalIssuer, clock: FakeClock) -> None:
    """A refresh that republishes the same key keeps cached tokens (the key object is reused)."""
    token = issuer.token(expires_in=3600)
    with issuer.validator() as validator:
        first = cache(validator, token)
        clock.advance(601)
        validator.validate(issuer.token())  # refresh with the same key
        assert validator.validate(token) is first
    assert issuer.requests["/.well-known/jwks.json"] == 2


def test_cache_is_bounded(issuer: LocalIssuer) -> None:
    """The cache holds at most token_cache_size entries."""
    with issuer.validator(token_cache_size=2) as validator:
        for index in range(5):
            cache(validator, issuer.token(sub=f"u{index}"))
        assert validator.cache_info().currsize == 2


def test_cache_evicts_the_least_recently_used(issuer: LocalIssuer) -> None:
    """A hit makes an entry recent: the entry evicted is the one used longest ago."""
    first, second, third = (issuer.token(sub=f"u{index}") for index in range(3))
    with issuer.validator(token_cache_size=2) as validator:
        kept = cache(validator, first)
        dropped = cache(validator, second)
        validator.validate(first)
        cache(validator, third)
        assert validator.validate(first) is kept
        assert validator.validate(second) is not dropped


def test_expired_entry_leaves_the_cache(issuer: LocalIssuer, clock: FakeClock) -> None:
    """A cached token found expired is refused and forgotten; the others stay."""
    short, long = issuer.token(expires_in=60), issuer.token(expires_in=3600)
    with issuer.validator() as validator:
        cache(validator, short)
        cache(validator, long)
        clock.advance(60 + 30)
        with pytest.raises(TokenExpired):
            validator.validate(short)
        assert validator.cache_info().currsize == 1


def test_not_yet_valid_rechecked_on_hit(issuer: LocalIssuer, clock: FakeClock) -> None:
    """A cached token is TokenNotYetValid again if the clock steps back before its nbf."""
    token = issuer.token(nbf=clock() + 20)
    with issuer.validator() as validator:
        cache(validator, token)
        clock.advance(-60)
        with pytest.raises(TokenNotYetValid):
            validator.validate(token)
        clock.advance(60)
        validator.validate(token)


def test_hit_survives_a_concurrent_eviction(issuer: LocalIssuer) -> None:
    """A hit whose entry another thread evicts at that very moment is still answered."""

    class Evicting(OrderedDict[str, Any]):
        def get(self, key: str, default: Any = None) -> Any:
            entry = super().get(key, default)
            self.pop(key, None)  # what another thread's eviction would do just now
            return entry

    token = issuer.token()
    with issuer.validator() as validator:
        first = cache(validator, token)
        cache_ = validator._core._cache
        assert cache_ is not None
        evicting = Evicting(cache_._data)
        # The core reads the cache's entries directly, without the cache's methods.
        cache_._data = validator._core._cached_entries = evicting
        assert validator.validate(token) is first
        assert token not in evicting  # the eviction did happen under the hit


def test_key_set_swapped_during_verification(
    issuer: LocalIssuer, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token whose key left the key set while it was being verified is not served cached."""
    with issuer.validator() as validator:
        validator.validate(issuer.token())
        token = issuer.token(expires_in=3600)
        issuer.rotate(keep_previous=False)
        core = validator._core
        new_jwks = json.dumps(issuer.jwks).encode()
        verify = VerificationKey.verify_signature

        def verify_then_refresh(
            key: VerificationKey, alg: str, signature: bytes, signing_input: bytes
        ) -> None:
            verify(key, alg, signature, signing_input)
            # Another thread's refresh lands between the lookup and the cache insert.
            source = core.registry.remote(core.registry.policies[issuer.issuer])
            assert source.jwks_uri is not None
            request = FetchRequest(source.jwks_uri, "jwks", source.generation)
            source.receive(request, Response(200, {}, new_jwks), clock())

        validator.validate(token)  # seen once: the next validation caches it
        monkeypatch.setattr(VerificationKey, "verify_signature", verify_then_refresh)
        validator.validate(token)
        monkeypatch.undo()
        with pytest.raises(UnknownSigningKey):
            validator.validate(token)


def test_cache_clear_forgets_every_token(issuer: LocalIssuer) -> None:
    """cache_clear() empties the cache: the next validation is a full one."""
    token = issuer.token()
    with issuer.validator() as validator:
        first = cache(validator, token)
        validator.cache_clear()
        assert validator.cache_info() == (0, 4096, 0)
        assert validator.validate(token) is not first


def test_cache_disabled(issuer: LocalIssuer) -> None:
    """token_cache_size=0 validates every time afresh."""
    token = issuer.token()
    with issuer.validator(token_cache_size=0) as validator:
        results = [validator.validate(token) for _ in range(3)]
        assert len({id(result) for result in results}) == 3


def test_hs256_cache_hit(clock: FakeClock) -> None:
    """With a shared secret the cache serves hits without a key set."""
    import jwt

    from apiguard import Validator

    secret = "k" * 32
    token = jwt.encode(
        {"iss": "https://i.test/", "aud": "a", "exp": clock() + 60}, secret, algorithm="HS256"
    )
    with Validator(
        issuer="https://i.test/", audience="a", shared_secret=secret, clock=clock
    ) as validator:
        assert cache(validator, token) is validator.validate(token)


FAILING = [
    pytest.param({"aud": "https://other.test"}, {}, id="wrong-audience"),
    pytest.param({"iss": "https://evil.test/"}, {}, id="wrong-issuer"),
    pytest.param({"expires_in": -600}, {}, id="expired"),
    pytest.param({}, {"kid": "nope"}, id="unknown-kid"),
    pytest.param({}, {"alg": "HS256"}, id="alg"),
]


@pytest.mark.parametrize(("claims", "header"), FAILING)
def test_token_never_logged(
    claims: dict[str, object],
    header: dict[str, object],
    issuer: LocalIssuer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """E8: failing validations log the reason at debug level, never the token or its parts."""
    token = issuer.token(header=header, **claims)
    with (
        caplog.at_level(logging.DEBUG),
        issuer.validator() as validator,
        pytest.raises(InvalidToken) as caught,
    ):
        validator.validate(token)
    rejected = [r for r in caplog.records if "token rejected" in r.getMessage()]
    assert [r.levelno for r in rejected] == [logging.DEBUG]
    assert caught.value.reason in rejected[0].getMessage()
    for record in caplog.records:
        text = record.getMessage() + repr(record.args)
        for part in token.split("."):
            assert part not in text
    for part in token.split("."):
        assert part not in str(caught.value)
