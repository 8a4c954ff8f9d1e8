"""Browser clients at the token endpoint: the API Explorer, CORS, and the resource named again."""

from __future__ import annotations

import httpx
import pytest

from .support import ORGANIZER, Browser, pkce_pair, token_request

pytestmark = pytest.mark.anyio

DOCS = "http://127.0.0.1:8001"
EXPLORER_CB = f"{DOCS}/docs/oauth2-redirect"


def explorer_request(challenge: str, redirect_uri: str = EXPLORER_CB) -> dict[str, str]:
    """What Swagger UI sends to /authorize as the API Explorer."""
    return {
        "response_type": "code",
        "client_id": "api-explorer",
        "redirect_uri": redirect_uri,
        "scope": "read:appointments",
        "audience": ORGANIZER,
        "state": "swagger",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }


async def explorer_code(browser: Browser, redirect_uri: str = EXPLORER_CB) -> tuple[str, str]:
    verifier, challenge = pkce_pair()
    params = await browser.code(**explorer_request(challenge, redirect_uri))
    return params["code"], verifier


def redemption(code: str, verifier: str, redirect_uri: str = EXPLORER_CB) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "client_id": "api-explorer",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": redirect_uri,
    }


async def test_api_explorer_signs_in_from_swagger_ui(
    http: httpx.AsyncClient, browser: Browser
) -> None:
    """The seeded public client runs code + PKCE from the docs page, audience in the query."""
    code, verifier = await explorer_code(browser)
    response = await http.post(
        "/oauth/token",
        params={"audience": ORGANIZER},  # Swagger UI repeats additionalQueryStringParams here
        data=redemption(code, verifier),
        headers={"Origin": DOCS},
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == DOCS
    assert "origin" in response.headers["vary"].lower()


async def test_any_loopback_port_is_the_explorers_callback(
    http: httpx.AsyncClient, browser: Browser
) -> None:
    """The docs page of an API on another loopback port is a callback too (RFC 8252 §7.3)."""
    other = "http://127.0.0.1:8123/docs/oauth2-redirect"
    code, verifier = await explorer_code(browser, other)
    response = await token_request(http, **redemption(code, verifier, other))
    assert response.status_code == 200, response.text


async def test_preflight_is_answered_without_credentials(http: httpx.AsyncClient) -> None:
    """A CORS preflight of the token endpoint gets 204 with the allowed method and headers."""
    response = await http.options(
        "/oauth/token",
        headers={
            "Origin": DOCS,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-requested-with",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == DOCS
    assert response.headers["access-control-allow-methods"] == "POST"
    assert "x-requested-with" in response.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in response.headers


async def test_options_without_cors_headers_is_405(http: httpx.AsyncClient) -> None:
    """An OPTIONS that is no preflight is answered as any other method but POST."""
    response = await http.options("/oauth/token")
    assert response.status_code == 405


@pytest.mark.parametrize(
    "origin",
    [
        pytest.param("https://evil.example", id="another-host"),
        pytest.param("http://localhost:9999", id="localhost-other-port"),
        pytest.param("https://127.0.0.1:8001", id="another-scheme"),
    ],
)
async def test_other_origins_cannot_read_the_answer(
    http: httpx.AsyncClient, browser: Browser, origin: str
) -> None:
    """Only the client's own callback origins may read its tokens across origins."""
    code, verifier = await explorer_code(browser)
    response = await http.post(
        "/oauth/token", data=redemption(code, verifier), headers={"Origin": origin}
    )
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    ("query", "body", "error"),
    [
        pytest.param({"code": "x"}, {}, "invalid_request", id="other-parameter-in-query"),
        pytest.param(
            {"audience": ORGANIZER},
            {"audience": "https://other.example"},
            "invalid_request",
            id="query-and-body-differ",
        ),
        pytest.param(
            {"resource": "https://billing.example/api"}, {}, "invalid_target", id="other-resource"
        ),
        pytest.param(
            {},
            {"resource": "https://billing.example/api"},
            "invalid_target",
            id="other-resource-in-body",
        ),
    ],
)
async def test_the_resource_named_again_must_be_the_codes(
    http: httpx.AsyncClient,
    browser: Browser,
    query: dict[str, str],
    body: dict[str, str],
    error: str,
) -> None:
    """A code is never redeemed for another API, and the query carries nothing else (RFC 8707)."""
    code, verifier = await explorer_code(browser)
    response = await http.post("/oauth/token", params=query, data=redemption(code, verifier) | body)
    assert response.status_code == 400
    assert response.json()["error"] == error
