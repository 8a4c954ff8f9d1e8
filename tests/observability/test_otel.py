"""apiguard.otel records events as metrics and span attributes, with bounded label values."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from apiguard import ApiguardError
from apiguard._request import RequestView, Validate
from apiguard.events import KeySourceEvent, ValidationEvent
from apiguard.otel import OpenTelemetryHook
from apiguard.testing import DPoPKey, LocalIssuer

ISSUER = "https://tenant.example/"


@pytest.fixture
def reader() -> InMemoryMetricReader:
    """An in-memory metric reader (the SDK's, as an application would set it up)."""
    return InMemoryMetricReader()


@pytest.fixture
def hook(reader: InMemoryMetricReader) -> OpenTelemetryHook:
    """The hook on a meter provider of its own, read in memory."""
    return OpenTelemetryHook(meter_provider=MeterProvider(metric_readers=[reader]))


def points(reader: InMemoryMetricReader, name: str) -> list[tuple[dict[str, Any], Any]]:
    """The data points of one metric as (attributes, point)."""
    data = reader.get_metrics_data()
    found = []
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    found += [(dict(p.attributes), p) for p in metric.data.data_points]
    return found


def counts(reader: InMemoryMetricReader, name: str) -> dict[tuple[tuple[str, Any], ...], int]:
    return {tuple(sorted(attrs.items())): point.value for attrs, point in points(reader, name)}


def validation(outcome: str = "accepted", **changes: Any) -> ValidationEvent:
    values: dict[str, Any] = {
        "outcome": outcome,
        "reason": None,
        "issuer": ISSUER,
        "algorithm": "RS256",
        "kid": "key-1",
        "cache": "miss",
        "duration": 0.000_2,
    }
    values.update(changes)
    return ValidationEvent(**values)


def test_validations_are_counted_by_outcome_reason_and_issuer(
    hook: OpenTelemetryHook, reader: InMemoryMetricReader
) -> None:
    """apiguard.validations counts each outcome and reason per issuer; kid is never a label."""
    hook(validation())
    hook(validation())
    hook(validation("refused", reason="token_expired", kid="\x00junk-kid"))
    hook(validation("unavailable", reason="key_set_unavailable", issuer=None))
    assert counts(reader, "apiguard.validations") == {
        (("issuer", ISSUER), ("outcome", "accepted")): 2,
        (("issuer", ISSUER), ("outcome", "refused"), ("reason", "token_expired")): 1,
        (("issuer", "none"), ("outcome", "unavailable"), ("reason", "key_set_unavailable")): 1,
    }


def test_durations_land_in_sub_millisecond_buckets(
    hook: OpenTelemetryHook, reader: InMemoryMetricReader
) -> None:
    """The duration histogram is in seconds with buckets fine enough for cache hits."""
    hook(validation(duration=0.000_002))
    hook(validation(duration=0.003))
    ((attributes, point),) = points(reader, "apiguard.validation.duration")
    assert attributes == {"outcome": "accepted", "issuer": ISSUER}
    assert point.count == 2
    assert point.explicit_bounds[0] == 0.000_001
    assert point.bucket_counts[1] == 1  # (1 us, 5 us]


def test_labels_stay_bounded(reader: InMemoryMetricReader) -> None:
    """Issuers beyond max_issuers read "other", and a reason that is not a reason "other"."""
    hook = OpenTelemetryHook(meter_provider=MeterProvider(metric_readers=[reader]), max_issuers=2)
    for n in range(5):
        hook(validation(issuer=f"https://tenant-{n}.example/"))
    hook(validation("refused", reason="Not A Reason\n" * 10))
    issuers = {attrs["issuer"] for attrs, _ in points(reader, "apiguard.validations")}
    assert issuers == {"https://tenant-0.example/", "https://tenant-1.example/", "other"}
    reasons = {attrs.get("reason") for attrs, _ in points(reader, "apiguard.validations")}
    assert reasons == {None, "other"}


def test_fetches_and_key_events_are_counted(
    hook: OpenTelemetryHook, reader: InMemoryMetricReader
) -> None:
    """apiguard.jwks.fetches counts by outcome and purpose; the other key events by kind."""
    hook(KeySourceEvent("fetch_succeeded", ISSUER, purpose="discovery", duration=0.01))
    hook(KeySourceEvent("fetch_succeeded", ISSUER, purpose="jwks", duration=0.01, keys=2))
    hook(KeySourceEvent("fetch_failed", ISSUER, purpose="jwks", error="HTTP 503"))
    hook(KeySourceEvent("serving_stale", ISSUER, error="HTTP 503", age=700.0))
    hook(KeySourceEvent("unknown_kid", ISSUER, kid="attacker-chosen"))
    hook(KeySourceEvent("unknown_kid", ISSUER, kid="another"))
    assert counts(reader, "apiguard.jwks.fetches") == {
        (("issuer", ISSUER), ("outcome", "succeeded"), ("purpose", "discovery")): 1,
        (("issuer", ISSUER), ("outcome", "succeeded"), ("purpose", "jwks")): 1,
        (("issuer", ISSUER), ("outcome", "failed"), ("purpose", "jwks")): 1,
    }
    assert counts(reader, "apiguard.jwks.events") == {
        (("issuer", ISSUER), ("kind", "serving_stale")): 1,
        (("issuer", ISSUER), ("kind", "unknown_kid")): 2,
    }


def test_key_set_age_grows_from_the_last_jwks_fetch(
    hook: OpenTelemetryHook, reader: InMemoryMetricReader
) -> None:
    """apiguard.jwks.age reports, per issuer, the seconds since its keys were fetched."""
    assert points(reader, "apiguard.jwks.age") == []
    hook(KeySourceEvent("fetch_succeeded", ISSUER, purpose="discovery"))
    assert points(reader, "apiguard.jwks.age") == []
    hook(KeySourceEvent("fetch_succeeded", ISSUER, purpose="jwks", keys=1))
    ((attributes, point),) = points(reader, "apiguard.jwks.age")
    assert attributes == {"issuer": ISSUER}
    assert 0 <= point.value < 5


def test_keys_from_the_key_store_are_as_old_as_their_fetch(
    hook: OpenTelemetryHook, reader: InMemoryMetricReader
) -> None:
    """A key set taken from the key store reports the age of the other process's fetch."""
    hook(KeySourceEvent("key_store_hit", ISSUER, purpose="discovery", age=300.0))
    assert points(reader, "apiguard.jwks.age") == []
    hook(KeySourceEvent("key_store_hit", ISSUER, purpose="jwks", keys=1, age=300.0))
    ((_, point),) = points(reader, "apiguard.jwks.age")
    assert 300 <= point.value < 305
    assert counts(reader, "apiguard.jwks.events") == {
        (("issuer", ISSUER), ("kind", "key_store_hit")): 2,
    }


def test_the_current_span_gets_the_verdict(hook: OpenTelemetryHook) -> None:
    """Inside a recording span, a validation sets apiguard.* attributes (no subject by default)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("GET /api/appointments"):
        hook(validation("refused", reason="wrong_audience"))
    with tracer.start_as_current_span("GET /api/tasks"):
        hook(validation(cache="hit", subject="auth0|user-1"))
    hook(validation())  # no span: nothing to set, nothing raised
    refused, accepted = (dict(span.attributes or {}) for span in exporter.get_finished_spans())
    assert refused == {
        "apiguard.outcome": "refused",
        "apiguard.reason": "wrong_audience",
        "apiguard.issuer": ISSUER,
        "apiguard.cache": "miss",
    }
    assert accepted["enduser.id"] == "auth0|user-1"
    assert accepted["apiguard.cache"] == "hit"


@pytest.mark.parametrize(
    "value",
    [pytest.param(0, id="zero"), pytest.param(True, id="bool"), pytest.param(1.5, id="float")],
)
def test_max_issuers_must_be_a_positive_integer(value: Any) -> None:
    """A useless bound is refused at construction."""
    with pytest.raises(ValueError, match="max_issuers"):
        OpenTelemetryHook(max_issuers=value)


def test_a_validator_with_the_hook_fills_the_metrics(
    hook: OpenTelemetryHook, reader: InMemoryMetricReader
) -> None:
    """Validating through a real validator counts its validations and its key fetches."""
    issuer = LocalIssuer()
    with issuer.validator(on_event=hook) as validator:
        validator.validate(issuer.token())
        with pytest.raises(ApiguardError):
            validator.validate(issuer.token(expires_in=-600))
    assert counts(reader, "apiguard.validations") == {
        (("issuer", issuer.issuer), ("outcome", "accepted")): 1,
        (("issuer", issuer.issuer), ("outcome", "refused"), ("reason", "token_expired")): 1,
    }
    assert sum(counts(reader, "apiguard.jwks.fetches").values()) == 2
    ((attributes, _),) = points(reader, "apiguard.jwks.age")
    assert attributes == {"issuer": issuer.issuer}


def test_dpop_refusals_after_a_valid_token_are_counted(
    hook: OpenTelemetryHook, reader: InMemoryMetricReader
) -> None:
    """A request whose token validates but whose DPoP proof is missing or replayed counts
    as refused with the proof's reason, not as accepted."""
    issuer, key = LocalIssuer(audience="https://api.test"), DPoPKey()
    url = "https://api.test/private"

    def request(token: str, *proofs: str) -> Validate:
        view = RequestView(
            method="GET", path="/private", scheme="https", host="api.test", dpop=proofs
        )
        return Validate(token, "DPoP", view)

    with issuer.validator(dpop="required", on_event=hook) as validator:
        token = issuer.token(dpop_key=key)
        proof = key.proof("GET", url, access_token=token)
        validator.validate_credentials(request(token, proof))
        for refused in (request(token, proof), request(token)):
            with pytest.raises(ApiguardError):
                validator.validate_credentials(refused)
    at = (("issuer", issuer.issuer),)
    assert counts(reader, "apiguard.validations") == {
        (*at, ("outcome", "accepted")): 1,
        (*at, ("outcome", "refused"), ("reason", "dpop_proof_missing")): 1,
        (*at, ("outcome", "refused"), ("reason", "dpop_proof_replayed")): 1,
    }
