"""The developer portal: sign-up, app registration, ownership, API docs, authorized apps."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape

import httpx
import pytest

from examples.authz_server.models import ResourceServer
from examples.authz_server.services import Domain

from .support import DEMO, ISSUER, ORGANIZER, Pages, assert_frame_protected

pytestmark = pytest.mark.anyio

WEB_APP = {"name": "Shiny", "kind": "web", "redirect_uris": "https://shiny.example/cb"}


async def developer(new_client: Callable[[], httpx.AsyncClient], email: str) -> Pages:
    """A new developer, signed up through the portal."""
    pages = Pages(new_client())
    await pages.get("/portal/signup")
    response = await pages.post(
        "/portal/signup", {"name": email.split("@")[0], "email": email, "password": "long-password"}
    )
    assert response.status_code == 303, response.text
    await pages.get("/portal/apps/new")
    return pages


async def register(pages: Pages, form: dict[str, str]) -> tuple[httpx.Response, str]:
    """Register an app; return the answer and the new client id."""
    await pages.get("/portal/apps/new")
    response = await pages.post("/portal/apps", dict(form))
    assert response.status_code == 201, response.text
    found = re.search(r'<code id="client-id">([^<]+)</code>', response.text)
    assert found is not None
    return response, found.group(1)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        pytest.param("/portal", "Create a developer account", id="welcome"),
        pytest.param("/portal/signup", "Create a developer account", id="signup"),
        pytest.param("/portal/apis", "Organizer API", id="apis"),
        pytest.param("/portal/apis/{api}", "Create appointments in your calendar", id="api-doc"),
    ],
)
async def test_public_pages(
    anonymous: Pages, organizer: ResourceServer, path: str, text: str
) -> None:
    """The welcome, sign-up and API documentation pages need no account and refuse framing."""
    response = await anonymous.get(path.format(api=organizer.id))
    assert response.status_code == 200
    assert text in response.text
    assert_frame_protected(response)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/portal/apps/new", id="new-app"),
        pytest.param("/portal/apps/calendar-app", id="app"),
        pytest.param("/portal/authorized", id="authorized"),
    ],
)
async def test_private_pages_need_sign_in(anonymous: Pages, path: str) -> None:
    """Application and authorization pages send anonymous visitors to the login page."""
    response = await anonymous.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next={path}"


async def test_api_doc_has_identifier_scopes_and_flows(
    anonymous: Pages, organizer: ResourceServer
) -> None:
    """An API's page shows its identifier, scope descriptions and ready-to-copy requests."""
    response = await anonymous.get(f"/portal/apis/{organizer.id}")
    text = unescape(response.text)
    assert ORGANIZER in text
    for scope in organizer.scopes:
        assert scope.value in text
        assert scope.description in text
    assert f"{ISSUER}authorize?response_type=code" in text
    assert "code_challenge_method=S256" in text
    assert "audience=https%3A%2F%2Forganizer.example%2Fapi" in text
    assert "--data grant_type=authorization_code" in text
    assert '--data code_verifier="$VERIFIER"' in text
    assert "--data grant_type=refresh_token" in text
    assert f"--data audience={ORGANIZER}" in text


@pytest.mark.parametrize(
    "api_id",
    [pytest.param("management", id="management-api"), pytest.param("nope", id="unknown")],
)
async def test_undocumented_apis_are_404(anonymous: Pages, tenant: Domain, api_id: str) -> None:
    """The Management API and unknown ids have no documentation page."""
    if api_id == "management":
        api_id = tenant.apis.get(f"{ISSUER}api/v2/").id
    response = await anonymous.get(f"/portal/apis/{api_id}")
    assert response.status_code == 404
    listing = await anonymous.get("/portal/apis")
    assert "Management API" not in listing.text


async def test_signup_creates_a_signed_in_non_admin(
    new_client: Callable[[], httpx.AsyncClient], tenant: Domain
) -> None:
    """Signing up creates a non-admin user, signs them in, and the dashboard stays closed."""
    pages = await developer(new_client, "ada@dev.example")
    user = tenant.users.find_by_email("ada@dev.example")
    assert user is not None
    assert not user.is_admin
    home = await pages.get("/portal")
    assert "My applications" in home.text
    assert "ada@dev.example" in home.text
    dashboard = await pages.get("/dashboard/apis")
    assert dashboard.status_code == 403


@pytest.mark.parametrize(
    ("form", "status", "message"),
    [
        pytest.param(
            {"email": DEMO[0], "password": "long-password"}, 409, "already exists", id="taken"
        ),
        pytest.param({"email": "x@dev.example", "password": "short"}, 400, "at least 8", id="pw"),
        pytest.param(
            {"email": "not-an-email", "password": "long-password"}, 400, "email", id="email"
        ),
    ],
)
async def test_signup_errors(
    anonymous: Pages, tenant: Domain, form: dict[str, str], status: int, message: str
) -> None:
    """A taken email, a short password or a bad address re-shows the form with the reason."""
    count = len(tenant.users.all())
    await anonymous.get("/portal/signup")
    response = await anonymous.post("/portal/signup", dict(form))
    assert response.status_code == status
    assert message in response.text
    assert len(tenant.users.all()) == count


@pytest.mark.parametrize(
    ("token", "headers"),
    [
        pytest.param("", {}, id="no-token"),
        pytest.param("forged", {}, id="wrong-token"),
        pytest.param(None, {"origin": "https://evil.example"}, id="cross-origin"),
    ],
)
async def test_signup_needs_csrf(
    anonymous: Pages, tenant: Domain, token: str | None, headers: dict[str, str]
) -> None:
    """A sign-up without the form's CSRF token, or from another site, is refused."""
    await anonymous.get("/portal/signup")
    form: dict[str, str | list[str]] = {"email": "eve@dev.example", "password": "long-password"}
    if token is not None:
        form["csrf_token"] = token
    response = await anonymous.post("/portal/signup", form, **headers)
    assert response.status_code == 403
    assert tenant.users.find_by_email("eve@dev.example") is None


async def test_register_web_app_shows_credentials_once(
    new_client: Callable[[], httpx.AsyncClient], tenant: Domain
) -> None:
    """A registered web app is a dynamic third-party client; its secret is shown once and works."""
    pages = await developer(new_client, "ada@dev.example")
    response, client_id = await register(pages, WEB_APP)
    client = tenant.clients.get(client_id)
    assert client.is_dynamic
    assert not client.is_first_party
    assert client.callbacks == ("https://shiny.example/cb",)
    secret = unescape(response.text.split('id="client-secret">', 1)[1].split("</pre>", 1)[0])
    assert tenant.clients.authenticate(client_id, secret) is not None
    detail = await pages.get(f"/portal/apps/{client_id}")
    assert detail.status_code == 200
    assert secret not in detail.text
    home = await pages.get("/portal")
    assert client_id in home.text


@pytest.mark.parametrize(
    ("form", "method", "grants"),
    [
        pytest.param(
            {"name": "Pocket", "kind": "public", "redirect_uris": "com.pocket.app:/cb"},
            "none",
            ("authorization_code", "refresh_token"),
            id="native",
        ),
        pytest.param(
            {"name": "Spa", "kind": "public", "redirect_uris": "http://127.0.0.1:4000/cb"},
            "none",
            ("authorization_code", "refresh_token"),
            id="spa",
        ),
        pytest.param(
            {"name": "Cron", "kind": "m2m", "redirect_uris": ""},
            "client_secret_post",
            ("client_credentials",),
            id="m2m",
        ),
    ],
)
async def test_register_other_kinds(
    new_client: Callable[[], httpx.AsyncClient],
    tenant: Domain,
    form: dict[str, str],
    method: str,
    grants: tuple[str, ...],
) -> None:
    """Public apps get no secret; machine-to-machine apps get client credentials only."""
    pages = await developer(new_client, "ada@dev.example")
    response, client_id = await register(pages, form)
    client = tenant.clients.get(client_id)
    assert (client.token_endpoint_auth_method, client.grant_types) == (method, grants)
    assert ('id="client-secret"' in response.text) is (method != "none")


@pytest.mark.parametrize(
    ("form", "message"),
    [
        pytest.param(WEB_APP | {"redirect_uris": "http://shiny.example/cb"}, "loopback", id="http"),
        pytest.param(
            WEB_APP | {"redirect_uris": "https://shiny.example/#x"}, "fragment", id="frag"
        ),
        pytest.param(WEB_APP | {"redirect_uris": ""}, "redirect_uris are required", id="none"),
        pytest.param(WEB_APP | {"kind": "root"}, "Choose the kind", id="kind"),
        pytest.param(WEB_APP | {"name": ""}, "Give the application a name", id="name"),
    ],
)
async def test_register_errors(
    new_client: Callable[[], httpx.AsyncClient],
    tenant: Domain,
    form: dict[str, str],
    message: str,
) -> None:
    """Bad registration input re-shows the form with the /oidc/register reason."""
    pages = await developer(new_client, "ada@dev.example")
    count = len(tenant.clients.all())
    await pages.get("/portal/apps/new")
    response = await pages.post("/portal/apps", dict(form))
    assert response.status_code == 400
    assert message in response.text
    assert len(tenant.clients.all()) == count


async def test_developers_only_see_and_delete_their_own_apps(
    new_client: Callable[[], httpx.AsyncClient], tenant: Domain
) -> None:
    """Another developer's app (or a seeded one) is 404 to view or delete, and is not listed."""
    ada = await developer(new_client, "ada@dev.example")
    bob = await developer(new_client, "bob@dev.example")
    _, adas = await register(ada, WEB_APP)
    for target in (adas, "calendar-app"):
        view = await bob.get(f"/portal/apps/{target}")
        assert view.status_code == 404
        await bob.get("/portal/apps/new")
        delete = await bob.post(f"/portal/apps/{target}/delete")
        assert delete.status_code == 404
        assert tenant.clients.find(target) is not None
    listing = await bob.get("/portal")
    assert adas not in listing.text
    await ada.get("/portal")
    deleted = await ada.post(f"/portal/apps/{adas}/delete")
    assert deleted.status_code == 303
    assert tenant.clients.find(adas) is None


@pytest.mark.parametrize(
    ("token", "headers"),
    [
        pytest.param("", {}, id="no-token"),
        pytest.param("forged", {}, id="wrong-token"),
        pytest.param(None, {"sec-fetch-site": "cross-site"}, id="cross-site"),
    ],
)
async def test_portal_posts_need_csrf(
    new_client: Callable[[], httpx.AsyncClient],
    tenant: Domain,
    token: str | None,
    headers: dict[str, str],
) -> None:
    """Registering or deleting without the session's CSRF token, or cross-site, is refused."""
    ada = await developer(new_client, "ada@dev.example")
    _, adas = await register(ada, WEB_APP)
    await ada.get("/portal")
    count = len(tenant.clients.all())
    form: dict[str, str | list[str]] = dict(WEB_APP)
    if token is not None:
        form["csrf_token"] = token
    registered = await ada.post("/portal/apps", form, **headers)
    deleted = await ada.post(
        f"/portal/apps/{adas}/delete", {} if token is None else {"csrf_token": token}, **headers
    )
    assert (registered.status_code, deleted.status_code) == (403, 403)
    assert len(tenant.clients.all()) == count


async def test_authorized_apps_are_listed_and_revoked(
    new_client: Callable[[], httpx.AsyncClient], tenant: Domain
) -> None:
    """A user sees the apps they consented to and can revoke their own grants only."""
    mine = tenant.consents.remember("auth0|demo", "calendar-app", ORGANIZER, ["read:tasks"])
    theirs = tenant.consents.remember("auth0|admin", "mytodos-io", ORGANIZER, ["read:tasks"])
    demo = Pages(new_client())
    await demo.sign_in(*DEMO)
    page = await demo.get("/portal/authorized")
    assert "CalendarApp" in page.text
    assert "MyTodos.io" not in page.text
    refused = await demo.post(f"/portal/authorized/{theirs.id}/revoke")
    assert refused.status_code == 404
    revoked = await demo.post(f"/portal/authorized/{mine.id}/revoke")
    assert revoked.status_code == 303
    assert [g.id for g in tenant.consents.all()] == [theirs.id]


async def test_registration_is_rate_limited(
    new_client: Callable[[], httpx.AsyncClient], tenant: Domain
) -> None:
    """A developer registering apps in a burst is told to wait (429 with Retry-After).

    The sign-up and the nine applications after it use up the address's ten creations.
    """
    ada = await developer(new_client, "ada@dev.example")
    for _ in range(9):
        await register(ada, WEB_APP)
    await ada.get("/portal/apps/new")
    response = await ada.post("/portal/apps", dict(WEB_APP))
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0
