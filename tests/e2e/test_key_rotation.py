"""Key rotation end to end: the running APIs follow the server's new key without a restart."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from examples.demo.servers import Stack
from examples.demo.walk import Walk, world_mappers_token

pytestmark = pytest.mark.e2e


def kid(token: str) -> str:
    """The ``kid`` of a token's header."""
    header = token.split(".")[0]
    value: str = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]
    return value


def answers(apis: dict[str, str], token: str) -> set[int]:
    """What both APIs answer to /api/appointments with ``token``."""
    headers = {"Authorization": f"Bearer {token}"}
    return {
        httpx.get(base + "/api/appointments", headers=headers).status_code for base in apis.values()
    }


def test_rotation_keeps_old_tokens_and_accepts_new_ones(stack: Stack, apis: dict[str, str]) -> None:
    """After a rotation, tokens from the new key and unexpired ones from the old key both pass."""
    before = world_mappers_token(stack.issuer)
    assert answers(apis, before) == {200}
    walk = Walk(stack.issuer, apis, stack.db, out=lambda line: None, server_log=stack.authz.log)
    try:
        rotated = walk.cli("rotate-keys")
    finally:
        walk.close()
    assert rotated.returncode == 0, rotated.stderr
    after = world_mappers_token(stack.issuer)
    assert kid(after) != kid(before)
    published = {
        key["kid"] for key in httpx.get(stack.issuer + ".well-known/jwks.json").json()["keys"]
    }
    assert {kid(before), kid(after)} <= published
    assert answers(apis, after) == {200}
    assert answers(apis, before) == {200}
