"""Dashboard: the API Test tab (client credentials in-process, then the probe)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from apiguard.testing import DPoPKey

from ... import introspection
from ... import probe as probing
from ...dpop import client_credentials_with_proof
from ...grants import OAuthError
from ...models import Client, ResourceServer
from ...web import services
from ..pages_common import Viewer, page
from .common import api_of_path, api_page


def _test_clients(request: Request, api: ResourceServer) -> list[Client]:
    domain = services(request).domain
    ids = [g.client_id for g in domain.client_grants.all(audience=api.identifier)]
    return [c for c in (domain.clients.find(i) for i in ids) if c is not None]


def _test_page(
    request: Request,
    viewer: Viewer,
    api: ResourceServer,
    context: dict[str, Any],
    status: int = 200,
) -> Response:
    clients = _test_clients(request, api)
    selected = context.get("client_id") or (clients[0].client_id if clients else None)
    issuer = services(request).settings.issuer
    return api_page(
        request,
        viewer,
        api,
        "test",
        {
            "clients": clients,
            "users": services(request).domain.users.all(),
            "selected": selected,
            "curl": probing.curl_command(issuer, selected, api.identifier) if selected else None,
            **context,
        },
        status_code=status,
    )


@page(admin=True)
async def api_test(request: Request, viewer: Viewer) -> Response:
    """``GET /dashboard/apis/{id}/test``: pick an authorized client and run the exchange."""
    api = api_of_path(request)
    return _test_page(request, viewer, api, {"url": "", "dpop": api.dpop_required})


@page(admin=True)
async def run_test(request: Request, viewer: Viewer) -> Response:
    """``POST /dashboard/apis/{id}/test``: client credentials in-process, then maybe a probe."""
    api = api_of_path(request)
    bundle = services(request)
    client_id = viewer.value("client_id")
    url = viewer.value("url")
    user_id = viewer.value("user_id")
    context: dict[str, Any] = {"client_id": client_id, "url": url, "user_id": user_id}
    client = bundle.domain.clients.find(client_id)
    if client is None or client not in _test_clients(request, api):
        context["error"] = "Pick a client authorized for this API (Machine to Machine tab)."
        return _test_page(request, viewer, api, context | {"client_id": None}, 400)
    if url and (problem := probing.check_probe_url(url)):
        context["error"] = problem
        return _test_page(request, viewer, api, context, 400)
    person = bundle.domain.users.find(user_id) if user_id else None
    if user_id and person is None:
        context["error"] = "Pick a user of this tenant, or nobody."
        return _test_page(request, viewer, api, context | {"user_id": None}, 400)
    # With DPoP the server plays the client: a fresh key, a proof for its own token endpoint.
    dpop_key = DPoPKey() if viewer.value("dpop") == "on" and person is None else None
    context["dpop"] = dpop_key is not None
    if person is not None:
        # As the CLI's mint-token --user: every scope of the API, cut by RBAC.
        try:
            body = bundle.grants.user_token(client, person, {"audience": api.identifier})
            status = 200
        except OAuthError as exc:
            body, status = exc.body(), exc.status
    elif dpop_key is not None:
        body, status, proof = client_credentials_with_proof(
            bundle.dpop, bundle.grants, client, api, dpop_key, bundle.settings.url("oauth/token")
        )
        context["proof"] = probing.decode_token(proof)
    else:
        params = {"grant_type": "client_credentials", "audience": api.identifier}
        try:
            body = bundle.grants.token(client, params)
            status = 200
        except OAuthError as exc:
            body, status = exc.body(), exc.status
    context |= {"response": probing.pretty(body), "response_status": status}
    token = body.get("access_token")
    if isinstance(token, str):
        if api.access_token_format == "opaque":
            # Nothing to decode: show what the API learns at the introspection endpoint.
            claims = introspection.live_claims(bundle.domain, bundle.minter, token)
            answer = introspection.active_answer(claims) if claims else introspection.INACTIVE
            context["introspected"] = probing.pretty(answer)
        else:
            context["decoded"] = probing.decode_token(token)
        if url:
            transport = getattr(request.app.state, "probe_transport", None)
            context["verdict"] = await probing.probe(
                url, token, transport=transport, dpop_key=dpop_key
            )
    return _test_page(request, viewer, api, context)
