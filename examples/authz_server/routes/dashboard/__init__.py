"""The tenant admin's dashboard at ``/dashboard``: APIs, applications, users, roles, keys.

Server-rendered pages on top of the domain services (the same ones the Management API
and the CLI use), one module per area. Every page needs an admin session; every form
carries the session's CSRF token. The API Test tab runs the client-credentials grant
in-process, through the very object ``/oauth/token`` uses, and can send the token to a
URL of the admin's API (``probe.py``).
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from .apis import (
    add_scope,
    api_home,
    api_m2m,
    api_quickstart,
    api_scopes,
    api_settings,
    apis,
    create_api,
    delete_api,
    home,
    new_api,
    remove_scope,
    save_api_settings,
    save_m2m,
)
from .applications import (
    application,
    applications,
    create_application,
    delete_application,
    new_application,
    rotate_secret,
    save_application,
)
from .roles import (
    assign_role,
    create_role,
    delete_role,
    grant_role,
    revoke_role,
    role,
    roles,
    unassign_role,
)
from .test_tab import api_test, run_test
from .users import authorized_apps, keys, revoke_key, revoke_user_grant, rotate_key, user, users

API = "/dashboard/apis/{api_id}"
APP = "/dashboard/applications/{client_id}"
USER = "/dashboard/users/{user_id}"
ROLE = "/dashboard/roles/{role_id}"
routes: list[BaseRoute] = [
    Route("/dashboard", home, methods=["GET"]),
    Route("/dashboard/apis", apis, methods=["GET"]),
    Route("/dashboard/apis", create_api, methods=["POST"]),
    Route("/dashboard/apis/new", new_api, methods=["GET"]),
    Route(API, api_home, methods=["GET"]),
    Route(f"{API}/quickstart", api_quickstart, methods=["GET"]),
    Route(f"{API}/settings", api_settings, methods=["GET"]),
    Route(f"{API}/settings", save_api_settings, methods=["POST"]),
    Route(f"{API}/delete", delete_api, methods=["POST"]),
    Route(f"{API}/scopes", api_scopes, methods=["GET"]),
    Route(f"{API}/scopes", add_scope, methods=["POST"]),
    Route(f"{API}/scopes/remove", remove_scope, methods=["POST"]),
    Route(f"{API}/m2m", api_m2m, methods=["GET"]),
    Route(f"{API}/m2m", save_m2m, methods=["POST"]),
    Route(f"{API}/test", api_test, methods=["GET"]),
    Route(f"{API}/test", run_test, methods=["POST"]),
    Route("/dashboard/applications", applications, methods=["GET"]),
    Route("/dashboard/applications", create_application, methods=["POST"]),
    Route("/dashboard/applications/new", new_application, methods=["GET"]),
    Route(APP, application, methods=["GET"]),
    Route(APP, save_application, methods=["POST"]),
    Route(f"{APP}/rotate-secret", rotate_secret, methods=["POST"]),
    Route(f"{APP}/delete", delete_application, methods=["POST"]),
    Route("/dashboard/users", users, methods=["GET"]),
    Route("/dashboard/users/{user_id}", user, methods=["GET"]),
    Route(f"{USER}/grants/{{grant_id}}/revoke", revoke_user_grant, methods=["POST"]),
    Route(f"{USER}/roles", assign_role, methods=["POST"]),
    Route(f"{USER}/roles/remove", unassign_role, methods=["POST"]),
    Route("/dashboard/roles", roles, methods=["GET"]),
    Route("/dashboard/roles", create_role, methods=["POST"]),
    Route(ROLE, role, methods=["GET"]),
    Route(f"{ROLE}/permissions", grant_role, methods=["POST"]),
    Route(f"{ROLE}/permissions/remove", revoke_role, methods=["POST"]),
    Route(f"{ROLE}/delete", delete_role, methods=["POST"]),
    Route("/dashboard/keys", keys, methods=["GET"]),
    Route("/dashboard/keys/rotate", rotate_key, methods=["POST"]),
    Route("/dashboard/keys/{kid}/revoke", revoke_key, methods=["POST"]),
]


__all__ = ["authorized_apps", "routes"]
