"""Protected-resource metadata (RFC 9728): the document, its URL, and the challenge parameter."""

from __future__ import annotations

import json
from typing import Any

import pytest

from apiguard import ConfigurationError, InsufficientScope, InvalidToken, MissingToken
from apiguard.bearer import challenge, render_error
from apiguard.dpop import DPoPPolicy
from apiguard.metadata import WELL_KNOWN_PATH, ProtectedResource, metadata_url, resource_metadata

API = "https://organizer.example/api"


def build(**options: Any) -> Any:
    options.setdefault("resource", API)
    options.setdefault("audiences", {options["resource"]})
    options.setdefault("authorization_servers", ["https://tenant.example/"])
    return resource_metadata(**options)


@pytest.mark.parametrize(
    ("resource", "url"),
    [
        pytest.param(
            "https://api.example/resource1",
            "https://api.example/.well-known/oauth-protected-resource/resource1",
            id="rfc9728-example",
        ),
        pytest.param(
            "https://api.example",
            "https://api.example/.well-known/oauth-protected-resource",
            id="no-path",
        ),
        pytest.param(
            "https://api.example/",
            "https://api.example/.well-known/oauth-protected-resource",
            id="terminating-slash-after-host-removed",
        ),
        pytest.param(
            "https://api.example/v1/mcp",
            "https://api.example/.well-known/oauth-protected-resource/v1/mcp",
            id="deep-path",
        ),
        pytest.param(
            "https://api.example/api/",
            "https://api.example/.well-known/oauth-protected-resource/api/",
            id="path-trailing-slash-kept",
        ),
        pytest.param(
            "http://127.0.0.1:8003/mcp",
            "http://127.0.0.1:8003/.well-known/oauth-protected-resource/mcp",
            id="loopback-with-port",
        ),
    ],
)
def test_metadata_url_inserts_the_well_known_path(resource: str, url: str) -> None:
    """The well-known path goes between the host and the resource's path (RFC 9728 §3.1)."""
    assert metadata_url(resource) == url
    assert build(resource=resource).url == url


def test_paths_served_include_the_bare_well_known_path() -> None:
    """A resource with a path is served at the §3.1 path and at the bare well-known path."""
    assert build().paths == ("/.well-known/oauth-protected-resource/api", WELL_KNOWN_PATH)
    assert build(resource="https://api.example").paths == (WELL_KNOWN_PATH,)


def test_document_has_every_member_that_has_a_value() -> None:
    """The JSON object names the resource, its servers, scopes, methods and links."""
    meta = build(
        scopes_supported=["read:tasks", "read:appointments", "read:tasks"],
        resource_name="Organizer API",
        resource_documentation="https://organizer.example/docs",
        dpop_signing_alg_values_supported=["ES256"],
    )
    assert meta.document() == {
        "resource": API,
        "authorization_servers": ["https://tenant.example/"],
        "scopes_supported": ["read:appointments", "read:tasks"],
        "bearer_methods_supported": ["header"],
        "dpop_signing_alg_values_supported": ["ES256"],
        "resource_name": "Organizer API",
        "resource_documentation": "https://organizer.example/docs",
    }
    minimal = build().document()
    assert "scopes_supported" not in minimal
    assert "resource_documentation" not in minimal


def test_render_is_public_cacheable_json() -> None:
    """The answer is the document as JSON, cacheable by anyone for max_age seconds."""
    body, headers = build(max_age=600).render()
    assert json.loads(body)["resource"] == API
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "public, max-age=600"


def test_with_scopes_merges_sorted_without_repeats() -> None:
    """Scopes added later (as routes declare them) join the document's scopes_supported."""
    meta = build(scopes_supported=["b"]).with_scopes(["c", "a", "b"])
    assert meta.scopes_supported == ("a", "b", "c")
    assert json.loads(meta.render()[0])["scopes_supported"] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param(
            {"audiences": {"https://other.example/api"}},
            "must equal one of the audiences",
            id="resource-not-an-audience",
        ),
        pytest.param({"resource": "http://api.example/api"}, "https", id="plain-http-not-loopback"),
        pytest.param({"resource": "https://api.example/api#x"}, "fragment", id="fragment"),
        pytest.param({"resource": "https://api.example/api?x=1"}, "query", id="query"),
        pytest.param({"resource": "/api"}, "absolute", id="relative"),
        pytest.param({"resource": 'https://api.example/"x'}, "printable", id="quote"),
        pytest.param({"authorization_servers": []}, "at least one", id="no-servers"),
        pytest.param(
            {"authorization_servers": ["ftp://x.example/"]}, "https", id="server-not-http"
        ),
        pytest.param({"scopes_supported": ["read tasks"]}, "scope token", id="scope-space"),
        pytest.param({"scopes_supported": "read:tasks"}, "one by one", id="scopes-a-string"),
        pytest.param(
            {"resource_documentation": "javascript:alert(1)"}, "https", id="doc-not-https"
        ),
        pytest.param({"max_age": -1}, "max_age", id="negative-max-age"),
        pytest.param({"max_age": True}, "max_age", id="bool-max-age"),
        pytest.param({"resource_name": ""}, "resource_name", id="empty-name"),
    ],
)
def test_bad_settings_fail_at_start_up(options: dict[str, Any], message: str) -> None:
    """Every member is checked when the layer starts, with a message naming the setting."""
    with pytest.raises(ConfigurationError, match=message):
        build(**options)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(
            MissingToken(),
            'Bearer realm="api", resource_metadata="https://x.example/m"',
            id="missing-token-bare",
        ),
        pytest.param(
            InvalidToken(),
            'Bearer realm="api", error="invalid_token", '
            'error_description="The access token is invalid", '
            'resource_metadata="https://x.example/m"',
            id="invalid-token",
        ),
        pytest.param(
            InsufficientScope(["read:tasks"]),
            'Bearer realm="api", error="insufficient_scope", '
            'error_description="The access token lacks a required scope", scope="read:tasks", '
            'resource_metadata="https://x.example/m"',
            id="insufficient-scope",
        ),
    ],
)
def test_challenge_carries_resource_metadata(error: Any, expected: str) -> None:
    """Each challenge ends with resource_metadata when the API serves its metadata."""
    assert challenge(error, "api", "https://x.example/m") == expected
    answer = render_error(error, "api", "https://x.example/m")
    assert answer.headers["WWW-Authenticate"] == expected


def test_challenge_without_metadata_is_unchanged() -> None:
    """Without metadata the challenge has no resource_metadata parameter."""
    assert challenge(MissingToken(), "api") == 'Bearer realm="api"'


@pytest.mark.parametrize(
    ("dpop", "algorithms", "required"),
    [
        pytest.param("off", None, None, id="off"),
        pytest.param("allowed", ["ES256", "EdDSA"], None, id="allowed"),
        pytest.param("required", ["ES256", "EdDSA"], True, id="required"),
    ],
)
def test_dpop_settings_are_advertised(
    local_issuer_factory: Any, dpop: str, algorithms: list[str] | None, required: bool | None
) -> None:
    """With DPoP on, the document lists the proof algorithms (and says when it is required)."""
    issuer = local_issuer_factory(audience=API)
    policy = DPoPPolicy(mode=dpop, algorithms=["ES256", "EdDSA"])  # type: ignore[arg-type]
    with issuer.validator(dpop=policy) as validator:
        document = ProtectedResource(API).bind(validator).document()
    assert document.get("dpop_signing_alg_values_supported") == algorithms
    assert document.get("dpop_bound_access_tokens_required") == required
    assert document["bearer_methods_supported"] == ["header"]
