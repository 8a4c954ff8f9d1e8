"""Protected-resource metadata (RFC 9728) without I/O: the document, where it lives, its answer.

An API tells clients where to get tokens for it: ``/.well-known/oauth-protected-resource``
names the resource identifier (the audience tokens must carry), the authorization servers
that issue them, the scopes the API knows, how tokens are sent, and documentation links. Every
``WWW-Authenticate`` challenge then points at that document with ``resource_metadata="..."``
(RFC 9728 §5.1), which is how MCP clients and other discovering clients find their way in.

Every framework layer builds one :class:`ResourceMetadata` with :func:`resource_metadata` at
start-up (so a wrong setting fails there, not per request) and serves :meth:`~ResourceMetadata.
render` at the paths :attr:`~ResourceMetadata.paths` lists.

>>> meta = resource_metadata(
...     resource="https://organizer.example/api",
...     audiences={"https://organizer.example/api"},
...     authorization_servers=["https://tenant.example/"],
...     scopes_supported=["read:appointments"],
... )
>>> meta.url
'https://organizer.example/.well-known/oauth-protected-resource/api'
>>> meta.document()["resource"]
'https://organizer.example/api'
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import urlsplit

from .claims import check_scope_names
from .errors import ConfigurationError

if TYPE_CHECKING:
    from .dpop import DPoPGate

__all__ = [
    "REQUIREMENT_ATTRIBUTE",
    "WELL_KNOWN_PATH",
    "ProtectedResource",
    "ResourceMetadata",
    "declared_scopes",
    "metadata_url",
    "protected_resource",
    "resource_metadata",
]

#: The well-known path suffix RFC 9728 §3 registers.
WELL_KNOWN_PATH: Final = "/.well-known/oauth-protected-resource"
#: How long clients and caches may keep the document (seconds) unless told otherwise.
DEFAULT_MAX_AGE: Final = 3600
_LOOPBACK: Final = frozenset({"localhost", "127.0.0.1", "::1"})
# What may stand inside a quoted WWW-Authenticate parameter (RFC 6750 §3 charset).
_QUOTABLE: Final = re.compile(r"[\x20\x21\x23-\x5B\x5D-\x7E]+")


def _check_url(name: str, value: object, *, resource: bool = False) -> str:
    """An absolute https URL (plain http for loopback hosts only), without a fragment."""
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{name}: must be a non-empty URL string")
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        raise ConfigurationError(f"{name}: {value!r} is not a URL") from None
    if parts.scheme not in ("https", "http") or not host:
        raise ConfigurationError(f"{name}: must be an absolute https URL, not {value!r}")
    if parts.scheme == "http" and host not in _LOOPBACK and not host.startswith("127."):
        raise ConfigurationError(f"{name}: must be https (http only for loopback hosts)")
    if parts.fragment or value.endswith("#"):
        raise ConfigurationError(f"{name}: must not have a fragment")
    if resource and (parts.query or value.endswith("?")):
        # RFC 9728 §3.1 would put the query after the well-known path, where no router
        # matches it; an identifier with a query is refused rather than served wrongly.
        raise ConfigurationError(f"{name}: must not have a query")
    if not _QUOTABLE.fullmatch(value):
        raise ConfigurationError(f"{name}: must be printable ASCII without '\"' or '\\'")
    return value


def metadata_url(resource: str) -> str:
    """The URL of the metadata document of ``resource`` (RFC 9728 §3.1).

    The well-known path goes between the host and the resource's path; a resource without a
    path (or with only ``/``) has its document at the well-known path itself.

    >>> metadata_url("https://api.example/v1/mcp")
    'https://api.example/.well-known/oauth-protected-resource/v1/mcp'
    >>> metadata_url("https://api.example/")
    'https://api.example/.well-known/oauth-protected-resource'
    """
    parts = urlsplit(resource)
    path = "" if parts.path == "/" else parts.path
    return f"{parts.scheme}://{parts.netloc}{WELL_KNOWN_PATH}{path}"


@dataclass(frozen=True, slots=True)
class ResourceMetadata:
    """One protected resource's RFC 9728 document, checked once at start-up.

    Build it with :func:`resource_metadata`, which validates every member.

    Attributes:
        resource: the resource identifier (RFC 8707), equal to an audience of the validator.
        authorization_servers: issuer identifiers of the servers that issue its tokens.
        scopes_supported: the scopes the API knows, or None to leave the member out.
        bearer_methods_supported: how tokens are sent; apiguard reads the header only.
        dpop_signing_alg_values_supported: the DPoP proof algorithms, when DPoP is on.
        dpop_bound_access_tokens_required: whether only DPoP-bound tokens are accepted.
        resource_name: a human-readable name.
        resource_documentation: a URL of documentation for developers.
        resource_policy_uri: a URL of the API's data-use policy.
        resource_tos_uri: a URL of its terms of service.
        max_age: seconds the document may be cached.
        scopes_from_routes: whether ``scopes_supported`` is to be gathered from the scopes
            the routes declare (:meth:`with_route_scopes`), as no list was configured.
    """

    resource: str
    authorization_servers: tuple[str, ...] = ()
    scopes_supported: tuple[str, ...] | None = None
    bearer_methods_supported: tuple[str, ...] = ("header",)
    dpop_signing_alg_values_supported: tuple[str, ...] = ()
    dpop_bound_access_tokens_required: bool = False
    resource_name: str | None = None
    resource_documentation: str | None = None
    resource_policy_uri: str | None = None
    resource_tos_uri: str | None = None
    max_age: int = DEFAULT_MAX_AGE
    scopes_from_routes: bool = False
    _body: bytes = field(default=b"", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_body", json.dumps(self.document()).encode("utf-8"))

    @property
    def url(self) -> str:
        """Where clients fetch the document: the ``resource_metadata`` of every challenge."""
        return metadata_url(self.resource)

    @property
    def path(self) -> str:
        """The path of :attr:`url`, on the API's own server."""
        return urlsplit(self.url).path

    @property
    def paths(self) -> tuple[str, ...]:
        """Every path the document is served at: :attr:`path`, and the bare well-known path.

        The bare path serves clients that look there first (it names one resource per
        server, which is what an apiguard layer protects).
        """
        return (self.path,) if self.path == WELL_KNOWN_PATH else (self.path, WELL_KNOWN_PATH)

    def document(self) -> dict[str, Any]:
        """The JSON object, members with no value left out."""
        doc: dict[str, Any] = {"resource": self.resource}
        if self.authorization_servers:
            doc["authorization_servers"] = list(self.authorization_servers)
        if self.scopes_supported is not None:
            doc["scopes_supported"] = list(self.scopes_supported)
        doc["bearer_methods_supported"] = list(self.bearer_methods_supported)
        if self.dpop_signing_alg_values_supported:
            doc["dpop_signing_alg_values_supported"] = list(self.dpop_signing_alg_values_supported)
        if self.dpop_bound_access_tokens_required:
            doc["dpop_bound_access_tokens_required"] = True
        for name in (
            "resource_name",
            "resource_documentation",
            "resource_policy_uri",
            "resource_tos_uri",
        ):
            value = getattr(self, name)
            if value is not None:
                doc[name] = value
        return doc

    def render(self) -> tuple[bytes, dict[str, str]]:
        """The body and headers of the answer to a GET of the document (200, JSON).

        Public and cacheable: it holds nothing secret and is the same for every client.
        """
        headers = {
            "Content-Type": "application/json",
            "Cache-Control": f"public, max-age={self.max_age}",
            # Browser-based clients (MCP inspectors, SPAs) read it across origins.
            "Access-Control-Allow-Origin": "*",
        }
        return self._body, headers

    def with_route_scopes(self, scopes: Iterable[str]) -> ResourceMetadata:
        """The document with the routes' scopes, when it gathers them (else unchanged)."""
        return self.with_scopes(scopes) if self.scopes_from_routes else self

    def with_scopes(self, scopes: Iterable[str]) -> ResourceMetadata:
        """A copy whose ``scopes_supported`` adds ``scopes`` (sorted, without repeats)."""
        names = check_scope_names(scopes, name="scopes_supported")
        merged = sorted({*(self.scopes_supported or ()), *names})
        return replace(self, scopes_supported=tuple(merged))


def resource_metadata(
    *,
    resource: str,
    audiences: Collection[str],
    authorization_servers: Iterable[str],
    scopes_supported: Iterable[str] | None = None,
    dpop_signing_alg_values_supported: Iterable[str] = (),
    dpop_bound_access_tokens_required: bool = False,
    resource_name: str | None = None,
    resource_documentation: str | None = None,
    resource_policy_uri: str | None = None,
    resource_tos_uri: str | None = None,
    max_age: int = DEFAULT_MAX_AGE,
    scopes_from_routes: bool = False,
) -> ResourceMetadata:
    """Build and check a protected resource's metadata, for a layer's start-up.

    Args:
        resource: the resource identifier: an absolute https URL (http for loopback hosts),
            without fragment or query. It must be one of ``audiences``: a client asks the
            authorization server for a token for this resource (RFC 8707), and the token
            then carries it as its audience.
        audiences: the audiences the validator accepts.
        authorization_servers: the issuers whose tokens the API accepts (at least one).
        scopes_supported: the scopes the API's routes declare, or None to leave them out.
        dpop_signing_alg_values_supported: DPoP proof algorithms, when DPoP is on.
        dpop_bound_access_tokens_required: True when only DPoP-bound tokens are accepted.
        resource_name: a name for people.
        resource_documentation, resource_policy_uri, resource_tos_uri: https URLs.
        max_age: seconds clients may cache the document (0 to 86400).
        scopes_from_routes: gather ``scopes_supported`` from the routes later.

    Raises:
        ConfigurationError: a member is not of its form, or ``resource`` is no audience.
    """
    resource = _check_url("resource", resource, resource=True)
    if resource not in audiences:
        raise ConfigurationError(
            f"resource: {resource!r} must equal one of the audiences tokens are checked for "
            f"({', '.join(sorted(audiences)) or 'none'}): clients ask for tokens for it"
        )
    servers = tuple(_check_url("authorization_servers", s) for s in authorization_servers)
    if not servers:
        raise ConfigurationError("authorization_servers: name at least one issuer")
    scopes = None
    if scopes_supported is not None:
        names = check_scope_names(scopes_supported, name="scopes_supported")
        scopes = tuple(sorted(set(names)))
    algs = tuple(dpop_signing_alg_values_supported)
    documentation, policy, tos = (
        _check_url(name, value) if value is not None else None
        for name, value in (
            ("resource_documentation", resource_documentation),
            ("resource_policy_uri", resource_policy_uri),
            ("resource_tos_uri", resource_tos_uri),
        )
    )
    if resource_name is not None and (not isinstance(resource_name, str) or not resource_name):
        raise ConfigurationError("resource_name: must be a non-empty string")
    if isinstance(max_age, bool) or not isinstance(max_age, int) or not 0 <= max_age <= 86400:
        raise ConfigurationError("max_age: must be whole seconds from 0 to 86400")
    return ResourceMetadata(
        resource=resource,
        authorization_servers=servers,
        scopes_supported=scopes,
        dpop_signing_alg_values_supported=algs,
        dpop_bound_access_tokens_required=dpop_bound_access_tokens_required,
        resource_name=resource_name,
        resource_documentation=documentation,
        resource_policy_uri=policy,
        resource_tos_uri=tos,
        max_age=max_age,
        scopes_from_routes=scopes_from_routes,
    )


#: Where a layer's decorators leave a route's :class:`~apiguard._request.Requirement` on
#: the function they return, so that the layer can gather the scopes routes declare.
REQUIREMENT_ATTRIBUTE: Final = "__apiguard_requirement__"


def declared_scopes(endpoints: Iterable[object]) -> list[str]:
    """The scopes the given route functions declare through apiguard's decorators.

    Follows ``__wrapped__`` through other decorators stacked on top of apiguard's.
    """
    scopes: list[str] = []
    for endpoint in endpoints:
        seen = 0
        current: object = endpoint
        while current is not None and seen < 32:  # a cycle of __wrapped__ ends here
            requirement = getattr(current, REQUIREMENT_ATTRIBUTE, None)
            scopes.extend(getattr(requirement, "scopes", ()))
            current = getattr(current, "__wrapped__", None)
            seen += 1
    return scopes


@dataclass(frozen=True, slots=True)
class ProtectedResource:
    """The protected-resource setting of every apiguard layer (RFC 9728).

    Give it to ``ApiGuard(resource=...)`` (Flask, or ``APIGUARD_RESOURCE``),
    ``BearerAuthMiddleware(resource=...)`` (ASGI) or ``Authorize(resource=...)`` (FastAPI);
    a plain URL string means ``ProtectedResource(url)``. The layer then serves the document
    at ``/.well-known/oauth-protected-resource`` (the resource's path inserted, RFC 9728
    §3.1) and puts ``resource_metadata="..."`` in every challenge.

    Args:
        resource: the resource identifier: one of the validator's audiences (checked when
            the layer starts), e.g. ``"https://organizer.example/api"``.
        authorization_servers: the issuers to advertise. Default: the validator's issuers.
        scopes_supported: the scopes to advertise. Default: the scopes the routes declare
            (where the framework lets apiguard see them).
        resource_name: a name for people.
        resource_documentation: a URL of documentation for developers.
        resource_policy_uri: a URL of the data-use policy.
        resource_tos_uri: a URL of the terms of service.
        max_age: seconds clients may cache the document.

    >>> ProtectedResource("https://organizer.example/api", resource_name="Organizer API")
    ProtectedResource(resource='https://organizer.example/api', ...)
    """

    resource: str
    authorization_servers: tuple[str, ...] | None = None
    scopes_supported: tuple[str, ...] | None = None
    resource_name: str | None = None
    resource_documentation: str | None = None
    resource_policy_uri: str | None = None
    resource_tos_uri: str | None = None
    max_age: int = DEFAULT_MAX_AGE

    def __repr__(self) -> str:
        return f"ProtectedResource(resource={self.resource!r}, ...)"

    def bind(self, validator: TokenChecker) -> ResourceMetadata:
        """The checked document for ``validator``: its audiences, issuers and DPoP settings.

        Raises:
            ConfigurationError: a member is wrong, or the resource is not an audience.
        """
        servers = self.authorization_servers
        algorithms, dpop_only = dpop_members(validator)
        return resource_metadata(
            resource=self.resource,
            audiences=validator.audiences,
            authorization_servers=validator.issuers if servers is None else servers,
            dpop_signing_alg_values_supported=algorithms,
            dpop_bound_access_tokens_required=dpop_only,
            scopes_supported=self.scopes_supported,
            resource_name=self.resource_name,
            resource_documentation=self.resource_documentation,
            resource_policy_uri=self.resource_policy_uri,
            resource_tos_uri=self.resource_tos_uri,
            max_age=self.max_age,
            scopes_from_routes=self.scopes_supported is None,
        )


class TokenChecker(Protocol):
    """What the metadata reads of a :class:`~apiguard.Validator` or its async twin."""

    @property
    def audiences(self) -> frozenset[str]: ...
    @property
    def issuers(self) -> tuple[str, ...]: ...
    @property
    def dpop(self) -> DPoPGate | None: ...


def dpop_members(validator: TokenChecker) -> tuple[tuple[str, ...], bool]:
    """The proof algorithms to advertise and whether only DPoP-bound tokens are accepted.

    Nothing when DPoP is off (RFC 9728 §2: the members describe DPoP support).
    """
    gate = validator.dpop
    if gate is None or gate.algs is None:
        return (), False
    return tuple(gate.algs.split()), not gate.offers_bearer


def protected_resource(
    setting: object, validator: TokenChecker, *, name: str
) -> ResourceMetadata | None:
    """A layer's resource setting (None, a URL, or a :class:`ProtectedResource`), checked.

    Raises:
        ConfigurationError: the setting is of another type, or wrong (see
            :meth:`ProtectedResource.bind`); the message names the setting.
    """
    if setting is None or setting == "":
        return None
    if isinstance(setting, str):
        setting = ProtectedResource(setting)
    if not isinstance(setting, ProtectedResource):
        raise ConfigurationError(
            f"{name}: give the resource identifier (a URL) or a ProtectedResource, not {setting!r}"
        )
    try:
        return setting.bind(validator)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{name}: {exc}") from None
