"""Discovery documents (OpenID Connect Discovery, RFC 8414) and the JWKS."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..dpop import SIGNING_ALGORITHMS
from ..models import OIDC_SCOPES
from ..settings import Settings
from ..web import services


def metadata(settings: Settings) -> dict[str, Any]:
    """The server's metadata; ``issuer`` is exactly the ``iss`` of every token."""
    url = settings.url
    auth_methods = ["client_secret_basic", "client_secret_post", "none"]
    return {
        "issuer": settings.issuer,
        "authorization_endpoint": url("authorize"),
        "token_endpoint": url("oauth/token"),
        "userinfo_endpoint": url("userinfo"),
        "jwks_uri": url(".well-known/jwks.json"),
        "registration_endpoint": url("oidc/register"),
        "revocation_endpoint": url("oauth/revoke"),
        "introspection_endpoint": url("oauth/introspect"),
        "scopes_supported": list(OIDC_SCOPES),
        "response_types_supported": ["code", "token", "id_token token"],
        "response_modes_supported": ["query", "fragment"],
        "grant_types_supported": [
            "authorization_code",
            "implicit",
            "refresh_token",
            "client_credentials",
            "password",
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        # Introspection needs an authenticated (confidential) client: RFC 7662 §2.1.
        "introspection_endpoint_auth_methods_supported": [m for m in auth_methods if m != "none"],
        "code_challenge_methods_supported": ["S256"],
        # Token requests may carry a DPoP proof signed with one of these (RFC 9449 §5.1).
        "dpop_signing_alg_values_supported": list(SIGNING_ALGORITHMS),
        "claims_supported": [
            "aud",
            "auth_time",
            "email",
            "email_verified",
            "exp",
            "iat",
            "iss",
            "name",
            "nickname",
            "sub",
        ],
        "authorization_response_iss_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }


async def openid_configuration(request: Request) -> Response:
    """``GET /.well-known/openid-configuration`` (and the RFC 8414 twin)."""
    return JSONResponse(
        metadata(services(request).settings), headers={"Cache-Control": "public, max-age=300"}
    )


async def jwks(request: Request) -> Response:
    """``GET /.well-known/jwks.json``: public RSA keys only (current, next, previous)."""
    return JSONResponse(
        services(request).domain.keys.jwks(), headers={"Cache-Control": "public, max-age=60"}
    )


routes: list[BaseRoute] = [
    Route("/.well-known/openid-configuration", openid_configuration, methods=["GET"]),
    Route("/.well-known/oauth-authorization-server", openid_configuration, methods=["GET"]),
    Route("/.well-known/jwks.json", jwks, methods=["GET"]),
]
