"""The dashboard, the portal and a code + PKCE sign-in, driven in real headless Chromium."""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, expect

from apiguard import MULTI_FACTOR, Validator

from .conftest import ORGANIZER, SCREENSHOTS, Servers

pytestmark = pytest.mark.browser

ADMIN = ("admin@organizer.example", "organizer-admin-password")
DEMO = ("demo@organizer.example", "organizer-demo-password")


@pytest.fixture
def problems() -> list[str]:
    """Console and script errors of the test's tab (a test expecting one clears it)."""
    return []


@pytest.fixture
def page(context: BrowserContext, problems: list[str]) -> Iterator[Page]:
    """A tab that records script errors and console errors (CSP violations show up there)."""
    tab = context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and "favicon" not in message.location.get("url", ""):
            problems.append(message.text)

    tab.on("console", on_console)
    tab.on("pageerror", lambda error: problems.append(str(error)))
    yield tab
    assert problems == []


def shot(page: Page, name: str) -> None:
    """Save a screenshot of the whole page as a test artifact."""
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def open_tab(page: Page, name: str) -> None:
    """Click one of the API view's tabs."""
    page.get_by_role("navigation", name="API sections").get_by_role("link", name=name).click()


def sign_in(page: Page, email: str, password: str) -> None:
    """Fill and submit the login form the page is showing."""
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Continue").click()


def sign_up_and_register(page: Page, servers: Servers) -> tuple[str, str]:
    """Sign up a developer in the portal and register a web app for the client page."""
    page.goto(f"{servers.issuer}portal")
    page.get_by_role("link", name="Create a developer account").click()
    page.get_by_label("Name").fill("Dana Developer")
    page.get_by_label("Email").fill(f"dana-{secrets.token_hex(4)}@dev.example")
    page.get_by_label("Password").fill("a-long-password")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("status")).to_contain_text("Welcome")
    page.get_by_role("link", name="+ Register an application").click()
    page.get_by_label("Application name").fill("Pocket Planner")
    page.get_by_label("Web application").check()
    page.get_by_label("Redirect URIs").fill(servers.client.redirect_uri)
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("heading", name="Pocket Planner")).to_be_visible()
    client_id = page.locator("#client-id").inner_text()
    secret = page.locator("#client-secret").inner_text()
    return client_id, secret


def redeem(servers: Servers, client_id: str, secret: str) -> httpx.Response:
    """Redeem the code the client page received last, with its PKCE verifier."""
    received = servers.client.received[-1]
    return httpx.post(
        f"{servers.issuer}oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": received["code"],
            "redirect_uri": servers.client.redirect_uri,
            "client_id": client_id,
            "client_secret": secret,
            "code_verifier": servers.client.verifiers[received["state"]],
        },
    )


def test_admin_creates_an_api_and_tests_it(page: Page, servers: Servers) -> None:
    """An admin signs in, creates an API, adds scopes, authorizes a client and runs Test."""
    page.goto(f"{servers.issuer}dashboard")
    expect(page).to_have_title("Sign in")
    sign_in(page, *ADMIN)
    expect(page.get_by_role("heading", name="APIs")).to_be_visible()
    shot(page, "dashboard-apis")

    page.get_by_role("link", name="+ Create API").click()
    page.get_by_label("Name").fill("Notes API")
    page.get_by_label("Identifier").fill("https://notes.example/api")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="Notes API")).to_be_visible()
    expect(
        page.get_by_text('app.config["APIGUARD_AUDIENCE"] = "https://notes.example/api"')
    ).to_be_visible()
    expect(page.locator("button.copy").first).to_be_visible()  # the copy script ran
    shot(page, "dashboard-quickstart")

    open_tab(page, "Scopes")
    for value, description in (("read:notes", "Read your notes"), ("write:notes", "Write notes")):
        page.get_by_label("Permission").fill(value)
        page.get_by_label("Description").fill(description)
        page.get_by_role("button", name="+ Add scope").click()
        expect(page.get_by_role("status")).to_have_text("Scope added.")
    expect(page.get_by_role("cell", name="Read your notes")).to_be_visible()
    shot(page, "dashboard-scopes")

    open_tab(page, "Machine to Machine Applications")
    world_mappers = page.locator("form.m2m").filter(has_text="World Mappers")
    world_mappers.get_by_label("read:notes").check()
    world_mappers.get_by_role("button", name="Authorize").click()
    expect(page.get_by_role("status")).to_have_text("Client authorized for this API.")
    shot(page, "dashboard-m2m")

    open_tab(page, "Test")
    page.get_by_label("Application").select_option("world-mappers")
    page.get_by_role("button", name="Run test").click()
    claims = json.loads(page.locator("#token-claims").inner_text())
    assert claims["aud"] == "https://notes.example/api"
    assert claims["scope"] == "read:notes"
    assert claims["iss"] == servers.issuer

    page.get_by_role("link", name="Back to APIs").click()
    page.get_by_role("link", name="Organizer API").click()
    open_tab(page, "Test")
    page.get_by_label("Send the token to").fill(f"{servers.api_origin}/api/appointments")
    page.get_by_role("button", name="Run test").click()
    expect(page.locator("#verdict")).to_contain_text("Accepted")
    expect(page.locator("#verdict")).to_contain_text("HTTP 200")
    shot(page, "dashboard-test")

    page.get_by_label("Send the token to").fill(f"{servers.api_origin}/api/tasks")
    page.get_by_role("button", name="Run test").click()
    expect(page.locator("#verdict")).to_contain_text("Missing scope")
    expect(page.locator("#verdict")).to_contain_text('error="insufficient_scope"')


def test_demo_user_cannot_open_the_dashboard(
    page: Page, servers: Servers, problems: list[str]
) -> None:
    """A non-admin who signs in on the way to the dashboard gets the 403 page."""
    page.goto(f"{servers.issuer}dashboard/keys")
    sign_in(page, *DEMO)
    expect(page.get_by_role("heading", name="Administrators only")).to_be_visible()
    assert problems == [
        "Failed to load resource: the server responded with a status of 403 (Forbidden)"
    ]
    problems.clear()


def test_developer_registers_an_app(page: Page, servers: Servers) -> None:
    """A developer signs up and registers an app; the secret is shown once, then listed only."""
    client_id, secret = sign_up_and_register(page, servers)
    assert len(secret) >= 40
    shot(page, "portal-app-registered")
    page.get_by_role("link", name="My applications", exact=True).click()
    expect(page.get_by_role("cell", name=client_id)).to_be_visible()
    shot(page, "portal-apps")
    page.get_by_role("link", name="Pocket Planner").click()
    expect(page.locator("#client-id")).to_have_text(client_id)
    assert secret not in page.content()
    page.get_by_role("navigation").get_by_role("link", name="API documentation").click()
    page.get_by_role("link", name="Organizer API").click()
    expect(page.get_by_role("cell", name="Read your appointments")).to_be_visible()
    shot(page, "portal-api-doc")


def test_code_with_pkce_through_login_and_consent(
    context: BrowserContext, page: Page, servers: Servers
) -> None:
    """The client page's sign-in goes through login and consent; its code redeems for a token."""
    client_id, secret = sign_up_and_register(page, servers)
    page.get_by_role("button", name="Sign out").click()

    page.goto(f"{servers.client.origin}/start?client_id={client_id}")
    expect(page.get_by_text("to continue to Pocket Planner")).to_be_visible()
    shot(page, "login")
    sign_in(page, *DEMO)
    expect(page.get_by_role("heading", name="Authorize Pocket Planner")).to_be_visible()
    expect(page.get_by_role("note")).to_contain_text("registered itself")
    expect(page.get_by_role("region", name="Organizer API")).to_contain_text(
        "Read your appointments"
    )
    expect(page.get_by_role("region", name="Your account")).to_contain_text("Read your name")
    shot(page, "consent")
    page.get_by_role("button", name="Accept").click()
    expect(page.locator("#result")).to_have_text("Authorization code received.")

    assert servers.client.received[-1]["iss"] == servers.issuer
    answer = redeem(servers, client_id, secret)
    assert answer.status_code == 200, answer.text
    validator = Validator(issuer=servers.issuer, audience=ORGANIZER)
    try:
        token = validator.validate(answer.json()["access_token"])
    finally:
        validator.close()
    assert token.subject == "auth0|demo"
    assert "read:appointments" in token.scopes
    api = httpx.get(
        f"{servers.api_origin}/api/appointments",
        headers={"Authorization": f"Bearer {answer.json()['access_token']}"},
    )
    assert api.status_code == 200

    # The user sees the consent in the portal, and takes it back.
    page.goto(f"{servers.issuer}portal/authorized")
    expect(page.get_by_role("heading", name="Applications you authorized")).to_be_visible()
    expect(page.get_by_role("cell", name="Pocket Planner", exact=True)).to_be_visible()
    shot(page, "portal-authorized")
    page.get_by_role("button", name="Revoke access of Pocket Planner").click()
    expect(page.get_by_role("status")).to_have_text("Access revoked.")
    expect(page.get_by_role("cell", name="No authorized applications.")).to_be_visible()


def test_a_step_up_sign_in_asks_for_a_one_time_code(
    page: Page, servers: Servers, problems: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Asked for the multi-factor acr, the server wants the code it logged after the password;
    the token it then issues carries that acr and opens the API's step-up route."""
    client_id, secret = sign_up_and_register(page, servers)
    page.get_by_role("button", name="Sign out").click()

    query = urlencode({"client_id": client_id, "acr_values": MULTI_FACTOR, "max_age": 600})
    page.goto(f"{servers.client.origin}/start?{query}")
    with caplog.at_level(logging.WARNING, logger="examples.authz_server"):
        sign_in(page, *DEMO)
        expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    expect(
        page.get_by_text("Pocket Planner asks for a sign-in with a second factor")
    ).to_be_visible()
    shot(page, "otp")
    (code,) = re.findall(rf"One-time code for {re.escape(DEMO[0])}: (\d{{6}})", caplog.text)
    page.get_by_label("One-time code").fill("000000" if code != "000000" else "111111")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_be_visible()  # a wrong code is refused
    assert problems == [
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
    problems.clear()
    page.get_by_label("One-time code").fill(code)
    page.get_by_role("button", name="Verify").click()
    page.get_by_role("button", name="Accept").click()
    expect(page.locator("#result")).to_have_text("Authorization code received.")

    answer = redeem(servers, client_id, secret)
    assert answer.status_code == 200, answer.text
    bearer = {"Authorization": f"Bearer {answer.json()['access_token']}"}
    security = httpx.get(f"{servers.api_origin}/api/security", headers=bearer)
    assert security.status_code == 200, security.headers.get("www-authenticate")
    assert security.json()["acr"] == MULTI_FACTOR


def test_admin_assigns_a_role_and_sees_it_in_a_token(page: Page, servers: Servers) -> None:
    """The roles, a role's permissions, a user's roles and the API's RBAC settings show;
    assigning organizer-admin on the user's page shows up in the Test tab's user token."""
    page.goto(f"{servers.issuer}dashboard/roles")
    sign_in(page, *ADMIN)
    expect(page.get_by_role("heading", name="Roles", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="assistant")).to_be_visible()
    shot(page, "dashboard-roles")
    page.get_by_role("link", name="organizer-admin").click()
    expect(page.get_by_role("heading", name="organizer-admin")).to_be_visible()
    expect(page.get_by_role("cell", name="delete:appointments", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Organizer Admin")).to_be_visible()
    shot(page, "dashboard-role")

    dashboard = page.get_by_role("navigation", name="Dashboard")
    dashboard.get_by_role("link", name="Users").click()
    page.get_by_role("link", name="Demo User").click()
    expect(page.get_by_role("heading", name="Roles")).to_be_visible()
    page.get_by_label("Assign a role").select_option(label="organizer-admin")
    page.get_by_role("button", name="Assign").click()
    expect(page.get_by_role("status")).to_have_text("Role assigned.")
    expect(page.get_by_role("link", name="organizer-admin")).to_be_visible()
    granted = page.get_by_role("row").filter(has_text="delete:appointments")
    expect(granted).to_contain_text("organizer-admin")
    shot(page, "dashboard-user")

    dashboard.get_by_role("link", name="APIs").click()
    page.get_by_role("link", name="Organizer API").click()
    open_tab(page, "Settings")
    expect(page.get_by_label("Enable RBAC")).to_be_checked()
    expect(page.get_by_label("Add permissions in the access token")).to_be_checked()
    shot(page, "dashboard-api-settings")

    open_tab(page, "Test")
    page.get_by_label("Application").select_option("world-mappers")
    page.get_by_label("On behalf of a user").select_option(
        label="Demo User (demo@organizer.example)"
    )
    page.get_by_role("button", name="Run test").click()
    claims = json.loads(page.locator("#token-claims").inner_text())
    assert claims["sub"] == "auth0|demo"
    assert claims["https://organizer.example/roles"] == ["assistant", "organizer-admin"]
    assert "delete:appointments" in claims["scope"].split()
    assert "delete:appointments" in claims["permissions"]
    shot(page, "dashboard-test-user")


def test_admin_reviews_applications_and_signing_keys(page: Page, servers: Servers) -> None:
    """The applications list, an application's settings and grants, and the signing keys."""
    page.goto(f"{servers.issuer}dashboard/applications")
    sign_in(page, *ADMIN)
    expect(page.get_by_role("heading", name="Applications")).to_be_visible()
    expect(page.get_by_role("cell", name="world-mappers", exact=True)).to_be_visible()
    shot(page, "dashboard-applications")
    page.get_by_role("link", name="World Mappers").click()
    expect(page.get_by_role("heading", name="World Mappers")).to_be_visible()
    expect(page.get_by_role("heading", name="Credentials")).to_be_visible()
    assert "world-mappers-dev-secret" not in page.content()
    shot(page, "dashboard-application")
    page.get_by_role("navigation", name="Dashboard").get_by_role(
        "link", name="Signing keys"
    ).click()
    expect(page.get_by_role("heading", name="Signing keys")).to_be_visible()
    page.get_by_role("button", name="Rotate signing key").click()
    for status in ("Current", "Next", "Previous"):
        expect(page.get_by_role("cell", name=status, exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Revoke")).to_be_visible()
    shot(page, "dashboard-keys")
