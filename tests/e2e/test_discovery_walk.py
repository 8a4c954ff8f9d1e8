"""A client that starts from nothing but an API's URL and gets through to it (RFC 9728 walk).

Over real sockets: the bundled server and an example API whose resource identifier is its
own URL (so that the 401's resource_metadata points back at it, as on a deployed API).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from examples.demo.discovery import discover_and_call
from examples.demo.servers import Service, Stack, free_port
from examples.demo.walk import DEMO_USER, admin_cli

pytestmark = pytest.mark.e2e

EXAMPLES = [
    pytest.param("examples.flask_api", id="flask"),
    pytest.param("examples.starlette_api", id="starlette"),
    pytest.param("examples.fastapi_api", id="fastapi"),
]


def admin(stack: Stack, *args: str) -> None:
    """Run the authorization server's admin CLI on the stack's store."""
    result = admin_cli(stack.db, *args)
    assert result.returncode == 0, result.stderr


@pytest.fixture(params=EXAMPLES)
def api(
    request: pytest.FixtureRequest, stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An example API on a free port, registered at the bundled server under its own URL."""
    port = free_port()
    resource = f"http://127.0.0.1:{port}/api"
    admin(stack, "create-api", "--name", f"Organizer on {port}", "--identifier", resource)
    admin(stack, "add-scope", resource, "read:appointments", "Read your appointments")
    env = {"APIGUARD_ISSUER": stack.issuer, "APIGUARD_AUDIENCE": resource}
    service = Service("API", request.param, port, "/api/public", env)
    try:
        service.start(Path(tmp_path_factory.mktemp("discovery")), timeout=30)
        yield f"{service.url}/api"
    finally:
        service.stop()


def test_a_client_finds_its_way_from_the_api_url_alone(stack: Stack, api: str) -> None:
    """401 → resource metadata → server metadata → registration → code + PKCE → 200."""
    found = discover_and_call(
        f"{api}/appointments",
        email=DEMO_USER[0],
        password=DEMO_USER[1],
        scopes=["read:appointments"],
    )
    port = api.split(":")[2].split("/")[0]
    assert found.metadata_url == (
        f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/api"
    )
    assert found.resource == api
    assert found.authorization_server == stack.issuer
    assert found.client_id
    assert found.granted == "read:appointments"
    assert found.status == 200
    assert [a["title"] for a in found.body["appointments"]][:2] == ["Dentist", "Team sync"]
