"""The dashboard: access-token format, introspection clients, the Test tab for opaque tokens."""

from __future__ import annotations

import pytest

from examples.authz_server.models import ResourceServer
from examples.authz_server.services import Domain

from .support import Pages

pytestmark = pytest.mark.anyio


async def test_settings_choose_format_and_introspection_clients(
    admin: Pages, tenant: Domain, organizer: ResourceServer
) -> None:
    """The settings tab offers the two formats and the confidential clients, and saves them."""
    path = f"/dashboard/apis/{organizer.id}/settings"
    page = await admin.get(path)
    assert 'name="access_token_format" value="opaque"' in page.text
    assert 'value="organizer-api" aria-describedby="introspection-hint" checked' in page.text
    assert 'value="textapp-io"' not in page.text  # a public client cannot introspect
    response = await admin.post(
        path,
        {
            "name": organizer.name,
            "token_lifetime": "600",
            "access_token_format": "opaque",
            "introspection_clients": ["organizer-api", "world-mappers"],
        },
    )
    assert response.status_code == 303
    api = tenant.apis.get(organizer.id)
    assert api.access_token_format == "opaque"
    assert api.introspection_clients == ("organizer-api", "world-mappers")


async def test_bad_format_is_refused(
    admin: Pages, tenant: Domain, organizer: ResourceServer
) -> None:
    """A forged format or client re-shows the settings with a 400 and changes nothing."""
    path = f"/dashboard/apis/{organizer.id}/settings"
    await admin.get(path)
    for form in (
        {"access_token_format": "paseto"},
        {"access_token_format": "jwt", "introspection_clients": ["textapp-io"]},
    ):
        response = await admin.post(path, {"name": "x", "token_lifetime": "600", **form})
        assert response.status_code == 400
        assert 'role="alert"' in response.text
    assert tenant.apis.get(organizer.id) == organizer


async def test_test_tab_shows_the_introspection_answer(
    admin: Pages, tenant: Domain, organizer: ResourceServer
) -> None:
    """For an opaque API the Test tab shows what introspection answers, not a decoded JWT."""
    tenant.apis.update(organizer.id, {"access_token_format": "opaque"})
    path = f"/dashboard/apis/{organizer.id}/test"
    await admin.get(path)
    response = await admin.post(path, {"client_id": "world-mappers", "url": ""})
    assert response.status_code == 200
    assert 'id="introspection-answer"' in response.text
    assert "&#34;active&#34;: true" in response.text
    assert "&#34;client_id&#34;: &#34;world-mappers&#34;" in response.text
    assert 'id="token-claims"' not in response.text
