"""A client that knows nothing but an API's URL and finds its own way to a token.

It is what an MCP client (or any well-behaved OAuth client) does, step by step:

1. call the API without a token: the 401 names the protected-resource metadata
   (``resource_metadata``, RFC 9728 §5.1);
2. read that document: the resource identifier and the authorization server (RFC 9728 §3);
3. read the authorization server's metadata (RFC 8414 §3, its ``issuer`` checked);
4. register itself (RFC 7591) as a public client;
5. run authorization code + PKCE through the login and consent pages, naming the API with
   the RFC 8707 ``resource`` parameter at ``/authorize`` and at the token endpoint;
6. call the API with the token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from .browser import Browser, callback_params, pkce_pair

__all__ = ["Discovered", "discover_and_call"]

_RESOURCE_METADATA = re.compile(r'resource_metadata="([^"]+)"')


@dataclass
class Discovered:
    """What the client learnt on its way, and the API's final answer."""

    challenge: str = ""
    metadata_url: str = ""
    resource: str = ""
    authorization_server: str = ""
    scopes: list[str] = field(default_factory=list)
    client_id: str = ""
    granted: str = ""
    status: int = 0
    body: Any = None


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code != 200:
        raise RuntimeError(f"{what} answered {response.status_code}")
    document = response.json()
    if not isinstance(document, dict):
        raise RuntimeError(f"{what} is not a JSON object")
    return document


def _as_metadata_url(issuer: str) -> str:
    # RFC 8414 §3.1: the well-known segment goes between the host and the issuer's path.
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{parts.netloc}/.well-known/oauth-authorization-server{path}"


def discover_and_call(
    url: str,
    *,
    email: str,
    password: str,
    redirect_uri: str = "http://127.0.0.1:8104/callback",
    scopes: list[str] | None = None,
    http: httpx.Client | None = None,
) -> Discovered:
    """Start from ``url`` (a protected API route) alone and end with its answer to a token.

    Args:
        url: the API route to call.
        email, password: the person who signs in (and consents) at the authorization server.
        redirect_uri: the callback to register (nothing needs to listen there: the browser
            stand-in stops at the redirect).
        scopes: the scopes to ask for (default: every scope the metadata lists).
        http: the HTTP client to use.

    Raises:
        RuntimeError: a step answered something the protocol does not allow; the message
            says which.
    """
    client = http or httpx.Client(timeout=10.0)
    found = Discovered()
    try:
        first = client.get(url)
        if first.status_code != 401:
            raise RuntimeError(f"the API answered {first.status_code} without a token")
        found.challenge = first.headers.get("www-authenticate", "")
        match = _RESOURCE_METADATA.search(found.challenge)
        if match is None:
            raise RuntimeError("the 401 names no resource_metadata")
        found.metadata_url = match.group(1)
        metadata = _json(client.get(found.metadata_url), "the protected-resource metadata")
        found.resource = str(metadata.get("resource", ""))
        # RFC 9728 §3.3: the document must be about the resource the client is calling.
        if not found.resource or not url.startswith(found.resource.rstrip("/")):
            raise RuntimeError(f"the metadata is for {found.resource!r}, not for {url}")
        servers = metadata.get("authorization_servers") or []
        if not servers:
            raise RuntimeError("the metadata names no authorization server")
        found.authorization_server = str(servers[0])
        found.scopes = list(scopes if scopes is not None else metadata.get("scopes_supported", []))

        issuer = found.authorization_server
        server = _json(client.get(_as_metadata_url(issuer)), "the authorization server metadata")
        if server.get("issuer") != issuer:
            raise RuntimeError("the authorization server metadata names another issuer")
        if "S256" not in server.get("code_challenge_methods_supported", []):
            raise RuntimeError("the authorization server does not support PKCE with S256")

        registered = client.post(
            server["registration_endpoint"],
            json={
                "client_name": "Discovering client",
                "redirect_uris": [redirect_uri],
                "grant_types": ["authorization_code"],
                "token_endpoint_auth_method": "client_secret_post",
            },
        )
        if registered.status_code != 201:
            raise RuntimeError(f"registration answered {registered.status_code}")
        registration = registered.json()
        found.client_id = registration["client_id"]

        verifier, challenge = pkce_pair()
        with Browser(issuer) as browser:
            callback = browser.authorize(
                {
                    "response_type": "code",
                    "client_id": found.client_id,
                    "redirect_uri": redirect_uri,
                    "scope": " ".join(found.scopes),
                    "resource": found.resource,
                    "state": "discovered",
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                },
                email=email,
                password=password,
            )
        params = callback_params(callback)
        if params.get("state") != "discovered" or "code" not in params:
            raise RuntimeError(f"the authorization ended with {sorted(params)}")
        if params.get("iss", issuer) != issuer:  # RFC 9207
            raise RuntimeError("the authorization response names another issuer")
        answer = client.post(
            server["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "client_id": found.client_id,
                "client_secret": registration.get("client_secret", ""),
                "code": params["code"],
                "code_verifier": verifier,
                "redirect_uri": redirect_uri,
                "resource": found.resource,
            },
        )
        tokens = _json(answer, "the token endpoint")
        found.granted = str(tokens.get("scope", ""))
        final = client.get(url, headers={"Authorization": f"Bearer {tokens['access_token']}"})
        found.status = final.status_code
        found.body = final.json() if "json" in final.headers.get("content-type", "") else None
        return found
    finally:
        if http is None:
            client.close()
