"""Run the benchmarks and print one table of ratios measured in this run.

.venv/bin/python -m bench            # everything (a few minutes on 2 cores)
.venv/bin/python -m bench validator  # one section: validator, jwks, frameworks, authz, memory
"""

from __future__ import annotations

import argparse
import platform
import sys

from ._util import Row, table

SECTIONS = ("validator", "jwks", "frameworks", "authz", "memory")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("sections", nargs="*", choices=[*SECTIONS, []], default=[])
    parser.add_argument("--calls", type=int, default=2000, help="tokens per measurement")
    args = parser.parse_args(argv)
    chosen = args.sections or list(SECTIONS)
    rows: list[Row] = []
    for section in chosen:
        module = __import__(f"bench.{section}", fromlist=["run"])
        print(f"running {section} ...", file=sys.stderr, flush=True)
        rows.extend(module.run(args.calls) if section == "validator" else module.run())
    print(f"Python {platform.python_version()} on {platform.machine()}, {_cpu()}\n")
    print(table(rows))
    missed = [r for r in rows if r.met is False]
    return 1 if missed else 0


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
