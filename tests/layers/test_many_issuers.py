"""Several issuers behind every framework layer: the same answers through the one request path."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest
from adapters import LAYERS, Layer

from apiguard import AsyncValidator, IssuerPolicy, Validator
from apiguard.testing import LocalIssuer

A = "https://tenant-a.test/"
B = "https://tenant-b.test/"
C = "https://tenant-c.test/"
AUD = "https://api.test"
UNTRUSTED = (
    'Bearer realm="api", error="invalid_token", '
    'error_description="The access token was issued by an untrusted issuer"'
)


class Tenants:
    """Stands in for a LocalIssuer in the adapters: validators trusting A and B (and C's
    issuer through a resolver, when given one), fetching from all three in-process."""

    def __init__(self, resolver: Any = None) -> None:
        self.a = LocalIssuer(A, audience=AUD)
        self.b = LocalIssuer(B, audience=AUD)
        self.b.rotate(keep_previous=False)
        self.c = LocalIssuer(C, audience=AUD)
        self.c.rotate(keep_previous=False)
        self.c.rotate(keep_previous=False)
        self.resolver = resolver
        self.requests: Counter[str] = Counter()
        self.seen_requests: list[Any] = []

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests[request.url.host] += 1
        for issuer in (self.a, self.b, self.c):
            if request.url.host == httpx.URL(issuer.issuer).host:
                return issuer.handle(request)
        return httpx.Response(404)

    def _settings(self, extra: dict[str, Any]) -> dict[str, Any]:
        settings: dict[str, Any] = {"issuers": [A, B], "audience": AUD, **extra}
        if self.resolver is not None:
            settings["resolver"] = self._resolve
        return settings

    def _resolve(self, iss: str, request: Any) -> IssuerPolicy | None:
        self.seen_requests.append(request)
        result: IssuerPolicy | None = self.resolver(iss)
        return result

    def validator(self, **extra: Any) -> Validator:
        """A validator for both tenants; ``extra`` are the adapter's per-issuer settings."""
        return Validator(transport=httpx.MockTransport(self._handle), **self._settings(extra))

    def async_validator(self, **extra: Any) -> AsyncValidator:
        return AsyncValidator(transport=httpx.MockTransport(self._handle), **self._settings(extra))


def _get(layer: Layer, tenants: Tenants, token: str) -> Any:
    app = layer.build(tenants, required=True)  # type: ignore[arg-type]
    return layer.send(app, "GET", "/private", [("Authorization", f"Bearer {token}")], b"")


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_each_layer_accepts_both_issuers_and_refuses_a_third(layer: Layer) -> None:
    """Every layer accepts A's and B's tokens and answers C's 401 untrusted, C never fetched."""
    tenants = Tenants()
    app = layer.build(tenants, required=True)  # type: ignore[arg-type]
    for issuer, subject in ((tenants.a, "alice"), (tenants.b, "bob")):
        answer = layer.send(
            app, "GET", "/private", [("Authorization", f"Bearer {issuer.token(sub=subject)}")], b""
        )
        assert (answer.status, answer.json()) == (200, {"subject": subject})
    answer = layer.send(
        app, "GET", "/private", [("Authorization", f"Bearer {tenants.c.token()}")], b""
    )
    assert answer.status == 401
    assert answer.headers["www-authenticate"] == UNTRUSTED
    assert tenants.requests["tenant-c.test"] == 0


def _refuse(iss: str) -> IssuerPolicy | None:
    return None


def _admit_c(iss: str) -> IssuerPolicy | None:
    return IssuerPolicy(iss, audience=AUD) if iss == C else None


def _broken(iss: str) -> IssuerPolicy | None:
    raise RuntimeError("tenant directory unreachable")


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
@pytest.mark.parametrize(
    ("resolver", "status", "body"),
    [
        pytest.param(_refuse, 401, "invalid_token", id="resolver-refuses"),
        pytest.param(_admit_c, 200, None, id="resolver-admits"),
        pytest.param(_broken, 503, None, id="resolver-raises"),
    ],
)
def test_resolver_answers_in_each_layer(
    layer: Layer, resolver: Any, status: int, body: str | None
) -> None:
    """A resolver's refusal is 401, its admission 200, its failure 503 (never 500), per layer."""
    tenants = Tenants(resolver)
    answer = _get(layer, tenants, tenants.c.token())
    assert answer.status == status
    if status == 503:
        assert "retry-after" in answer.headers
        assert "www-authenticate" not in answer.headers
    if body is not None:
        assert answer.json()["error"] == body
    # The layer handed the resolver its request object.
    assert len(tenants.seen_requests) == 1
    assert tenants.seen_requests[0] is not None


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_resolver_sees_the_requests_host_in_each_layer(layer: Layer) -> None:
    """A resolver that picks tenants by Host is handed the request's Host in every layer."""
    tenants = Tenants(_admit_c)
    app = layer.build(tenants, required=True)  # type: ignore[arg-type]
    headers = [("Host", "tenant-c.example"), ("Authorization", f"Bearer {tenants.c.token()}")]
    answer = layer.send(app, "GET", "/private", headers, b"")
    assert answer.status == 200
    assert [view.host for view in tenants.seen_requests] == ["tenant-c.example"]


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: layer.name)
def test_one_issuers_outage_in_each_layer(layer: Layer) -> None:
    """With A's JWKS down, A's tokens get 503 and B's still 200, in every layer."""
    tenants = Tenants()
    tenants.a.jwks_override = httpx.Response(502)
    app = layer.build(tenants, required=True)  # type: ignore[arg-type]
    down = layer.send(
        app, "GET", "/private", [("Authorization", f"Bearer {tenants.a.token()}")], b""
    )
    up = layer.send(app, "GET", "/private", [("Authorization", f"Bearer {tenants.b.token()}")], b"")
    assert (down.status, up.status) == (503, 200)
