"""RFC 6750 without I/O: read the token from the Authorization header, render the answers.

The one request path (:mod:`apiguard._request`, which every framework layer drives) calls
:func:`extract_token` on the request's ``Authorization`` header values, and every layer
renders whatever apiguard raised with :func:`render_error`, so they all answer the same
status, ``WWW-Authenticate`` header and JSON body. With DPoP (RFC 9449) on,
:func:`extract_credentials` also reads the ``DPoP`` scheme, and the answers carry the
``DPoP`` challenge of RFC 9449 §7.1 (and ``DPoP-Nonce`` when a nonce is asked).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl

from .errors import (
    RFC6750_TEXT,
    ApiguardError,
    BearerError,
    ConfigurationError,
    InsufficientScope,
    InsufficientUserAuthentication,
    InvalidRequest,
    MissingToken,
    ServiceUnavailable,
    UseDPoPNonce,
)

__all__ = [
    "DEFAULT_REALM",
    "ErrorResponse",
    "challenge",
    "extract_credentials",
    "extract_token",
    "is_b64token",
    "pick_realm",
    "query_names_token",
    "render_error",
]

# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64CHARS: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"
# RFC 6750 §3: realm, error_description and scope values are restricted to these bytes.
_QUOTABLE: Final = RFC6750_TEXT


def extract_token(authorization: Sequence[str] | str | None) -> str:
    """Return the bearer token from the ``Authorization`` header value(s).

    Repeated headers are read as RFC 9110 §5.3 lets a recipient combine them (joined with
    ``", "``), which is what a WSGI server hands on anyway; so every layer decides the same
    way whether its server kept the repeats (ASGI) or joined them (WSGI).

    Args:
        authorization: the header's value, or all of its values when the request repeated
            it (ASGI keeps repeats; pass them all so that a repeat is refused), or None.

    Raises:
        MissingToken: no header, or no bearer credentials in it (``Basic``, ``DPoP``...).
        InvalidRequest: ``Bearer`` with an empty value or one that is not a single RFC 6750
            ``b64token``, or a bearer credential next to another (a repeated header).

    >>> extract_token("Bearer abc.def.ghi")
    'abc.def.ghi'
    """
    return extract_credentials(authorization)[1]


_BEARER_ONLY: Final = {"bearer": "Bearer"}
_BEARER_OR_DPOP: Final = {"bearer": "Bearer", "dpop": "DPoP"}


def extract_credentials(
    authorization: Sequence[str] | str | None, *, dpop: bool = False
) -> tuple[str, str]:
    """Return the scheme (``"Bearer"`` or ``"DPoP"``) and the token of the request.

    Args:
        authorization: as for :func:`extract_token`.
        dpop: also read the ``DPoP`` scheme (RFC 9449 §7.1), whose token has the same
            syntax (``token68``).

    Raises:
        MissingToken: no header, or a scheme not read (``Basic``; ``DPoP`` unless
            ``dpop``).
        InvalidRequest: as for :func:`extract_token`.

    >>> extract_credentials("DPoP abc.def.ghi", dpop=True)
    ('DPoP', 'abc.def.ghi')
    """
    if authorization is None:
        raise MissingToken("no Authorization header")
    if isinstance(authorization, str):
        value = authorization
    else:
        if not authorization:
            raise MissingToken("no Authorization header")
        value = ", ".join(authorization)
    return _parse_credentials(value, dpop)


@functools.lru_cache(maxsize=256)
def _parse_credentials(value: str, dpop: bool) -> tuple[str, str]:
    """The scheme and token in one ``Authorization`` value (a pure function of it).

    Remembered for the last few values: a client sends its token again and again, and
    the token comes back as the very string it was before, whose hash the verified-token
    cache then finds already computed. A refused value raises again every time.
    """
    schemes = _BEARER_OR_DPOP if dpop else _BEARER_ONLY
    scheme, _, rest = value.strip(" \t").partition(" ")
    name = schemes.get(scheme.lower())
    if name is None:
        if "," in value and any(_is_ours(part, schemes) for part in value.split(",")):
            raise InvalidRequest("token credentials sent along with others")
        raise MissingToken("Authorization header uses another scheme")
    token = rest.strip(" \t")
    if not token:
        raise InvalidRequest("empty token")
    if not is_b64token(token):
        if "," in token:
            raise InvalidRequest("Authorization header sent more than once")
        raise InvalidRequest("the token is not a single b64token")
    return name, token


def is_b64token(value: str) -> bool:
    """Whether ``value`` is an RFC 6750 ``b64token``: ``1*( ALPHA / DIGIT / "-" / "." / "_" /
    "~" / "+" / "/" ) *"="``.

    What ``re.fullmatch`` of that grammar says, in one C-level pass (a table deletes every
    allowed byte): half the regex's cost on a 700-character token, on every request.

    >>> is_b64token("eyJ.eyJ.sig=="), is_b64token("a b"), is_b64token("==")
    (True, False, False)
    """
    body = value.rstrip("=")
    return bool(body) and body.isascii() and not body.encode("ascii").translate(None, _B64CHARS)


def _is_ours(credentials: str, schemes: dict[str, str]) -> bool:
    scheme, _, _ = credentials.strip(" \t").partition(" ")
    return scheme.lower() in schemes


def query_names_token(query: str | bytes) -> bool:
    """Tell whether a URL query string carries an ``access_token`` parameter.

    apiguard reads tokens from the ``Authorization`` header only (RFC 6750 §2.1); a token
    sent there *and* in the query is two methods at once, which RFC 6750 §2 forbids, so the
    layers refuse such a request (400) instead of guessing. Names are compared as frameworks
    parse them: after percent-decoding, so ``access%5Ftoken`` counts too.

    >>> query_names_token(b"page=2&access_token=abc")
    True
    """
    text = query.decode("latin-1") if isinstance(query, bytes) else query
    # Most queries cannot name the parameter at all; those skip the parsing.
    if "access_token" not in text and "%" not in text:
        return False
    return any(name == "access_token" for name, _ in parse_qsl(text, keep_blank_values=True))


class _DefaultRealm:
    def __repr__(self) -> str:
        return "DEFAULT_REALM"


#: The realm setting that means "the API's one audience, or ``"api"`` if it has several".
DEFAULT_REALM: Final[Any] = _DefaultRealm()


def pick_realm(setting: object, audiences: Collection[str], *, name: str = "realm") -> str | None:
    """The ``realm`` for challenges from a setting, checked once at configuration time.

    Args:
        setting: a realm, None for challenges without one, or :data:`DEFAULT_REALM`.
        audiences: the validator's audiences, for the default.
        name: the setting's name, for the error message.

    Raises:
        ConfigurationError: the realm is not printable ASCII without ``"`` or ``\\``.
    """
    if setting is DEFAULT_REALM:
        setting = next(iter(audiences)) if len(audiences) == 1 else "api"
    if setting is None:
        return None
    if not isinstance(setting, str) or not _QUOTABLE.fullmatch(setting):
        raise ConfigurationError(
            f"{name}: must be printable ASCII without '\"' or '\\', not {setting!r}"
        )
    return setting


def _quoted(value: str) -> str:
    if not _QUOTABLE.fullmatch(value):
        # Only apiguard's own fixed text and the application's scope names get here; refuse
        # to build a header that would be ill-formed rather than escape it differently.
        raise ValueError(f"not allowed in a WWW-Authenticate parameter: {value!r}")
    return f'"{value}"'


def challenge(
    error: BearerError, realm: str | None = None, resource_metadata: str | None = None
) -> str:
    """The ``WWW-Authenticate`` value for ``error`` (RFC 6750 §3, RFC 9449 §7.1).

    A request without credentials gets a bare challenge (no ``error``); the others carry
    ``error`` and ``error_description``, :class:`InsufficientScope` the ``scope``, and
    :class:`InsufficientUserAuthentication` the ``acr_values`` and ``max_age`` a new sign-in
    must meet (RFC 9470 §3). ``resource_metadata`` (RFC 9728 §5.1) is the URL of the API's
    protected-resource metadata, checked when the layer started
    (:func:`apiguard.metadata.resource_metadata`).
    When the request path marked the error for an API that accepts DPoP, the value holds
    a ``DPoP`` challenge with ``algs`` (after the ``Bearer`` one while Bearer is still
    accepted), and the error parameters go on the scheme they concern: the DPoP errors'
    on ``DPoP``, the others' on the scheme the request used.

    >>> challenge(MissingToken(), realm="api")
    'Bearer realm="api"'
    """
    head = [f"realm={_quoted(realm)}"] if realm is not None else []
    params: list[str] = []
    if error.error is not None:
        params.append(f"error={_quoted(error.error)}")
        params.append(f"error_description={_quoted(error.description)}")
    for name, value in _extra(error):
        params.append(f"{name}={_quoted(value)}")
    tail = [] if resource_metadata is None else [f"resource_metadata={_quoted(resource_metadata)}"]
    algs = error.dpop_algs
    if algs is None:
        return _scheme("Bearer", head + params + tail)
    bearer = error.bearer_offered
    target = error.scheme or error.request_scheme or "Bearer"
    if not bearer:
        target = "DPoP"
    dpop = _scheme(
        "DPoP", head + (params if target == "DPoP" else []) + tail + [f"algs={_quoted(algs)}"]
    )
    if not bearer and target == "DPoP":
        return dpop
    return _scheme("Bearer", head + (params if target == "Bearer" else []) + tail) + ", " + dpop


def _scheme(name: str, params: list[str]) -> str:
    return f"{name} " + ", ".join(params) if params else name


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """Everything a framework needs to answer a failed request."""

    status_code: int
    headers: dict[str, str]
    body: bytes

    @property
    def media_type(self) -> str:
        """The body's media type."""
        return "application/json"


def render_error(
    error: ApiguardError, realm: str | None = None, resource_metadata: str | None = None
) -> ErrorResponse:
    """Render the HTTP answer for an error apiguard raised during a request.

    Args:
        error: a :class:`BearerError` (400/401/403 with a challenge) or a
            :class:`ServiceUnavailable` such as :class:`KeySetUnavailable` (503 with
            ``Retry-After``).
        realm: the ``realm`` of the challenge, or None for none.
        resource_metadata: the URL of the protected-resource metadata (RFC 9728) that
            every challenge points at, or None when the API serves none.

    Raises:
        TypeError: for other errors (a :class:`ConfigurationError` is a start-up bug,
            not something to answer a client with).
    """
    if isinstance(error, BearerError):
        # The body mirrors the challenge: no error code when the request had no credentials.
        body = {"error_description": error.description}
        if error.error is not None:
            body = {"error": error.error, **body}
        body.update(_extra(error))
        headers = {
            "WWW-Authenticate": challenge(error, realm, resource_metadata),
            "Cache-Control": "no-store",
        }
        if isinstance(error, UseDPoPNonce):
            headers["DPoP-Nonce"] = error.nonce
        return ErrorResponse(error.status_code, headers, _json(body))
    if isinstance(error, ServiceUnavailable):
        body = {"error": "temporarily_unavailable", "error_description": error.description}
        headers = {"Retry-After": str(error.retry_after), "Cache-Control": "no-store"}
        return ErrorResponse(error.status_code, headers, _json(body))
    raise TypeError(f"{error.__class__.__name__} is not an HTTP answer")


def _extra(error: BearerError) -> list[tuple[str, str]]:
    """The parameters beyond ``error`` and ``error_description``, for header and body alike."""
    if isinstance(error, InsufficientScope) and error.required:
        return [("scope", " ".join(error.required))]
    if isinstance(error, InsufficientUserAuthentication):
        extra = []
        if error.acr_values:
            extra.append(("acr_values", " ".join(error.acr_values)))
        if error.max_age is not None:
            extra.append(("max_age", str(error.max_age)))
        return extra
    return []


def _json(body: dict[str, str]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode("utf-8")
