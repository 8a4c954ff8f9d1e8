"""Run the benchmarks and print one table of ratios measured in this run.

.venv/bin/python -m bench            # everything (several minutes on 2 cores)
.venv/bin/python -m bench validator  # sections: validator, issuers, events, keystore,
                                     # jwks, introspection, frameworks, authz, memory, dpop
.venv/bin/python -m bench memory --memory-tokens 100000   # a quicker memory run

Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Callable
from typing import Any

from ._util import Row, table

SECTIONS = (
    "validator",
    "issuers",
    "events",
    "keystore",
    "jwks",
    "introspection",
    "frameworks",
    "authorization",
    "authz",
    "memory",
    "dpop",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "sections", nargs="*", metavar="SECTION", help=f"one of {', '.join(SECTIONS)} (all)"
    )
    parser.add_argument("--calls", type=int, default=2000, help="tokens per in-process loop")
    parser.add_argument(
        "--memory-tokens", type=int, default=1_000_000, help="tokens the memory section validates"
    )
    parser.add_argument(
        "--authz-requests", type=int, default=400, help="token requests per authz run"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}")
    runners: dict[str, Callable[[], list[Row]]] = {
        "validator": lambda: _section("validator").run(args.calls),
        "issuers": lambda: _section("issuers").run(args.calls),
        "events": lambda: _section("events").run(args.calls),
        "keystore": lambda: _section("keystore").run(args.calls),
        "jwks": lambda: _section("jwks").run(),
        "introspection": lambda: _section("introspection").run(args.calls),
        "frameworks": lambda: _section("frameworks").run(args.calls),
        "authorization": lambda: _section("authorization").run(args.calls),
        "authz": lambda: _section("authz").run(args.authz_requests),
        "memory": lambda: _section("memory").run(args.memory_tokens),
        "dpop": lambda: _section("dpop").run(args.calls),
    }
    rows: list[Row] = []
    for section in args.sections or SECTIONS:
        print(f"running {section} ...", file=sys.stderr, flush=True)
        rows.extend(runners[section]())
    print(f"Python {platform.python_version()} on {platform.machine()}, {_cpu()}\n")
    print(table(rows))
    missed = [r for r in rows if r.met is False]
    return 1 if missed else 0


def _section(name: str) -> Any:
    return __import__(f"bench.{name}", fromlist=["run"])


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    import os

                    return f"{name} x {os.cpu_count()}"
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    raise SystemExit(main())
