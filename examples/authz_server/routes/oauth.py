"""Back-channel OAuth endpoints: token, revocation, introspection, userinfo, registration."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .. import introspection, wire
from ..grants import OAuthError
from ..models import Client
from ..rules import RegistrationError
from ..tokens import user_claims
from ..web import NO_STORE, Services, client_ip, json_response, parse_json, services

MAX_PARAMS = 50


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


#: What may come in the token request's query string: browser tools (Swagger UI's
#: ``additionalQueryStringParams``) repeat the authorization request's ``audience`` there.
QUERY_TARGETS = frozenset({"audience", "resource"})


async def read_params(request: Request, *, query_targets: bool = False) -> dict[str, str]:
    """The request body as parameters: form-encoded, or JSON (as Auth0 also accepts).

    Parameters in the query string, repeated parameters and non-string values are refused
    (RFC 6749 §3.2: parameters go in the body and must not repeat). With ``query_targets``,
    ``audience`` and ``resource`` (never secrets) may also come in the query; a value
    given in both places must be the same.
    """
    params = await _body_params(request)
    if not request.url.query:
        return params
    try:
        pairs = parse_qsl(request.url.query, keep_blank_values=True, max_num_fields=MAX_PARAMS)
        query = _no_duplicates(pairs)
    except (_Duplicate, ValueError):
        raise OAuthError("invalid_request", "A parameter was repeated") from None
    if not query_targets or not set(query) <= QUERY_TARGETS:
        raise OAuthError("invalid_request", "Parameters must be sent in the request body")
    for name, value in query.items():
        if params.setdefault(name, value) != value:
            raise OAuthError("invalid_request", f"{name} differs in the query and the body")
    return params


async def _body_params(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    try:
        text = body.decode("utf-8")
        if content_type == "application/x-www-form-urlencoded":
            pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_PARAMS)
            return _no_duplicates(pairs)
        if content_type == "application/json":
            data = parse_json(text, object_pairs_hook=_no_duplicates)
            if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
                raise OAuthError("invalid_request", "The body must be an object of strings")
            return data
    except _Duplicate:
        raise OAuthError("invalid_request", "A parameter was repeated") from None
    except (UnicodeDecodeError, ValueError):
        raise OAuthError("invalid_request", "The request body is malformed") from None
    raise OAuthError(
        "invalid_request",
        "The body must be application/x-www-form-urlencoded or application/json",
    )


def _basic_credentials(header: str) -> tuple[str, str]:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise ValueError("not Basic")
    decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id:
        raise ValueError("no colon")
    # RFC 6749 Appendix B: both parts are form-urlencoded before base64.
    return unquote_plus(client_id), unquote_plus(secret)


def authenticate_client(bundle: Services, request: Request, params: Mapping[str, str]) -> Client:
    """Identify and authenticate the client, enforcing its registered auth method.

    One method per request; a public client must not send a secret; failures count
    against the caller's address and answer 429 once it is over its limit.
    """
    header = request.headers.get("authorization")
    used_basic = header is not None
    challenge = {"WWW-Authenticate": 'Basic realm="oauth"'} if used_basic else {}
    limiter = bundle.token_failure_limiter
    ip = client_ip(request)
    wait = limiter.retry_after(ip)
    if wait:
        raise OAuthError(
            "too_many_attempts",
            "Too many failed client authentications; try again later",
            429,
            {"Retry-After": str(wait)},
        )

    def failure(description: str = "Client authentication failed") -> OAuthError:
        limiter.hit(ip)
        return OAuthError("invalid_client", description, 401, challenge)

    secret: str | None
    if header is not None:
        try:
            client_id, secret = _basic_credentials(header)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise failure("Client authentication needs a well-formed Basic header") from None
        if "client_secret" in params:
            raise OAuthError("invalid_request", "Use only one client authentication method")
        if params.get("client_id", client_id) != client_id:
            raise OAuthError("invalid_request", "client_id does not match the Basic credentials")
        method = "client_secret_basic"
    else:
        client_id = params.get("client_id", "")
        secret = params.get("client_secret")
        method = "none" if secret is None else "client_secret_post"
        if not client_id:
            raise failure("Client authentication is required")
    clients = bundle.domain.clients
    client = clients.find(client_id)
    if client is None or not client.is_confidential:
        clients.verify(None, secret or "")  # same work as a real check
        if client is None:
            raise failure()
        if method != "none":
            raise failure("Public clients must not send a client secret")
        return client
    if method != client.token_endpoint_auth_method:
        raise failure("The client must use its registered authentication method")
    assert secret is not None
    if clients.verify(client, secret) is None:
        raise failure()
    return client


def error_response(exc: OAuthError) -> Response:
    """The RFC 6749 §5.2 JSON error answer."""
    return json_response(exc.body(), exc.status, exc.headers)


#: What a browser app may send to the token endpoint from another origin.
CORS_HEADERS = "Content-Type, X-Requested-With, DPoP"


def cors_origin(client: Client, origin: str | None) -> str | None:
    """``origin`` if a browser app of ``client`` may read the token endpoint's answer.

    A browser app (Swagger UI, an SPA) exchanges its code from its own origin: the origin of
    one of the client's callbacks, any port for a loopback IP callback (RFC 8252 §7.3), as
    Auth0 allows a client's origins. No cookies are involved (no credentials mode).
    """
    if not origin:
        return None
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
        return None
    for callback in client.callbacks:
        allowed = urlsplit(callback)
        if allowed.scheme != parts.scheme or allowed.hostname != parts.hostname:
            continue
        loopback_ip = allowed.hostname in ("127.0.0.1", "::1") and allowed.port is None
        if allowed.port == port or loopback_ip:
            return origin
    return None


def token_preflight(request: Request) -> Response:
    """The CORS preflight of ``POST /oauth/token``: allowed from any origin, no credentials.

    Whether the answer itself may be read is decided per client (:func:`cors_origin`).
    """
    origin = request.headers.get("origin")
    if not origin or "access-control-request-method" not in request.headers:
        return json_response(
            {"error": "invalid_request", "error_description": "Use POST"}, 405, {"Allow": "POST"}
        )
    return Response(
        status_code=204,
        headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": CORS_HEADERS,
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        },
    )


def with_preflight(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """Answer a CORS preflight (``OPTIONS``) with :func:`token_preflight`, the rest as usual."""

    async def endpoint(request: Request) -> Response:
        if request.method == "OPTIONS":
            return token_preflight(request)
        return await handler(request)

    return endpoint


async def token(request: Request) -> Response:
    """``POST /oauth/token``."""
    bundle = services(request)
    authenticated: list[Client] = []
    try:
        params = await read_params(request, query_targets=True)
        # Client authentication and the grant (the signature, the password grant's scrypt,
        # the store) run in a worker thread: signing releases the GIL, so it overlaps the
        # event loop reading the next requests.
        body = await run_in_threadpool(_issue, bundle, request, params, authenticated)
    except OAuthError as exc:
        return _with_cors(error_response(exc), authenticated, request)
    return _with_cors(json_response(body), authenticated, request)


def _issue(
    bundle: Services, request: Request, params: Mapping[str, str], authenticated: list[Client]
) -> dict[str, Any]:
    """Authenticate the client (kept in *authenticated* for CORS) and run its grant."""
    client = authenticate_client(bundle, request, params)
    authenticated.append(client)
    password = params.get("grant_type") == "password"
    key = f"ip:{client_ip(request)}"
    if password and (wait := bundle.login_limiter.retry_after(key)):
        raise OAuthError("too_many_attempts", "Too many attempts", 429, {"Retry-After": str(wait)})
    # RFC 9449 §5: a proof binds the tokens to the client's key; checked (and its jti
    # spent) before any grant is redeemed, so a bad proof never burns a code.
    jkt = bundle.dpop.check(request.headers.getlist("dpop"))
    try:
        return bundle.grants.token(client, params, jkt=jkt)
    except OAuthError as exc:
        if password and exc.error == "invalid_grant":
            bundle.login_limiter.hit(key)
        raise


def _with_cors(response: Response, authenticated: list[Client], request: Request) -> Response:
    origin = cors_origin(authenticated[0], request.headers.get("origin")) if authenticated else None
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        # A browser client reads the nonce it is asked to use (RFC 9449 §8).
        response.headers["Access-Control-Expose-Headers"] = "DPoP-Nonce"
    if "origin" in request.headers:
        response.headers["Vary"] = "Origin"
    return response


async def revoke(request: Request) -> Response:
    """``POST /oauth/revoke`` (RFC 7009) for refresh and access tokens."""
    bundle = services(request)
    try:
        params = await read_params(request)
        client = authenticate_client(bundle, request, params)
        token_value = params.get("token")
        if not token_value:
            raise OAuthError("invalid_request", "Missing required parameter: token")
        bundle.grants.revoke(client, token_value)
    except OAuthError as exc:
        return error_response(exc)
    return Response(status_code=200, headers={"Cache-Control": "no-store"})


async def introspect(request: Request) -> Response:
    """``POST /oauth/introspect`` (RFC 7662): what a token is, for the APIs allowed to ask.

    The caller authenticates as a confidential client; it learns about a token only if it
    may introspect the tokens of the token's API, and gets ``{"active": false}`` otherwise.
    """
    bundle = services(request)
    try:
        params = await read_params(request)
        client = authenticate_client(bundle, request, params)
        if not client.is_confidential:
            raise OAuthError("invalid_client", "Introspection needs client authentication", 401)
        token_value = params.get("token")
        if not token_value:
            raise OAuthError("invalid_request", "Missing required parameter: token")
    except OAuthError as exc:
        return error_response(exc)
    answer = introspection.introspect(bundle.domain, bundle.minter, client, token_value)
    return json_response(answer)


def _bearer_error(description: str, status: int = 401, error: str = "invalid_token") -> Response:
    header = f'Bearer realm="userinfo", error="{error}", error_description="{description}"'
    return json_response(
        {"error": error, "error_description": description},
        status,
        {"WWW-Authenticate": header},
    )


async def userinfo(request: Request) -> Response:
    """``GET``/``POST /userinfo``: the user's claims for an access token with ``openid``.

    Without credentials (no ``Authorization`` header, or another scheme) the answer is a
    401 with a bare ``Bearer`` challenge and no error code (RFC 6750 §3.1).
    """
    bundle = services(request)
    header = request.headers.get("authorization", "")
    scheme, _, token_value = header.partition(" ")
    if scheme.lower() != "bearer":
        return Response(
            status_code=401,
            headers={**NO_STORE, "WWW-Authenticate": 'Bearer realm="userinfo"'},
        )
    token_value = token_value.strip()
    if not token_value or " " in token_value:
        return _bearer_error("The Authorization header is malformed", 400, "invalid_request")
    claims = introspection.live_claims(bundle.domain, bundle.minter, token_value, allow_hs256=False)
    if claims is None or bundle.minter.userinfo_url not in introspection.audiences(claims):
        return _bearer_error("The access token is invalid")
    scopes = str(claims.get("scope", "")).split()
    if "openid" not in scopes:
        return _bearer_error("The openid scope is required", 403, "insufficient_scope")
    user = bundle.domain.users.find(str(claims.get("sub")))
    if user is None or user.blocked:
        return _bearer_error("The access token is invalid")
    return json_response({"sub": user.user_id, **user_claims(user, scopes)})


def registration_limited(bundle: Services, request: Request) -> int:
    """Count one creation of a client or an account; seconds to wait when over the limit.

    One budget per client IP for every way to create either (``/oidc/register``, portal
    sign-ups and portal applications), so no path sidesteps another's limit.
    """
    return bundle.registration_limiter.hit(f"create:{client_ip(request)}")


async def register(request: Request) -> Response:
    """``POST /oidc/register`` (RFC 7591): open registration of third-party clients."""
    bundle = services(request)
    wait = registration_limited(bundle, request)
    if wait:
        return json_response(
            {"error": "too_many_requests", "error_description": "Too many registrations"},
            429,
            {"Retry-After": str(wait)},
        )
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return json_response(
            {"error": "invalid_client_metadata", "error_description": "The body must be JSON"},
            400,
        )
    try:
        metadata = parse_json(await request.body())
    except ValueError:
        metadata = None
    if not isinstance(metadata, dict):
        return json_response(
            {"error": "invalid_client_metadata", "error_description": "Malformed JSON object"},
            400,
        )
    try:
        registration = bundle.domain.clients.register(metadata, dynamic=True)
    except RegistrationError as exc:
        return json_response({"error": exc.error, "error_description": exc.message}, 400)
    return json_response(wire.registration_json(registration), 201)


def post_only(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """Answer other methods with a JSON 405 that is not cached (the endpoint is POST only)."""

    async def endpoint(request: Request) -> Response:
        if request.method != "POST":
            return json_response(
                {"error": "invalid_request", "error_description": "Use POST"},
                405,
                {"Allow": "POST"},
            )
        return await handler(request)

    return endpoint


ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE"]

routes: list[BaseRoute] = [
    Route("/oauth/token", with_preflight(post_only(token)), methods=[*ANY_METHOD, "OPTIONS"]),
    Route("/oauth/revoke", post_only(revoke), methods=ANY_METHOD),
    Route("/oauth/introspect", post_only(introspect), methods=ANY_METHOD),
    Route("/userinfo", userinfo, methods=["GET", "POST"]),
    Route("/oidc/register", register, methods=["POST"]),
]
