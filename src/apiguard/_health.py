"""The readiness rule every framework layer answers a probe with (written once).

A validator is ready when every trusted issuer's keys can serve: ``fresh``, or ``stale``
(the last good keys, served while the issuer is unreachable). An issuer whose keys are
``missing`` would answer every token with 503, so the probe answers 503 too, and the
orchestrator keeps traffic away until the keys are in. The answer names each issuer's
state and key count, never the fetch errors (those may name internal hosts; they are in
the log).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .issuers import IssuerHealth

__all__ = ["ProbeAnswer", "needs_prefetch", "readiness"]

_HEADERS: Final = {"Cache-Control": "no-store"}


@dataclass(frozen=True, slots=True)
class ProbeAnswer:
    """What a layer sends back to a readiness probe (JSON)."""

    status_code: int
    headers: dict[str, str]
    body: bytes
    media_type: str = "application/json"


def needs_prefetch(health: Mapping[str, IssuerHealth]) -> bool:
    """Whether some issuer has no usable keys yet (a probe then fetches them first)."""
    return any(report.state == "missing" for report in health.values())


def readiness(health: Mapping[str, IssuerHealth]) -> ProbeAnswer:
    """The probe's answer: 200 when every issuer's keys can serve, else 503."""
    ready = not needs_prefetch(health)
    body: dict[str, Any] = {
        "status": "ready" if ready else "unavailable",
        "issuers": {
            issuer: {"state": report.state, "keys": report.keys}
            for issuer, report in health.items()
        },
    }
    data = json.dumps(body, separators=(",", ":")).encode("utf-8")
    return ProbeAnswer(200 if ready else 503, dict(_HEADERS), data)
