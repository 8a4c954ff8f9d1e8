"""apiguard.mcp with the MCP Python SDK: MCPServer protected end to end, over a real socket."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import MCPServer

from apiguard import AsyncValidator, ConfigurationError, IssuerPolicy, has_roles
from apiguard.mcp import McpAuth, current_token
from apiguard.testing import DPoPAuth, DPoPKey, LocalIssuer

from .support import bound_socket, serving

pytestmark = pytest.mark.e2e


@dataclass
class Served:
    """A protected MCP server and the issuer whose tokens it trusts."""

    base: str
    issuer: LocalIssuer
    auth: McpAuth

    @property
    def mcp(self) -> str:
        return self.base + "/mcp"


def organizer(issuer: LocalIssuer, resource: str) -> tuple[MCPServer[Any], McpAuth]:
    """An MCP server with one tool per scope rule, one unguarded, and one sync tool."""
    auth = McpAuth(issuer.async_validator(audience=resource), resource=resource)
    server = MCPServer("Organizer", token_verifier=auth, auth=auth.settings)

    @server.tool()
    @auth.requires_scope("read:appointments")
    async def list_appointments() -> list[str]:
        return ["Dentist"]

    @server.tool()
    @auth.requires_scope("create:appointments")
    async def create_appointment(title: str) -> str:
        return f"created {title}"

    @server.tool()
    @auth.requires_scope("read:contacts", "read:tasks", match="any")
    def overview() -> str:
        return "overview"

    @server.tool()
    async def who_am_i() -> str:
        token = current_token()
        return token.subject if token and token.subject else "nobody"

    @server.tool()
    @auth.requires(has_roles("organizer-admin", claim=ROLES))
    async def delete_appointment(id: int) -> str:
        return f"deleted {id}"

    return server, auth


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """The Organizer MCP server on a loopback socket, trusting an in-process issuer."""
    sock = bound_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    issuer = LocalIssuer(audience=base + "/mcp")
    server, auth = organizer(issuer, base + "/mcp")
    with serving(auth.app(server, close_validator=True), sock):
        yield Served(base, issuer, auth)


def use_tools(url: str, token: str, calls: list[tuple[str, dict[str, Any]]]) -> Any:
    """List the tools and make ``calls`` with the SDK's own client; (names, [(error, text)])."""

    async def session() -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            httpx2.AsyncClient(headers=headers) as http,
            Client(streamable_http_client(url, http_client=http)) as client,
        ):
            tools = [tool.name for tool in (await client.list_tools()).tools]
            results = []
            for name, arguments in calls:
                result = await client.call_tool(name, arguments)
                text = " ".join(getattr(part, "text", "") for part in result.content)
                results.append((bool(result.is_error), text))
            return tools, results

    return anyio.run(session)


INIT = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
ROLES = ("https://organizer.example/roles",)


def test_no_token_is_401_with_resource_metadata(served: Served) -> None:
    """A request without a token gets a bare challenge pointing at the metadata (RFC 9728)."""
    response = httpx.post(served.mcp, json=INIT)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="{served.mcp}", '
        f'resource_metadata="{served.base}/.well-known/oauth-protected-resource/mcp"'
    )
    assert response.json() == {"error_description": "Authentication required"}


@pytest.mark.parametrize(
    ("make_headers", "status", "error"),
    [
        pytest.param(
            lambda i: [("Authorization", "Bearer not.a.token")], 401, "invalid_token", id="junk"
        ),
        pytest.param(
            lambda i: [("Authorization", f"Bearer {i.token(expires_in=-120)}")],
            401,
            "invalid_token",
            id="expired",
        ),
        pytest.param(
            lambda i: [("Authorization", f"Bearer {i.token(aud='https://other.example')}")],
            401,
            "invalid_token",
            id="another-audience",
        ),
        pytest.param(
            lambda i: [("Authorization", f"Bearer {i.token()}")] * 2,
            400,
            "invalid_request",
            id="two-headers",
        ),
        pytest.param(
            lambda i: [("Authorization", "Bearer a b")], 400, "invalid_request", id="two-tokens"
        ),
        pytest.param(lambda i: [("Authorization", "Basic eDp5")], 401, None, id="basic"),
    ],
)
def test_bad_credentials_get_the_rfc6750_answer(
    served: Served, make_headers: Any, status: int, error: str | None
) -> None:
    """Refusals are answered as in every apiguard layer, each with resource_metadata."""
    response = httpx.post(served.mcp, json=INIT, headers=make_headers(served.issuer))
    assert response.status_code == status
    assert response.json().get("error") == error
    challenge = response.headers["www-authenticate"]
    assert (f'error="{error}"' in challenge) == (error is not None)
    assert challenge.endswith('resource_metadata="' + served.auth.metadata.url + '"')


def test_token_in_the_query_too_is_400(served: Served) -> None:
    """A token sent in the header and the query string is two methods at once (RFC 6750 §2)."""
    token = served.issuer.token()
    response = httpx.post(
        served.mcp + "?access_token=x", json=INIT, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    "path", ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"]
)
def test_metadata_is_served_without_a_token(served: Served, path: str) -> None:
    """The document names the resource, the issuer and every tool's scope, cacheable."""
    response = httpx.get(served.base + path, headers={"Authorization": "Bearer garbage"})
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=3600"
    assert response.json() == {
        "resource": served.mcp,
        "authorization_servers": [served.issuer.issuer],
        "scopes_supported": [
            "create:appointments",
            "read:appointments",
            "read:contacts",
            "read:tasks",
        ],
        "bearer_methods_supported": ["header"],
    }


def test_tools_are_listed_and_called_with_their_scope(served: Served) -> None:
    """A token with the scope lists every tool and runs the ones its scopes allow."""
    token = served.issuer.token(scope="read:appointments read:tasks", sub="auth0|ada")
    tools, results = use_tools(
        served.mcp,
        token,
        [("list_appointments", {}), ("overview", {}), ("who_am_i", {})],
    )
    assert tools == [
        "list_appointments",
        "create_appointment",
        "overview",
        "who_am_i",
        "delete_appointment",
    ]
    assert results == [(False, "Dentist"), (False, "overview"), (False, "auth0|ada")]


def test_a_tool_refuses_a_token_without_its_scope(served: Served) -> None:
    """The call is refused with the scope named, and the session goes on."""
    token = served.issuer.token(scope="read:appointments")
    _, results = use_tools(
        served.mcp,
        token,
        [("create_appointment", {"title": "Haircut"}), ("overview", {}), ("list_appointments", {})],
    )
    (create_error, create_text), (overview_error, overview_text), after = results
    assert create_error
    assert "create:appointments" in create_text
    assert "lacks a required scope" in create_text
    assert overview_error
    assert "one of the scopes read:contacts read:tasks" in overview_text
    assert after == (False, "Dentist")


def test_keys_unavailable_is_503_with_retry_after() -> None:
    """When the issuer's keys cannot be had, the MCP endpoint answers 503, not 401 or 500."""
    sock = bound_socket()
    resource = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    issuer = LocalIssuer(audience=resource)
    issuer.jwks_override = httpx.Response(500)
    server, auth = organizer(issuer, resource)
    with serving(auth.app(server, close_validator=True), sock):
        response = httpx.post(
            resource, json=INIT, headers={"Authorization": f"Bearer {issuer.token()}"}
        )
    assert response.status_code == 503
    assert "retry-after" in response.headers
    assert "www-authenticate" not in response.headers


def test_resource_must_be_an_audience() -> None:
    """A resource identifier tokens are not checked for is refused at start-up."""
    issuer = LocalIssuer(audience="https://mcp.example/mcp")
    with pytest.raises(ConfigurationError, match="audiences"):
        McpAuth(issuer.async_validator(), resource="https://other.example/mcp")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda auth: auth.requires_scope('read "x"'), "scope token", id="bad-scope"),
        pytest.param(lambda auth: auth.requires_scope("a", match="most"), "match", id="match"),
        pytest.param(lambda auth: auth.app(MCPServer("x")), "token_verifier", id="not-wired"),
    ],
)
def test_mistakes_fail_when_declared(make: Any, message: str) -> None:
    """A bad scope name, a bad match or a server built without this auth fail at once."""
    issuer = LocalIssuer(audience="https://mcp.example/mcp")
    auth = McpAuth(issuer.async_validator(), resource="https://mcp.example/mcp")
    with pytest.raises(ConfigurationError, match=message):
        make(auth)


def test_validator_must_be_async() -> None:
    """A sync Validator is refused: the SDK verifies tokens in its event loop."""
    issuer = LocalIssuer(audience="https://mcp.example/mcp")
    with pytest.raises(ConfigurationError, match="AsyncValidator"):
        McpAuth(issuer.validator(), resource="https://mcp.example/mcp")  # type: ignore[arg-type]


def test_settings_leave_the_audience_check_to_apiguard() -> None:
    """The SDK settings name the resource and the issuer, and do not re-check the resource."""
    issuer = LocalIssuer(audience="https://mcp.example/mcp")
    auth = McpAuth(
        issuer.async_validator(), resource="https://mcp.example/mcp", required_scopes=["mcp"]
    )
    settings = auth.settings
    assert str(settings.resource_server_url) == "https://mcp.example/mcp"
    assert str(settings.issuer_url) == issuer.issuer
    assert settings.required_scopes == ["mcp"]
    assert settings.validate_token_resource is False


def test_dpop_bound_tokens_work_with_their_proof() -> None:
    """With DPoP allowed, a bound token and a fresh proof get through to the SDK's tools."""
    sock = bound_socket()
    resource = f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    issuer = LocalIssuer(audience=resource)
    auth = McpAuth(issuer.async_validator(dpop="allowed"), resource=resource)
    server = MCPServer("Organizer", token_verifier=auth, auth=auth.settings)

    @server.tool()
    async def who_am_i() -> str:
        token = current_token()
        return token.jkt if token and token.jkt else "unbound"

    key = DPoPKey()
    bound = issuer.token(dpop_key=key)
    with serving(auth.app(server, close_validator=True), sock):
        with httpx.Client(auth=DPoPAuth(key, bound)) as client:
            accepted = client.post(resource, json=INITIALIZE, headers=ACCEPT)
        as_bearer = httpx.post(
            resource, json=INITIALIZE, headers={**ACCEPT, "Authorization": f"Bearer {bound}"}
        )
        document = httpx.get(auth.metadata.url).json()
    assert accepted.status_code == 200, accepted.text
    assert as_bearer.status_code == 401
    assert "www-authenticate" in as_bearer.headers
    assert "ES256" in document["dpop_signing_alg_values_supported"]


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}
ACCEPT = {"Accept": "application/json, text/event-stream"}


def test_a_tool_with_a_role_rule_needs_the_role(served: Served) -> None:
    """apiguard's rules guard tools too: without the role the call is refused, fixed text."""
    without = served.issuer.token(**{ROLES[0]: ["assistant"]})
    with_role = served.issuer.token(**{ROLES[0]: ["organizer-admin"]})
    _, [(refused, text)] = use_tools(served.mcp, without, [("delete_appointment", {"id": 1})])
    _, [allowed] = use_tools(served.mcp, with_role, [("delete_appointment", {"id": 1})])
    assert refused
    assert "assistant" not in text  # no claim value is echoed
    assert allowed == (False, "deleted 1")


def test_requires_takes_rules_only(served: Served) -> None:
    """A tool guarded with something that is not a rule fails when it is declared."""
    with pytest.raises(ConfigurationError):
        served.auth.requires("organizer-admin")  # type: ignore[arg-type]


def test_an_issuer_resolver_sees_the_requests_host() -> None:
    """A resolver that picks tenants by Host is handed the MCP request's Host header."""
    sock = bound_socket()
    port = sock.getsockname()[1]
    resource = f"http://127.0.0.1:{port}/mcp"
    issuer = LocalIssuer("https://tenant.example/", audience=resource)
    hosts: list[str | None] = []

    def resolve(iss: str, request: Any) -> IssuerPolicy | None:
        hosts.append(request.host)
        return IssuerPolicy(iss, audience=resource) if iss == issuer.issuer else None

    # One configured tenant (it names the audience McpAuth checks); the others resolved.
    configured = IssuerPolicy("https://configured.example/", audience=resource)
    validator = AsyncValidator(issuers=[configured], resolver=resolve, transport=issuer.transport())
    auth = McpAuth(validator, resource=resource)
    server = MCPServer("Organizer", token_verifier=auth, auth=auth.settings)
    headers = {**ACCEPT, "Authorization": f"Bearer {issuer.token()}"}
    with serving(auth.app(server, close_validator=True), sock):
        answer = httpx.post(resource, json=INITIALIZE, headers=headers)
    assert answer.status_code == 200, answer.text
    # The SDK itself allows only its own host (DNS rebinding protection): the one sent.
    assert hosts == [f"127.0.0.1:{port}"]
