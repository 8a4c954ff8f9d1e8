"""The admin dashboard: every page, access control, CSRF, and each screen's behaviour."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Callable
from html import unescape

import httpx
import pytest
from starlette.applications import Starlette

from apiguard import AsyncValidator
from examples.authz_server.models import ResourceServer
from examples.authz_server.probe import explain
from examples.authz_server.services import Domain
from examples.starlette_api.app import create_app as create_organizer_api

from .support import DEMO, ISSUER, ORGANIZER, WORLD_MAPPERS_SECRET, Pages, assert_frame_protected

pytestmark = pytest.mark.anyio

# (path template, text the page must show); {api} is the Organizer API's id.
PAGES = [
    pytest.param("/dashboard/apis", "Organizer API", id="apis"),
    pytest.param("/dashboard/apis/new", "Signing algorithm", id="create-api"),
    pytest.param("/dashboard/apis/{api}/quickstart", "BearerAuthMiddleware", id="quickstart"),
    pytest.param("/dashboard/apis/{api}/settings", "Token expiration", id="settings"),
    pytest.param("/dashboard/apis/{api}/scopes", "Read your appointments", id="scopes"),
    pytest.param("/dashboard/apis/{api}/m2m", "World Mappers", id="m2m"),
    pytest.param("/dashboard/apis/{api}/test", "Run test", id="test"),
    pytest.param("/dashboard/applications", "CalendarApp", id="applications"),
    pytest.param("/dashboard/applications/new", "Machine to Machine", id="create-app"),
    pytest.param("/dashboard/applications/calendar-app", "Allowed callback URLs", id="app"),
    pytest.param("/dashboard/users", "demo@organizer.example", id="users"),
    pytest.param("/dashboard/users/auth0%7Cdemo", "Authorized applications", id="user"),
    pytest.param("/dashboard/keys", "Rotate signing key", id="keys"),
    pytest.param("/dashboard/roles", "organizer-admin", id="roles"),
    pytest.param("/dashboard/roles/assistant", "create:contacts", id="role"),
]

# POST endpoints with the form that would succeed given a valid CSRF token.
POSTS = [
    pytest.param("/dashboard/apis", {"name": "X", "identifier": "https://x.example"}, id="create"),
    pytest.param("/dashboard/apis/{api}/scopes", {"value": "a:b", "description": "d"}, id="scope"),
    pytest.param("/dashboard/apis/{api}/delete", {}, id="delete-api"),
    pytest.param("/dashboard/applications/world-mappers/rotate-secret", {}, id="rotate"),
    pytest.param("/dashboard/applications/world-mappers/delete", {}, id="delete-app"),
    pytest.param("/dashboard/keys/rotate", {}, id="rotate-key"),
    pytest.param("/dashboard/roles", {"name": "auditor"}, id="create-role"),
    pytest.param(
        "/dashboard/roles/assistant/permissions",
        {"permission": f"{ORGANIZER} delete:appointments"},
        id="grant-permission",
    ),
    pytest.param(
        "/dashboard/users/auth0%7Cdemo/roles", {"role": "organizer-admin"}, id="assign-role"
    ),
]


def snapshot(tenant: Domain) -> str:
    """Everything the dashboard can change, to prove a refused POST changed nothing."""
    data = tenant.export()
    data["keys"] = [k.kid for k in tenant.keys.published()]
    return json.dumps(data, sort_keys=True)


@pytest.mark.parametrize(("path", "text"), PAGES)
async def test_admin_sees_every_page(
    admin: Pages, organizer: ResourceServer, path: str, text: str
) -> None:
    """Each dashboard page renders for the admin, framing-protected, with a CSRF-carrying form."""
    response = await admin.get(path.format(api=organizer.id))
    assert response.status_code == 200
    assert text in response.text
    assert_frame_protected(response)
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(("path", "text"), PAGES)
async def test_anonymous_visitor_is_sent_to_login(
    anonymous: Pages, organizer: ResourceServer, path: str, text: str
) -> None:
    """Without a session every dashboard page redirects to the login page, coming back after."""
    target = path.format(api=organizer.id)
    response = await anonymous.get(target)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=/dashboard/")
    assert text not in response.text


@pytest.mark.parametrize(("path", "text"), PAGES)
async def test_non_admin_is_refused(
    new_client: Callable[[], httpx.AsyncClient], organizer: ResourceServer, path: str, text: str
) -> None:
    """A signed-in user without the admin flag gets 403 on every dashboard page."""
    demo = Pages(new_client())
    await demo.sign_in(*DEMO)
    response = await demo.get(path.format(api=organizer.id))
    assert response.status_code == 403
    assert "Administrators only" in response.text
    assert_frame_protected(response)


@pytest.mark.parametrize(("path", "form"), POSTS)
async def test_non_admin_post_changes_nothing(
    new_client: Callable[[], httpx.AsyncClient],
    tenant: Domain,
    organizer: ResourceServer,
    path: str,
    form: dict[str, str],
) -> None:
    """A demo user posting a valid-looking dashboard form (with their own CSRF token) gets 403."""
    demo = Pages(new_client())
    await demo.sign_in(*DEMO)
    await demo.get("/portal/apps/new")  # a page that gives the demo user a CSRF token
    before = snapshot(tenant)
    response = await demo.post(path.format(api=organizer.id), form)
    assert response.status_code == 403
    assert snapshot(tenant) == before


@pytest.mark.parametrize(("path", "form"), POSTS)
@pytest.mark.parametrize(
    ("token", "headers"),
    [
        pytest.param(None, {}, id="no-token"),
        pytest.param("forged", {}, id="wrong-token"),
        pytest.param("page", {"origin": "https://evil.example"}, id="cross-origin"),
        pytest.param("page", {"sec-fetch-site": "cross-site"}, id="cross-site"),
    ],
)
async def test_posts_need_csrf_and_same_origin(
    admin: Pages,
    tenant: Domain,
    organizer: ResourceServer,
    path: str,
    form: dict[str, str],
    token: str | None,
    headers: dict[str, str],
) -> None:
    """A dashboard POST without the session's CSRF token, or from another site, is refused."""
    await admin.get("/dashboard/keys")
    before = snapshot(tenant)
    data: dict[str, str | list[str]] = dict(form)
    if token != "page":
        data["csrf_token"] = token or ""
    response = await admin.post(path.format(api=organizer.id), data, **headers)
    assert response.status_code == 403
    assert snapshot(tenant) == before


async def test_dashboard_root_opens_the_apis(admin: Pages) -> None:
    """/dashboard redirects the admin to the APIs list."""
    response = await admin.get("/dashboard")
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/apis"


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/dashboard/apis/nope/settings", id="api"),
        pytest.param("/dashboard/applications/nope", id="application"),
        pytest.param("/dashboard/users/auth0%7Cnobody", id="user"),
    ],
)
async def test_unknown_objects_get_404_pages(admin: Pages, path: str) -> None:
    """An unknown API, application or user answers a 404 page, not a server error."""
    response = await admin.get(path)
    assert response.status_code == 404
    assert "Not found" in response.text


# ---------------------------------------------------------------------------- APIs


async def test_create_api_then_quick_start(admin: Pages, tenant: Domain) -> None:
    """Creating an API leads to its Quick Start, with Flask and Starlette code for it."""
    await admin.get("/dashboard/apis/new")
    response = await admin.post(
        "/dashboard/apis",
        {
            "name": "Billing API",
            "identifier": "https://billing.example/api",
            "signing_alg": "HS256",
        },
    )
    assert response.status_code == 303
    api = tenant.apis.get("https://billing.example/api")
    assert (api.name, api.signing_alg) == ("Billing API", "HS256")
    assert response.headers["location"] == f"/dashboard/apis/{api.id}/quickstart?done=created"
    page = await admin.get(response.headers["location"])
    assert page.status_code == 200
    assert "Created." in page.text
    code = unescape(page.text)
    assert f'app.config["APIGUARD_ISSUER"] = "{ISSUER}"' in code
    assert 'app.config["APIGUARD_AUDIENCE"] = "https://billing.example/api"' in code
    assert 'audience="https://billing.example/api",' in code
    assert 'app.config["APIGUARD_ALGORITHMS"] = ["HS256"]' in code
    assert "shared_secret=os.environ" in code
    assert api.signing_secret is not None
    assert api.signing_secret not in page.text


@pytest.mark.parametrize(
    ("identifier", "alg", "status", "message"),
    [
        pytest.param(ORGANIZER, "RS256", 409, "already exists", id="duplicate"),
        pytest.param("organizer", "RS256", 400, "must be a URI", id="not-a-uri"),
        pytest.param("https://a.example/x y", "RS256", 400, "must be a URI", id="space"),
        pytest.param("", "RS256", 400, "must be a URI", id="empty"),
        pytest.param("https://b.example", "none", 400, "Choose RS256 or HS256", id="bad-alg"),
    ],
)
async def test_create_api_errors_are_explained(
    admin: Pages, tenant: Domain, identifier: str, alg: str, status: int, message: str
) -> None:
    """A duplicate or malformed identifier, or an unknown algorithm, re-shows the form with why."""
    await admin.get("/dashboard/apis/new")
    count = len(tenant.apis.all())
    response = await admin.post(
        "/dashboard/apis", {"name": "Dup", "identifier": identifier, "signing_alg": alg}
    )
    assert response.status_code == status
    assert message in response.text
    assert 'role="alert"' in response.text
    assert 'name="identifier"' in response.text
    assert len(tenant.apis.all()) == count


async def test_settings_are_saved_and_identifier_stays(
    admin: Pages, tenant: Domain, organizer: ResourceServer
) -> None:
    """Settings change lifetime, offline access and consent skipping; identifier is read-only."""
    path = f"/dashboard/apis/{organizer.id}/settings"
    await admin.get(path)
    response = await admin.post(
        path,
        {"name": "Organizer", "token_lifetime": "3600", "identifier": "https://other.example"},
    )
    assert response.status_code == 303
    api = tenant.apis.get(organizer.id)
    assert (api.name, api.token_lifetime, api.identifier) == ("Organizer", 3600, ORGANIZER)
    assert api.allow_offline_access is False
    assert api.skip_consent_for_verifiable_first_party_clients is False
    page = await admin.get(response.headers["location"])
    assert "Changes saved." in page.text
    assert "read-only" in page.text


@pytest.mark.parametrize(
    ("lifetime", "message"),
    [
        pytest.param("soon", "whole number of seconds", id="not-a-number"),
        pytest.param("10", "from 60 to 2592000", id="too-short"),
    ],
)
async def test_bad_settings_are_refused(
    admin: Pages, tenant: Domain, organizer: ResourceServer, lifetime: str, message: str
) -> None:
    """An unusable token expiration re-shows the settings with a 400 and the reason."""
    path = f"/dashboard/apis/{organizer.id}/settings"
    await admin.get(path)
    response = await admin.post(path, {"name": "Organizer API", "token_lifetime": lifetime})
    assert response.status_code == 400
    assert message in response.text
    assert tenant.apis.get(organizer.id).token_lifetime == organizer.token_lifetime


async def test_management_api_cannot_be_edited(admin: Pages, tenant: Domain) -> None:
    """The system API shows no settings form, and a forged settings POST is a 400."""
    management = tenant.apis.get(f"{ISSUER}api/v2/")
    path = f"/dashboard/apis/{management.id}/settings"
    page = await admin.get(path)
    assert "system API" in page.text
    assert 'name="token_lifetime"' not in page.text
    await admin.get("/dashboard/keys")
    response = await admin.post(path, {"name": "Mine", "token_lifetime": "60"})
    assert response.status_code == 400
    assert tenant.apis.get(management.id).name == "Management API"


async def test_scopes_are_added_and_removed(
    admin: Pages, tenant: Domain, organizer: ResourceServer
) -> None:
    """Adding a scope shows it with its description; removing it also trims client grants."""
    path = f"/dashboard/apis/{organizer.id}/scopes"
    await admin.get(path)
    added = await admin.post(path, {"value": "delete:tasks", "description": "Delete your tasks"})
    assert added.status_code == 303
    page = await admin.get(added.headers["location"])
    assert "Scope added." in page.text
    assert "Delete your tasks" in page.text
    removed = await admin.post(f"{path}/remove", {"value": "read:contacts"})
    assert removed.status_code == 303
    assert "read:contacts" not in tenant.apis.get(organizer.id).scope_values
    grant = tenant.client_grants.find("world-mappers", ORGANIZER)
    assert grant is not None
    assert grant.scope == ("read:appointments",)


@pytest.mark.parametrize(
    ("value", "description", "message"),
    [
        pytest.param("has space", "Something", "without spaces", id="space"),
        pytest.param("", "Something", "without spaces", id="empty"),
        pytest.param("read:x", "", "Describe the scope", id="no-description"),
    ],
)
async def test_bad_scopes_are_refused(
    admin: Pages,
    tenant: Domain,
    organizer: ResourceServer,
    value: str,
    description: str,
    message: str,
) -> None:
    """A malformed or undescribed scope is refused with a 400 and the reason."""
    path = f"/dashboard/apis/{organizer.id}/scopes"
    await admin.get(path)
    response = await admin.post(path, {"value": value, "description": description})
    assert response.status_code == 400
    assert message in response.text
    assert tenant.apis.get(organizer.id).scopes == organizer.scopes


async def test_removing_an_unknown_scope_is_404(admin: Pages, organizer: ResourceServer) -> None:
    """Removing a scope the API does not define answers 404."""
    path = f"/dashboard/apis/{organizer.id}/scopes"
    await admin.get(path)
    response = await admin.post(f"{path}/remove", {"value": "nope"})
    assert response.status_code == 404


async def test_m2m_authorize_update_unauthorize(
    admin: Pages, tenant: Domain, organizer: ResourceServer
) -> None:
    """The M2M tab creates a client grant with a scope subset, changes it, and removes it."""
    tenant.clients.update(
        "organizer-web", {"grant_types": ["authorization_code", "client_credentials"]}
    )
    path = f"/dashboard/apis/{organizer.id}/m2m"
    page = await admin.get(path)
    assert "Organizer Web" in page.text
    form: dict[str, str | list[str]] = {"client_id": "organizer-web", "action": "save"}
    created = await admin.post(path, form | {"scope": ["read:tasks", "create:tasks"]})
    assert created.status_code == 303
    grant = tenant.client_grants.find("organizer-web", ORGANIZER)
    assert grant is not None
    assert grant.scope == ("read:tasks", "create:tasks")
    updated = await admin.post(path, form | {"scope": ["read:tasks"]})
    assert updated.status_code == 303
    assert tenant.client_grants.get(grant.id).scope == ("read:tasks",)
    gone = await admin.post(path, {"client_id": "organizer-web", "action": "unauthorize"})
    assert gone.status_code == 303
    assert tenant.client_grants.find("organizer-web", ORGANIZER) is None


@pytest.mark.parametrize(
    ("form", "status"),
    [
        pytest.param(
            {"client_id": "world-mappers", "action": "save", "scope": "nope"},
            400,
            id="unknown-scope",
        ),
        pytest.param({"client_id": "textapp-io", "action": "save"}, 400, id="public-client"),
        pytest.param({"client_id": "world-mappers", "action": "explode"}, 400, id="bad-action"),
        pytest.param({"client_id": "nobody", "action": "save"}, 404, id="unknown-client"),
        pytest.param({"client_id": "calendar-app", "action": "unauthorize"}, 404, id="no-grant"),
    ],
)
async def test_m2m_refusals(
    admin: Pages, tenant: Domain, organizer: ResourceServer, form: dict[str, str], status: int
) -> None:
    """Undefined scopes, public clients, unknown clients or actions are refused without change."""
    path = f"/dashboard/apis/{organizer.id}/m2m"
    await admin.get(path)
    before = snapshot(tenant)
    response = await admin.post(path, dict(form))
    assert response.status_code == status
    assert snapshot(tenant) == before


# ------------------------------------------------------------------------ Test tab


async def test_test_tab_runs_client_credentials(admin: Pages, organizer: ResourceServer) -> None:
    """The Test tab gets a token in-process and shows the curl, response and decoded claims."""
    path = f"/dashboard/apis/{organizer.id}/test"
    page = await admin.get(path)
    assert "curl --request POST" in page.text
    response = await admin.post(path, {"client_id": "world-mappers", "url": ""})
    assert response.status_code == 200
    assert "HTTP 200" in response.text
    assert "access_token" in response.text
    assert "&#34;gty&#34;: &#34;client-credentials&#34;" in response.text
    assert f"&#34;aud&#34;: &#34;{ORGANIZER}&#34;" in response.text
    assert "&#34;kid&#34;" in response.text
    assert "YOUR_CLIENT_SECRET" in response.text
    assert WORLD_MAPPERS_SECRET not in response.text
    assert 'id="verdict"' not in response.text


async def test_test_tab_shows_token_endpoint_errors(
    admin: Pages, tenant: Domain, organizer: ResourceServer
) -> None:
    """When the client may not use the grant, the tab shows the token endpoint's error answer."""
    tenant.clients.update("world-mappers", {"grant_types": []})
    path = f"/dashboard/apis/{organizer.id}/test"
    await admin.get(path)
    response = await admin.post(path, {"client_id": "world-mappers"})
    assert response.status_code == 200
    assert "HTTP 400" in response.text
    assert "unauthorized_client" in response.text
    assert "Decoded token" not in response.text


@pytest.mark.parametrize(
    ("client_id", "url", "message"),
    [
        pytest.param("calendar-app", "", "Pick a client authorized", id="not-authorized"),
        pytest.param("nobody", "", "Pick a client authorized", id="unknown"),
        pytest.param("world-mappers", "ftp://api.example/x", "Only http", id="ftp"),
        pytest.param("world-mappers", "javascript:alert(1)", "Only http", id="javascript"),
        pytest.param("world-mappers", "http://", "Only http", id="no-host"),
        pytest.param("world-mappers", "http://a b/", "without spaces", id="space"),
        pytest.param("world-mappers", "http://u:p@api.example/", "credentials", id="userinfo"),
        pytest.param("world-mappers", "http://api.example:99999/", "malformed", id="port"),
    ],
)
async def test_test_tab_refuses_bad_input(
    admin: Pages, organizer: ResourceServer, client_id: str, url: str, message: str
) -> None:
    """An unauthorized client or a non-http(s) URL re-shows the Test tab with a 400 and why."""
    path = f"/dashboard/apis/{organizer.id}/test"
    await admin.get(path)
    response = await admin.post(path, {"client_id": client_id, "url": url})
    assert response.status_code == 400
    assert message in response.text
    assert "access_token" not in response.text


@pytest.fixture
async def organizer_api(app: Starlette) -> AsyncIterator[Starlette]:
    """The Starlette example API, validating against the in-process server's JWKS."""
    keys = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER)
    validator = AsyncValidator(issuer=ISSUER, audience=ORGANIZER, http_client=keys)
    yield create_organizer_api(validator=validator)
    await validator.aclose()
    await keys.aclose()


@pytest.mark.parametrize(
    ("url", "title", "status", "challenge"),
    [
        pytest.param("http://api.test/api/appointments", "Accepted", 200, None, id="accepted"),
        pytest.param(
            "http://api.test/api/tasks", "Missing scope", 403, "insufficient_scope", id="scope"
        ),
        pytest.param("http://api.test/nowhere", "Not found", 404, None, id="not-found"),
    ],
)
async def test_test_tab_sends_the_token_to_the_api(
    admin: Pages,
    app: Starlette,
    organizer: ResourceServer,
    organizer_api: Starlette,
    url: str,
    title: str,
    status: int,
    challenge: str | None,
) -> None:
    """The token is sent to the admin's apiguard-protected API and its verdict is explained."""
    app.state.probe_transport = httpx.ASGITransport(app=organizer_api)
    path = f"/dashboard/apis/{organizer.id}/test"
    await admin.get(path)
    response = await admin.post(path, {"client_id": "world-mappers", "url": url})
    assert response.status_code == 200
    assert f"<strong>{title}</strong> &mdash; HTTP {status}" in response.text
    if challenge:
        assert f"error=&#34;{challenge}&#34;" in response.text
    else:
        assert "WWW-Authenticate:" not in response.text


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def raise_timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("slow", request=request)


def raise_protocol_error(request: httpx.Request) -> httpx.Response:
    raise httpx.RemoteProtocolError("garbage", request=request)


@pytest.mark.parametrize(
    ("transport", "title"),
    [
        pytest.param(None, "Cannot connect", id="refused"),
        pytest.param(httpx.MockTransport(raise_timeout), "No answer", id="timeout"),
        pytest.param(httpx.MockTransport(raise_protocol_error), "Not HTTP", id="not-http"),
    ],
)
async def test_network_errors_are_explained(
    admin: Pages,
    app: Starlette,
    organizer: ResourceServer,
    transport: httpx.AsyncBaseTransport | None,
    title: str,
) -> None:
    """A refused connection, a timeout or a non-HTTP answer is explained on the page (no 500)."""
    if transport is not None:
        app.state.probe_transport = transport
    path = f"/dashboard/apis/{organizer.id}/test"
    await admin.get(path)
    url = f"http://127.0.0.1:{closed_port()}/api/private"
    response = await admin.post(path, {"client_id": "world-mappers", "url": url})
    assert response.status_code == 200
    assert f"<strong>{title}</strong>" in response.text
    assert "access_token" in response.text


@pytest.mark.parametrize(
    ("status", "challenge", "title"),
    [
        pytest.param(204, None, "Accepted", id="2xx"),
        pytest.param(302, None, "Redirected", id="redirect"),
        pytest.param(401, 'Bearer realm="api"', "No usable token", id="bare-401"),
        pytest.param(
            401,
            'Bearer error="invalid_token", error_description="expired"',
            "Token rejected",
            id="invalid-token",
        ),
        pytest.param(
            403, 'Bearer error="insufficient_scope", scope="x"', "Missing scope", id="scope"
        ),
        pytest.param(403, None, "Forbidden", id="bare-403"),
        pytest.param(400, 'Bearer error="invalid_request"', "Malformed request", id="400"),
        pytest.param(503, None, "API unavailable", id="503"),
        pytest.param(500, None, "API error", id="500"),
        pytest.param(418, None, "Refused", id="other"),
    ],
)
def test_verdicts_follow_rfc_6750(status: int, challenge: str | None, title: str) -> None:
    """Each kind of answer from the admin's API maps to its own explanation."""
    verdict = explain(status, challenge, None)
    assert verdict.title == title
    assert verdict.ok is (status < 300)


# ------------------------------------------------------------------- applications


async def test_create_application_shows_the_secret_once(admin: Pages, tenant: Domain) -> None:
    """A new confidential application's secret is shown on creation only, and it works."""
    await admin.get("/dashboard/applications/new")
    response = await admin.post(
        "/dashboard/applications",
        {"name": "Reporter", "app_type": "non_interactive", "first_party": "on"},
    )
    assert response.status_code == 201
    client = next(c for c in tenant.clients.all() if c.name == "Reporter")
    assert client.grant_types == ("client_credentials",)
    assert client.is_first_party
    secret = response.text.split('class="wrap">', 1)[1].split("</pre>", 1)[0]
    assert tenant.clients.authenticate(client.client_id, secret) is not None
    later = await admin.get(f"/dashboard/applications/{client.client_id}")
    assert secret not in later.text
    listing = await admin.get("/dashboard/applications")
    assert "Reporter" in listing.text


@pytest.mark.parametrize(
    ("app_type", "first_party", "callbacks", "expected"),
    [
        pytest.param("spa", "", "https://spa.example/cb", ("none", False), id="spa-third-party"),
        pytest.param("native", "on", "com.example.app:/cb", ("none", True), id="native"),
        pytest.param(
            "regular_web", "on", "https://web.example/cb", ("client_secret_post", True), id="web"
        ),
    ],
)
async def test_application_types(
    admin: Pages,
    tenant: Domain,
    app_type: str,
    first_party: str,
    callbacks: str,
    expected: tuple[str, bool],
) -> None:
    """Each application type gets its authentication method; the party flag is kept."""
    await admin.get("/dashboard/applications/new")
    form = {"name": f"App {app_type}", "app_type": app_type, "callbacks": callbacks}
    if first_party:
        form["first_party"] = first_party
    response = await admin.post("/dashboard/applications", form)
    assert response.status_code == 201
    client = next(c for c in tenant.clients.all() if c.name == f"App {app_type}")
    assert (client.token_endpoint_auth_method, client.is_first_party) == expected
    assert client.callbacks == (callbacks,)
    assert ("Client secret &mdash;" in response.text) is (expected[0] != "none")


@pytest.mark.parametrize(
    ("form", "message"),
    [
        pytest.param({"name": "X", "app_type": "robot"}, "Choose an application type", id="type"),
        pytest.param({"name": "", "app_type": "spa"}, "name must be", id="no-name"),
        pytest.param(
            {"name": "X", "app_type": "spa", "callbacks": "http://evil.example/cb"},
            "loopback",
            id="http-callback",
        ),
        pytest.param({"name": "X", "app_type": "spa"}, "at least one callback", id="no-callback"),
    ],
)
async def test_create_application_errors(
    admin: Pages, tenant: Domain, form: dict[str, str], message: str
) -> None:
    """Invalid application input re-shows the form with a 400 and the reason."""
    await admin.get("/dashboard/applications/new")
    count = len(tenant.clients.all())
    response = await admin.post("/dashboard/applications", dict(form))
    assert response.status_code == 400
    assert message in response.text
    assert len(tenant.clients.all()) == count


async def test_application_settings_are_saved(admin: Pages, tenant: Domain) -> None:
    """Callbacks, grant types and the party flag of an application can be changed."""
    path = "/dashboard/applications/calendar-app"
    await admin.get(path)
    response = await admin.post(
        path,
        {
            "name": "CalendarApp 2",
            "description": "New",
            "callbacks": "https://calendarapp.example/callback\r\nhttps://calendarapp.example/cb2",
            "grant_types": ["authorization_code"],
        },
    )
    assert response.status_code == 303
    client = tenant.clients.get("calendar-app")
    assert client.name == "CalendarApp 2"
    assert client.callbacks == (
        "https://calendarapp.example/callback",
        "https://calendarapp.example/cb2",
    )
    assert client.grant_types == ("authorization_code",)
    assert client.is_first_party is False


async def test_inconsistent_application_settings_are_refused(admin: Pages, tenant: Domain) -> None:
    """A public client cannot be given the client-credentials grant: 400 with the reason."""
    path = "/dashboard/applications/textapp-io"
    await admin.get(path)
    response = await admin.post(
        path,
        {
            "name": "TextApp.io",
            "callbacks": "http://127.0.0.1/callback",
            "grant_types": ["authorization_code", "client_credentials"],
        },
    )
    assert response.status_code == 400
    assert "public clients cannot use the client_credentials grant" in response.text
    assert tenant.clients.get("textapp-io").grant_types == ("authorization_code", "refresh_token")


async def test_rotating_the_secret_shows_the_new_one(admin: Pages, tenant: Domain) -> None:
    """Rotation shows a new secret once; the old secret stops working."""
    await admin.get("/dashboard/applications/world-mappers")
    response = await admin.post("/dashboard/applications/world-mappers/rotate-secret")
    assert response.status_code == 200
    secret = response.text.split('class="wrap">', 1)[1].split("</pre>", 1)[0]
    assert tenant.clients.authenticate("world-mappers", secret) is not None
    assert tenant.clients.authenticate("world-mappers", WORLD_MAPPERS_SECRET) is None


async def test_public_clients_have_no_secret_to_rotate(admin: Pages) -> None:
    """Rotating a public client's secret is a 400, and its page offers no rotate button."""
    page = await admin.get("/dashboard/applications/textapp-io")
    assert "Rotate secret" not in page.text
    response = await admin.post("/dashboard/applications/textapp-io/rotate-secret")
    assert response.status_code == 400


async def test_delete_application(admin: Pages, tenant: Domain) -> None:
    """Deleting an application removes it and its client grants."""
    await admin.get("/dashboard/applications/world-mappers")
    response = await admin.post("/dashboard/applications/world-mappers/delete")
    assert response.status_code == 303
    assert tenant.clients.find("world-mappers") is None
    assert tenant.client_grants.all(client_id="world-mappers") == []


# -------------------------------------------------------------------------- users


async def test_user_grants_are_listed_and_revoked(admin: Pages, tenant: Domain) -> None:
    """A user's remembered consents are listed on their page and can be revoked."""
    grant = tenant.consents.remember("auth0|demo", "calendar-app", ORGANIZER, ["read:tasks"])
    users = await admin.get("/dashboard/users")
    assert "Demo User" in users.text
    path = "/dashboard/users/auth0%7Cdemo"
    page = await admin.get(path)
    assert "CalendarApp" in page.text
    assert "read:tasks" in page.text
    response = await admin.post(f"{path}/grants/{grant.id}/revoke")
    assert response.status_code == 303
    assert response.headers["location"] == f"{path}?done=revoked"
    assert tenant.consents.all(user_id="auth0|demo") == []


async def test_grant_of_another_user_is_404(admin: Pages, tenant: Domain) -> None:
    """Revoking through the wrong user's page answers 404 and keeps the grant."""
    grant = tenant.consents.remember("auth0|demo", "calendar-app", ORGANIZER, ["read:tasks"])
    await admin.get("/dashboard/keys")
    response = await admin.post(f"/dashboard/users/auth0%7Cadmin/grants/{grant.id}/revoke")
    assert response.status_code == 404
    assert len(tenant.consents.all(user_id="auth0|demo")) == 1


# ------------------------------------------------------------------- signing keys


async def test_keys_rotate_and_revoke(admin: Pages, tenant: Domain) -> None:
    """Rotation makes next current and current previous; the previous key can be revoked."""
    before = {k.status: k.kid for k in tenant.keys.published()}
    page = await admin.get("/dashboard/keys")
    assert before["current"] in page.text
    assert before["next"] in page.text
    rotated = await admin.post("/dashboard/keys/rotate")
    assert rotated.status_code == 303
    after = {k.status: k.kid for k in tenant.keys.published()}
    assert after["current"] == before["next"]
    assert after["previous"] == before["current"]
    page = await admin.get(rotated.headers["location"])
    assert "Signing key rotated" in page.text
    revoked = await admin.post(f"/dashboard/keys/{after['previous']}/revoke")
    assert revoked.status_code == 303
    assert tenant.keys.get(after["previous"]).status == "revoked"


@pytest.mark.parametrize(
    ("which", "status"),
    [pytest.param("current", 400, id="current"), pytest.param("missing", 400, id="unknown")],
)
async def test_only_the_previous_key_can_be_revoked(
    admin: Pages, tenant: Domain, which: str, status: int
) -> None:
    """Revoking the current key or an unknown kid is refused with a 4xx page."""
    kid = tenant.keys.current().kid if which == "current" else "no-such-kid"
    await admin.get("/dashboard/keys")
    response = await admin.post(f"/dashboard/keys/{kid}/revoke")
    assert response.status_code == status
    assert tenant.keys.current().status == "current"
