"""The Management API under ``/api/v2/``, with Auth0's paths, field names and error shape.

It is an apiguard-protected API: callers present a client-credentials access token for the
audience ``{issuer}api/v2/`` carrying scopes such as ``read:resource_servers``.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp

from apiguard import AsyncValidator
from apiguard.asgi import get_token

from .. import wire
from ..keys import SigningKeyError
from ..rules import Forbidden, NotFound, TenantError, ValidationError
from ..services import Domain
from ..web import parse_json, services
from .guard import REALM, protect, requires_scope
from .management_rbac import rbac_routes

Endpoint = Callable[[Request], Awaitable[Response]]
Shape = Callable[[Any], dict[str, Any]]


def management_error(status: int, message: str, code: str) -> JSONResponse:
    """Auth0's Management API error body: ``statusCode``, ``error``, ``message``, ``errorCode``."""
    return JSONResponse(
        {
            "statusCode": status,
            "error": HTTPStatus(status).phrase,
            "message": message,
            "errorCode": code,
        },
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def caller_scopes(request: Request) -> frozenset[str]:
    """The scopes of the access token the request was validated with."""
    token = get_token(request)
    return token.scopes if token is not None else frozenset()


def _revoked(request: Request) -> bool:
    token = get_token(request)
    jti = token.claims.get("jti") if token is not None else None
    return isinstance(jti, str) and services(request).domain.revocations.is_revoked(jti)


def endpoint(*scopes: str) -> Callable[[Endpoint], Endpoint]:
    """Require *scopes* and turn ``TenantError`` into Auth0-shaped error answers.

    A token revoked at ``/oauth/revoke`` is refused here even though its signature and
    lifetime still pass: this server knows it was revoked (RFC 7009 §2).
    """

    def decorate(func: Endpoint) -> Endpoint:
        @functools.wraps(func)
        async def handle(request: Request) -> Response:
            try:
                return await func(request)
            except TenantError as exc:
                return management_error(exc.status, exc.message, exc.error_code)
            except SigningKeyError as exc:
                return management_error(400, str(exc), "invalid_key")

        scoped = requires_scope(*scopes)(handle)

        @functools.wraps(func)
        async def checked(request: Request) -> Response:
            if _revoked(request):
                return JSONResponse(
                    {"error": "invalid_token", "error_description": "The token was revoked"},
                    status_code=401,
                    headers={
                        "Cache-Control": "no-store",
                        "WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_token", '
                        'error_description="The token was revoked"',
                    },
                )
            return await scoped(request)

        return checked

    return decorate


async def read_json(request: Request) -> dict[str, Any]:
    """The JSON object body of a request (size-capped); a ``ValidationError`` otherwise."""
    body = await request.body()
    if len(body) > services(request).settings.max_body_bytes:
        raise ValidationError("Payload too large")
    try:
        data = parse_json(body)
    except ValueError:
        raise ValidationError("Payload validation error: invalid JSON") from None
    if not isinstance(data, dict):
        raise ValidationError("Payload validation error: expected an object")
    return data


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers={"Cache-Control": "no-store"})


def _require(data: dict[str, Any], *keys: str, allowed: set[str] | None = None) -> None:
    missing = [k for k in keys if k not in data]
    if missing:
        raise ValidationError(f"Payload validation error: missing required property {missing[0]}")
    extra = set(data) - allowed if allowed is not None else set()
    if extra:
        raise ValidationError(f"Payload validation error: unknown property {sorted(extra)[0]}")


# The plain handlers: list every object, read one by ``{id}``, delete one by ``{id}``.


def _lister(scope: str, objects: Callable[[Domain], Iterable[Any]], shape: Shape) -> Endpoint:
    async def handler(request: Request) -> Response:
        return _json([shape(o) for o in objects(services(request).domain)])

    return endpoint(scope)(handler)


def _reader(scope: str, read: Callable[[Domain, str], Any], shape: Shape) -> Endpoint:
    async def handler(request: Request) -> Response:
        return _json(shape(read(services(request).domain, request.path_params["id"])))

    return endpoint(scope)(handler)


def _deleter(scope: str, delete: Callable[[Domain, str], None]) -> Endpoint:
    async def handler(request: Request) -> Response:
        delete(services(request).domain, request.path_params["id"])
        return Response(status_code=204)

    return endpoint(scope)(handler)


# ------------------------------------------------------------ resource servers


def _may_read_secrets(request: Request) -> bool:
    # An HS256 secret lets its holder mint any token for the API: only a caller who could
    # change the API (update:resource_servers) may read it, never a read-only scope.
    return "update:resource_servers" in caller_scopes(request)


list_resource_servers = _lister(  # never secrets
    "read:resource_servers", lambda d: d.apis.all(), wire.api_json
)


@endpoint("read:resource_servers")
async def get_resource_server(request: Request) -> Response:
    """``GET /api/v2/resource-servers/{id}`` (by id or identifier)."""
    api = services(request).domain.apis.get(request.path_params["id"])
    return _json(wire.api_json(api, include_secret=_may_read_secrets(request)))


delete_resource_server = _deleter("delete:resource_servers", lambda d, i: d.apis.delete(i))


@endpoint("create:resource_servers")
async def create_resource_server(request: Request) -> Response:
    """``POST /api/v2/resource-servers``."""
    data = await read_json(request)
    allowed = {
        "name",
        "identifier",
        "signing_alg",
        "token_lifetime",
        "allow_offline_access",
        "skip_consent_for_verifiable_first_party_clients",
        "token_dialect",
        "scopes",
        "access_token_format",
        "introspection_clients",
        "proof_of_possession",
        "enforce_policies",
    }
    _require(data, "identifier", allowed=allowed)
    data.setdefault("name", data["identifier"])
    api = services(request).domain.apis.create(**data)
    return _json(wire.api_json(api, include_secret=True), 201)


@endpoint("update:resource_servers")
async def update_resource_server(request: Request) -> Response:
    """``PATCH /api/v2/resource-servers/{id}``: identifier and signing_alg are immutable."""
    data = await read_json(request)
    api = services(request).domain.apis.update(request.path_params["id"], data)
    return _json(wire.api_json(api, include_secret=True))


# ---------------------------------------------------------------------- clients


list_clients = _lister("read:clients", lambda d: d.clients.all(), wire.client_json)
get_client = _reader("read:clients", lambda d, i: d.clients.get(i), wire.client_json)
delete_client = _deleter("delete:clients", lambda d, i: d.clients.delete(i))


@endpoint("create:clients")
async def create_client(request: Request) -> Response:
    """``POST /api/v2/clients``: the generated ``client_secret`` is in this answer only."""
    data = await read_json(request)
    allowed = {
        "name",
        "description",
        "app_type",
        "is_first_party",
        "callbacks",
        "grant_types",
        "token_endpoint_auth_method",
    }
    _require(data, "name", allowed=allowed)
    client, secret = services(request).domain.clients.create(**data)
    body = wire.client_json(client)
    if secret is not None:
        body["client_secret"] = secret
    return _json(body, 201)


@endpoint("update:clients")
async def update_client(request: Request) -> Response:
    """``PATCH /api/v2/clients/{id}``: not for a client holding scopes the caller lacks."""
    data = await read_json(request)
    domain = services(request).domain
    domain.client_grants.check_may_control(caller_scopes(request), request.path_params["id"])
    client = domain.clients.update(request.path_params["id"], data)
    return _json(wire.client_json(client))


@endpoint("update:clients")
async def rotate_client_secret(request: Request) -> Response:
    """``POST /api/v2/clients/{id}/rotate-secret``: the new secret is shown once.

    The secret of a client is its scopes: a caller may not rotate (and so learn) the secret
    of a client that holds Management API scopes the caller itself does not hold.
    """
    domain = services(request).domain
    domain.client_grants.check_may_control(caller_scopes(request), request.path_params["id"])
    client, secret = domain.clients.rotate_secret(request.path_params["id"])
    return _json(wire.client_json(client) | {"client_secret": secret})


# ---------------------------------------------------------------- client grants


@endpoint("read:client_grants")
async def list_client_grants(request: Request) -> Response:
    """``GET /api/v2/client-grants`` (filters: ``client_id``, ``audience``)."""
    query = request.query_params
    grants = services(request).domain.client_grants.all(
        client_id=query.get("client_id"), audience=query.get("audience")
    )
    return _json([wire.client_grant_json(g) for g in grants])


@endpoint("create:client_grants")
async def create_client_grant(request: Request) -> Response:
    """``POST /api/v2/client-grants``: ``{client_id, audience, scope}``."""
    data = await read_json(request)
    _require(data, "client_id", "audience", "scope")
    if not isinstance(data["client_id"], str) or not isinstance(data["audience"], str):
        raise ValidationError("Payload validation error: client_id and audience are strings")
    if not isinstance(data["scope"], list):
        raise ValidationError("Payload validation error: scope must be a list")
    grants = services(request).domain.client_grants
    try:
        grants.check_may_grant(caller_scopes(request), data["audience"], data["scope"])
        grant = grants.create(data["client_id"], data["audience"], data["scope"])
    except NotFound as exc:
        raise ValidationError(exc.message) from None
    return _json(wire.client_grant_json(grant), 201)


@endpoint("update:client_grants")
async def update_client_grant(request: Request) -> Response:
    """``PATCH /api/v2/client-grants/{id}``: replace ``scope``."""
    data = await read_json(request)
    _require(data, "scope")
    if not isinstance(data["scope"], list) or set(data) - {"scope"}:
        raise ValidationError("Payload validation error: only scope (a list) can be changed")
    grants = services(request).domain.client_grants
    current = grants.get(request.path_params["id"])
    grants.check_may_grant(caller_scopes(request), current.audience, data["scope"])
    grant = grants.update(current.id, data["scope"])
    return _json(wire.client_grant_json(grant))


delete_client_grant = _deleter("delete:client_grants", lambda d, i: d.client_grants.delete(i))


# ------------------------------------------------------------------------ users


list_users = _lister("read:users", lambda d: d.users.all(), wire.user_json)
get_user = _reader("read:users", lambda d, i: d.users.get(i), wire.user_json)
delete_user = _deleter("delete:users", lambda d, i: d.users.delete(i))


@endpoint("create:users")
async def create_user(request: Request) -> Response:
    """``POST /api/v2/users``: ``{email, password, name?, connection?, email_verified?}``.

    Administrator status is never settable here (``app_metadata.is_admin`` answers 403):
    an administrator has the dashboard, which grants every scope.
    """
    data = await read_json(request)
    _require(
        data,
        "email",
        "password",
        allowed={"email", "password", "name", "connection", "email_verified", "app_metadata"},
    )
    connection = data.get("connection", "Username-Password-Authentication")
    if connection != "Username-Password-Authentication":
        raise ValidationError("Only the Username-Password-Authentication connection exists")
    metadata = data.get("app_metadata", {})
    if not isinstance(metadata, dict):
        raise ValidationError("Payload validation error: app_metadata must be an object")
    if "is_admin" in metadata:
        raise Forbidden("Administrator status can only be changed from the command line")
    if set(metadata):
        raise ValidationError("Payload validation error: app_metadata has no such property")
    user = services(request).domain.users.create(
        email=data["email"],
        password=data["password"],
        name=data.get("name"),
        email_verified=data.get("email_verified", False),
    )
    return _json(wire.user_json(user), 201)


@endpoint("update:users")
async def update_user(request: Request) -> Response:
    """``PATCH /api/v2/users/{id}``: name, email, password, ``email_verified``, ``blocked``.

    Blocking a user (``"blocked": true``) ends their sessions and revokes their refresh
    tokens. Administrators and administrator status are for the command line only.
    """
    data = await read_json(request)
    user = services(request).domain.users.update(request.path_params["id"], data)
    return _json(wire.user_json(user))


# ---------------------------------------------------------- user grants (consent)


@endpoint("read:grants")
async def list_grants(request: Request) -> Response:
    """``GET /api/v2/grants`` (filters: ``user_id``, ``client_id``, ``audience``)."""
    query = request.query_params
    grants = services(request).domain.consents.all(
        user_id=query.get("user_id"),
        client_id=query.get("client_id"),
        audience=query.get("audience"),
    )
    return _json([wire.user_grant_json(g) for g in grants])


# Withdrawing a consent also revokes the refresh tokens issued under it.
delete_grant = _deleter("delete:grants", lambda d, i: d.consents.revoke(i))


@endpoint("delete:grants")
async def delete_grants_of_user(request: Request) -> Response:
    """``DELETE /api/v2/grants?user_id=...``: withdraw every consent of a user."""
    user_id = request.query_params.get("user_id")
    if not user_id:
        raise ValidationError("Query validation error: user_id is required")
    consents = services(request).domain.consents
    for grant in consents.all(user_id=user_id):
        consents.revoke(grant.id)
    return Response(status_code=204)


# ----------------------------------------------------------------- signing keys


@endpoint("read:signing_keys")
async def list_signing_keys(request: Request) -> Response:
    """``GET /api/v2/keys/signing``."""
    return _json([wire.signing_key_json(k) for k in services(request).domain.keys.all()])


@endpoint("read:signing_keys")
async def get_signing_key(request: Request) -> Response:
    """``GET /api/v2/keys/signing/{kid}``."""
    try:
        key = services(request).domain.keys.get(request.path_params["kid"])
    except SigningKeyError:
        raise NotFound("The signing key does not exist") from None
    return _json(wire.signing_key_json(key))


@endpoint("create:signing_keys")
async def rotate_signing_key(request: Request) -> Response:
    """``POST /api/v2/keys/signing/rotate``: next becomes current, current becomes previous."""
    key = services(request).domain.keys.rotate()
    return _json({"kid": key.kid, "public_key": wire.signing_key_json(key)["public_key"]}, 201)


@endpoint("update:signing_keys")
async def revoke_signing_key(request: Request) -> Response:
    """``PUT /api/v2/keys/signing/{kid}/revoke``: only the previous key can be revoked."""
    keys = services(request).domain.keys
    try:
        keys.get(request.path_params["kid"])
    except SigningKeyError:
        raise NotFound("The signing key does not exist") from None
    key = keys.revoke(request.path_params["kid"])
    return _json(wire.signing_key_json(key))


ROUTES = [
    Route("/resource-servers", list_resource_servers, methods=["GET"]),
    Route("/resource-servers", create_resource_server, methods=["POST"]),
    Route("/resource-servers/{id:path}", get_resource_server, methods=["GET"]),
    Route("/resource-servers/{id:path}", update_resource_server, methods=["PATCH"]),
    Route("/resource-servers/{id:path}", delete_resource_server, methods=["DELETE"]),
    Route("/clients", list_clients, methods=["GET"]),
    Route("/clients", create_client, methods=["POST"]),
    Route("/clients/{id}/rotate-secret", rotate_client_secret, methods=["POST"]),
    Route("/clients/{id}", get_client, methods=["GET"]),
    Route("/clients/{id}", update_client, methods=["PATCH"]),
    Route("/clients/{id}", delete_client, methods=["DELETE"]),
    Route("/client-grants", list_client_grants, methods=["GET"]),
    Route("/client-grants", create_client_grant, methods=["POST"]),
    Route("/client-grants/{id}", update_client_grant, methods=["PATCH"]),
    Route("/client-grants/{id}", delete_client_grant, methods=["DELETE"]),
    Route("/users", list_users, methods=["GET"]),
    Route("/users", create_user, methods=["POST"]),
    Route("/users/{id}", get_user, methods=["GET"]),
    Route("/users/{id}", update_user, methods=["PATCH"]),
    Route("/users/{id}", delete_user, methods=["DELETE"]),
    Route("/grants", list_grants, methods=["GET"]),
    Route("/grants", delete_grants_of_user, methods=["DELETE"]),
    Route("/grants/{id}", delete_grant, methods=["DELETE"]),
    Route("/keys/signing", list_signing_keys, methods=["GET"]),
    Route("/keys/signing/rotate", rotate_signing_key, methods=["POST"]),
    Route("/keys/signing/{kid}/revoke", revoke_signing_key, methods=["PUT"]),
    Route("/keys/signing/{kid}", get_signing_key, methods=["GET"]),
    *rbac_routes(endpoint, read_json, _require),
]


def management_app(validator: AsyncValidator) -> ASGIApp:
    """The Management API as one ASGI app, every request checked by *validator*."""
    return protect(Router(routes=ROUTES), validator)
