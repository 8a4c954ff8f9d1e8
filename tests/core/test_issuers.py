"""Many issuers: exact matching before any fetch, per-issuer policies and key sources."""

from __future__ import annotations

import json
import logging
import random
import string
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from apiguard import (
    AlgorithmNotAllowed,
    AsyncValidator,
    ConfigurationError,
    InvalidClaim,
    InvalidSignature,
    InvalidToken,
    IssuerPolicy,
    IssuerResolutionFailed,
    KeySetUnavailable,
    TenantIssuers,
    UnknownSigningKey,
    UntrustedIssuer,
    Validator,
    WrongAudience,
    WrongIssuer,
)
from apiguard.bearer import render_error
from apiguard.testing import LocalIssuer

from .conftest import FakeClock, b64

A = "https://tenant-a.test/"
B = "https://tenant-b.test/"
AUD = "https://api.test"


class Network:
    """An in-process transport for several local issuers that counts every request."""

    def __init__(self, *issuers: LocalIssuer) -> None:
        self.issuers = list(issuers)
        self.requests: Counter[str] = Counter()

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests[str(request.url)] += 1
        for issuer in self.issuers:
            base = httpx.URL(issuer.issuer)
            if (request.url.host, request.url.port) == (base.host, base.port):
                return issuer.handle(request)
        return httpx.Response(404)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    @property
    def total(self) -> int:
        return sum(self.requests.values())


@pytest.fixture
def a(clock: FakeClock) -> LocalIssuer:
    return LocalIssuer(A, audience=AUD, clock=clock)


@pytest.fixture
def b(clock: FakeClock) -> LocalIssuer:
    issuer = LocalIssuer(B, audience=AUD, clock=clock)
    issuer.rotate(keep_previous=False)  # a key and kid of its own, not A's
    return issuer


@pytest.fixture
def network(a: LocalIssuer, b: LocalIssuer) -> Network:
    return Network(a, b)


def two(network: Network, clock: FakeClock, **settings: Any) -> Validator:
    settings.setdefault("audience", AUD)
    return Validator(issuers=[A, B], transport=network.transport(), clock=clock, **settings)


def test_tokens_of_both_issuers_accepted(
    a: LocalIssuer, b: LocalIssuer, network: Network, clock: FakeClock
) -> None:
    """Each configured issuer's tokens validate with that issuer's own keys."""
    with two(network, clock) as validator:
        assert validator.validate(a.token(sub="alice")).issuer == A
        assert validator.validate(b.token(sub="bob")).issuer == B
        assert validator.issuers == (A, B)
        assert validator.issuer is None
    assert a.requests["/.well-known/jwks.json"] == 1
    assert b.requests["/.well-known/jwks.json"] == 1


LOOK_ALIKES = [
    pytest.param(A.rstrip("/"), id="no-trailing-slash"),
    pytest.param(A + "/", id="double-trailing-slash"),
    pytest.param(A.upper(), id="upper-case"),
    pytest.param("HTTPS://tenant-a.test/", id="scheme-case"),
    pytest.param("https://Tenant-A.test/", id="host-case"),
    pytest.param(A[:-4], id="prefix"),
    pytest.param(A + "evil/", id="suffix-path"),
    pytest.param("https://tenant-a.test.evil.example/", id="suffix-host"),
    pytest.param("https://evil.example/?" + A, id="contains"),
    pytest.param("tenant-a", id="GHSA-75c5-substring"),
    pytest.param("https://", id="GHSA-75c5-common-prefix"),
    pytest.param("", id="empty"),
    pytest.param("https://tenant-\u0430.test/", id="unicode-cyrillic-a"),
    pytest.param("https://tenant-a\u200b.test/", id="unicode-zero-width"),
    pytest.param("https://tenant-a.test/\u0301", id="unicode-combining"),
    pytest.param("https://\uff54enant-a.test/", id="unicode-fullwidth"),
    pytest.param("https://tenant%2Da.test/", id="percent-encoded"),
    pytest.param(" " + A, id="leading-space"),
    pytest.param(A + "\x00", id="nul"),
    pytest.param("https://tenant-a.test:443/", id="explicit-port"),
]


@pytest.mark.parametrize("iss", LOOK_ALIKES)
def test_issuer_look_alikes_refused_before_any_fetch(
    iss: str, a: LocalIssuer, network: Network, clock: FakeClock
) -> None:
    """An iss that is not exactly a trusted issuer is UntrustedIssuer, with nothing fetched."""
    with two(network, clock) as validator, pytest.raises(UntrustedIssuer) as caught:
        validator.validate(a.token(iss=iss))
    assert network.total == 0
    assert caught.value.reason == "untrusted_issuer"
    answer = render_error(caught.value, None)
    assert answer.status_code == 401
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    "iss",
    [
        pytest.param([A], id="list"),
        pytest.param({"iss": A}, id="object"),
        pytest.param(1, id="number"),
        pytest.param(None, id="null"),
    ],
)
def test_non_string_issuer_refused_before_any_fetch(
    iss: Any, a: LocalIssuer, network: Network, clock: FakeClock
) -> None:
    """A list, object, number or null iss (PyJWT's list matching) is a WrongIssuer, unfetched."""
    with two(network, clock) as validator, pytest.raises(WrongIssuer):
        validator.validate(a.token(iss=iss))
    assert network.total == 0


def test_one_issuer_never_fetches_for_a_forged_iss(issuer: LocalIssuer) -> None:
    """With one issuer, a cold validator refuses another iss without fetching its own keys."""
    with issuer.validator() as validator, pytest.raises(UntrustedIssuer):
        validator.validate(issuer.token(iss="https://evil.example/"))
    assert sum(issuer.requests.values()) == 0


def test_keys_belong_to_their_issuer(
    a: LocalIssuer, b: LocalIssuer, network: Network, clock: FakeClock
) -> None:
    """B5: a token naming A but signed by B (with B's kid) is refused: A's keys only serve A."""
    forged = b.token(iss=A)
    with two(network, clock) as validator:
        validator.validate(b.token())  # B's keys are cached
        with pytest.raises(UnknownSigningKey):
            validator.validate(forged)
        same_kid = b.token(iss=A, header={"kid": a.current_key.kid})
        with pytest.raises(InvalidSignature):
            validator.validate(same_kid)


def test_per_issuer_audiences_and_algorithms(
    a: LocalIssuer, b: LocalIssuer, network: Network, clock: FakeClock
) -> None:
    """Each policy has its own audiences and algorithms; one issuer's do not serve another."""
    es = a.add_key("ES256", kid="a-es")
    policies = [
        IssuerPolicy(A, audience="https://api-a.test", algorithms=["ES256"]),
        IssuerPolicy(B, audience="https://api-b.test"),
    ]
    with Validator(issuers=policies, transport=network.transport(), clock=clock) as validator:
        assert validator.validate(a.token(key=es, aud="https://api-a.test")).issuer == A
        with pytest.raises(WrongAudience):
            validator.validate(a.token(key=es, aud="https://api-b.test"))
        with pytest.raises(AlgorithmNotAllowed):
            validator.validate(a.token(aud="https://api-a.test"))  # RS256, allowed for B only
        assert validator.validate(b.token(aud="https://api-b.test")).issuer == B
        assert validator.audiences == {"https://api-a.test", "https://api-b.test"}


def test_url_and_policy_entries_mix(
    a: LocalIssuer, b: LocalIssuer, network: Network, clock: FakeClock
) -> None:
    """Issuers given by URL take the validator's per-issuer settings; policies keep theirs."""
    issuers = [A, IssuerPolicy(B, audience="https://other.test")]
    with Validator(
        issuers=issuers, audience=AUD, transport=network.transport(), clock=clock
    ) as validator:
        validator.validate(a.token())
        validator.validate(b.token(aud="https://other.test"))
        with pytest.raises(WrongAudience):
            validator.validate(b.token())


def test_one_issuers_outage_leaves_the_other_alone(
    a: LocalIssuer, b: LocalIssuer, network: Network, clock: FakeClock
) -> None:
    """A's JWKS down answers 503 for A's tokens only; B's tokens keep validating."""
    a.jwks_override = httpx.Response(500)
    with two(network, clock) as validator:
        with pytest.raises(KeySetUnavailable):
            validator.validate(a.token())
        assert validator.validate(b.token()).issuer == B
        health = validator.health()
        assert health[A].state == "missing"
        assert health[A].error is not None
        assert health[B].state == "fresh"


def test_cache_stays_correct_across_issuers(
    a: LocalIssuer, b: LocalIssuer, network: Network, clock: FakeClock
) -> None:
    """A cached token leaves with its own issuer's key; the other issuer's cache is untouched."""
    token_a, token_b = a.token(expires_in=3600), b.token(expires_in=3600)
    with two(network, clock) as validator:
        for token in (token_a, token_b, token_a, token_b):
            validator.validate(token)
        assert validator.cache_info().currsize == 2
        a.rotate(keep_previous=False)
        clock.advance(601)  # both key sets are due for a refresh
        with pytest.raises(UnknownSigningKey):
            validator.validate(token_a)
        assert validator.validate(token_b).issuer == B


def test_resolver_gets_the_issuer_and_the_request(
    a: LocalIssuer, network: Network, clock: FakeClock
) -> None:
    """The resolver is called with the unverified iss and the request; its policy applies."""
    calls: list[tuple[str, Any]] = []

    def resolver(iss: str, request: Any) -> IssuerPolicy | None:
        calls.append((iss, request))
        return IssuerPolicy(iss, audience=AUD) if iss == A else None

    marker = object()
    with Validator(resolver=resolver, transport=network.transport(), clock=clock) as validator:
        assert validator.validate(a.token(), request=marker).issuer == A
        with pytest.raises(UntrustedIssuer):
            validator.validate(a.token(iss=B))
        assert validator.wants_request
    assert calls == [(A, marker), (B, None)]
    assert network.requests[B + ".well-known/openid-configuration"] == 0


class _TenantDown(Exception):
    pass


def _raises(error: BaseException) -> Any:
    def resolver(iss: str, request: Any) -> IssuerPolicy | None:
        raise error

    return resolver


@pytest.mark.parametrize(
    ("resolver", "expected", "status"),
    [
        pytest.param(lambda iss, request: None, UntrustedIssuer, 401, id="refuses"),
        pytest.param(_raises(InvalidClaim("tenant suspended")), InvalidClaim, 401, id="raises-401"),
        pytest.param(_raises(_TenantDown("db down")), IssuerResolutionFailed, 503, id="raises"),
        pytest.param(_raises(KeyError("tid")), IssuerResolutionFailed, 503, id="raises-keyerror"),
        pytest.param(_raises(KeySetUnavailable("later")), KeySetUnavailable, 503, id="raises-503"),
        pytest.param(
            lambda iss, request: IssuerPolicy(B, audience=AUD),
            UntrustedIssuer,
            401,
            id="another-issuers-policy",
        ),
        pytest.param(
            lambda iss, request: {"issuer": iss}, IssuerResolutionFailed, 503, id="not-a-policy"
        ),
    ],
)
def test_resolver_failures_split_401_and_503(
    resolver: Any,
    expected: type[Exception],
    status: int,
    a: LocalIssuer,
    network: Network,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A refusal is 401, a failing resolver 503 (logged), never a 500; nothing is fetched."""
    validator = Validator(resolver=resolver, transport=network.transport(), clock=clock)
    with validator, pytest.raises(expected) as caught:
        validator.validate(a.token())
    assert type(caught.value) is expected
    assert render_error(caught.value, None).status_code == status  # type: ignore[arg-type]
    assert network.total == 0
    if expected is IssuerResolutionFailed:
        assert caught.value.reason == "issuer_resolution_failed"
        assert any(r.levelno >= logging.ERROR for r in caplog.records)


def test_key_sources_are_bounded_lru(clock: FakeClock) -> None:
    """Beyond max_key_sources the least recently used issuer's keys go, and come back on use."""
    issuers = [
        LocalIssuer(f"https://t{index}.test/", audience=AUD, clock=clock) for index in range(3)
    ]
    network = Network(*issuers)
    resolver = TenantIssuers("https://{tenant}.test/", ["t0", "t1", "t2"], audience=AUD)
    with Validator(
        resolver=resolver, max_key_sources=2, transport=network.transport(), clock=clock
    ) as validator:
        first = issuers[0].token()
        validator.validate(first)
        validator.validate(first)  # cached
        validator.validate(issuers[1].token())
        validator.validate(issuers[2].token())  # evicts t0
        assert set(validator.health()) == {"https://t1.test/", "https://t2.test/"}
        validator.validate(first)  # its key source was evicted: validated afresh
        assert issuers[0].requests["/.well-known/jwks.json"] == 2
        assert len(validator.health()) == 2


def test_flood_of_unknown_issuers_fetches_nothing(
    a: LocalIssuer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """10,000 tokens naming random unknown issuers: 0 fetches, no key source, flat memory."""
    # The refusals are logged at debug level; a test run that captures those records (a
    # logging set-up of another test) would measure its own log, not the validator.
    caplog.set_level(logging.INFO, logger="apiguard")
    network = Network(a)
    rng = random.Random(12)
    header = b64(json.dumps({"alg": "RS256", "kid": "key-1", "typ": "JWT"}))

    def forged() -> str:
        # Refused before any signature check, so a junk signature does as well as a real one.
        host = "".join(rng.choices(string.ascii_lowercase, k=12))
        claims = a.claims(iss=f"https://{host}.test/")
        return f"{header}.{b64(json.dumps(claims))}.{b64(b'x' * 256)}"

    tokens = [forged() for _ in range(10_000)]
    resolver = TenantIssuers("https://{tenant}.test/", ["tenant-a"], audience=AUD)
    with Validator(
        issuers=[A], audience=AUD, resolver=resolver, transport=network.transport(), clock=clock
    ) as validator:
        tracemalloc.start()
        for token in tokens[:1000]:
            with pytest.raises(UntrustedIssuer):
                validator.validate(token)
        before, _ = tracemalloc.get_traced_memory()
        for token in tokens[1000:]:
            with pytest.raises(UntrustedIssuer):
                validator.validate(token)
        after, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert network.total == 0
        assert len(validator.health()) == 1  # only the configured issuer, never fetched
        assert validator.cache_info().currsize == 0
    assert after - before < 256 * 1024


def test_entra_tenants(clock: FakeClock) -> None:
    """The Entra resolver trusts the v2.0 issuer of allowed tenants only, with a matching tid."""
    tid = "8eaef023-2b34-4da1-9baa-8bc8c9d6a490"
    other = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    entra = LocalIssuer(
        f"https://login.microsoftonline.com/{tid}/v2.0", audience="api://organizer", clock=clock
    )
    network = Network(entra)
    resolver = TenantIssuers.entra([tid], audience="api://organizer")
    assert resolver.issuers == (f"https://login.microsoftonline.com/{tid}/v2.0",)
    with Validator(resolver=resolver, transport=network.transport(), clock=clock) as validator:
        # The JWKS of the tenant is the one the resolver names, not a discovered one.
        entra.jwks_override = None
        with pytest.raises(KeySetUnavailable):  # LocalIssuer does not serve Entra's key path
            validator.validate(entra.token(tid=tid))
        with pytest.raises(UntrustedIssuer):
            validator.validate(
                entra.token(iss=f"https://login.microsoftonline.com/{other}/v2.0", tid=other)
            )
    assert network.requests[f"https://login.microsoftonline.com/{tid}/discovery/v2.0/keys"] == 1
    assert all(other not in url for url in network.requests)


def test_entra_tid_must_match(clock: FakeClock) -> None:
    """A token of an allowed tenant's issuer whose tid names another tenant is refused."""
    tid = "8eaef023-2b34-4da1-9baa-8bc8c9d6a490"
    entra = LocalIssuer(
        f"https://login.microsoftonline.com/{tid}/v2.0", audience="api://o", clock=clock
    )
    resolver = TenantIssuers.entra([tid], audience="api://o", jwks=entra.jwks)  # type: ignore[misc]
    with Validator(resolver=resolver, clock=clock) as validator:
        assert validator.validate(entra.token(tid=tid)).claims["tid"] == tid
        with pytest.raises(InvalidClaim):
            validator.validate(entra.token(tid="72f988bf-86f1-41af-91ab-2d7cd011db47"))
        with pytest.raises(InvalidClaim):
            validator.validate(entra.token())


@pytest.mark.parametrize(
    ("call", "name"),
    [
        pytest.param(
            lambda: TenantIssuers("https://x.test/", ["a"], audience=AUD),
            "template",
            id="no-placeholder",
        ),
        pytest.param(
            lambda: TenantIssuers("https://{tenant}.test/", [], audience=AUD),
            "tenants",
            id="no-tenant",
        ),
        pytest.param(
            lambda: TenantIssuers("https://{tenant}.test/", ["a/../b"], audience=AUD),
            "tenants",
            id="tenant-path",
        ),
        pytest.param(
            lambda: TenantIssuers("https://{tenant}.test/", ["a"]), "audience", id="no-audience"
        ),
        pytest.param(
            lambda: TenantIssuers.entra(["t"], audience=AUD, version="3.0"),  # type: ignore[arg-type]
            "version",
            id="entra-version",
        ),
    ],
)
def test_tenant_resolver_settings_checked(call: Any, name: str) -> None:
    """A bad template, tenant list or policy setting of the resolver names itself."""
    with pytest.raises(ConfigurationError, match=f"^{name}: "):
        call()


# -- static keys ----------------------------------------------------------------------------------


def _pem(key: Any) -> bytes:
    return key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize("form", ["dict", "text", "path"])
def test_static_jwks(form: str, issuer: LocalIssuer, tmp_path: Path) -> None:
    """A policy's JWKS may be a mapping, JSON text or a file: no fetch, always fresh."""
    jwks: Any = issuer.jwks
    if form == "text":
        jwks = json.dumps(jwks)
    elif form == "path":
        jwks = tmp_path / "jwks.json"
        jwks.write_text(json.dumps(issuer.jwks), encoding="utf-8")
    with Validator(
        issuer=issuer.issuer, audience=issuer.audience, jwks=jwks, clock=issuer.clock
    ) as validator:
        assert validator.validate(issuer.token()).subject == "auth0|user-1"
        with pytest.raises(UnknownSigningKey):
            validator.validate(issuer.token(key=issuer.add_key()))
        assert validator.prefetch() == {issuer.issuer: (("fresh", 1, None))}
    assert sum(issuer.requests.values()) == 0


def test_pem_public_keys(issuer: LocalIssuer) -> None:
    """One PEM key serves any kid; a mapping binds each PEM key to its kid."""
    other = issuer.add_key("ES256", kid="es")
    single = IssuerPolicy(
        issuer.issuer, audience=issuer.audience, public_keys=_pem(issuer.current_key)
    )
    with Validator(issuers=[single], clock=issuer.clock) as validator:
        validator.validate(issuer.token(header={"kid": "whatever"}))
    mapping = IssuerPolicy(
        issuer.issuer,
        audience=issuer.audience,
        public_keys={issuer.current_key.kid: _pem(issuer.current_key).decode(), "es": _pem(other)},
    )
    with Validator(issuers=[mapping], clock=issuer.clock) as validator:
        validator.validate(issuer.token())
        validator.validate(issuer.token(key=other))
        with pytest.raises(UnknownSigningKey):
            validator.validate(issuer.token(header={"kid": "whatever"}))


def test_pem_certificate(issuer: LocalIssuer) -> None:
    """An X.509 certificate in PEM (what Auth0 offers for download) is read for its key."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    private = issuer.current_key.private_key
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer.test")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(private, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    with Validator(issuer=issuer.issuer, audience=AUD, public_keys=pem, clock=issuer.clock) as v:
        v.validate(issuer.token(aud=AUD))


def _weak_rsa_jwk() -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(weak.public_key(), as_dict=True)
    return jwk


@pytest.mark.parametrize(
    ("settings", "name"),
    [
        pytest.param({"jwks": {"keys": []}}, "jwks", id="jwks-empty"),
        pytest.param({"jwks": "not json"}, "jwks", id="jwks-text-not-json"),
        pytest.param({"jwks": "{"}, "jwks", id="jwks-text-broken"),
        pytest.param({"jwks": Path("/nonexistent/jwks.json")}, "jwks", id="jwks-missing-file"),
        pytest.param({"jwks": {"keys": [{"kty": "oct", "k": "AAAA"}]}}, "jwks", id="jwks-oct"),
        pytest.param({"jwks": {"keys": [_weak_rsa_jwk()]}}, "jwks", id="jwks-rsa-1024"),
        pytest.param({"jwks": 5}, "jwks", id="jwks-number"),
        pytest.param(
            {"public_keys": "-----BEGIN PUBLIC KEY-----\nxx\n"}, "public_keys", id="pem-junk"
        ),
        pytest.param({"public_keys": {}}, "public_keys", id="pem-empty-mapping"),
        pytest.param({"public_keys": 5}, "public_keys", id="pem-number"),
        pytest.param(
            {"jwks": {"keys": []}, "jwks_uri": "https://issuer.test/jwks"}, "jwks", id="two-sources"
        ),
        pytest.param(
            {"jwks": {"keys": []}, "algorithms": ["HS256"]}, "algorithms", id="jwks-hs256"
        ),
        pytest.param({"audience_claim": "azp"}, "audience_claim", id="audience-claim"),
        pytest.param(
            {"expected_claims": {"token_use": 5}}, "expected_claims", id="expected-number"
        ),
        pytest.param({"expected_claims": ["token_use"]}, "expected_claims", id="expected-list"),
    ],
)
def test_bad_policy_setting_names_itself(settings: dict[str, Any], name: str) -> None:
    """Each bad per-issuer setting raises ConfigurationError naming it, at construction."""
    with pytest.raises(ConfigurationError, match=f"^{name}: "):
        IssuerPolicy("https://issuer.test/", audience=AUD, **settings)


def test_static_jwks_with_duplicate_kids_refused(issuer: LocalIssuer) -> None:
    """A hand-configured JWKS with two keys of one kid is a configuration error."""
    key = issuer.current_key.public_jwk
    with pytest.raises(ConfigurationError, match=r"^jwks: several keys share"):
        IssuerPolicy(issuer.issuer, audience=AUD, jwks={"keys": [key, dict(key)]})


def test_non_url_issuer_needs_configured_keys(issuer: LocalIssuer) -> None:
    """An issuer that is no URL (a service account's email) needs keys it is not discovered from."""
    email = "robot@project.iam.gserviceaccount.com"
    with pytest.raises(ConfigurationError, match=r"^issuer: must be an absolute"):
        IssuerPolicy(email, audience=AUD)
    policy = IssuerPolicy(email, audience=AUD, jwks=issuer.jwks)
    with Validator(issuers=[policy], clock=issuer.clock) as validator:
        assert validator.validate(issuer.token(iss=email, aud=AUD)).issuer == email


@pytest.mark.parametrize(
    ("settings", "name"),
    [
        pytest.param({"issuers": []}, "issuers", id="empty"),
        pytest.param({"issuers": A}, "issuers", id="one-string"),
        pytest.param({"issuers": [A, A], "audience": AUD}, "issuers", id="duplicate"),
        pytest.param({"issuers": [A, 5], "audience": AUD}, "issuers", id="wrong-entry"),
        pytest.param({"issuer": A, "issuers": [B], "audience": AUD}, "issuers", id="both"),
        pytest.param({"audience": AUD}, "issuer", id="none"),
        pytest.param(
            {"issuers": [IssuerPolicy(A, audience=AUD)], "leeway": 5}, "leeway", id="unused-setting"
        ),
        pytest.param(
            {"issuers": [A, B], "audience": AUD, "max_key_sources": 1},
            "max_key_sources",
            id="lru-too-small",
        ),
        pytest.param({"resolver": "not callable"}, "resolver", id="resolver-not-callable"),
    ],
)
def test_bad_issuer_lists_name_themselves(settings: dict[str, Any], name: str) -> None:
    """Empty, repeated, contradictory or unusable issuer settings fail at construction."""
    with pytest.raises(ConfigurationError, match=f"^{name}: "):
        Validator(**settings)


def test_prefetch_and_health(
    a: LocalIssuer, b: LocalIssuer, network: Network, clock: FakeClock
) -> None:
    """prefetch() fetches every issuer's keys once; health() says fresh, stale or missing."""
    b.jwks_override = httpx.Response(503)
    with two(network, clock) as validator:
        assert {i: h.state for i, h in validator.health().items()} == {A: "missing", B: "missing"}
        health = validator.prefetch()
        assert health[A] == ("fresh", 1, None)
        assert health[B].state == "missing"
        assert "503" in (health[B].error or "")
        assert a.requests["/.well-known/openid-configuration"] == 1
        validator.validate(a.token())  # no new fetch: the keys are warm
        assert a.requests["/.well-known/jwks.json"] == 1
        clock.advance(601)
        assert validator.health()[A].state == "stale"
        assert validator.prefetch()[A].state == "fresh"
        assert a.requests["/.well-known/jwks.json"] == 2


@pytest.mark.anyio
async def test_async_many_issuers(
    a: LocalIssuer, b: LocalIssuer, network: Network, clock: FakeClock
) -> None:
    """The async twin takes the same issuers, prefetches them concurrently and validates both."""
    async with AsyncValidator(
        issuers=[A, B], audience=AUD, transport=network.transport(), clock=clock
    ) as validator:
        health = await validator.prefetch()
        assert {h.state for h in health.values()} == {"fresh"}
        assert (await validator.validate(a.token())).issuer == A
        assert (await validator.validate(b.token())).issuer == B
        with pytest.raises(UntrustedIssuer):
            await validator.validate(a.token(iss="https://tenant-c.test/"))
    assert network.total == 4  # discovery and JWKS of each, nothing more


def test_one_issuer_repr_and_properties(issuer: LocalIssuer) -> None:
    """One issuer keeps the one-issuer view: issuer, audiences and repr."""
    with issuer.validator() as validator:
        assert validator.issuer == issuer.issuer
        assert repr(validator) == f"Validator(issuer={issuer.issuer!r})"
        assert not validator.wants_request


def test_invalid_token_subclass_of_untrusted_issuer() -> None:
    """UntrustedIssuer is a WrongIssuer (and an InvalidToken): handlers of those still catch it."""
    assert issubclass(UntrustedIssuer, WrongIssuer)
    assert issubclass(UntrustedIssuer, InvalidToken)
    assert issubclass(IssuerResolutionFailed, KeySetUnavailable) is False
