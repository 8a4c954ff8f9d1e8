"""ApiGuard's settings: read from app.config or keywords, checked once at start-up."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from flask import Flask

from apiguard import AlgorithmNotAllowed, ConfigurationError, InvalidClaim, TokenExpired
from apiguard.flask import ApiGuard, GuardState, requires_auth
from apiguard.testing import LocalIssuer

ISSUER = "https://issuer.test/"
AUDIENCE = "https://api.test"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def http_client(local_issuer: LocalIssuer) -> Iterator[httpx.Client]:
    """An httpx client that reaches ``local_issuer`` in-process."""
    with httpx.Client(transport=local_issuer.transport()) as client:
        yield client


def configured_app(config: dict[str, Any]) -> Flask:
    app = Flask("configured")
    app.config.update(config)

    @app.get("/private")
    @requires_auth
    def private() -> str:
        return "ok"

    return app


@pytest.mark.parametrize(
    ("config", "options", "message"),
    [
        pytest.param({"APIGUARD_AUDIENCE": AUDIENCE}, {}, "APIGUARD_ISSUER", id="no-issuer"),
        pytest.param({"APIGUARD_ISSUER": ISSUER}, {}, "APIGUARD_AUDIENCE", id="no-audience"),
        pytest.param(
            {"APIGUARD_ISSUER": "", "APIGUARD_AUDIENCE": AUDIENCE},
            {},
            "APIGUARD_ISSUER",
            id="empty-issuer",
        ),
        pytest.param(
            {"APIGUARD_ISSUER": "http://issuer.example/", "APIGUARD_AUDIENCE": AUDIENCE},
            {},
            "issuer",
            id="http-issuer-off-loopback",
        ),
        pytest.param(
            {"APIGUARD_AUDIENCES": AUDIENCE, "APIGUARD_ISSUER": ISSUER},
            {},
            "APIGUARD_AUDIENCES",
            id="misspelt-key",
        ),
        pytest.param(
            {"APIGUARD_LEEWAY": "soon"},
            {"issuer": ISSUER, "audience": AUDIENCE},
            "LEEWAY",
            id="leeway-not-a-number",
        ),
        pytest.param(
            {"APIGUARD_LEEWAY": 3600},
            {"issuer": ISSUER, "audience": AUDIENCE},
            "leeway",
            id="leeway-too-large",
        ),
        pytest.param(
            {"APIGUARD_ALGORITHMS": "RS256 none"},
            {"issuer": ISSUER, "audience": AUDIENCE},
            "algorithms",
            id="alg-none",
        ),
        pytest.param(
            {"APIGUARD_ALGORITHMS": "HS256"},
            {"issuer": ISSUER, "audience": AUDIENCE},
            "algorithms",
            id="hmac-with-jwks",
        ),
        pytest.param(
            {"APIGUARD_JWKS_URI": "http://keys.example/jwks.json"},
            {"issuer": ISSUER, "audience": AUDIENCE},
            "jwks_uri",
            id="http-jwks-uri",
        ),
        pytest.param(
            {"APIGUARD_REALM": 'say "hi"'},
            {"issuer": ISSUER, "audience": AUDIENCE},
            "REALM",
            id="realm-with-quote",
        ),
        pytest.param(
            {"APIGUARD_EXEMPT_OPTIONS": "perhaps"},
            {"issuer": ISSUER, "audience": AUDIENCE},
            "EXEMPT_OPTIONS",
            id="exempt-options-not-boolean",
        ),
    ],
)
def test_wrong_settings_fail_at_start_up(
    config: dict[str, Any], options: dict[str, Any], message: str
) -> None:
    """A missing, unknown or unsafe setting raises ConfigurationError from ApiGuard(app)."""
    with pytest.raises(ConfigurationError, match=message):
        ApiGuard(configured_app(config), **options)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        pytest.param({"issuers": ISSUER}, "unknown options", id="unknown-keyword"),
        pytest.param({"validator": object()}, "must be an apiguard.Validator", id="not-validator"),
        pytest.param({"validator": "ready", "leeway": 5}, "excludes", id="validator-and-options"),
    ],
)
def test_wrong_keywords_fail_at_construction(
    local_issuer: LocalIssuer, arguments: dict[str, Any], message: str
) -> None:
    """Keywords that are unknown or contradict a ready validator are refused at once."""
    if arguments.get("validator") == "ready":
        with local_issuer.validator() as validator:
            arguments["validator"] = validator
            with pytest.raises(ConfigurationError, match=message):
                ApiGuard(**arguments)
    else:
        with pytest.raises(ConfigurationError, match=message):
            ApiGuard(**arguments)


def test_settings_from_environment_strings(
    local_issuer: LocalIssuer, http_client: httpx.Client
) -> None:
    """String settings (as environment variables give them) are parsed: numbers and lists."""
    app = configured_app(
        {
            "APIGUARD_ISSUER": local_issuer.issuer,
            "APIGUARD_AUDIENCE": f"https://first.test {AUDIENCE}",
            "APIGUARD_ALGORITHMS": "PS256 ES256",
            "APIGUARD_LEEWAY": "0",
            "APIGUARD_MAX_TOKEN_AGE": "60",
        }
    )
    ApiGuard(app, http_client=http_client)
    client = app.test_client()
    es256 = local_issuer.add_key("ES256")
    assert client.get("/private", headers=bearer(local_issuer.token(key=es256))).status_code == 200
    refused = [
        (local_issuer.token(), AlgorithmNotAllowed),
        (local_issuer.token(key=es256, expires_in=-1), TokenExpired),
        (local_issuer.token(key=es256, iat=local_issuer.clock() - 600), TokenExpired),
    ]
    for token, error in refused:
        response = client.get("/private", headers=bearer(token))
        assert response.status_code == 401
        assert response.get_json()["error_description"] == error.description


def test_keywords_override_config(local_issuer: LocalIssuer, http_client: httpx.Client) -> None:
    """A keyword given to ApiGuard wins over the same APIGUARD_* key in app.config."""
    app = configured_app(
        {"APIGUARD_ISSUER": local_issuer.issuer, "APIGUARD_AUDIENCE": "https://other.test"}
    )
    ApiGuard(app, http_client=http_client, audience=AUDIENCE, realm="organizer")
    response = app.test_client().get("/private", headers=bearer(local_issuer.token()))
    assert response.status_code == 200
    challenge = app.test_client().get("/private").headers["WWW-Authenticate"]
    assert challenge == 'Bearer realm="organizer"'


@pytest.mark.parametrize(
    ("config", "challenge"),
    [
        pytest.param({}, 'Bearer realm="https://api.test"', id="default-is-the-audience"),
        pytest.param({"APIGUARD_REALM": "organizer"}, 'Bearer realm="organizer"', id="set"),
        pytest.param({"APIGUARD_REALM": None}, "Bearer", id="none"),
        pytest.param(
            {"APIGUARD_AUDIENCE": ["https://a.test", "https://b.test"]},
            'Bearer realm="api"',
            id="several-audiences",
        ),
    ],
)
def test_realm(config: dict[str, Any], challenge: str) -> None:
    """The challenge's realm is APIGUARD_REALM, else the single audience, else "api"."""
    app = configured_app({"APIGUARD_ISSUER": ISSUER, "APIGUARD_AUDIENCE": AUDIENCE, **config})
    ApiGuard(app)
    response = app.test_client().get("/private")
    assert response.headers["WWW-Authenticate"] == challenge
    app.extensions["apiguard"].validator.close()


def test_one_validator_per_app() -> None:
    """One ApiGuard shared by an app factory builds a validator for each app from its config."""
    guard = ApiGuard()
    apps = [
        configured_app({"APIGUARD_ISSUER": ISSUER, "APIGUARD_AUDIENCE": audience})
        for audience in ("https://a.test", "https://b.test")
    ]
    for app in apps:
        guard.init_app(app)
    states = [app.extensions["apiguard"] for app in apps]
    assert all(isinstance(state, GuardState) for state in states)
    assert states[0].validator is not states[1].validator
    assert [state.validator.audiences for state in states] == [
        frozenset({"https://a.test"}),
        frozenset({"https://b.test"}),
    ]
    with apps[0].app_context():
        assert ApiGuard.state() is states[0]
    assert ApiGuard.state(apps[1]) is states[1]
    for state in states:
        state.validator.close()


def test_ready_validator_is_used_as_is(local_issuer: LocalIssuer) -> None:
    """A validator passed in is stored unchanged and no issuer setting is then needed."""
    with local_issuer.validator() as validator:
        app = configured_app({})
        ApiGuard(app, validator=validator)
        assert app.extensions["apiguard"].validator is validator


def test_importing_apiguard_does_not_import_flask() -> None:
    """``import apiguard`` pulls in no web framework; only apiguard.flask imports Flask."""
    code = (
        "import sys, apiguard, apiguard.testing; assert 'flask' not in sys.modules, 'flask'; "
        "import apiguard.flask; assert 'flask' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_role_claims_and_claims_validator_settings(
    local_issuer: LocalIssuer, http_client: httpx.Client
) -> None:
    """APIGUARD_ROLE_CLAIMS (paths in one string) and APIGUARD_CLAIMS_VALIDATOR are used."""

    def no_guests(token: Any) -> None:
        if "guest" in token.roles:
            raise InvalidClaim("guest", description="Guests may not call this API", reason="guest")

    app = configured_app(
        {
            "APIGUARD_ISSUER": local_issuer.issuer,
            "APIGUARD_AUDIENCE": AUDIENCE,
            "APIGUARD_ROLE_CLAIMS": '"https://organizer.example/roles" realm_access.roles',
            "APIGUARD_CLAIMS_VALIDATOR": no_guests,
        }
    )
    ApiGuard(app, http_client=http_client)
    validator = app.extensions["apiguard"].validator
    roles = {"https://organizer.example/roles": ["admin"], "realm_access": {"roles": ["user"]}}
    assert validator.validate(local_issuer.token(**roles)).roles == {"admin", "user"}
    response = app.test_client().get(
        "/private", headers=bearer(local_issuer.token(realm_access={"roles": ["guest"]}))
    )
    assert response.status_code == 401
    assert response.get_json()["error_description"] == "Guests may not call this API"
