"""The dashboard's DPoP pieces: "Require DPoP" per API and the Test tab's DPoP exchange."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from apiguard import AsyncValidator
from examples.authz_server.models import ResourceServer
from examples.authz_server.services import Domain
from examples.starlette_api.app import create_app as create_organizer_api

from .support import ISSUER, ORGANIZER, Pages

pytestmark = pytest.mark.anyio


async def test_require_dpop_is_saved_from_the_settings(
    admin: Pages, tenant: Domain, organizer: ResourceServer
) -> None:
    """The checkbox sets proof_of_possession.required; saving without it clears it."""
    path = f"/dashboard/apis/{organizer.id}/settings"
    page = await admin.get(path)
    assert 'name="dpop_required"' in page.text
    form = {"name": organizer.name, "token_lifetime": "3600", "dpop_required": "on"}
    assert (await admin.post(path, form)).status_code == 303
    assert tenant.apis.get(organizer.id).dpop_required
    assert 'dpop_required" checked' in (await admin.get(path)).text
    await admin.post(path, {"name": organizer.name, "token_lifetime": "3600"})
    assert not tenant.apis.get(organizer.id).dpop_required


async def test_the_test_tab_runs_a_dpop_exchange(admin: Pages, organizer: ResourceServer) -> None:
    """With DPoP on, the proof is shown and the token is bound to its key (token_type DPoP)."""
    path = f"/dashboard/apis/{organizer.id}/test"
    await admin.get(path)
    response = await admin.post(path, {"client_id": "world-mappers", "url": "", "dpop": "on"})
    assert response.status_code == 200
    assert "HTTP 200" in response.text
    assert 'id="proof-header"' in response.text
    assert "&#34;typ&#34;: &#34;dpop+jwt&#34;" in response.text
    assert "&#34;token_type&#34;: &#34;DPoP&#34;" in response.text
    assert "&#34;cnf&#34;" in response.text


async def test_the_test_tab_defaults_to_dpop_when_the_api_requires_it(
    admin: Pages, tenant: Domain, organizer: ResourceServer
) -> None:
    """An API that requires DPoP has the box ticked, and refuses the plain exchange."""
    tenant.apis.update(ORGANIZER, {"proof_of_possession": {"mechanism": "dpop", "required": True}})
    path = f"/dashboard/apis/{organizer.id}/test"
    page = await admin.get(path)
    assert 'name="dpop" checked' in page.text
    plain = await admin.post(path, {"client_id": "world-mappers", "url": ""})
    assert "HTTP 400" in plain.text
    assert "This API requires a DPoP proof" in plain.text


@pytest.fixture
async def dpop_api(app: Starlette) -> AsyncIterator[Starlette]:
    """The Starlette example API requiring DPoP, validating against the in-process server."""
    keys = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER)
    validator = AsyncValidator(issuer=ISSUER, audience=ORGANIZER, http_client=keys, dpop="required")
    yield create_organizer_api(validator=validator)
    await validator.aclose()
    await keys.aclose()


async def test_the_test_tab_calls_the_api_with_a_proof(
    admin: Pages, app: Starlette, organizer: ResourceServer, dpop_api: Starlette
) -> None:
    """The DPoP token and a fresh proof for the URL are accepted by an API requiring DPoP."""
    app.state.probe_transport = httpx.ASGITransport(app=dpop_api)
    path = f"/dashboard/apis/{organizer.id}/test"
    await admin.get(path)
    url = "http://api.test/api/appointments"
    accepted = await admin.post(path, {"client_id": "world-mappers", "url": url, "dpop": "on"})
    assert "Accepted" in accepted.text, accepted.text
    bearer = await admin.post(path, {"client_id": "world-mappers", "url": url})
    assert "Accepted" not in bearer.text
    assert "DPoP" in bearer.text
