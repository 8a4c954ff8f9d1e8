"""The shared key cache: what a key store costs per validation, and what it saves in fetches.

A key store is only consulted at the fetch step, so validation itself must cost the same
with one as without: two validators on the same issuer and tokens, one without a key store
and one with a :class:`~apiguard.MemoryKeyStore` (keys already in), the loops taking turns,
for a cache hit and a miss. Then 64 validators standing in for 64 workers start cold: the
fetches they make without a store and with one they share.
"""

from __future__ import annotations

from apiguard import MemoryKeyStore
from apiguard.testing import LocalIssuer

from ._util import Row
from .events import hits_and_misses

AUDIENCE = "https://bench.example/api"
WORKERS = 64


def run(calls: int = 2000) -> list[Row]:
    """Measure validation with and without a key store, and count the cold fetches."""
    issuer = LocalIssuer(audience=AUDIENCE)
    tokens = [issuer.token(scope="read:a") for _ in range(calls)]
    validators = {
        "no key store": issuer.validator(),
        "key store": issuer.validator(key_store=MemoryKeyStore()),
    }
    hits, misses = hits_and_misses(validators, tokens, calls)
    rows: list[Row] = []
    for path, times in (("hit", hits), ("miss", misses)):
        base, shared = times["no key store"], times["key store"]
        rows.append(Row("keystore", f"RS256 validate ({path}), no key store", base * 1e6, "us"))
        rows.append(
            Row(
                "keystore",
                f"RS256 validate ({path}), MemoryKeyStore",
                shared * 1e6,
                "us",
                f"{shared / base:.2f}x",
            )
        )
    alone, together = _cold_fetches(issuer, None), _cold_fetches(issuer, MemoryKeyStore())
    rows.append(
        Row("keystore", f"{WORKERS} cold validators, JWKS fetches, no key store", alone, "")
    )
    rows.append(
        Row(
            "keystore",
            f"{WORKERS} cold validators, JWKS fetches, one shared key store",
            together,
            "",
            target="1",
            met=together == 1,
        )
    )
    issuer.release_keys()
    return rows


def _cold_fetches(issuer: LocalIssuer, store: MemoryKeyStore | None) -> int:
    before = issuer.requests["/.well-known/jwks.json"]
    token = issuer.token()
    for _ in range(WORKERS):
        with issuer.validator(key_store=store) as validator:
            validator.validate(token)
    return issuer.requests["/.well-known/jwks.json"] - before
