"""The dashboard Test tab's probe: send a token to the admin's API and explain the answer.

A plain module (no route, no request): ``check_probe_url`` says why a URL cannot be
probed, ``probe`` sends the token with a bounded GET and returns a ``Verdict`` whose text
explains the API's answer in RFC 6750 terms, ``curl_command`` and ``decode_token`` render
what the tab shows.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt

from apiguard.testing import DPoPKey

PROBE_TIMEOUT = 5.0
PROBE_BODY_LIMIT = 4096


def pretty(data: Any) -> str:
    """Indented JSON for display."""
    return json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False)


@dataclass(frozen=True)
class Verdict:
    """What the admin's API said about the token, explained."""

    ok: bool
    title: str
    explanation: str
    status: int | None = None
    www_authenticate: str | None = None
    body: str | None = None


_AUTH_PARAM = re.compile(r'([A-Za-z_]+)="((?:[^"\\]|\\.)*)"')


def explain(status: int, www_authenticate: str | None, location: str | None) -> Verdict:
    """Explain an API's answer to a request carrying the test token (RFC 6750 §3)."""
    params = dict(_AUTH_PARAM.findall(www_authenticate or ""))
    error = params.get("error")
    description = params.get("error_description", "")
    if 200 <= status < 300:
        return Verdict(
            True,
            "Accepted",
            "The API validated the token and served the request: issuer, audience, "
            "signature and lifetime all check out.",
        )
    if 300 <= status < 400:
        return Verdict(
            False,
            "Redirected",
            f"The API answered with a redirect (to {location or 'somewhere'}); redirects are "
            "not followed. Use the exact URL of a protected route.",
        )
    if status == 401 and error == "invalid_token":
        return Verdict(
            False,
            "Token rejected",
            f"The API says the token is invalid ({description or 'no description'}). Check "
            "that it expects this issuer and this API's identifier as the audience, and "
            "the signing algorithm shown in Settings.",
        )
    if status == 401:
        return Verdict(
            False,
            "No usable token",
            "The API answered 401 without an error code: it did not find a bearer token "
            "in the Authorization header (RFC 6750 §3.1), or does not use bearer tokens.",
        )
    if status == 403 and error == "insufficient_scope":
        needed = params.get("scope")
        return Verdict(
            False,
            "Missing scope",
            "The token is valid but lacks a scope the route needs"
            + (f" ({needed})" if needed else "")
            + ". Grant it to the client on the Machine to Machine Applications tab.",
        )
    if status == 403:
        return Verdict(False, "Forbidden", "The API refused the request (403).")
    if status == 400 and error == "invalid_request":
        return Verdict(
            False,
            "Malformed request",
            f"The API found the request malformed ({description or 'no description'}).",
        )
    if status == 404:
        return Verdict(False, "Not found", "The API has no route at this path (404).")
    if status == 503:
        return Verdict(
            False,
            "API unavailable",
            "The API answered 503: it may be unable to fetch this server's signing keys "
            "(JWKS). Check its issuer setting and that it can reach this server.",
        )
    if status >= 500:
        return Verdict(False, "API error", f"The API failed with a server error ({status}).")
    return Verdict(False, "Refused", f"The API answered {status}.")


def check_probe_url(url: str) -> str | None:
    """Why *url* cannot be probed (``None`` when it is a plain http(s) URL)."""
    if len(url) > 2000 or any(c.isspace() or ord(c) < 32 for c in url):
        return "The URL must be a single http(s) URL without spaces."
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return "The URL is malformed."
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "Only http:// and https:// URLs can be tested."
    if parts.username is not None or parts.password is not None:
        return "The URL must not carry credentials."
    try:
        # What httpx will send: a host that is not a valid IDNA name (``xn--``) fails here.
        httpx.Request("GET", url)
    except (httpx.InvalidURL, UnicodeError):
        return "The URL is malformed."
    return None


def _headers(url: str, token: str, dpop_key: DPoPKey | None) -> dict[str, str]:
    if dpop_key is None:
        return {"Authorization": f"Bearer {token}"}
    return {
        "Authorization": f"DPoP {token}",
        "DPoP": dpop_key.proof("GET", url, access_token=token),
    }


async def probe(
    url: str,
    token: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    dpop_key: DPoPKey | None = None,
) -> Verdict:
    """GET *url* with the token; network failures are explained, never raised.

    *transport* replaces the network (tests hand in an in-process app). With *dpop_key*
    the token goes as ``Authorization: DPoP`` with a fresh proof for *url* (RFC 9449).
    """
    host = urlsplit(url).netloc
    try:
        async with (
            httpx.AsyncClient(
                transport=transport,
                timeout=PROBE_TIMEOUT,
                follow_redirects=False,
                trust_env=False,
            ) as client,
            client.stream("GET", url, headers=_headers(url, token, dpop_key)) as answer,
        ):
            body = b""
            async for chunk in answer.aiter_bytes():
                body += chunk
                if len(body) >= PROBE_BODY_LIMIT:
                    break
    except httpx.TimeoutException:
        return Verdict(
            False,
            "No answer",
            f"{host} did not answer within {PROBE_TIMEOUT:g} seconds.",
        )
    except httpx.ConnectError:
        return Verdict(
            False,
            "Cannot connect",
            f"Could not connect to {host}: is the API running and listening there? "
            "(The request is sent from this authorization server's machine.)",
        )
    except httpx.RemoteProtocolError:
        return Verdict(False, "Not HTTP", f"{host} did not answer with valid HTTP.")
    except httpx.HTTPError as exc:
        return Verdict(False, "Request failed", f"The request failed ({type(exc).__name__}).")
    verdict = explain(
        answer.status_code,
        answer.headers.get("www-authenticate"),
        answer.headers.get("location"),
    )
    return Verdict(
        verdict.ok,
        verdict.title,
        verdict.explanation,
        answer.status_code,
        answer.headers.get("www-authenticate"),
        body[:PROBE_BODY_LIMIT].decode("utf-8", "replace"),
    )


def curl_command(issuer: str, client_id: str, audience: str) -> str:
    """The token request the Test tab runs, as a copyable curl command (secret elided)."""
    data = pretty(
        {
            "client_id": client_id,
            "client_secret": "YOUR_CLIENT_SECRET",
            "audience": audience,
            "grant_type": "client_credentials",
        }
    ).replace("\n", "")
    data = re.sub(r"\s{2,}", " ", data)
    return (
        "curl --request POST \\\n"
        f"  --url {shlex.quote(issuer + 'oauth/token')} \\\n"
        "  --header 'content-type: application/json' \\\n"
        f"  --data {shlex.quote(data)}"
    )


def decode_token(token: str) -> dict[str, str]:
    """The token's header and claims as pretty JSON (it is the admin's own tenant)."""
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {"header": "(not a JWT)", "claims": ""}
    return {"header": pretty(header), "claims": pretty(claims)}
