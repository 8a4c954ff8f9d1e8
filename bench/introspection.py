"""Opaque tokens (RFC 7662): a cache hit, a miss against a bare loopback POST, single flight."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from apiguard import Introspection, Introspector
from apiguard.testing import LocalIssuer, serve_issuer

from ._util import Row, per_call

CONCURRENT = 100


def _cache_hit(calls: int) -> float:
    issuer = LocalIssuer("https://issuer.bench/", audience="https://bench.example/api")
    token = issuer.opaque_token(scope="read:appointments")
    with issuer.introspector() as introspector:
        introspector.validate(token)
        validate = introspector.validate

        def loop() -> None:
            for _ in range(calls):
                validate(token)

        return per_call(loop, calls)


def _miss_and_round_trip(calls: int) -> tuple[float, float]:
    """Seconds per miss (cache off) and per bare POST to the same loopback endpoint."""
    with serve_issuer(audience="https://bench.example/api") as issuer:
        client_id, secret = issuer.introspection_client
        token = issuer.opaque_token()
        settings = Introspection(
            client_id=client_id,
            client_secret=secret,
            endpoint=issuer.introspection_endpoint,
            cache_ttl=0,
        )
        with (
            Introspector(
                issuer=issuer.issuer, audience=issuer.audience, introspection=settings
            ) as introspector,
            httpx.Client() as bare,
        ):
            request = introspector._core.introspect(token).request  # the very same bytes
            headers = dict(request.headers)

            def misses() -> None:
                for _ in range(calls):
                    introspector.validate(token)

            def round_trips() -> None:
                for _ in range(calls):
                    bare.post(request.url, content=request.body, headers=headers).read()

            misses()  # connections warm
            round_trips()
            miss = per_call(misses, calls, repeat=5, clock=time.perf_counter)
            trip = per_call(round_trips, calls, repeat=5, clock=time.perf_counter)
    return miss, trip


def _concurrent_calls() -> int:
    """How many calls 100 threads with one new token cause while the server is slow."""
    issuer = LocalIssuer("https://issuer.bench/", audience="https://bench.example/api")
    token = issuer.opaque_token()
    gate = threading.Event()

    def slow(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/introspect"):
            gate.wait(5)
        return issuer.handle(request)

    client = httpx.Client(transport=httpx.MockTransport(slow))
    with (
        Introspector(
            issuer=issuer.issuer,
            audience=issuer.audience,
            introspection=Introspection(
                client_id=issuer.introspection_client[0],
                client_secret=issuer.introspection_client[1],
                endpoint=issuer.introspection_endpoint,
            ),
            http_client=client,
        ) as introspector,
        ThreadPoolExecutor(CONCURRENT) as pool,
    ):
        futures = [pool.submit(introspector.validate, token) for _ in range(CONCURRENT)]
        time.sleep(0.2)  # every thread is waiting on the one call by now
        gate.set()
        for future in futures:
            future.result(timeout=10)
    client.close()
    return issuer.requests["/oauth/introspect"]


def run(calls: int = 2000) -> list[Row]:
    """The introspection rows."""
    hit = _cache_hit(calls * 10)
    miss, trip = _miss_and_round_trip(max(50, calls // 10))
    flights = _concurrent_calls()
    return [
        Row(
            "introspection",
            "opaque token, cache hit",
            hit * 1e6,
            "us",
            target="< 2 us",
            met=hit < 2e-6,
        ),
        Row("introspection", "bare loopback HTTP POST (httpx, keep-alive)", trip * 1e6, "us"),
        Row(
            "introspection",
            "opaque token, cache miss (introspection over loopback)",
            miss * 1e6,
            "us",
            f"{miss / trip:.2f}x the bare round trip",
        ),
        Row(
            "introspection",
            f"calls for {CONCURRENT} concurrent requests with one new token",
            flights,
            "",
            target="1",
            met=flights == 1,
        ),
    ]
