"""DPoP (RFC 9449) costs: a DPoP request against its floor, the replay stores, the Bearer path.

- A DPoP request is the one request path's validation step for a DPoP-bound token that the
  client reuses (a verified-token cache hit, as in a warm service) with a fresh ES256 proof
  each time: binding, proof, replay check in memory. Its floor is what no DPoP check can
  avoid: validating the token the same way plus the bare ``cryptography`` verify of the
  proof's signature. Target: at most 1.2x the floor.
- The in-memory replay store's ``add`` per call (target: under 2 us).
- The Redis store's ``add`` against a bare ``SET key 1 NX PX`` round trip with the same
  client, on a redis-server started for the run on a free loopback port (skipped when
  redis-server is not installed).
- The Bearer path: the validation step for a Bearer token with DPoP off (today's path) and
  in ``allowed`` mode, against ``validate`` alone.
"""

from __future__ import annotations

import base64
import itertools
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.utils import raw_to_der_signature

from apiguard._request import RequestView, Validate
from apiguard.dpop import MemoryReplayStore, RedisReplayStore
from apiguard.testing import DPoPKey, LocalIssuer

from ._util import Row, interleaved, per_call

AUDIENCE = "https://bench.example/api"
URL = "https://api.bench/api/appointments"
ROUNDS = 7


def _view(proof: str) -> RequestView:
    return RequestView(
        method="GET",
        path="/api/appointments",
        raw_path="/api/appointments",
        authorization=(),
        scheme="https",
        host="api.bench",
        dpop=(proof,),
    )


def _signature(proof: str) -> tuple[bytes, bytes]:
    signing_input, _, signature = proof.rpartition(".")
    return signing_input.encode(), base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))


def run(calls: int = 2000) -> list[Row]:
    """Measure; return the rows of the table."""
    rows = _request_rows(calls)
    rows.extend(_store_rows(calls))
    rows.extend(_bearer_rows(calls))
    return rows


def _request_rows(calls: int) -> list[Row]:
    issuer = LocalIssuer("https://issuer.bench/", audience=AUDIENCE, algorithm="ES256")
    key = DPoPKey("ES256")
    token = issuer.token(dpop_key=key, scope="read:a")
    validator = issuer.validator(dpop="required", replay_store=MemoryReplayStore(1 << 20))
    # The same token validation (validate() alone checks no proof).
    bearer = issuer.validator(dpop="required")
    # Every proof is new (a replayed one is refused): one batch per round and loop.
    # The request views are built beforehand: a framework builds its own anyway.
    batches: Iterator[list[Validate]] = iter(
        [
            [
                Validate(token, "DPoP", _view(key.proof("GET", URL, access_token=token)))
                for _ in range(calls)
            ]
            for _ in range(ROUNDS)
        ]
    )
    floor_batch = [key.proof("GET", URL, access_token=token) for _ in range(calls)]
    public = key.private_key.public_key()
    ecdsa = ec.ECDSA(hashes.SHA256())
    signatures = [_signature(p) for p in floor_batch]
    for _ in range(2):  # both validators hold the token in their cache, as a warm service
        bearer.validate(token)
        validator.validate(token)

    def dpop_requests() -> None:
        for step in next(batches):
            validator.validate_credentials(step)

    def floor() -> None:
        for message, signature in signatures:
            bearer.validate(token)
            public.verify(raw_to_der_signature(signature, public.curve), message, ecdsa)

    times = interleaved({"dpop": dpop_requests, "floor": floor}, calls, rounds=ROUNDS)
    ratio = times["dpop"] / times["floor"]
    rows = [
        Row(
            "dpop",
            "ES256 DPoP request (cached token, fresh proof, memory store)",
            times["dpop"] * 1e6,
            "us",
            f"{ratio:.2f}x floor",
            "<= 1.2x floor",
            ratio <= 1.2,
        ),
        Row(
            "dpop",
            "floor: validate the token + raw cryptography verify of the proof",
            times["floor"] * 1e6,
            "us",
        ),
    ]
    validator.close()
    bearer.close()
    return rows


def _store_rows(calls: int) -> list[Row]:
    store = MemoryReplayStore(1 << 22)
    keys = (f"key-{n}" for n in itertools.count())
    memory = per_call(lambda: [store.add(next(keys), 300) for _ in range(calls)], calls)
    rows = [
        Row(
            "dpop",
            "memory replay store add",
            memory * 1e6,
            "us",
            "",
            "< 2 us",
            memory < 2e-6,
        )
    ]
    binary = shutil.which("redis-server")
    if binary is None:
        rows.append(Row("dpop", "Redis replay store: redis-server not installed", 0, ""))
        return rows
    import redis

    from tests.redis_server import redis_process

    with tempfile.TemporaryDirectory() as workdir, redis_process(binary, Path(workdir)) as url:
        client = redis.Redis.from_url(url)
        replay = RedisReplayStore(client=client)
        names = (f"bench-{n}" for n in itertools.count())

        def bare() -> None:
            for _ in range(calls):
                client.set(f"apiguard:dpop:{next(names)}", b"1", nx=True, px=300_000)

        def store_add() -> None:
            for _ in range(calls):
                replay.add(next(names), 300)

        # Round trips wait on the server: wall-clock time, not this process's CPU time.
        times = _wall({"bare": bare, "store": store_add}, calls)
        client.close()
    ratio = times["store"] / times["bare"]
    rows.append(Row("dpop", "Redis replay store add", times["store"] * 1e6, "us", f"{ratio:.2f}x"))
    rows.append(
        Row("dpop", "bare Redis SET NX PX round trip (same client)", times["bare"] * 1e6, "us")
    )
    return rows


def _wall(loops: dict[str, Callable[[], None]], calls: int) -> dict[str, float]:
    best = dict.fromkeys(loops, float("inf"))
    for _ in range(5):
        for name, loop in loops.items():
            start = time.perf_counter()
            loop()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: seconds / calls for name, seconds in best.items()}


def _bearer_rows(calls: int) -> list[Row]:
    issuer = LocalIssuer("https://issuer.bench/", audience=AUDIENCE, algorithm="ES256")
    token = issuer.token(scope="read:a")
    off = issuer.validator()
    allowed = issuer.validator(dpop="allowed")
    view = RequestView(method="GET", path="/x", scheme="https", host="api.bench")
    for validator in (off, allowed):
        validator.validate(token)
        validator.validate(token)
    step = Validate(token, "Bearer", view)
    times = interleaved(
        {
            "validate": lambda: [off.validate(token) for _ in range(calls)],
            "off": lambda: [off.validate_credentials(step) for _ in range(calls)],
            "allowed": lambda: [allowed.validate_credentials(step) for _ in range(calls)],
        },
        calls,
    )
    rows = [
        Row(
            "dpop",
            "Bearer request, DPoP off (cache hit)",
            times["off"] * 1e6,
            "us",
            f"{times['off'] / times['validate']:.2f}x validate",
        ),
        Row(
            "dpop",
            "Bearer request, DPoP allowed (cache hit)",
            times["allowed"] * 1e6,
            "us",
            f"{times['allowed'] / times['validate']:.2f}x validate",
        ),
    ]
    off.close()
    allowed.close()
    return rows
