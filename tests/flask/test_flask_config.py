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
        pytest.param({"APIGUARD_AUDIENCE": AUDIENCE}, {}, "^APIGUARD_ISSUER: ", id="no-issuer"),
        pytest.param({"APIGUARD_ISSUER": ISSUER}, {}, "^APIGUARD_AUDIENCE: ", id="no-audience"),
        pytest.param(
            {"APIGUARD_ISSUER": "", "APIGUARD_AUDIENCE": AUDIENCE},
            {},
            "^APIGUARD_ISSUER: ",
            id="empty-issuer",
        ),
        pytest.param(
            {"APIGUARD_ISSUER": "http://issuer.example/", "APIGUARD_AUDIENCE": AUDIENCE},
            {},
            "^APIGUARD_ISSUER: must be https",
            id="http-issuer-off-loopback",
        ),
        pytest.param(
            {"APIGUARD_AUDIENCES": AUDIENCE, "APIGUARD_ISSUER": ISSUER},
            {},
            "^APIGUARD_AUDIENCES: not an apiguard setting",
            id="misspelt-key",
        ),
        pytest.param(
            {"APIGUARD_LEEWAY": "soon"},
            {"issuer": ISSUER, "audience": AUDIENCE},
            "^APIGUARD_LEEWAY: must be a number",
            id="leeway-not-a-number",
        ),
        pytest.param(
            {"APIGUARD_LEEWAY": 3600},
            {"issuer": ISSUER, "audience": AUDIENCE},
            "^APIGUARD_LEEWAY: must be between",
            id="leeway-too-large",
        ),
        pytest.param(
            {"APIGUARD_ALGORITHMS": "RS256 none"},
            {"issuer": ISSUER, "audience": AUDIENCE},
            "^APIGUARD_ALGORITHMS: ",
            id="alg-none",
        ),
        pytest.param(
            {"APIGUARD_ALGORITHMS": "HS256"},
            {"issuer": ISSUER, "audience": AUDIENCE},
            "^APIGUARD_ALGORITHMS: ",
            id="hmac-with-jwks",
        ),
        pytest.param(
            {"APIGUARD_JWKS_URI": "http://keys.example/jwks.json"},
            {"issuer": ISSUER, "audience": AUDIENCE},
            "^APIGUARD_JWKS_URI: ",
            id="http-jwks-uri",
        ),
        pytest.param(
            {"APIGUARD_REALM": 'say "hi"'},
            {"issuer": ISSUER, "audience": AUDIENCE},
            "^APIGUARD_REALM: ",
            id="realm-with-quote",
        ),
        pytest.param(
            {"APIGUARD_EXEMPT_OPTIONS": "perhaps"},
            {"issuer": ISSUER, "audience": AUDIENCE},
            "^APIGUARD_EXEMPT_OPTIONS: must be a boolean",
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


def test_unknown_keyword_is_a_type_error() -> None:
    """A keyword ApiGuard does not declare is a TypeError, as for any Python callable."""
    with pytest.raises(TypeError, match="unexpected keyword argument 'isuer'"):
        ApiGuard(isuer=ISSUER)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"leeway": 3600}, "^leeway: must be between", id="leeway"),
        pytest.param({"exempt_options": "perhaps"}, "^exempt_options: ", id="exempt_options"),
        pytest.param({"realm": 'say "hi"'}, "^realm: ", id="realm"),
        pytest.param({"audience": ""}, "^audience: ", id="audience"),
    ],
)
def test_keyword_errors_name_the_keyword(options: dict[str, Any], message: str) -> None:
    """A bad keyword setting is named as the keyword (not as an APIGUARD_* key)."""
    with pytest.raises(ConfigurationError, match=message):
        ApiGuard(configured_app({}), **{"issuer": ISSUER, "audience": AUDIENCE, **options})


def test_every_declared_setting_has_a_config_key() -> None:
    """ApiGuard reads an APIGUARD_* key for each declared validator and layer setting."""
    from apiguard._core import CONFIG_SETTINGS, POLICY_SETTINGS
    from apiguard.flask import SETTINGS

    assert POLICY_SETTINGS.keys() | CONFIG_SETTINGS.keys() <= SETTINGS.keys()
    assert {"issuer", "issuers", "realm", "exempt_options"} <= SETTINGS.keys()
    for name in ("APIGUARD_LEEWAY", "APIGUARD_MAX_KEY_SOURCES", "APIGUARD_AUDIENCE_CLAIM"):
        assert name in (ApiGuard.__doc__ or "")


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


def test_several_issuers_from_one_setting() -> None:
    """APIGUARD_ISSUER may list several issuer URLs separated by spaces: each is trusted."""
    first = LocalIssuer("https://first.test/", audience=AUDIENCE)
    second = LocalIssuer("https://second.test/", audience=AUDIENCE)
    second.rotate(keep_previous=False)

    def handle(request: httpx.Request) -> httpx.Response:
        issuer = first if request.url.host == "first.test" else second
        return issuer.handle(request)

    app = configured_app(
        {"APIGUARD_ISSUER": f" {first.issuer}  {second.issuer} ", "APIGUARD_AUDIENCE": AUDIENCE}
    )
    with httpx.Client(transport=httpx.MockTransport(handle)) as client:
        ApiGuard(app, http_client=client)
        assert app.extensions["apiguard"].validator.issuers == (first.issuer, second.issuer)
        test = app.test_client()
        for issuer in (first, second):
            assert test.get("/private", headers=bearer(issuer.token())).status_code == 200
        third = test.get("/private", headers=bearer(first.token(iss="https://third.test/")))
        assert third.status_code == 401


def test_issuer_policies_in_the_config() -> None:
    """APIGUARD_ISSUERS takes IssuerPolicy objects (set from Python code, not from text)."""
    from apiguard import IssuerPolicy

    issuer = LocalIssuer("https://static.test/", audience=AUDIENCE)
    policy = IssuerPolicy(issuer.issuer, audience=AUDIENCE, jwks=issuer.jwks)
    app = configured_app({"APIGUARD_ISSUERS": [policy]})
    ApiGuard(app)
    assert app.test_client().get("/private", headers=bearer(issuer.token())).status_code == 200
    with pytest.raises(ConfigurationError, match=r"^APIGUARD_RESOLVER: cannot be given as text"):
        ApiGuard(configured_app({"APIGUARD_ISSUER": ISSUER, "APIGUARD_RESOLVER": "module.fn"}))


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
