"""Validators report typed events: each validation, and what their key sources do."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import anyio
import httpx
import pytest

from apiguard import ApiguardError, AsyncValidator, ConfigurationError, Validator
from apiguard._request import RequestView, Validate
from apiguard.events import KeySourceEvent, LogEvents, ValidationEvent
from apiguard.testing import REMOVE, DPoPKey, LocalIssuer


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def validations(events: list[Any]) -> list[ValidationEvent]:
    return [event for event in events if isinstance(event, ValidationEvent)]


def key_events(events: list[Any]) -> list[KeySourceEvent]:
    return [event for event in events if isinstance(event, KeySourceEvent)]


def kinds(events: list[Any]) -> list[str]:
    return [event.kind for event in key_events(events)]


def test_a_validation_reports_outcome_issuer_key_cache_and_duration() -> None:
    """Accepted tokens report issuer, alg, kid, a cache miss then a hit, and a duration."""
    events: list[Any] = []
    issuer = LocalIssuer()
    with issuer.validator(on_event=events.append) as validator:
        token = issuer.token(scope="read:a")
        for _ in range(3):
            validator.validate(token)
    first, second, third = validations(events)
    assert (first.outcome, first.reason, first.issuer) == ("accepted", None, issuer.issuer)
    assert (first.algorithm, first.kid) == ("RS256", issuer.current_key.kid)
    assert [first.cache, second.cache, third.cache] == ["miss", "miss", "hit"]
    assert all(event.duration > 0 for event in (first, second, third))
    assert first.subject is None
    assert kinds(events) == ["fetch_succeeded", "fetch_succeeded"]
    discovery, jwks = key_events(events)
    assert (discovery.purpose, jwks.purpose, jwks.url, jwks.keys) == (
        "discovery",
        "jwks",
        issuer.jwks_uri,
        1,
    )
    assert jwks.duration is not None
    assert jwks.duration > 0


@pytest.mark.parametrize(
    ("claims", "reason", "named"),
    [
        pytest.param({"exp": REMOVE}, "invalid_claim", True, id="no-exp"),
        pytest.param({"expires_in": -600}, "token_expired", True, id="expired"),
        pytest.param({"aud": "https://other.test"}, "wrong_audience", True, id="audience"),
        pytest.param({"iss": "https://evil.test/"}, "untrusted_issuer", False, id="untrusted"),
    ],
)
def test_a_refusal_reports_its_reason_and_never_an_untrusted_issuer(
    claims: dict[str, Any], reason: str, named: bool
) -> None:
    """A refused token reports its stable reason; an untrusted iss is never reported."""
    events: list[Any] = []
    issuer = LocalIssuer()
    with issuer.validator(on_event=events.append) as validator:
        token = issuer.token(**claims)
        with pytest.raises(ApiguardError):
            validator.validate(token)
    (event,) = validations(events)
    assert (event.outcome, event.reason) == ("refused", reason)
    assert event.issuer == (issuer.issuer if named else None)
    assert event.kid == issuer.current_key.kid
    assert token not in repr(events)


def test_garbage_is_refused_with_nothing_read_from_it() -> None:
    """A token that is not a JWS reports malformed_token, with no alg, kid or issuer."""
    events: list[Any] = []
    issuer = LocalIssuer()
    with issuer.validator(on_event=events.append) as validator, pytest.raises(ApiguardError):
        validator.validate("not.a.jwt")
    (event,) = validations(events)
    assert (event.reason, event.algorithm, event.kid, event.issuer) == (
        "malformed_token",
        None,
        None,
        None,
    )


def test_an_outage_is_unavailable_with_the_failed_fetch() -> None:
    """Keys that cannot be had: the validation is unavailable, the fetch failed, with why."""
    events: list[Any] = []
    issuer = LocalIssuer()
    issuer.jwks_override = httpx.Response(503)
    with issuer.validator(on_event=events.append) as validator, pytest.raises(ApiguardError):
        validator.validate(issuer.token())
    (event,) = validations(events)
    assert (event.outcome, event.reason, event.issuer) == (
        "unavailable",
        "key_set_unavailable",
        issuer.issuer,
    )
    failed = [e for e in key_events(events) if e.kind == "fetch_failed"]
    assert [(e.purpose, e.error) for e in failed] == [("jwks", "JWKS answered HTTP 503")]


def test_the_subject_is_reported_only_when_asked_for() -> None:
    """event_subject=True adds sub to accepted validations; no other claim ever appears."""
    events: list[Any] = []
    issuer = LocalIssuer()
    with issuer.validator(on_event=events.append, event_subject=True) as validator:
        validator.validate(issuer.token(sub="auth0|ada", email="ada@example.com"))
    (event,) = validations(events)
    assert event.subject == "auth0|ada"
    assert "ada@example.com" not in repr(events)


def test_key_sources_report_rotation_unknown_kids_cooldown_and_stale_keys() -> None:
    """A rotation, an unknown kid held back by the cooldown, and stale keys each show up."""
    events: list[Any] = []
    clock = Clock()
    issuer = LocalIssuer(clock=clock)
    with issuer.validator(on_event=events.append) as validator:
        old_kid = issuer.current_key.kid
        validator.validate(issuer.token())
        events.clear()

        new_kid = issuer.rotate(keep_previous=False).kid
        clock.now += 31  # past the cooldown
        validator.validate(issuer.token())
        assert kinds(events) == ["unknown_kid", "fetch_succeeded", "rotation_detected"]
        rotation = key_events(events)[-1]
        assert (rotation.added, rotation.removed) == ((new_kid,), (old_kid,))
        events.clear()

        with pytest.raises(ApiguardError):
            validator.validate(issuer.token(header={"kid": "never-published"}))
        assert kinds(events) == ["unknown_kid", "cooldown_active"]
        assert key_events(events)[0].kid == "never-published"
        events.clear()

        issuer.jwks_override = httpx.Response(500)
        clock.now += 3600  # stale: a refresh is due, and fails
        validator.validate(issuer.token())
        assert kinds(events) == ["fetch_failed", "serving_stale"]
        stale = key_events(events)[-1]
        assert stale.age is not None
        assert stale.age >= 3600
    assert validations(events)[-1].outcome == "accepted"


def test_a_failing_hook_never_fails_a_validation(caplog: pytest.LogCaptureFixture) -> None:
    """An exception in the hook is logged and dropped; the token is still accepted."""

    def broken(event: Any) -> None:
        raise RuntimeError("hook bug")

    issuer = LocalIssuer()
    with issuer.validator(on_event=broken) as validator:
        assert validator.validate(issuer.token()).subject == "auth0|user-1"
    assert "on_event hook raised" in caplog.text


def test_the_async_validator_reports_the_same_events() -> None:
    """AsyncValidator reports validations and fetches exactly as Validator does."""
    events: list[Any] = []
    issuer = LocalIssuer()

    async def main() -> None:
        async with issuer.async_validator(on_event=events.append) as validator:
            token = issuer.token()
            for _ in range(3):
                await validator.validate(token)
            with pytest.raises(ApiguardError):
                await validator.validate(issuer.token(aud="https://other.test"))

    anyio.run(main)
    assert [(e.outcome, e.cache, e.reason) for e in validations(events)] == [
        ("accepted", "miss", None),
        ("accepted", "miss", None),
        ("accepted", "hit", None),
        ("refused", "miss", "wrong_audience"),
    ]
    assert kinds(events) == ["fetch_succeeded", "fetch_succeeded"]


def test_without_a_hook_validate_is_the_plain_method() -> None:
    """No hook, no wrapper: validate() and the request path's validate_credentials() are
    the classes' own methods (nothing added per call)."""
    issuer = LocalIssuer()
    for kind, make in ((Validator, issuer.validator), (AsyncValidator, issuer.async_validator)):
        plain, observed = make(dpop="allowed"), make(dpop="allowed", on_event=print)
        for name in ("validate", "validate_credentials"):
            assert getattr(plain, name).__func__ is getattr(kind, name)
            assert getattr(observed, name).__func__ is not getattr(kind, name)


URL = "https://api.test/private"


def _request(token: str, *proofs: str, scheme: str = "DPoP") -> Validate:
    """The validation step of a GET of URL with this token and these DPoP headers."""
    view = RequestView(method="GET", path="/private", scheme="https", host="api.test", dpop=proofs)
    return Validate(token, scheme, view)


def test_a_dpop_check_after_the_token_is_part_of_its_one_event() -> None:
    """The request path reports one event per request: accepted only when the DPoP proof
    passes too; a missing, replayed or foreign proof is refused with the proof's reason."""
    events: list[Any] = []
    issuer, key, thief = LocalIssuer(audience="https://api.test"), DPoPKey(), DPoPKey()
    with issuer.validator(dpop="allowed", on_event=events.append) as validator:
        token = issuer.token(dpop_key=key)
        proof = key.proof("GET", URL, access_token=token)
        sent = [
            _request(token, proof),
            _request(token, proof),
            _request(token),
            _request(token, thief.proof("GET", URL, access_token=token)),
            _request(token, scheme="Bearer"),
        ]
        for request in sent:
            with contextlib.suppress(ApiguardError):
                validator.validate_credentials(request)
    assert [(e.outcome, e.reason) for e in validations(events)] == [
        ("accepted", None),
        ("refused", "dpop_proof_replayed"),
        ("refused", "dpop_proof_missing"),
        ("refused", "dpop_key_mismatch"),
        ("refused", "dpop_bound_token_as_bearer"),
    ]
    assert {(e.issuer, e.algorithm, e.subject) for e in validations(events)} == {
        (issuer.issuer, "RS256", None)
    }
    assert all(token not in repr(event) for event in events)


def test_the_async_request_path_reports_one_event_too() -> None:
    """AsyncValidator.validate_credentials reports the proof's verdict in its one event."""
    events: list[Any] = []
    issuer, key = LocalIssuer(audience="https://api.test"), DPoPKey()

    async def main() -> None:
        async with issuer.async_validator(dpop="required", on_event=events.append) as validator:
            token = issuer.token(dpop_key=key)
            await validator.validate_credentials(
                _request(token, key.proof("GET", URL, access_token=token))
            )
            with pytest.raises(ApiguardError):
                await validator.validate_credentials(_request(token, "not.a.proof"))

    anyio.run(main)
    assert [(e.outcome, e.reason) for e in validations(events)] == [
        ("accepted", None),
        ("refused", "dpop_proof_malformed"),
    ]


@pytest.mark.parametrize(
    ("settings", "name"),
    [
        pytest.param({"on_event": "print"}, "on_event", id="hook-not-callable"),
        pytest.param({"event_subject": "yes"}, "event_subject", id="subject-not-bool"),
    ],
)
def test_bad_event_settings_are_refused(settings: dict[str, Any], name: str) -> None:
    """The event settings are checked at construction, naming the setting."""
    with pytest.raises(ConfigurationError, match=f"^{name}"):
        Validator(issuer="https://issuer.test/", audience="https://api.test", **settings)


def test_log_events_writes_stable_extra_fields(caplog: pytest.LogCaptureFixture) -> None:
    """LogEvents logs refusals with reason, issuer, kid and duration as record fields."""
    issuer = LocalIssuer()
    caplog.set_level(logging.DEBUG, logger="apiguard.events")
    with issuer.validator(on_event=LogEvents()) as validator:
        validator.validate(issuer.token())
        with pytest.raises(ApiguardError):
            validator.validate(issuer.token(expires_in=-600))
    records = [r for r in caplog.records if getattr(r, "event", None) == "validation"]
    accepted, refused = records
    assert (accepted.levelno, refused.levelno) == (logging.DEBUG, logging.INFO)
    assert (refused.reason, refused.issuer, refused.kid) == (  # type: ignore[attr-defined]
        "token_expired",
        issuer.issuer,
        issuer.current_key.kid,
    )
    assert refused.duration > 0  # type: ignore[attr-defined]
    fetches = [r for r in caplog.records if getattr(r, "event", None) == "fetch_succeeded"]
    assert len(fetches) == 2
