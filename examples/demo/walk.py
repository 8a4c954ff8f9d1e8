"""The quick start, step by step: get tokens through every flow and call the Organizer APIs.

Each step prints a short transcript and records every API call (:class:`Call`), so the
end-to-end tests can run the same walk and check that the APIs answered identically.
Tokens are never printed: only what they grant.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from apiguard.testing import DPoPAuth, DPoPKey

from .browser import Browser, callback_params, pkce_pair
from .mcp_client import ToolCall, call_tools
from .servers import ROOT

ORGANIZER = "https://organizer.example/api"
BILLING = "https://billing.example/api"
DEMO_USER = ("demo@organizer.example", "organizer-demo-password")
WORLD_MAPPERS = ("world-mappers", "world-mappers-dev-secret")
CALENDAR_APP = ("calendar-app", "calendar-app-dev-secret", "http://127.0.0.1:8101/callback")
ORGANIZER_WEB = ("organizer-web", "organizer-web-dev-secret")
SPA = ("organizer-spa", "http://127.0.0.1:3000/callback")
WEB_CALLBACK = "http://127.0.0.1:5050/callback"
MULTI_FACTOR = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"
ROLES_CLAIM = "https://organizer.example/roles"


@dataclass(frozen=True)
class Call:
    """One request to an example API and what it answered."""

    step: str
    api: str
    method: str
    path: str
    status: int
    challenge: str | None
    body: Any = None


@dataclass
class Walk:
    """Walks the quick start against a running authorization server and APIs.

    Args:
        issuer: the authorization server's issuer URL (ends with ``/``).
        apis: name -> base URL of each Organizer API (e.g. Flask and Starlette).
        db: the authorization server's store, for the admin CLI step.
        out: where the transcript goes.
        mcp: the MCP server's endpoint URL, for the MCP step (skipped when None).
        server_log: the authorization server's log, where it writes the one-time codes of
            a second factor (the step-up step is skipped when None).
    """

    issuer: str
    apis: dict[str, str]
    db: str
    out: Callable[[str], None] = print
    mcp: str | None = None
    server_log: Path | None = None
    calls: list[Call] = field(default_factory=list)
    _step: str = ""

    def __post_init__(self) -> None:
        self.http = httpx.Client(timeout=10.0)

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()

    # -- helpers -------------------------------------------------------------------------

    def heading(self, title: str) -> None:
        """Start a step of the transcript."""
        self._step = title
        self.out(f"\n== {title}")

    def token(self, what: str, data: dict[str, str], *, expect: int = 200) -> dict[str, Any]:
        """POST to /oauth/token and summarise the answer (never the token itself)."""
        response = self.http.post(urljoin(self.issuer, "oauth/token"), data=data)
        body = response.json()
        if response.status_code != expect:
            raise RuntimeError(f"{what}: /oauth/token answered {response.status_code}: {body}")
        if response.status_code == 200:
            claims = _claims(body["access_token"])
            self.out(
                f"   {what}: 200, a token for {claims.get('sub')} "
                f'with scope "{claims.get("scope", "")}" (expires in {body["expires_in"]} s'
                + (", with a refresh token)" if "refresh_token" in body else ")")
            )
        else:
            self.out(f"   {what}: {response.status_code} {body.get('error')}")
        result: dict[str, Any] = body
        return result

    def call(
        self,
        token: str | None,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: Callable[[str], dict[str, str]] | None = None,
        auth: httpx.Auth | None = None,
    ) -> list[Call]:
        """Call ``path`` on every API with ``token``; print and record each answer.

        ``headers`` gives the headers for an API's URL instead (DPoP steps), ``auth`` an
        httpx authentication to use.
        """
        made = []
        for name, base in self.apis.items():
            if headers is not None:
                sent = headers(base + path)
            else:
                sent = {"Authorization": f"Bearer {token}"} if token else {}
            response = self.http.request(
                method,
                base + path,
                headers=sent,
                json=json_body,
                auth=auth or httpx.USE_CLIENT_DEFAULT,
            )
            challenge = response.headers.get("www-authenticate")
            body = response.json() if "json" in response.headers.get("content-type", "") else None
            call = Call(self._step, name, method, path, response.status_code, challenge, body)
            made.append(call)
            self.calls.append(call)
            line = f"   {name:<10} {method:<4} {path:<18} {response.status_code}"
            if challenge:
                line += f"  WWW-Authenticate: {challenge}"
            self.out(line)
        return made

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the authorization server's admin CLI on the demo's store."""
        return admin_cli(self.db, *args)

    def sign_in(self, params: dict[str, str]) -> dict[str, str]:
        """Let the demo user sign in and consent in a fresh browser; return the callback."""
        with Browser(self.issuer) as browser:
            callback = browser.authorize(
                params,
                email=DEMO_USER[0],
                password=DEMO_USER[1],
                one_time_code=self.one_time_code,
            )
            consent = "asked for consent" if browser.consent_shown else "consent remembered"
        result = callback_params(callback)
        self.out(f"   signed in as {DEMO_USER[0]}, {consent}: back at the callback")
        return result

    # -- the steps ------------------------------------------------------------------------

    def run(self) -> list[Call]:
        """Every step in order; returns the recorded calls."""
        self.client_credentials()
        refresh = self.authorization_code()
        self.refresh_rotation(refresh)
        self.implicit()
        self.password()
        self.dynamic_registration()
        self.wrong_api()
        self.dpop()
        if self.mcp is not None:
            self.mcp_tools(self.mcp)
        self.roles()
        if self.server_log is not None:
            self.step_up()
        return self.calls

    def client_credentials(self) -> None:
        """World Mappers, a machine, gets a token with its client grant's scopes."""
        self.heading("1. World Mappers (machine to machine): client credentials")
        body = self.token("client_credentials", world_mappers_grant(ORGANIZER))
        token = body["access_token"]
        self.call(None, "GET", "/api/public")
        self.call(None, "GET", "/api/private")
        self.call(token, "GET", "/api/private")
        self.call(token, "GET", "/api/appointments")
        self.call(token, "GET", "/api/contacts")
        self.call(token, "GET", "/api/tasks")
        self.call(token, "POST", "/api/appointments", json_body=_APPOINTMENT)
        self.call("not-a-token", "GET", "/api/private")

    def authorization_code(self) -> str:
        """CalendarApp, a third-party web app, runs authorization code + PKCE for a user."""
        self.heading("2. CalendarApp (third party): authorization code + PKCE, login and consent")
        client_id, secret, redirect_uri = CALENDAR_APP
        verifier, challenge = pkce_pair()
        callback = self.sign_in(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "scope": "openid offline_access read:appointments create:appointments",
                "audience": ORGANIZER,
                "state": "calendar-state",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        if callback.get("state") != "calendar-state" or "code" not in callback:
            raise RuntimeError(f"unexpected callback: {sorted(callback)}")
        body = self.token(
            "authorization_code",
            code_grant(client_id, secret, callback["code"], verifier, redirect_uri),
        )
        token = body["access_token"]
        self.call(token, "GET", "/api/appointments")
        self.call(token, "POST", "/api/appointments", json_body=_APPOINTMENT)
        self.call(token, "GET", "/api/contacts")
        refresh: str = body["refresh_token"]
        return refresh

    def refresh_rotation(self, refresh_token: str) -> None:
        """A refresh rotates the refresh token; replaying the old one revokes the family."""
        self.heading("3. CalendarApp: refresh with rotation and reuse detection")
        client_id, secret, _ = CALENDAR_APP
        data = {"grant_type": "refresh_token", "client_id": client_id, "client_secret": secret}
        fresh = self.token("refresh", {**data, "refresh_token": refresh_token})
        self.call(fresh["access_token"], "GET", "/api/appointments")
        self.token(
            "replay the old refresh token", {**data, "refresh_token": refresh_token}, expect=400
        )
        self.token(
            "the rotated one, after the replay",
            {**data, "refresh_token": fresh["refresh_token"]},
            expect=400,
        )

    def implicit(self) -> None:
        """The first-party SPA gets a token in the redirect's fragment (implicit, dev only)."""
        self.heading("4. Organizer SPA (first party): implicit flow")
        client_id, redirect_uri = SPA
        callback = self.sign_in(
            {
                "response_type": "token",
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "scope": "read:tasks",
                "audience": ORGANIZER,
                "state": "spa-state",
            }
        )
        token = callback["access_token"]
        self.out(f'   token in the fragment, scope "{_claims(token).get("scope")}"')
        self.call(token, "GET", "/api/tasks")

    def password(self) -> None:
        """The trusted first-party app exchanges the user's password (dev only)."""
        self.heading("5. Organizer Web (trusted first party): resource owner password")
        client_id, secret = ORGANIZER_WEB
        body = self.token(
            "password",
            {
                "grant_type": "password",
                "client_id": client_id,
                "client_secret": secret,
                "username": DEMO_USER[0],
                "password": DEMO_USER[1],
                "audience": ORGANIZER,
                "scope": "read:contacts read:tasks",
            },
        )
        self.call(body["access_token"], "GET", "/api/contacts")
        self.call(body["access_token"], "GET", "/api/appointments")

    def dynamic_registration(self) -> None:
        """A new third-party app registers itself (RFC 7591), then asks the user."""
        self.heading("6. A dynamically registered client (RFC 7591), then code + PKCE")
        redirect_uri = "http://127.0.0.1:8103/callback"
        response = self.http.post(
            urljoin(self.issuer, "oidc/register"),
            json={
                "client_name": "Demo Planner",
                "redirect_uris": [redirect_uri],
                "grant_types": ["authorization_code"],
                "token_endpoint_auth_method": "client_secret_post",
            },
        )
        if response.status_code != 201:
            raise RuntimeError(f"/oidc/register answered {response.status_code}")
        client = response.json()
        self.out(f"   registered: 201, client_id {client['client_id']} (secret shown once)")
        verifier, challenge = pkce_pair()
        callback = self.sign_in(
            {
                "response_type": "code",
                "client_id": client["client_id"],
                "redirect_uri": redirect_uri,
                "scope": "read:tasks",
                "audience": ORGANIZER,
                "state": "planner",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        body = self.token(
            "authorization_code",
            code_grant(
                client["client_id"],
                client["client_secret"],
                callback["code"],
                verifier,
                redirect_uri,
            ),
        )
        self.call(body["access_token"], "GET", "/api/tasks")

    def wrong_api(self) -> None:
        """A valid token for another API (another audience) is refused."""
        self.heading("7. A token for another API is refused (wrong audience)")
        created = self.cli("create-api", "--name", "Billing API", "--identifier", BILLING)
        if created.returncode == 0:
            self.cli("add-scope", BILLING, "read:invoices", "Read invoices")
            self.cli("authorize-client", WORLD_MAPPERS[0], BILLING, "read:invoices")
            self.out("   admin CLI: created the Billing API and authorized World Mappers for it")
        body = self.token("client_credentials for the Billing API", world_mappers_grant(BILLING))
        self.call(body["access_token"], "GET", "/api/private")

    def dpop(self) -> None:
        """A DPoP-bound token (RFC 9449): useless without its key, each proof good once."""
        self.heading("8. World Mappers with DPoP: a token bound to the client's key")
        key = DPoPKey()
        token_url = urljoin(self.issuer, "oauth/token")
        response = self.http.post(
            token_url,
            data=world_mappers_grant(ORGANIZER),
            headers={"DPoP": key.proof("POST", token_url)},
        )
        body = response.json()
        if response.status_code != 200:
            raise RuntimeError(f"DPoP token request: {response.status_code}: {body}")
        token = body["access_token"]
        self.out(
            f"   client_credentials with a DPoP proof: 200, token_type {body['token_type']}, "
            f"bound to key {_claims(token)['cnf']['jkt'][:12]}..."
        )
        self.out("   with a fresh proof for each request (the testing kit's DPoPAuth):")
        self.call(None, "GET", "/api/appointments", auth=DPoPAuth(key, token))
        self.out("   the same token stolen and sent as a Bearer token:")
        self.call(token, "GET", "/api/appointments")
        self.out("   with a proof made for another URL:")
        self.call(
            None,
            "GET",
            "/api/appointments",
            headers=lambda url: {
                "Authorization": f"DPoP {token}",
                "DPoP": key.proof(
                    "GET", url.replace("/api/appointments", "/api/private"), access_token=token
                ),
            },
        )
        self.out("   with a proof captured from an earlier request (replayed):")
        captured: dict[str, str] = {}

        def replayed(url: str) -> dict[str, str]:
            if url not in captured:
                captured[url] = key.proof("GET", url, access_token=token)
                self.http.get(
                    url, headers={"Authorization": f"DPoP {token}", "DPoP": captured[url]}
                )
            return {"Authorization": f"DPoP {token}", "DPoP": captured[url]}

        self.call(None, "GET", "/api/appointments", headers=replayed)

    def mcp_tools(self, url: str) -> list[ToolCall]:
        """An MCP client finds the server's metadata, then uses the tools its token allows."""
        self.heading("9. An MCP client: the Organizer tools over streamable HTTP")
        response = self.http.post(url, json={})
        challenge = response.headers.get("www-authenticate", "")
        self.out(f"   without a token: {response.status_code}  WWW-Authenticate: {challenge}")
        metadata_url = challenge.partition('resource_metadata="')[2].partition('"')[0]
        metadata = self.http.get(urljoin(url, urlsplit(metadata_url).path)).json()
        self.out(
            f"   its metadata: resource {metadata['resource']}, authorization servers "
            f"{' '.join(metadata['authorization_servers'])}, scopes "
            f"{' '.join(metadata.get('scopes_supported', []))}"
        )
        token = self.token("client_credentials", world_mappers_grant(ORGANIZER))["access_token"]
        tools, results = call_tools(
            url,
            token,
            [("list_appointments", {}), ("create_appointment", dict(_APPOINTMENT))],
        )
        self.out(f"   tools listed: {', '.join(tools)}")
        for result in results:
            verdict = f"refused: {result.text}" if result.is_error else "ok"
            self.out(f"   call {result.name}: {verdict}")
        return results

    def roles(self) -> None:
        """Deleting needs delete:appointments and the organizer-admin role (Auth0-style RBAC)."""
        self.heading("10. Roles: deleting an appointment needs the organizer-admin role")
        client_id, secret = ORGANIZER_WEB
        request = {
            "grant_type": "password",
            "client_id": client_id,
            "client_secret": secret,
            "username": DEMO_USER[0],
            "password": DEMO_USER[1],
            "audience": ORGANIZER,
            "scope": "read:appointments delete:appointments",
        }
        body = self.token("password, asking for delete:appointments", request)
        self._roles_line(body["access_token"])
        self.call(body["access_token"], "DELETE", "/api/appointments/2")
        given = self.cli("assign-role", DEMO_USER[0], "organizer-admin")
        if given.returncode != 0:
            raise RuntimeError(f"assign-role failed: {given.stderr.strip()}")
        self.out(f"   admin CLI: gave {DEMO_USER[0]} the organizer-admin role")
        try:
            body = self.token("password, again", request)
            self._roles_line(body["access_token"])
            self.call(body["access_token"], "DELETE", "/api/appointments/2")
        finally:
            # The walk can run again on the same store and show the refusal again.
            self.cli("assign-role", DEMO_USER[0], "organizer-admin", "--remove")

    def _roles_line(self, token: str) -> None:
        claims = _claims(token)
        self.out(
            f"   roles {claims.get(ROLES_CLAIM)}, permissions include delete:appointments: "
            f"{'delete:appointments' in claims.get('permissions', [])}"
        )

    def step_up(self) -> None:
        """The security page needs a multi-factor sign-in within 10 minutes (RFC 9470)."""
        self.heading("11. Step-up: the security page needs a recent second factor")
        token = self._web_sign_in({})
        self.out(f"   signed in with a password: acr {_claims(token).get('acr')}")
        refused = self.call(token, "GET", "/api/security")
        challenge = refused[0].challenge or ""
        asked = {
            name: challenge.partition(f'{name}="')[2].partition('"')[0]
            for name in ("acr_values", "max_age")
        }
        # The client sends the user back with what the challenge asked for.
        token = self._web_sign_in(asked)
        self.out(
            f"   signed in again with a one-time code from the log: acr {_claims(token)['acr']}"
        )
        self.call(token, "GET", "/api/security")

    def _web_sign_in(self, extra: dict[str, str]) -> str:
        client_id, secret = ORGANIZER_WEB
        verifier, challenge = pkce_pair()
        callback = self.sign_in(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": WEB_CALLBACK,
                "scope": "openid",
                "audience": ORGANIZER,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                **{k: v for k, v in extra.items() if v},
            }
        )
        body = self.token(
            "authorization_code",
            code_grant(client_id, secret, callback["code"], verifier, WEB_CALLBACK),
        )
        token: str = body["access_token"]
        return token

    def one_time_code(self) -> str:
        """The newest one-time code in the server's log (what the user would be sent)."""
        if self.server_log is None:
            raise RuntimeError("no server log to read the one-time code from")
        pattern = re.compile(rf"One-time code for {re.escape(DEMO_USER[0])}: (\d{{6}})")
        deadline = time.monotonic() + 5
        while True:
            found = pattern.findall(self.server_log.read_text(errors="replace"))
            if found:
                code: str = found[-1]
                return code
            if time.monotonic() > deadline:
                raise RuntimeError("no one-time code appeared in the server log")
            time.sleep(0.05)


def admin_cli(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the authorization server's admin CLI (``python -m examples.authz_server``) on ``db``."""
    return subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "examples.authz_server", *args],
        cwd=ROOT,
        env={**os.environ, "AUTHZ_DB": db},
        capture_output=True,
        text=True,
        check=False,
    )


def world_mappers_grant(audience: str) -> dict[str, str]:
    """The token request of World Mappers, the seeded machine client, for ``audience``."""
    client_id, secret = WORLD_MAPPERS
    return {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "audience": audience,
    }


def world_mappers_token(issuer: str, audience: str = ORGANIZER) -> str:
    """A fresh World Mappers access token from the server at ``issuer``."""
    response = httpx.post(urljoin(issuer, "oauth/token"), data=world_mappers_grant(audience))
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def code_grant(
    client_id: str, secret: str, code: str, verifier: str, redirect_uri: str
) -> dict[str, str]:
    """The token request that redeems an authorization code with its PKCE verifier."""
    return {
        "grant_type": "authorization_code",
        "client_id": client_id,
        "client_secret": secret,
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": redirect_uri,
    }


_APPOINTMENT = {"title": "Dentist", "at": "2026-12-03T10:00:00Z"}


def _claims(token: str) -> dict[str, Any]:
    # Only to describe the token in the transcript; the APIs do the validating.
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims
