"""Configuration is checked once, at construction: every bad setting names itself."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from apiguard import AsyncValidator, ConfigurationError, Validator

BASE: dict[str, Any] = {"issuer": "https://issuer.test/", "audience": "https://api.test"}
SECRET = "0123456789abcdef0123456789abcdef"

BAD = [
    pytest.param({"issuer": ""}, "issuer", id="issuer-empty"),
    pytest.param({"issuer": None}, "issuer", id="issuer-none"),
    pytest.param({"issuer": "issuer.test"}, "issuer", id="issuer-relative"),
    pytest.param({"issuer": "ftp://issuer.test/"}, "issuer", id="issuer-ftp"),
    pytest.param({"issuer": "http://issuer.test/"}, "issuer", id="issuer-http-discovery"),
    pytest.param(
        {"issuer": "http://issuer.test/", "jwks_uri": "https://issuer.test/jwks"},
        "issuer",
        id="issuer-http-with-jwks_uri",
    ),
    pytest.param(
        {"issuer": "http://issuer.test/", "shared_secret": SECRET}, "issuer", id="issuer-http-hs"
    ),
    pytest.param({"audience": ""}, "audience", id="audience-empty"),
    pytest.param({"audience": []}, "audience", id="audience-empty-list"),
    pytest.param({"audience": ["a", 1]}, "audience", id="audience-number"),
    pytest.param({"audience": 5}, "audience", id="audience-not-iterable"),
    pytest.param({"jwks_uri": "http://issuer.test/jwks"}, "jwks_uri", id="jwks_uri-http"),
    pytest.param({"jwks_uri": "file:///etc/passwd"}, "jwks_uri", id="jwks_uri-file"),
    pytest.param({"jwks_uri": "https://u:p@issuer.test/"}, "jwks_uri", id="jwks_uri-userinfo"),
    pytest.param({"jwks_uri": ""}, "jwks_uri", id="jwks_uri-empty"),
    pytest.param({"jwks_uri": 5}, "jwks_uri", id="jwks_uri-number"),
    pytest.param({"algorithms": ["none"]}, "algorithms", id="algorithms-none"),
    pytest.param({"algorithms": ["RS256", "none"]}, "algorithms", id="algorithms-with-none"),
    pytest.param({"algorithms": ["rs256"]}, "algorithms", id="algorithms-lowercase"),
    pytest.param({"algorithms": ["HS256"]}, "algorithms", id="algorithms-HS-with-jwks"),
    pytest.param({"algorithms": ["RS256", "HS256"]}, "algorithms", id="algorithms-mixed"),
    pytest.param({"algorithms": []}, "algorithms", id="algorithms-empty"),
    pytest.param({"algorithms": [1]}, "algorithms", id="algorithms-number"),
    pytest.param(
        {"shared_secret": SECRET, "algorithms": ["RS256"]}, "algorithms", id="secret-with-RS256"
    ),
    pytest.param(
        {"shared_secret": SECRET, "jwks_uri": "https://issuer.test/jwks"},
        "shared_secret",
        id="secret-with-jwks",
    ),
    pytest.param({"shared_secret": "secret"}, "shared_secret", id="secret-deny-listed"),
    pytest.param(
        {"shared_secret": "your-256-bit-secret"}, "shared_secret", id="secret-jwt-io-default"
    ),
    pytest.param({"shared_secret": "CHANGEME"}, "shared_secret", id="secret-changeme"),
    pytest.param({"shared_secret": "x" * 31}, "shared_secret", id="secret-31-bytes"),
    pytest.param({"shared_secret": b""}, "shared_secret", id="secret-empty"),
    pytest.param(
        {"shared_secret": "x" * 40, "algorithms": ["HS384"]}, "shared_secret", id="secret-hs384"
    ),
    pytest.param(
        {"shared_secret": "x" * 63, "algorithms": ["HS512"]}, "shared_secret", id="secret-hs512"
    ),
    pytest.param({"shared_secret": 12345}, "shared_secret", id="secret-number"),
    pytest.param({"leeway": 301}, "leeway", id="leeway-over-300"),
    pytest.param({"leeway": -1}, "leeway", id="leeway-negative"),
    pytest.param({"leeway": "30"}, "leeway", id="leeway-string"),
    pytest.param({"leeway": True}, "leeway", id="leeway-bool"),
    pytest.param({"leeway": float("nan")}, "leeway", id="leeway-nan"),
    pytest.param({"max_token_age": 0}, "max_token_age", id="max_token_age-zero"),
    pytest.param({"max_token_age": "1h"}, "max_token_age", id="max_token_age-string"),
    pytest.param({"required_claims": [""]}, "required_claims", id="required_claims-empty"),
    pytest.param({"required_claims": [1]}, "required_claims", id="required_claims-number"),
    pytest.param({"required_claims": 1}, "required_claims", id="required_claims-not-iterable"),
    pytest.param({"token_type": "JWT"}, "token_type", id="token_type-JWT"),
    pytest.param({"scope_claims": [None]}, "scope_claims", id="scope_claims-none"),
    pytest.param({"cache_max_age": 0}, "cache_max_age", id="cache_max_age-zero"),
    pytest.param({"cache_max_age": 10**9}, "cache_max_age", id="cache_max_age-huge"),
    pytest.param({"cooldown": -1}, "cooldown", id="cooldown-negative"),
    pytest.param({"cooldown": 7200}, "cooldown", id="cooldown-huge"),
    pytest.param({"max_stale": -1}, "max_stale", id="max_stale-negative"),
    pytest.param({"timeout": 0}, "timeout", id="timeout-zero"),
    pytest.param({"timeout": 1000}, "timeout", id="timeout-huge"),
    pytest.param({"max_token_size": 10}, "max_token_size", id="max_token_size-tiny"),
    pytest.param({"max_token_size": 1 << 30}, "max_token_size", id="max_token_size-huge"),
    pytest.param({"max_jwks_size": 10}, "max_jwks_size", id="max_jwks_size-tiny"),
    pytest.param({"token_cache_size": -1}, "token_cache_size", id="token_cache_size-negative"),
    pytest.param({"clock": 5}, "clock", id="clock-not-callable"),
]


@pytest.mark.parametrize(("options", "name"), BAD)
@pytest.mark.parametrize("cls", [Validator, AsyncValidator])
def test_bad_setting_names_itself(options: dict[str, Any], name: str, cls: type) -> None:
    """Each unsafe or ill-typed setting raises ConfigurationError (a ValueError) naming it."""
    with pytest.raises(ConfigurationError, match=f"^{name}: "):
        cls(**{**BASE, **options})
    assert issubclass(ConfigurationError, ValueError)


GOOD = [
    pytest.param({}, id="defaults"),
    pytest.param({"issuer": "http://127.0.0.1:9000/"}, id="http-loopback-v4"),
    pytest.param({"issuer": "http://localhost:9000/"}, id="http-localhost"),
    pytest.param({"issuer": "http://[::1]:9000/"}, id="http-loopback-v6"),
    pytest.param({"jwks_uri": "http://127.0.0.1:9000/jwks"}, id="jwks_uri-loopback"),
    pytest.param({"algorithms": "ES256"}, id="algorithms-string"),
    pytest.param({"algorithms": ("EdDSA", "PS256")}, id="algorithms-tuple"),
    pytest.param({"shared_secret": SECRET}, id="hs256-secret"),
    pytest.param({"shared_secret": b"\x01" * 64, "algorithms": ["HS512"]}, id="hs512-bytes"),
    pytest.param({"leeway": 300}, id="leeway-300"),
    pytest.param({"leeway": 0}, id="leeway-0"),
    pytest.param({"audience": ("a", "b")}, id="audiences"),
    pytest.param({"token_type": "at+jwt"}, id="strict"),
    pytest.param({"token_cache_size": 0}, id="no-token-cache"),
    pytest.param({"cooldown": 0}, id="cooldown-0"),
    pytest.param({"clock": lambda: 0.0}, id="clock"),
]


@pytest.mark.parametrize("options", GOOD)
def test_good_settings_accepted(options: dict[str, Any]) -> None:
    """Safe settings construct a validator (and its client closes cleanly)."""
    with Validator(**{**BASE, **options}) as validator:
        assert validator.issuer == {**BASE, **options}["issuer"]
        assert "Validator(issuer=" in repr(validator)


def test_audiences_property() -> None:
    """The configured audiences are exposed as a frozenset."""
    with Validator(**{**BASE, "audience": ["a", "b"]}) as validator:
        assert validator.audiences == frozenset({"a", "b"})


def test_http_client_type_checked() -> None:
    """A client of the wrong kind is refused, naming http_client."""
    with pytest.raises(ConfigurationError, match=r"^http_client"):
        Validator(http_client=object(), **BASE)  # type: ignore[arg-type]
    with httpx.Client() as client, pytest.raises(ConfigurationError, match=r"^http_client"):
        AsyncValidator(http_client=client, **BASE)  # type: ignore[arg-type]


def test_given_client_is_not_closed() -> None:
    """A caller's httpx.Client stays open after the validator closes."""
    with httpx.Client() as client:
        Validator(http_client=client, **BASE).close()
        assert not client.is_closed


@pytest.mark.anyio
async def test_async_client_lifecycle() -> None:
    """AsyncValidator closes its own client on exit and leaves a given one open."""
    async with AsyncValidator(**BASE) as validator:
        own = validator._client
    assert own.is_closed
    async with httpx.AsyncClient() as client:
        await AsyncValidator(http_client=client, **BASE).aclose()
        assert not client.is_closed


def test_typed_keywords_match_the_declaration() -> None:
    """The typed keyword lists (for mypy and IDEs) name exactly the declared settings."""
    import typing

    from apiguard._core import CONFIG_SETTINGS, POLICY_SETTINGS, Settings
    from apiguard.issuers import PolicySettings

    assert set(PolicySettings.__annotations__) == set(POLICY_SETTINGS)
    assert set(typing.get_type_hints(Settings)) == set(POLICY_SETTINGS) | set(CONFIG_SETTINGS)
    for name, info in {**POLICY_SETTINGS, **CONFIG_SETTINGS}.items():
        assert Settings.__annotations__[name].__forward_arg__ == info.annotation, name
        assert info.doc, name


def test_validator_docstring_lists_every_setting() -> None:
    """The Validator's docstring is generated from the declaration: every setting is in it."""
    from apiguard._core import CONFIG_SETTINGS, POLICY_SETTINGS

    doc = Validator.__doc__ or ""
    for name in {**POLICY_SETTINGS, **CONFIG_SETTINGS}:
        assert f"\n    {name}: " in doc, name


def test_unknown_keyword_is_a_type_error() -> None:
    """A misspelt keyword fails as Python's own calls do, naming it."""
    with pytest.raises(TypeError, match="unexpected keyword argument 'leway'"):
        Validator(**BASE, leway=5)  # type: ignore[call-arg]


def test_transport_makes_an_owned_client() -> None:
    """transport= gives the validator a client of its own, closed with it; not with http_client."""
    transport = httpx.MockTransport(lambda request: httpx.Response(404))
    validator = Validator(transport=transport, **BASE)
    own = validator._client
    validator.close()
    assert own.is_closed
    with httpx.Client() as client, pytest.raises(ConfigurationError, match=r"^transport: "):
        Validator(http_client=client, transport=transport, **BASE)
    with pytest.raises(ConfigurationError, match=r"^transport: "):
        Validator(transport=object(), **BASE)  # type: ignore[arg-type]
