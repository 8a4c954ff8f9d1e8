"""The README's DPoP section shows what the Starlette example answers."""

from __future__ import annotations

import re
from pathlib import Path

import anyio
import httpx
from starlette.testclient import TestClient

from apiguard.testing import DPoPAuth, DPoPKey, LocalIssuer
from examples.starlette_api.app import create_app

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
SECTION = README.split("## Sender-constrained tokens (DPoP)", 1)[1].split("\n## ", 1)[0]
ORGANIZER = "https://organizer.example/api"


def test_the_dpop_transcript_is_the_examples_answer() -> None:
    """A DPoP-bound token sent as Bearer gets exactly the status, challenge and body shown."""
    block = re.search(r"```console\n(.*?)```", SECTION, re.DOTALL)
    assert block is not None
    command, status, challenge, body = block.group(1).strip().splitlines()
    assert "Authorization: Bearer $DPOP_TOKEN" in command
    issuer = LocalIssuer(audience=ORGANIZER)
    key = DPoPKey()
    app = create_app(validator=issuer.async_validator(dpop="required"))
    token = issuer.token(dpop_key=key, scope="read:appointments")
    with TestClient(app) as client:
        answer = client.get("/api/appointments", headers={"Authorization": f"Bearer {token}"})
    assert status == f"HTTP/1.1 {answer.status_code} Unauthorized"
    assert challenge == f"WWW-Authenticate: {answer.headers['www-authenticate']}"
    assert body == answer.text

    async def with_the_kit() -> int:
        # The testing kit's one line makes the same request pass.
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", auth=DPoPAuth(key, token)
        ) as client:
            return (await client.get("/api/appointments")).status_code

    assert anyio.run(with_the_kit) == 200
