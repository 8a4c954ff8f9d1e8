"""Worker processes of one API, each with its own validator, sharing a Redis key store.

Run as a script by tests/e2e/test_key_store_workers.py::

    python tests/e2e/key_store_pool.py WORKERS ISSUER AUDIENCE REDIS_URL PREFIX

The pool forks WORKERS processes (after importing apiguard once, so the forks are cheap);
each builds its validator after the fork, as a gunicorn or uvicorn worker does: even ones a
:class:`~apiguard.Validator`, odd ones an :class:`~apiguard.AsyncValidator` on an event
loop of its own. It prints ``ready``, then reads one JSON line per command from stdin,
``{"token": ..., "workers": [indices]}``, hands the token to those workers at once, and
prints one JSON line with what each answered (``ok`` or the refusal's ``reason``).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import sys
from multiprocessing.connection import Connection
from typing import Any

import redis.asyncio  # noqa: F401 - imported once here, not in each fork

from apiguard import ApiguardError, AsyncRedisKeyStore, AsyncValidator, RedisKeyStore, Validator


def _serve(index: int, conn: Connection, settings: dict[str, Any], redis: str, prefix: str) -> None:
    """One worker: validate each token it is sent, answer ``ok`` or the reason."""
    loop = asyncio.new_event_loop()
    if index % 2 == 0:
        sync = Validator(key_store=RedisKeyStore(redis, prefix=prefix), **settings)

        def validate(token: str) -> Any:
            return sync.validate(token)

    else:
        store = AsyncRedisKeyStore(redis, prefix=prefix)
        asynchronous = AsyncValidator(key_store=store, **settings)

        def validate(token: str) -> Any:
            return loop.run_until_complete(asynchronous.validate(token))

    conn.send("ready")
    while True:
        token = conn.recv()
        if token is None:
            break
        try:
            validate(token)
        except ApiguardError as exc:
            conn.send(exc.reason)
        else:
            conn.send("ok")


def main(workers: int, issuer: str, audience: str, redis: str, prefix: str) -> None:
    # A short cooldown, so that a worker that fetched may look again within the test.
    settings = {"issuer": issuer, "audience": audience, "cooldown": 1}
    context = multiprocessing.get_context("fork")
    connections: list[Connection] = []
    processes = []
    for index in range(workers):
        ours, theirs = context.Pipe()
        process = context.Process(
            target=_serve, args=(index, theirs, settings, redis, prefix), daemon=True
        )
        process.start()
        connections.append(ours)
        processes.append(process)
    for conn in connections:
        assert conn.recv() == "ready"
    print("ready", flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        chosen = [connections[i] for i in command["workers"]]
        for conn in chosen:  # all at once: every worker validates concurrently
            conn.send(command["token"])
        print(json.dumps({"answers": [conn.recv() for conn in chosen]}), flush=True)
    for conn in connections:
        conn.send(None)
    for process in processes:
        process.join(timeout=10)


if __name__ == "__main__":
    count, issuer_url, audience_id, redis_url, key_prefix = sys.argv[1:]
    main(int(count), issuer_url, audience_id, redis_url, key_prefix)
