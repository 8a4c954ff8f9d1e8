"""Timing helpers shared by the benchmark sections."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


def per_call(
    run: Callable[[], object],
    calls: int,
    *,
    repeat: int = 7,
    clock: Callable[[], float] = time.process_time,
) -> float:
    """Best-of-``repeat`` seconds per call of a loop that makes ``calls`` calls.

    The best run is the least disturbed by the rest of the machine, which is what a ratio
    measured in one run needs. The default clock counts this process's CPU time only, so
    another process taking the core for a while does not count against a single-threaded
    loop; pass ``time.perf_counter`` for anything that waits.
    """
    best = float("inf")
    gc.collect()
    for _ in range(repeat):
        start = clock()
        run()
        best = min(best, clock() - start)
    return best / calls


def interleaved(
    loops: Mapping[str, Callable[[], object]], calls: int, *, rounds: int = 7
) -> dict[str, float]:
    """Best-of-``rounds`` CPU seconds per call of each loop, the loops taking turns.

    Taking turns spreads any disturbance over all of them, so their ratios hold better
    than when each is repeated in a block of its own.
    """
    best = dict.fromkeys(loops, float("inf"))
    gc.collect()
    for _ in range(rounds):
        for name, loop in loops.items():
            start = time.process_time()
            loop()
            best[name] = min(best[name], time.process_time() - start)
    return {name: seconds / calls for name, seconds in best.items()}


@dataclass
class Row:
    """One line of the results table."""

    section: str
    name: str
    value: float
    unit: str
    ratio: str = ""
    target: str = ""
    met: bool | None = None


def table(rows: Sequence[Row]) -> str:
    """Render rows as a Markdown table."""
    lines = [
        "| section | measurement | value | ratio | target | met |",
        "|---|---|---:|---:|---|---|",
    ]
    for r in rows:
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        if r.value == int(r.value) and not r.unit:
            value = f"{int(r.value):,}"
        elif r.value >= 10:
            value = f"{r.value:,.1f} {r.unit}"
        else:
            value = f"{r.value:,.2f} {r.unit}"
        lines.append(f"| {r.section} | {r.name} | {value} | {r.ratio} | {r.target} | {met} |")
    return "\n".join(lines)
