"""Swagger UI of the FastAPI example: Authorize, sign in, consent, call an endpoint (Chromium)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from apiguard import AsyncValidator
from examples.authz_server import Settings, create_app
from examples.fastapi_api.app import create_app as create_fastapi_example

from .conftest import ORGANIZER, SCREENSHOTS, ServerThread, bound_socket, port_of

pytestmark = pytest.mark.browser

DEMO = ("demo@organizer.example", "organizer-demo-password")


@dataclass
class Docs:
    """Where the authorization server and the FastAPI example listen."""

    issuer: str
    api: str


@pytest.fixture(scope="module")
def docs() -> Iterator[Docs]:
    """The bundled server and the FastAPI Organizer API on loopback sockets."""
    authz_sock, api_sock = bound_socket(), bound_socket()
    issuer = f"http://127.0.0.1:{port_of(authz_sock)}/"
    authz = create_app(Settings(issuer=issuer, db_path=":memory:", port=port_of(authz_sock)))
    validator = AsyncValidator(issuer=issuer, audience=ORGANIZER)
    api = create_fastapi_example(validator=validator)
    with ServerThread(authz, authz_sock), ServerThread(api, api_sock):
        yield Docs(issuer, f"http://127.0.0.1:{port_of(api_sock)}")


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A tab that records script errors (Swagger UI's own assets must load from the API)."""
    tab = context.new_page()
    failed: list[str] = []
    tab.on("pageerror", lambda error: failed.append(str(error)))
    tab.on("requestfailed", lambda request: failed.append(request.url))
    yield tab
    assert failed == []


def test_swagger_ui_signs_in_and_calls_a_protected_endpoint(
    docs: Docs, context: BrowserContext, page: Page
) -> None:
    """Authorize runs code + PKCE through the real login and consent; the call answers 200."""
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page.goto(f"{docs.api}/docs")
    page.locator("button.authorize").first.click()
    modal = page.locator(".modal-ux")
    dialog = modal.locator(".auth-container").filter(has_text="authorizationCode")
    expect(dialog.locator("input[data-name=clientId]")).to_have_value("api-explorer")
    dialog.get_by_text("read:appointments", exact=False).first.click()
    with context.expect_page() as opened:
        dialog.get_by_role("button", name="Apply given OAuth2 credentials").click()
    popup = opened.value
    popup.get_by_label("Email").fill(DEMO[0])
    popup.get_by_label("Password").fill(DEMO[1])
    popup.get_by_role("button", name="Continue").click()
    expect(popup.get_by_text("read:appointments", exact=False).first).to_be_visible()
    popup.screenshot(path=SCREENSHOTS / "swagger-consent.png", full_page=True)
    popup.get_by_role("button", name="Accept").click()
    # Back at /docs/oauth2-redirect, the popup hands the code to Swagger UI and closes;
    # Swagger UI redeems it (a cross-origin POST to the token endpoint) and shows it.
    expect(modal.get_by_role("heading", name="Authorized")).to_be_visible()
    assert popup.is_closed()
    modal.get_by_role("button", name="Close").click()

    operation = page.locator("#operations-default-list_appointments_api_appointments_get")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    expect(status).to_have_text("200")
    expect(operation.locator(".live-responses-table")).to_contain_text("Dentist")
    page.screenshot(path=SCREENSHOTS / "swagger-call.png", full_page=True)
    # Everything came from the two local servers: no CDN, no other host.
    assert all(url.startswith((docs.api, docs.issuer.rstrip("/"))) for url in requests), [
        url for url in requests if not url.startswith((docs.api, docs.issuer.rstrip("/")))
    ]
