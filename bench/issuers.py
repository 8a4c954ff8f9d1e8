"""Many issuers: what trusting 100 issuers costs per token, and a flood of unknown ones.

- one issuer (``issuer=``) and 100 configured issuers (``issuers=[...]``, the token's issuer
  among them), validating the same unique RS256 tokens, the loops taking turns: the cost
  per token must stay within 5% (the issuer is one exact dictionary lookup);
- 10,000 tokens naming random unknown issuers, with an allow-list and a tenant resolver:
  no fetch at all, and the memory traced while they are refused stays flat.
"""

from __future__ import annotations

import base64
import json
import random
import string
import tracemalloc
from collections import Counter
from collections.abc import Callable

import httpx

from apiguard import TenantIssuers, UntrustedIssuer, Validator
from apiguard.testing import LocalIssuer

from ._util import Row, interleaved

AUDIENCE = "https://bench.example/api"
ISSUER = "https://issuer.bench/"


def run(calls: int = 2000) -> list[Row]:
    """Measure both; return the rows of the table."""
    return _configured(calls) + _flood(10_000)


def _configured(calls: int) -> list[Row]:
    issuer = LocalIssuer(ISSUER, audience=AUDIENCE)
    tokens = [issuer.token(scope="read:a") for _ in range(calls)]
    others = [f"https://tenant-{index}.bench/" for index in range(99)]
    one = issuer.validator()
    many = issuer.validator(issuers=[*others, ISSUER], audience=AUDIENCE)
    for validator in (one, many):
        validator.validate(tokens[0])  # keys fetched and parsed once, as in a warm service

    def misses(validator: Validator) -> Callable[[], None]:
        def loop() -> None:
            validator.cache_clear()  # every token is a miss
            for token in tokens:
                validator.validate(token)

        return loop

    times = interleaved({"one": misses(one), "many": misses(many)}, calls)
    ratio = times["many"] / times["one"]
    one.close()
    many.close()
    return [
        Row("issuers", "RS256 validate, 1 issuer (issuer=)", times["one"] * 1e6, "us"),
        Row(
            "issuers",
            "RS256 validate, 100 configured issuers",
            times["many"] * 1e6,
            "us",
            f"{ratio:.3f}x one issuer",
            "<= 1.05x",
            ratio <= 1.05,
        ),
    ]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _flood(total: int) -> list[Row]:
    issuer = LocalIssuer(ISSUER, audience=AUDIENCE)
    requests: Counter[str] = Counter()

    def handle(request: httpx.Request) -> httpx.Response:
        requests[str(request.url)] += 1
        return issuer.handle(request)

    rng = random.Random(12)
    header = _b64(json.dumps({"alg": "RS256", "kid": "key-1", "typ": "JWT"}).encode())
    signature = _b64(rng.randbytes(256))

    def forged() -> str:
        # A junk signature does: the issuer is refused before any key is looked at.
        host = "".join(rng.choices(string.ascii_lowercase, k=16))
        claims = issuer.claims(iss=f"https://{host}.bench/")
        return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"

    tokens = [forged() for _ in range(total)]
    resolver = TenantIssuers("https://{tenant}.bench/", ["issuer"], audience=AUDIENCE)
    validator = Validator(
        issuers=[ISSUER],
        audience=AUDIENCE,
        resolver=resolver,
        transport=httpx.MockTransport(handle),
    )
    tracemalloc.start()
    warm = total // 10
    for token in tokens[:warm]:
        _refuse(validator, token)
    before = tracemalloc.get_traced_memory()[0]
    for token in tokens[warm:]:
        _refuse(validator, token)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    validator.close()
    fetches = sum(requests.values())
    growth = (after - before) / 1024
    return [
        Row(
            "issuers",
            f"{total:,} tokens naming random unknown issuers: fetches",
            fetches,
            "",
            "",
            "0",
            fetches == 0,
        ),
        Row(
            "issuers",
            f"memory traced from token {warm:,} to {total:,} of them",
            growth,
            "KiB",
            "",
            "< 64 KiB",
            growth < 64,
        ),
    ]


def _refuse(validator: Validator, token: str) -> None:
    try:
        validator.validate(token)
    except UntrustedIssuer:
        return
    raise AssertionError("an unknown issuer was accepted")
