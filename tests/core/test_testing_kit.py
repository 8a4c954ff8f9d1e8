"""The testing kit keeps issuers apart: own keys and key ids, shared only through a pool."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from apiguard import InvalidToken
from apiguard.testing import KeyPool, LocalIssuer

from .conftest import FakeClock


def test_two_issuers_have_their_own_keys_and_kids(clock: FakeClock) -> None:
    """An "attacker" LocalIssuer's token does not verify for another issuer's validator."""
    victim = LocalIssuer(clock=clock)
    attacker = LocalIssuer(clock=clock)
    assert victim.current_key.kid != attacker.current_key.kid
    assert victim.jwks["keys"][0]["n"] != attacker.jwks["keys"][0]["n"]
    forged = attacker.token(iss=victim.issuer, aud=victim.audience)
    with victim.validator() as validator, pytest.raises(InvalidToken) as caught:
        validator.validate(forged)
    assert caught.value.reason in ("unknown_signing_key", "invalid_signature")


def test_forged_token_with_the_victims_kid_fails_the_signature(clock: FakeClock) -> None:
    """Even naming the victim's kid, another issuer's key does not make a valid signature."""
    victim = LocalIssuer(clock=clock)
    attacker = LocalIssuer(clock=clock)
    forged = attacker.token(header={"kid": victim.current_key.kid})
    with victim.validator() as validator, pytest.raises(InvalidToken) as caught:
        validator.validate(forged)
    assert caught.value.reason == "invalid_signature"


def test_factory_issuers_in_one_test_are_distinct(
    local_issuer_factory: Callable[..., LocalIssuer],
) -> None:
    """The plugin's factory lends distinct keys to the issuers of one test."""
    first, second = local_issuer_factory(), local_issuer_factory()
    assert first.current_key.private_key is not second.current_key.private_key
    with first.validator() as validator, pytest.raises(InvalidToken):
        validator.validate(second.token())


def test_a_pool_lends_distinct_keys_and_reuses_returned_ones() -> None:
    """Keys lent at once are distinct; a returned key is lent again, under a new kid."""
    pool = KeyPool()
    with LocalIssuer(key_pool=pool) as first, LocalIssuer(key_pool=pool) as second:
        lent = {id(first.current_key.private_key), id(second.current_key.private_key)}
        kids = {first.current_key.kid, second.current_key.kid}
    assert len(lent) == 2
    later = LocalIssuer(key_pool=pool)
    assert id(later.current_key.private_key) in lent
    assert later.current_key.kid not in kids


def test_keys_are_generated_when_first_needed() -> None:
    """An issuer that never signs nor serves its JWKS generates no key."""
    issuer = LocalIssuer()
    assert not issuer.current_key.generated
    issuer.token()
    assert issuer.current_key.generated


def test_rotation_makes_a_new_key_with_a_new_kid() -> None:
    """rotate() adds a genuinely different key under a kid of its own."""
    issuer = LocalIssuer()
    old = issuer.current_key
    new = issuer.rotate()
    assert new.kid != old.kid
    assert new.private_key is not old.private_key
    assert [key.kid for key in issuer.keys] == [new.kid, old.kid]
