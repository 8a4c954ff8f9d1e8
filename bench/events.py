"""Observability: what an ``on_event`` hook adds per validation, and what no hook adds.

Three validators on the same issuer and tokens, the loops taking turns: no hook (the
plain ``validate`` method: nothing is wrapped, so it is the baseline every other section
measures too), a hook that does nothing (the cost of building and handing over the
event), and :class:`apiguard.otel.OpenTelemetryHook` on the SDK's meter provider with an
in-memory reader (counters, the histogram and the current span looked up per event).
Each for a cache hit (one token again and again) and a miss (unique tokens, cache
cleared).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from apiguard import Validator
from apiguard.otel import OpenTelemetryHook
from apiguard.testing import LocalIssuer

from ._util import Row, interleaved

AUDIENCE = "https://bench.example/api"


def run(calls: int = 2000) -> list[Row]:
    """Measure the three validators on hits and misses; return the rows."""
    issuer = LocalIssuer(audience=AUDIENCE)
    tokens = [issuer.token(scope="read:a") for _ in range(calls)]
    hook = OpenTelemetryHook(meter_provider=MeterProvider(metric_readers=[InMemoryMetricReader()]))
    validators: dict[str, Validator] = {
        "no hook": issuer.validator(),
        "no-op hook": issuer.validator(on_event=_nothing),
        "OpenTelemetryHook": issuer.validator(on_event=hook),
    }
    hits, misses = hits_and_misses(validators, tokens, calls)
    rows: list[Row] = []
    for path, times in (("hit", hits), ("miss", misses)):
        base = times["no hook"]
        rows.append(
            Row("events", f"RS256 validate ({path}), no hook", base * 1e6, "us", "plain method")
        )
        for name in ("no-op hook", "OpenTelemetryHook"):
            added = (times[name] - base) * 1e6
            rows.append(
                Row(
                    "events",
                    f"RS256 validate ({path}), {name}",
                    times[name] * 1e6,
                    "us",
                    f"{times[name] / base:.2f}x, +{added:.2f} us",
                )
            )
    return rows


def hits_and_misses(
    validators: dict[str, Validator], tokens: list[str], calls: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds per validation of each validator: a cache hit, a miss (loops taking turns).

    The validators are closed afterwards.
    """
    for validator in validators.values():
        for _ in range(2):  # keys fetched, and the first token admitted to the cache
            validator.validate(tokens[0])
    hits = interleaved({n: _hits(v, tokens[0], calls) for n, v in validators.items()}, calls)
    misses = interleaved({n: _misses(v, tokens) for n, v in validators.items()}, calls)
    for validator in validators.values():
        validator.close()
    return hits, misses


def _nothing(event: Any) -> None:
    pass


def _hits(validator: Validator, token: str, calls: int) -> Callable[[], None]:
    def loop() -> None:
        for _ in range(calls):
            validator.validate(token)

    return loop


def _misses(validator: Validator, tokens: list[str]) -> Callable[[], None]:
    def loop() -> None:
        validator.cache_clear()
        for token in tokens:
            validator.validate(token)

    return loop
