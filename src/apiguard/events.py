"""Typed events for observability: what a validator decided, and what its key sources did.

Give a validator ``on_event=`` (any callable taking one event) to receive:

* a :class:`ValidationEvent` per validated token: the outcome, the stable ``reason`` of a
  refusal, the issuer that decided, the token's ``alg`` and ``kid``, whether the
  verified-token cache answered, and how long it took. On a request (every framework
  layer), the event covers the DPoP proof checked after the token too: a missing, invalid
  or replayed proof makes it a refusal with the proof's reason;
* a :class:`KeySourceEvent` per thing a key source does that an operator wants to know:
  a discovery or JWKS fetch that succeeded or failed (with its duration), the last good
  keys served because a refresh failed, a rotation (kids that appeared or left), an
  unknown ``kid``, a refetch held back by the cooldown; with a key store, a document
  taken from it, one it could not give (and why), and a store that failed or answered a
  value that was refused.

Events never carry the token, and carry ``sub`` only when the validator is told to
(``event_subject=True``); no other claim is ever in an event. The hook runs synchronously
in the thread or task that validated, so it should be quick (hand the event to a queue,
a counter, a logger); an exception it raises is logged and never fails a validation.
With no hook, none of this runs: the validation path is the one without events.

>>> events = []
>>> issuer = LocalIssuer()  # doctest: +SKIP
>>> validator = issuer.validator(on_event=events.append)  # doctest: +SKIP

:mod:`apiguard.otel` turns these events into OpenTelemetry metrics and span attributes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias, get_args

__all__ = [
    "Event",
    "EventHook",
    "KeySourceEvent",
    "KeySourceEventKind",
    "LogEvents",
    "Outcome",
    "ValidationEvent",
    "emit",
]

logger = logging.getLogger("apiguard.events")

#: ``accepted``; ``refused`` (400/401/403: the token or the request); ``unavailable`` (503:
#: keys, introspection or a replay store could not be had, the server's fault).
Outcome: TypeAlias = Literal["accepted", "refused", "unavailable"]

KeySourceEventKind: TypeAlias = Literal[
    "fetch_succeeded",
    "fetch_failed",
    "serving_stale",
    "rotation_detected",
    "unknown_kid",
    "cooldown_active",
    "key_store_hit",
    "key_store_miss",
    "key_store_failed",
]

#: The kinds of :class:`KeySourceEvent`, in a stable order (for metrics and docs).
KEY_SOURCE_EVENT_KINDS: Final[tuple[KeySourceEventKind, ...]] = get_args(KeySourceEventKind)


@dataclass(frozen=True, slots=True)
class ValidationEvent:
    """One validation: what was decided, for which issuer, how, and how fast.

    Attributes:
        outcome: ``accepted``, ``refused`` or ``unavailable``.
        reason: the stable ``reason`` of the error (``token_expired``, ``wrong_audience``,
            ...); None when accepted.
        issuer: the trusted issuer whose policy decided; None when the token named no
            trusted issuer (or could not be read that far). Never an untrusted ``iss``.
        algorithm: the token's ``alg``, when its header could be read.
        kid: the token's ``kid``, when its header has one. Attacker-chosen text for a
            refused token: fine for a log line, not for a metric label.
        cache: ``hit`` when the verified-token cache answered, ``miss`` otherwise.
        duration: seconds spent in ``validate()``, key fetches included.
        subject: ``sub`` of an accepted token, only with ``event_subject=True``.
    """

    outcome: Outcome
    reason: str | None
    issuer: str | None
    algorithm: str | None
    kid: str | None
    cache: Literal["hit", "miss"]
    duration: float
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class KeySourceEvent:
    """Something an issuer's key source did: a fetch, stale keys, a rotation, a refusal.

    Attributes:
        kind: one of :data:`KeySourceEventKind`.
        issuer: the issuer whose keys these are.
        purpose: ``discovery`` or ``jwks`` (``introspection`` never: those are not keys)
            for fetches; None otherwise.
        url: the URL fetched (discovery or JWKS; public, never a secret).
        duration: seconds the fetch took, for ``fetch_*``.
        error: why a fetch failed (``JWKS answered HTTP 503``...), for ``fetch_failed``
            and ``serving_stale``; why the key store did not serve, for ``key_store_miss``
            (``not stored``, ``stale``...) and ``key_store_failed``.
        keys: how many usable keys the set has, after ``fetch_succeeded`` (or
            ``key_store_hit``) of a JWKS.
        kid: the ``kid`` no key has, for ``unknown_kid`` and ``cooldown_active``.
        added, removed: the kids that appeared and left, for ``rotation_detected``.
        age: seconds since the keys served were fetched, for ``serving_stale``; since the
            document was fetched (by another process), for ``key_store_hit``.
    """

    kind: KeySourceEventKind
    issuer: str
    purpose: Literal["discovery", "jwks", "introspection"] | None = None
    url: str | None = None
    duration: float | None = None
    error: str | None = None
    keys: int | None = None
    kid: str | None = None
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    age: float | None = None


Event: TypeAlias = ValidationEvent | KeySourceEvent
EventHook: TypeAlias = Callable[[Event], None]


def emit(hook: EventHook, event: Event) -> None:
    """Hand ``event`` to ``hook``; a failing hook is logged, never raised into validation."""
    try:
        hook(event)
    except Exception:
        logger.exception("on_event hook raised; the event was dropped")


class LogEvents:
    """An ``on_event`` hook that logs every event with stable ``extra=`` fields.

    Each record carries ``event`` (``validation`` or the key-source kind), and, where they
    apply, ``outcome``, ``reason``, ``issuer``, ``kid``, ``algorithm``, ``cache`` and
    ``duration`` (seconds), so a JSON log formatter picks them up as fields. Accepted
    validations log at ``accepted_level`` (DEBUG), refusals at ``refused_level`` (INFO),
    503s and failed fetches at WARNING, other key-source events at INFO.

    Args:
        logger: where to log (default ``logging.getLogger("apiguard.events")``).
        accepted_level, refused_level: the levels of accepted and refused validations.

    >>> validator = Validator(issuer=..., audience=..., on_event=LogEvents())  # doctest: +SKIP
    """

    def __init__(
        self,
        logger: logging.Logger | None = None,
        *,
        accepted_level: int = logging.DEBUG,
        refused_level: int = logging.INFO,
    ) -> None:
        self.logger = logger or logging.getLogger("apiguard.events")
        self._accepted = accepted_level
        self._refused = refused_level

    def __call__(self, event: Event) -> None:
        """Log one event."""
        if isinstance(event, ValidationEvent):
            level = {"accepted": self._accepted, "refused": self._refused}.get(
                event.outcome, logging.WARNING
            )
            if not self.logger.isEnabledFor(level):
                return
            extra = {
                "event": "validation",
                "outcome": event.outcome,
                "reason": event.reason,
                "issuer": event.issuer,
                "kid": event.kid,
                "algorithm": event.algorithm,
                "cache": event.cache,
                "duration": event.duration,
            }
            self.logger.log(
                level,
                "token %s%s (%.3f ms)",
                event.outcome,
                f": {event.reason}" if event.reason else "",
                event.duration * 1000,
                extra=extra,
            )
            return
        failed = event.kind in ("fetch_failed", "key_store_failed")
        level = logging.WARNING if failed else logging.INFO
        if not self.logger.isEnabledFor(level):
            return
        self.logger.log(
            level,
            "%s for %s%s",
            event.kind.replace("_", " "),
            event.issuer,
            f": {event.error}" if event.error else "",
            extra={
                "event": event.kind,
                "issuer": event.issuer,
                "kid": event.kid,
                "duration": event.duration,
                "reason": event.error,
            },
        )
