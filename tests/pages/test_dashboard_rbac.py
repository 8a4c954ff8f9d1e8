"""The dashboard's RBAC screens: roles and their permissions, a user's roles, API settings."""

from __future__ import annotations

import pytest

from examples.authz_server.models import ResourceServer
from examples.authz_server.services import Domain

from .support import ORGANIZER, Pages

pytestmark = pytest.mark.anyio


async def test_create_a_role_give_it_a_permission_and_a_user(admin: Pages, tenant: Domain) -> None:
    """A role made on the dashboard holds the permission chosen and reaches the user's page."""
    await admin.get("/dashboard/roles")
    created = await admin.post("/dashboard/roles", {"name": "auditor", "description": "Reads"})
    assert created.status_code == 303
    role_page = created.headers["location"].split("?")[0]
    page = await admin.get(role_page)
    assert "No permissions yet." in page.text
    granted = await admin.post(
        f"{role_page}/permissions", {"permission": f"{ORGANIZER} read:tasks"}
    )
    assert granted.status_code == 303
    page = await admin.get(granted.headers["location"])
    assert "Permission added." in page.text
    assert "<code>read:tasks</code>" in page.text
    role = tenant.rbac.get("auditor")
    await admin.get("/dashboard/users/auth0%7Cdemo")
    assigned = await admin.post("/dashboard/users/auth0%7Cdemo/roles", {"role": role.id})
    assert assigned.status_code == 303
    user_page = await admin.get(assigned.headers["location"])
    assert "Role assigned." in user_page.text
    assert f'href="/dashboard/roles/{role.id}">auditor</a>' in user_page.text
    # read:tasks comes from both the assistant role and the new one.
    assert "assistant, auditor" in user_page.text
    assert [r.name for r in tenant.rbac.roles_of("auth0|demo")] == ["assistant", "auditor"]


async def test_remove_a_role_and_a_permission(admin: Pages, tenant: Domain) -> None:
    """Removing takes the role from the user and the permission from the role."""
    assistant = tenant.rbac.get("assistant")
    await admin.get("/dashboard/users/auth0%7Cdemo")
    removed = await admin.post("/dashboard/users/auth0%7Cdemo/roles/remove", {"role": assistant.id})
    assert removed.status_code == 303
    assert tenant.rbac.roles_of("auth0|demo") == []
    page = await admin.get(removed.headers["location"])
    assert "No permissions." in page.text
    await admin.get(f"/dashboard/roles/{assistant.id}")
    taken = await admin.post(
        f"/dashboard/roles/{assistant.id}/permissions/remove",
        {"permission": f"{ORGANIZER} read:tasks"},
    )
    assert taken.status_code == 303
    assert "read:tasks" not in {p.name for p in tenant.rbac.of_role(assistant.id)}


@pytest.mark.parametrize(
    ("permission", "status"),
    [
        pytest.param(f"{ORGANIZER} fly:planes", 400, id="not-a-scope"),
        pytest.param("https://nowhere.example read:tasks", 404, id="unknown-api"),
        pytest.param("read:tasks", 404, id="no-api"),
    ],
)
async def test_a_permission_that_does_not_exist_is_refused(
    admin: Pages, tenant: Domain, permission: str, status: int
) -> None:
    """A hand-made permission value gets a 4xx page and changes nothing."""
    await admin.get("/dashboard/roles/assistant")
    before = tenant.rbac.of_role("assistant")
    answer = await admin.post("/dashboard/roles/assistant/permissions", {"permission": permission})
    assert answer.status_code == status
    assert tenant.rbac.of_role("assistant") == before


async def test_duplicate_role_name_is_refused(admin: Pages) -> None:
    """A second role with a taken name gets 409."""
    await admin.get("/dashboard/roles")
    answer = await admin.post("/dashboard/roles", {"name": "assistant"})
    assert answer.status_code == 409


async def test_delete_a_role(admin: Pages, tenant: Domain) -> None:
    """The danger zone deletes the role and its assignments."""
    await admin.get("/dashboard/roles/organizer-admin")
    answer = await admin.post("/dashboard/roles/organizer-admin/delete")
    assert answer.status_code == 303
    assert tenant.rbac.find("organizer-admin") is None
    assert "organizer-admin" not in (await admin.get("/dashboard/roles")).text


async def test_api_rbac_settings(admin: Pages, tenant: Domain, organizer: ResourceServer) -> None:
    """The settings tab shows and changes Enable RBAC and Add permissions in the token."""
    path = f"/dashboard/apis/{organizer.id}/settings"
    page = await admin.get(path)
    assert 'name="enforce_policies" checked' in page.text
    assert 'name="permissions_in_token" checked' in page.text
    form = {
        "name": organizer.name,
        "token_lifetime": str(organizer.token_lifetime),
        "access_token_format": "jwt",
    }
    saved = await admin.post(path, form)
    assert saved.status_code == 303
    api = tenant.apis.get(organizer.id)
    assert (api.enforce_policies, api.token_dialect) == (False, "access_token")
    saved = await admin.post(path, form | {"enforce_policies": "on", "permissions_in_token": "on"})
    api = tenant.apis.get(organizer.id)
    assert (api.enforce_policies, api.token_dialect) == (True, "access_token_authz")
