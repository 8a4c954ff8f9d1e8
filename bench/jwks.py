"""The JWKS cache under pressure: concurrent cold starts, unknown-kid floods, a slow issuer."""

from __future__ import annotations

import asyncio
import time

import httpx

from apiguard import AsyncValidator, UnknownSigningKey
from apiguard.testing import LocalIssuer

from ._util import Row

SLOW = 0.2  # seconds the JWKS endpoint takes to answer


def _slow_transport(issuer: LocalIssuer) -> httpx.MockTransport:
    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("jwks.json"):
            await asyncio.sleep(SLOW)
        return issuer.handle(request)

    return httpx.MockTransport(handle)


async def _cold_burst(concurrency: int) -> tuple[int, float, float]:
    issuer = LocalIssuer("https://issuer.bench/", audience="https://bench.example/api")
    tokens = [issuer.token() for _ in range(concurrency)]
    client = httpx.AsyncClient(transport=_slow_transport(issuer))
    async with AsyncValidator(
        issuer=issuer.issuer, audience=issuer.audience, http_client=client
    ) as validator:
        start = time.perf_counter()
        first: list[float] = []

        async def one(token: str) -> None:
            await validator.validate(token)
            if not first:
                first.append(time.perf_counter() - start)

        await asyncio.gather(*(one(t) for t in tokens))
        total = time.perf_counter() - start
    await client.aclose()
    return issuer.requests["/.well-known/jwks.json"], first[0], total


async def _kid_flood(count: int) -> tuple[int, int]:
    issuer = LocalIssuer("https://issuer.bench/", audience="https://bench.example/api")
    client = httpx.AsyncClient(transport=issuer.transport())
    rejected = 0
    async with AsyncValidator(
        issuer=issuer.issuer, audience=issuer.audience, http_client=client
    ) as validator:
        await validator.validate(issuer.token())
        flood = [issuer.token(header={"kid": f"junk-{i}"}) for i in range(count)]
        for token in flood:
            try:
                await validator.validate(token)
            except UnknownSigningKey:
                rejected += 1
    await client.aclose()
    return issuer.requests["/.well-known/jwks.json"], rejected


def run() -> list[Row]:
    """Fetch counts and latencies of the JWKS cache."""
    fetches, first, total = asyncio.run(_cold_burst(100))
    flood_fetches, rejected = asyncio.run(_kid_flood(1000))
    return [
        Row(
            "jwks",
            "100 concurrent requests, cold cache: JWKS fetches",
            fetches,
            "",
            "",
            "1",
            fetches == 1,
        ),
        Row(
            "jwks",
            f"time to first answer, JWKS endpoint takes {SLOW * 1000:.0f} ms",
            first * 1000,
            "ms",
        ),
        Row("jwks", "time until all 100 answered", total * 1000, "ms"),
        Row(
            "jwks",
            f"1,000 unknown kids ({rejected} refused): JWKS fetches",
            flood_fetches,
            "",
            "",
            "<= 2 (1 cold + 1 per cooldown)",
            flood_fetches <= 2,
        ),
    ]
