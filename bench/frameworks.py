"""Flask and Starlette: the same endpoint bare and protected, in-process and under a server.

In-process, Flask is driven through its test client and Starlette by calling the ASGI app
with a minimal ``receive``/``send``; the cost of validation itself is measured beside them
(the same validator, cache emptied) so that the middleware's own cost can be told apart.
Under a real server (werkzeug's threaded server, uvicorn) each app runs in a process of its
own on 127.0.0.1, fetching keys from a loopback issuer, and a bounded load of keep-alive
connections measures requests per second; the runs alternate, best of ``ROUNDS``. The
server's CPU time per request (from /proc) tells what protecting the app adds, beside a
hand-written check that only verifies the signature (the floor).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from apiguard import AsyncValidator, Validator
from apiguard.testing import LocalIssuer, serve_issuer

from . import django as django_bench
from ._apps import RawCheckMiddleware, flask_app, flask_raw_app, raw_verifier, starlette_app
from ._load import free_port, request_bytes, run_load, stop, wait_for_port
from ._util import Row, interleaved, per_call

AUDIENCE = "https://bench.example/api"
CONNECTIONS = 8
REQUESTS = 2500  # per served run, at most
MAX_SECONDS = 10.0  # per served run, at most
ROUNDS = 4

#: Requests per second with a repeated (cached) token against the bare app's, per server:
#: Starlette under uvicorn is held to 0.95x, werkzeug's threaded server (whose own cost per
#: request is several times uvicorn's) to 0.85x.
REPEATED_TARGET = {"flask": 0.85, "starlette": 0.95}
ADDED_COST_TARGET = 1.3


def run(calls: int = 2000) -> list[Row]:
    """Every framework measurement; the rows of the table."""
    issuer = LocalIssuer("https://issuer.bench/", audience=AUDIENCE)
    rows = _flask_in_process(issuer, calls) + _starlette_in_process(issuer, calls)
    rows += django_bench.run(issuer, calls, _in_process_rows)
    with serve_issuer(audience=AUDIENCE) as served:
        validate_cost = {
            "flask": _sync_validate_cost(served, calls),
            "starlette": _async_validate_cost(served, calls),
        }
        for framework in ("flask", "starlette"):
            rows += _served(framework, served, validate_cost[framework])
    return rows


# -- in-process ---------------------------------------------------------------------------


def _empty_cache(validator: Validator | AsyncValidator) -> None:
    validator.cache_clear()  # so that misses are measured


def _flask_in_process(issuer: LocalIssuer, calls: int) -> list[Row]:
    validator = issuer.validator()
    bare = flask_app(None).test_client()
    protected = flask_app(validator).test_client()
    raw = flask_raw_app(raw_verifier(issuer.current_key.private_key.public_key())).test_client()
    repeated = {"Authorization": f"Bearer {issuer.token()}"}
    unique = [{"Authorization": f"Bearer {issuer.token()}"} for _ in range(calls)]
    assert protected.get("/", headers=repeated).status_code == 200

    def bare_loop() -> None:
        for _ in range(calls):
            bare.get("/", headers=repeated)

    def repeated_loop() -> None:
        for _ in range(calls):
            protected.get("/", headers=repeated)

    def unique_loop() -> None:
        _empty_cache(validator)
        for headers in unique:
            protected.get("/", headers=headers)

    def raw_loop() -> None:
        for headers in unique:
            raw.get("/", headers=headers)

    tokens = [h["Authorization"][7:] for h in unique]

    def validate_loop() -> None:
        _empty_cache(validator)
        for token in tokens:
            validator.validate(token)

    t = interleaved(
        {
            "bare": bare_loop,
            "repeated": repeated_loop,
            "unique": unique_loop,
            "raw": raw_loop,
            "validate": validate_loop,
        },
        calls,
    )
    validator.close()
    return _in_process_rows("Flask test client", t)


def _scope(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


def _starlette_in_process(issuer: LocalIssuer, calls: int) -> list[Row]:
    async def main() -> dict[str, float]:
        async with issuer.async_validator() as validator:
            bare = starlette_app(None)
            protected = starlette_app(validator)
            public_key = issuer.current_key.private_key.public_key()
            raw = RawCheckMiddleware(starlette_app(None), raw_verifier(public_key))
            statuses: list[int] = []

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])

            host = [(b"host", b"bench")]
            repeated = [*host, (b"authorization", f"Bearer {issuer.token()}".encode())]
            unique = [
                [*host, (b"authorization", f"Bearer {issuer.token()}".encode())]
                for _ in range(calls)
            ]
            await protected(_scope(repeated), _receive, send)
            assert statuses == [200], statuses

            async def bare_loop() -> None:
                for _ in range(calls):
                    await bare(_scope(repeated), _receive, send)

            async def repeated_loop() -> None:
                for _ in range(calls):
                    await protected(_scope(repeated), _receive, send)

            async def unique_loop() -> None:
                _empty_cache(validator)
                for headers in unique:
                    await protected(_scope(headers), _receive, send)

            async def raw_loop() -> None:
                for headers in unique:
                    await raw(_scope(headers), _receive, send)

            tokens = [h[1][1][7:].decode() for h in unique]

            async def validate_loop() -> None:
                _empty_cache(validator)
                for token in tokens:
                    await validator.validate(token)

            loops = {
                "bare": bare_loop,
                "repeated": repeated_loop,
                "unique": unique_loop,
                "raw": raw_loop,
                "validate": validate_loop,
            }
            best = dict.fromkeys(loops, float("inf"))
            for _ in range(7):  # taking turns, as bench._util.interleaved
                for name, loop in loops.items():
                    start = time.process_time()
                    await loop()
                    best[name] = min(best[name], time.process_time() - start)
            times = {name: seconds / calls for name, seconds in best.items()}
            assert set(statuses) == {200}
            return times

    return _in_process_rows("Starlette ASGI call", asyncio.run(main()))


async def _async_per_call(loop: Callable[[], Awaitable[None]], calls: int) -> float:
    best = float("inf")
    for _ in range(7):
        start = time.process_time()
        await loop()
        best = min(best, time.process_time() - start)
    return best / calls


def _in_process_rows(label: str, t: dict[str, float]) -> list[Row]:
    added = (t["unique"] - t["bare"]) / t["validate"]
    return [
        Row("frameworks", f"{label}: bare app", t["bare"] * 1e6, "us/request"),
        Row(
            "frameworks",
            f"{label}: protected, repeated token",
            t["repeated"] * 1e6,
            "us/request",
            f"{t['bare'] / t['repeated']:.2f}x bare req/s",
        ),
        Row(
            "frameworks",
            f"{label}: protected, unique tokens",
            t["unique"] * 1e6,
            "us/request",
            f"added {(t['unique'] - t['bare']) * 1e6:.1f} us = {added:.2f}x validate "
            f"({t['validate'] * 1e6:.1f} us)",
            f"added <= {ADDED_COST_TARGET}x validate",
            added <= ADDED_COST_TARGET,
        ),
        Row(
            "frameworks",
            f"{label}: raw RS256 verify only, unique tokens",
            t["raw"] * 1e6,
            "us/request",
            f"added {(t['raw'] - t['bare']) * 1e6:.1f} us",
        ),
    ]


# -- under a real server ---------------------------------------------------------------------


def _sync_validate_cost(issuer: LocalIssuer, calls: int) -> float:
    tokens = [issuer.token() for _ in range(calls)]
    with Validator(issuer=issuer.issuer, audience=AUDIENCE) as validator:
        validator.validate(tokens[0])

        def loop() -> None:
            _empty_cache(validator)
            for token in tokens:
                validator.validate(token)

        return per_call(loop, calls)


def _async_validate_cost(issuer: LocalIssuer, calls: int) -> float:
    tokens = [issuer.token() for _ in range(calls)]

    async def main() -> float:
        async with AsyncValidator(issuer=issuer.issuer, audience=AUDIENCE) as validator:
            await validator.validate(tokens[0])

            async def loop() -> None:
                _empty_cache(validator)
                for token in tokens:
                    await validator.validate(token)

            return await _async_per_call(loop, calls)

    return asyncio.run(main())


def _start(framework: str, kind: str, issuer: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench._apps", framework, kind, issuer, AUDIENCE, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
    except BaseException:
        stop(process)
        raise
    return process, port


def _served(framework: str, issuer: LocalIssuer, validate_cost: float) -> list[Row]:
    servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    try:
        for kind in ("bare", "raw", "protected"):
            servers[kind] = _start(framework, kind, issuer.issuer)
        best = _load_rounds(framework, issuer, servers)
    finally:
        for process, _ in servers.values():
            stop(process)
    return _served_rows(framework, best, validate_cost)


def _load_rounds(
    framework: str, issuer: LocalIssuer, servers: dict[str, tuple[subprocess.Popen[bytes], int]]
) -> dict[str, Served]:
    # The bare app gets the same header: the server's cost of reading it is not apiguard's.
    repeated = request_headers(issuer.token())
    runs = {"bare": "bare", "raw": "raw", "repeated": "protected", "unique": "protected"}
    for _, port in servers.values():  # warm up; the protected app fetches the keys
        run_load(port, _sender([request_bytes(port, headers=repeated)]), total=200)
    best: dict[str, Served] = {}
    for _ in range(ROUNDS):
        for name, kind in runs.items():
            process, port = servers[kind]
            if name in ("raw", "unique"):
                payloads = [
                    request_bytes(port, headers=request_headers(issuer.token()))
                    for _ in range(REQUESTS)
                ]
            else:
                payloads = [request_bytes(port, headers=repeated)]
            single = framework == "starlette"
            before = _cpu_seconds(process, single_thread=single)
            result = run_load(
                port,
                _sender(payloads),
                connections=CONNECTIONS,
                total=REQUESTS,
                max_seconds=MAX_SECONDS,
            )
            cpu = (_cpu_seconds(process, single_thread=single) - before) / result.requests
            if set(result.statuses) != {200}:
                raise RuntimeError(f"{framework} {name}: answers {dict(result.statuses)}")
            # Interference from the rest of the machine only ever slows a run down: keep
            # the best throughput and, separately, the least CPU per request.
            if name in best:
                cpu = min(cpu, best[name].cpu)
            rate = max(result.per_second, best[name].per_second if name in best else 0.0)
            best[name] = Served(rate, cpu)
    return best


def request_headers(token: str) -> list[tuple[str, str]]:
    """The headers of a request carrying ``token``."""
    return [("Authorization", f"Bearer {token}")]


def _sender(payloads: list[bytes]) -> Callable[[int], bytes]:
    """The i-th request: each payload in turn (a unique token is sent once per run)."""
    return lambda i: payloads[i % len(payloads)]


class Served(NamedTuple):
    """One served run: throughput, and the server's CPU time per request."""

    per_second: float
    cpu: float


def _cpu_seconds(process: subprocess.Popen[bytes], *, single_thread: bool = False) -> float:
    """CPU time of a child process so far (Linux /proc).

    ``single_thread`` (uvicorn): the nanosecond run time the scheduler keeps for the main
    thread (``schedstat``). Otherwise (werkzeug's thread per connection): user + system
    time in clock ticks, which counts threads that have ended too but is only precise to
    a tick (10 ms: 4 us per request over a run of 2,500).
    """
    if single_thread:
        with open(f"/proc/{process.pid}/schedstat") as schedstat:
            return int(schedstat.read().split()[0]) / 1e9
    with open(f"/proc/{process.pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _served_rows(framework: str, best: dict[str, Served], validate_cost: float) -> list[Row]:
    server = "werkzeug threaded" if framework == "flask" else "uvicorn"
    label = f"{framework.capitalize()} under {server}"
    bare, raw, repeated, unique = (best[n] for n in ("bare", "raw", "repeated", "unique"))
    ratio = repeated.per_second / bare.per_second
    target = REPEATED_TARGET[framework]
    added = unique.cpu - bare.cpu
    raw_added = raw.cpu - bare.cpu
    return [
        Row(
            "frameworks",
            f"{label}: bare app",
            bare.per_second,
            "req/s",
            f"server CPU {bare.cpu * 1e6:.0f} us/request",
        ),
        Row(
            "frameworks",
            f"{label}: protected, repeated token",
            repeated.per_second,
            "req/s",
            f"{ratio:.2f}x bare; server CPU {(repeated.cpu - bare.cpu) * 1e6:+.0f} us/request",
            f">= {target}x bare",
            ratio >= target,
        ),
        Row(
            "frameworks",
            f"{label}: protected, unique tokens",
            unique.per_second,
            "req/s",
            f"server CPU +{added * 1e6:.0f} us/request = {added / validate_cost:.2f}x "
            f"validate ({validate_cost * 1e6:.1f} us)",
            f"added <= {ADDED_COST_TARGET}x validate",
            added / validate_cost <= ADDED_COST_TARGET,
        ),
        Row(
            "frameworks",
            f"{label}: raw RS256 verify only, unique tokens",
            raw.per_second,
            "req/s",
            f"server CPU +{raw_added * 1e6:.0f} us/request; apiguard adds "
            f"{added / raw_added:.2f}x that"
            if raw_added > 0
            else "",
        ),
    ]
