"""OpenTelemetry for apiguard: metrics and span attributes from its events.

Needs ``pip install "apiguard[otel]"`` (the ``opentelemetry-api`` package only; your
application brings the SDK and the exporters). :class:`OpenTelemetryHook` is an
``on_event`` hook (see :mod:`apiguard.events`):

>>> from apiguard import Validator
>>> from apiguard.otel import OpenTelemetryHook
>>> validator = Validator(  # doctest: +SKIP
...     issuer="https://tenant.example/",
...     audience="https://api.example",
...     on_event=OpenTelemetryHook(),
... )

Metrics (meter ``apiguard``):

================================  =========  ==============================================
``apiguard.validations``          counter    by ``outcome``, ``reason``, ``issuer``
``apiguard.validation.duration``  histogram  seconds, by ``outcome`` and ``issuer``
``apiguard.jwks.fetches``         counter    by ``outcome`` (``succeeded``/``failed``),
                                             ``purpose`` (``discovery``/``jwks``), ``issuer``
``apiguard.jwks.events``          counter    by ``kind`` (``serving_stale``,
                                             ``rotation_detected``, ``unknown_kid``,
                                             ``cooldown_active``, ``key_store_hit``,
                                             ``key_store_miss``, ``key_store_failed``)
                                             and ``issuer``
``apiguard.jwks.age``             gauge      seconds since each issuer's keys were fetched
================================  =========  ==============================================

Label values are bounded: ``outcome``, ``purpose`` and ``kind`` are fixed sets, ``reason``
is apiguard's stable reason (anything else reads ``other``), and ``issuer`` is a trusted
issuer (``none`` when no trusted issuer decided), with at most ``max_issuers`` distinct
values (``other`` beyond). A ``kid`` is never a label: a refused token chooses it.

On the current span, when it is recording, a validation sets ``apiguard.outcome``,
``apiguard.reason`` (refusals), ``apiguard.issuer`` and ``apiguard.cache``; and
``enduser.id`` only when the validator puts ``sub`` in its events (``event_subject``).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable
from typing import Any, Final

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

from .events import Event, KeySourceEvent, ValidationEvent

__all__ = ["OpenTelemetryHook"]

#: Validations take microseconds on a cache hit and milliseconds with a key fetch.
_DURATION_BUCKETS: Final = (
    0.000_001,
    0.000_005,
    0.000_01,
    0.000_05,
    0.000_1,
    0.000_5,
    0.001,
    0.005,
    0.01,
    0.05,
    0.1,
    0.5,
    1.0,
    5.0,
)
_REASON: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")


class OpenTelemetryHook:
    """Record apiguard's events as OpenTelemetry metrics and attributes of the current span.

    Args:
        meter_provider: where the instruments come from (default: the global provider
            set by your OpenTelemetry SDK set-up).
        max_issuers: distinct ``issuer`` label values kept, at least 1; later issuers are
            counted as ``other`` (a resolver can trust many tenants).
        span_attributes: set the ``apiguard.*`` attributes on the current span.

    Raises:
        ValueError: ``max_issuers`` is below 1.

    One hook may serve several validators; it is thread-safe.
    """

    def __init__(
        self,
        *,
        meter_provider: MeterProvider | None = None,
        max_issuers: int = 100,
        span_attributes: bool = True,
    ) -> None:
        if isinstance(max_issuers, bool) or not isinstance(max_issuers, int) or max_issuers < 1:
            raise ValueError(f"max_issuers: must be an integer of at least 1, not {max_issuers!r}")
        provider = meter_provider or metrics.get_meter_provider()
        meter = provider.get_meter("apiguard")
        self._max_issuers = max_issuers
        self._span_attributes = span_attributes
        self._issuers: set[str] = set()
        self._lock = threading.Lock()
        #: issuer label -> time.monotonic() of its last successful JWKS fetch.
        self._fetched_at: dict[str, float] = {}
        self._validations = meter.create_counter(
            "apiguard.validations",
            unit="{validation}",
            description="Access tokens validated, by outcome, reason and issuer",
        )
        self._duration = meter.create_histogram(
            "apiguard.validation.duration",
            unit="s",
            description="Time spent validating an access token, key fetches included",
            explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
        )
        self._fetches = meter.create_counter(
            "apiguard.jwks.fetches",
            unit="{fetch}",
            description="Discovery and JWKS fetches, by outcome, purpose and issuer",
        )
        self._key_events = meter.create_counter(
            "apiguard.jwks.events",
            unit="{event}",
            description="Stale keys served, rotations, unknown kids and held-back refetches",
        )
        meter.create_observable_gauge(
            "apiguard.jwks.age",
            callbacks=[self._ages],
            unit="s",
            description="Seconds since each issuer's key set was fetched",
        )

    def __call__(self, event: Event) -> None:
        """Record one event (the ``on_event`` hook)."""
        if isinstance(event, ValidationEvent):
            self._validation(event)
        elif isinstance(event, KeySourceEvent):
            self._key_source(event)

    def _issuer(self, issuer: str | None) -> str:
        if issuer is None:
            return "none"
        if issuer in self._issuers:
            return issuer
        with self._lock:
            if len(self._issuers) < self._max_issuers:
                self._issuers.add(issuer)
                return issuer
        return "other"

    def _validation(self, event: ValidationEvent) -> None:
        issuer = self._issuer(event.issuer)
        reason = event.reason
        if reason is not None and not _REASON.fullmatch(reason):
            reason = "other"
        counted: dict[str, str] = {"outcome": event.outcome, "issuer": issuer}
        if reason is not None:
            counted["reason"] = reason
        self._validations.add(1, counted)
        self._duration.record(event.duration, {"outcome": event.outcome, "issuer": issuer})
        if self._span_attributes:
            span = trace.get_current_span()
            if span.is_recording():
                attributes: dict[str, Any] = {
                    "apiguard.outcome": event.outcome,
                    "apiguard.issuer": issuer,
                    "apiguard.cache": event.cache,
                }
                if reason is not None:
                    attributes["apiguard.reason"] = reason
                if event.subject is not None:
                    attributes["enduser.id"] = event.subject
                span.set_attributes(attributes)

    def _key_source(self, event: KeySourceEvent) -> None:
        issuer = self._issuer(event.issuer)
        if event.kind in ("fetch_succeeded", "fetch_failed"):
            outcome = "succeeded" if event.kind == "fetch_succeeded" else "failed"
            purpose = event.purpose or "jwks"
            self._fetches.add(1, {"outcome": outcome, "purpose": purpose, "issuer": issuer})
            if outcome == "succeeded" and purpose == "jwks":
                with self._lock:
                    self._fetched_at[issuer] = time.monotonic()
            return
        if event.kind == "key_store_hit" and event.purpose == "jwks":
            # Keys another process fetched: as old as that fetch, not as this hit.
            with self._lock:
                self._fetched_at[issuer] = time.monotonic() - (event.age or 0.0)
        self._key_events.add(1, {"kind": event.kind, "issuer": issuer})

    def _ages(self, options: CallbackOptions) -> Iterable[Observation]:
        now = time.monotonic()
        with self._lock:
            fetched = list(self._fetched_at.items())
        return [Observation(now - at, {"issuer": issuer}) for issuer, at in fetched]
