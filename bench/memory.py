"""Memory: RSS stays bounded while validating a million distinct tokens.

Each token is validated twice, as a client reusing it would: the verified-token cache
admits a token on its second validation, so this fills the cache and keeps churning it.
"""

from __future__ import annotations

import secrets
import time

import jwt

from apiguard import Validator

from ._util import Row

TOTAL = 1_000_000


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run(total: int = TOTAL) -> list[Row]:
    """Validate ``total`` distinct HS256 tokens (cheap to mint) twice each; sample RSS."""
    secret = secrets.token_bytes(32)
    issuer = "https://issuer.bench/"
    audience = "https://bench.example/api"
    validator = Validator(issuer=issuer, audience=audience, shared_secret=secret)
    now = int(time.time())
    base = {"iss": issuer, "aud": audience, "iat": now, "exp": now + 3600, "scope": "read:a"}
    samples: dict[int, float] = {}
    start = time.perf_counter()
    for i in range(1, total + 1):
        token = jwt.encode({**base, "jti": str(i)}, secret, "HS256")
        validator.validate(token)
        validator.validate(token)  # the second validation puts it in the cache
        if i in (10_000, total // 10, total // 2, total):
            samples[i] = _rss_mib()
    elapsed = time.perf_counter() - start
    growth = samples[total] - samples[total // 10]
    return [
        Row("memory", f"RSS after {n:,} distinct tokens", rss, "MiB")
        for n, rss in sorted(samples.items())
    ] + [
        Row(
            "memory",
            f"RSS growth from {total // 10:,} to {total:,} tokens",
            growth,
            "MiB",
            f"{total / elapsed:,.0f} tokens/s (mint + validate twice)",
            "< 16 MiB",
            growth < 16,
        ),
    ]
