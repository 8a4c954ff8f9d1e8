"""Flask configuration of opaque tokens: APIGUARD_TOKEN_MODE and APIGUARD_INTROSPECTION."""

from __future__ import annotations

import httpx
import pytest
from flask import Flask

from apiguard import ConfigurationError
from apiguard.flask import ApiGuard, current_token, requires_auth
from apiguard.testing import LocalIssuer


def opaque_app(issuer: LocalIssuer, **config: object) -> Flask:
    app = Flask("opaque")
    app.config.update(
        {
            "APIGUARD_ISSUER": issuer.issuer,
            "APIGUARD_AUDIENCE": issuer.audience,
            "APIGUARD_INTROSPECTION": issuer.introspection_settings,
            **config,
        }
    )

    @app.get("/private")
    @requires_auth
    def private() -> dict[str, object]:
        return {"subject": current_token.subject}

    @app.get("/revocable")
    @requires_auth(check_revocation=True)
    def revocable() -> dict[str, object]:
        return {"subject": current_token.subject}

    ApiGuard(app, http_client=httpx.Client(transport=issuer.transport()))
    return app


def test_config_text_selects_the_mode(local_issuer: LocalIssuer) -> None:
    """APIGUARD_TOKEN_MODE="auto" (text, as from the environment) introspects opaque tokens."""
    client = opaque_app(local_issuer, APIGUARD_TOKEN_MODE="auto").test_client()
    opaque = local_issuer.opaque_token(sub="auth0|opaque")
    answer = client.get("/private", headers={"Authorization": f"Bearer {opaque}"})
    assert (answer.status_code, answer.get_json()) == (200, {"subject": "auth0|opaque"})
    jwt = local_issuer.token()
    assert client.get("/private", headers={"Authorization": f"Bearer {jwt}"}).status_code == 200
    local_issuer.revoke(jwt)
    revoked = client.get("/revocable", headers={"Authorization": f"Bearer {jwt}"})
    assert revoked.status_code == 401
    assert revoked.get_json()["error_description"] == "The access token is not active"


def test_a_mode_without_introspection_settings_is_refused(local_issuer: LocalIssuer) -> None:
    """APIGUARD_TOKEN_MODE=introspection without APIGUARD_INTROSPECTION fails at start-up."""
    with pytest.raises(ConfigurationError, match="introspection"):
        opaque_app(local_issuer, APIGUARD_TOKEN_MODE="introspection", APIGUARD_INTROSPECTION=None)
