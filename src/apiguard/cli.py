"""The ``apiguard`` command: decode a token, check it for real, inspect an issuer's keys.

::

    apiguard decode TOKEN                      header and claims, NOT verified, no network
    apiguard check TOKEN --issuer URL --audience AUD [--scope S ...]
                                               validate as an API would, and say why not
    apiguard jwks ISSUER                       discovery, key set, cache headers, warnings
    apiguard serve [--port N] [--db FILE]      the bundled authorization server (development)

``TOKEN`` may be ``-`` to read it from standard input, which keeps it out of the shell's
history and the process list. ``decode``, ``check`` and ``jwks`` take ``--json`` for
machine-readable output.
No command ever prints the token, and ``decode`` never sends it anywhere.

Exit codes (stable, for scripts):

====  ===================================================================================
0     done: the token decoded, was accepted, or the key set has nothing to warn about
1     the verdict is negative: the token is refused (or cannot be decoded), or the key
      set has warnings
2     usage: bad arguments or settings, no token given, the server's extra not installed
3     unavailable: the issuer's metadata or keys cannot be had (network, HTTP status,
      not JSON, metadata naming another issuer, no usable key): an API would answer 503
====  ===================================================================================
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import importlib
import importlib.util
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NoReturn, TextIO

import httpx

from . import __version__
from .bearer import challenge
from .claims import AccessToken
from .errors import (
    ApiguardError,
    BearerError,
    ConfigurationError,
    InsufficientScope,
    ServiceUnavailable,
)
from .jwks import (
    BodyReader,
    FetchRequest,
    Response,
    _duplicate_kids,
    _FetchFailed,
    _json_document,
    discovery_urls,
    freshness_lifetime,
    is_safe_url,
)
from .jws import (
    ASYMMETRIC_ALGORITHMS,
    MIN_RSA_BITS,
    SUPPORTED_ALGORITHMS,
    UnusableKey,
    VerificationKey,
    b64url_decode,
    decode_compact,
    decode_json_object,
)
from .validator import Validator, _fetch

__all__ = ["EXIT_NEGATIVE", "EXIT_OK", "EXIT_UNAVAILABLE", "EXIT_USAGE", "main"]

EXIT_OK: Final = 0
EXIT_NEGATIVE: Final = 1
EXIT_USAGE: Final = 2
EXIT_UNAVAILABLE: Final = 3

#: The claims shown as dates and relative to now.
_TIME_CLAIMS: Final = ("exp", "nbf", "iat", "auth_time")
_MAX_DOCUMENT: Final = 1 << 20
_CACHE_HEADERS: Final = ("cache-control", "age", "expires", "etag", "last-modified")


class _UsageError(Exception):
    """Bad arguments: reported on stderr with exit code 2."""


class _Unavailable(Exception):
    """The issuer's metadata or keys cannot be had: exit code 3."""


# --- reading the token ----------------------------------------------------------------------


def _read_token(argument: str, stdin: TextIO) -> str:
    """The token from the argument, or from stdin for ``-``; a ``Bearer`` prefix is dropped."""
    text = stdin.read(1 << 20) if argument == "-" else argument
    token = text.strip()
    scheme, _, rest = token.partition(" ")
    if scheme.lower() == "bearer" and rest:
        token = rest.strip()
    if not token:
        raise _UsageError("no token given (pass it as an argument, or '-' to read stdin)")
    return token


# --- presenting times and text ---------------------------------------------------------------


def _span(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 90:
        return f"{round(seconds)} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 36 * 3600:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} days"


def _relative(name: str, value: float, now: float) -> str:
    delta = value - now
    ahead = delta > 0
    span = _span(delta)
    if name == "exp":
        return f"expires in {span}" if ahead else f"expired {span} ago"
    if name == "nbf":
        return f"not valid for another {span}" if ahead else f"valid since {span} ago"
    if name == "iat":
        return f"issued {span} in the future" if ahead else f"issued {span} ago"
    return f"{span} in the future" if ahead else f"{span} ago"


def _date(value: float) -> str | None:
    try:
        moment = dt.datetime.fromtimestamp(value, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _times(claims: Mapping[str, Any], now: float) -> dict[str, dict[str, Any]]:
    """The time claims as dates and relative to ``now``."""
    times: dict[str, dict[str, Any]] = {}
    for name in _TIME_CLAIMS:
        if name not in claims:
            continue
        value = claims[name]
        numeric = type(value) in (int, float)
        date = _date(value) if numeric else None
        if date is None:
            problem = "beyond the range of dates" if numeric else "not a NumericDate"
            times[name] = {"value": value, "problem": problem}
        else:
            times[name] = {
                "date": date,
                "relative": _relative(name, value, now),
                "seconds_from_now": round(value - now),
            }
    return times


def _printable(text: object, limit: int = 200) -> str:
    """Text from a token or an issuer made safe for a terminal (no escape sequences)."""
    value = str(text)
    if len(value) > limit:
        value = value[:limit] + "..."
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in value)


def _json_text(value: Any) -> str:
    # ensure_ascii escapes every control character: a hostile claim cannot drive the terminal.
    return json.dumps(value, indent=2, ensure_ascii=True, sort_keys=False)


# --- decode ---------------------------------------------------------------------------------


def _decode_segment(segment: str, what: str) -> dict[str, Any]:
    try:
        raw = b64url_decode(segment)
    except (ValueError, UnicodeError):
        raise _Refused(f"the {what} is not canonical base64url") from None
    try:
        return decode_json_object(raw)
    except ApiguardError as exc:
        raise _Refused(f"the {what} is not a strict JSON object ({exc.detail})") from None


class _Refused(Exception):
    """The token cannot be decoded at all: exit code 1."""


def decode(token: str, now: float) -> dict[str, Any]:
    """Decode ``token`` without verifying it: header, claims, times, and what apiguard thinks.

    Raises:
        _Refused: the token is not a compact JWS with JSON header and claims.
    """
    segments = token.split(".")
    if len(segments) == 5:
        header = _decode_segment(segments[0], "header")
        return {
            "verified": False,
            "header": header,
            "claims": None,
            "times": {},
            "problems": ["five segments: an encrypted JWT (JWE), whose claims cannot be read"],
        }
    if len(segments) != 3:
        raise _Refused(f"{len(segments)} segments: a JWT has 3 (header.claims.signature)")
    header = _decode_segment(segments[0], "header")
    claims = _decode_segment(segments[1], "claims")
    problems: list[str] = []
    try:
        decode_compact(token, max_size=1 << 20, algorithms=SUPPORTED_ALGORITHMS)
    except ApiguardError as exc:
        problems.append(f"apiguard refuses it before any key is looked at: {exc.detail}")
    return {
        "verified": False,
        "header": header,
        "claims": claims,
        "times": _times(claims, now),
        "problems": problems,
    }


def _print_decoded(result: Mapping[str, Any], out: TextIO) -> None:
    out.write("NOT VERIFIED - anyone can write these; use 'apiguard check' to validate.\n\n")
    out.write("Header\n" + _json_text(result["header"]) + "\n\n")
    if result["claims"] is not None:
        out.write("Claims\n" + _json_text(result["claims"]) + "\n")
    if result["times"]:
        out.write("\nTimes\n")
        for name, entry in result["times"].items():
            if "problem" in entry:
                out.write(f"  {name:<10} {_printable(entry['value'])} ({entry['problem']})\n")
            else:
                out.write(f"  {name:<10} {entry['date']} ({entry['relative']})\n")
    for problem in result["problems"]:
        out.write(f"\nwarning: {_printable(problem)}\n")


# --- check ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    """How ``check`` explains one failure reason."""

    rule: str
    fix: str
    #: The token's side of the comparison, read from its (now untrusted) claims or header.
    got: Callable[[Mapping[str, Any], Mapping[str, Any]], Any] | None = None


def _claim(name: str) -> Callable[[Mapping[str, Any], Mapping[str, Any]], Any]:
    return lambda header, claims: claims.get(name, "(absent)")


def _when(name: str, value: Any) -> Any:
    """A time claim as a date with its relative time, or as it is when it is not one."""
    date = _date(value) if type(value) in (int, float) else None
    return value if date is None else f"{date} ({_relative(name, value, time.time())})"


def _header(name: str) -> Callable[[Mapping[str, Any], Mapping[str, Any]], Any]:
    return lambda header, claims: header.get(name, "(absent)")


_RULES: Final[dict[str, _Rule]] = {
    "malformed_token": _Rule(
        "a token is a compact JWS: three base64url segments with a JSON header and claims",
        "pass the access token itself, not an ID token, a refresh token or an opaque token",
    ),
    "unsupported_token_type": _Rule(
        "a token is a signed JWT (JWS), not an encrypted or nested one",
        "ask the authorization server for a JWT access token (Auth0: request an audience)",
    ),
    "algorithm_not_allowed": _Rule(
        "alg must be one of the allowed algorithms and fit the key it names",
        "allow the issuer's algorithm with --algorithm; HS256 needs the API's --shared-secret",
        _header("alg"),
    ),
    "unsupported_critical_header": _Rule(
        "no header may list critical extensions (crit) that apiguard does not implement",
        "have the issuer sign plain JWT access tokens",
        _header("crit"),
    ),
    "unknown_signing_key": _Rule(
        "kid must name exactly one key in the issuer's key set",
        "check that --issuer is the server that signed the token ('apiguard jwks ISSUER' "
        "lists its kids); a token signed with a revoked key cannot be verified",
        _header("kid"),
    ),
    "invalid_signature": _Rule(
        "the signature must verify with the issuer's key",
        "the token was altered, or another server signed it with the same kid",
        _header("kid"),
    ),
    "wrong_token_type": _Rule(
        "typ must be absent, JWT or at+jwt (at+jwt with --token-type at+jwt); ID tokens are "
        "refused",
        "send the access token, not the ID token",
        _header("typ"),
    ),
    "token_expired": _Rule(
        "exp (and, with a max token age, iat) must not be in the past, beyond the leeway",
        "get a new token",
        lambda header, claims: _when("exp", claims.get("exp")),
    ),
    "token_not_yet_valid": _Rule(
        "nbf and iat must not be in the future, beyond the leeway",
        "check the clocks of the issuer and of this machine",
        lambda header, claims: {n: claims[n] for n in ("nbf", "iat") if n in claims},
    ),
    "wrong_issuer": _Rule(
        "iss must equal the issuer exactly (a trailing slash counts)",
        "pass --issuer exactly as the token's iss, if you trust that issuer",
        _claim("iss"),
    ),
    "untrusted_issuer": _Rule(
        "iss must equal a trusted issuer exactly (a trailing slash counts); it is matched "
        "before any key is fetched",
        "pass --issuer exactly as the token's iss, if you trust that issuer",
        _claim("iss"),
    ),
    "wrong_audience": _Rule(
        "aud must name the API",
        "request the token with this API's identifier as the audience, or pass the "
        "--audience the token names",
        _claim("aud"),
    ),
    "invalid_claim": _Rule(
        "required claims must be present, of the right type and acceptable",
        "see the detail: the issuer must issue that claim as expected",
    ),
    "insufficient_scope": _Rule(
        "the token must grant the scopes the route requires",
        "grant the scope to the client at the authorization server and request it",
    ),
    "key_set_unavailable": _Rule(
        "the issuer's keys must be fetchable (discovery, then the JWKS)",
        "check that the issuer URL is right and reachable from here; 'apiguard jwks "
        "ISSUER' shows what it publishes",
    ),
}


def _expected(reason: str, args: argparse.Namespace) -> Any:
    if reason in ("wrong_issuer", "untrusted_issuer"):
        return args.issuer
    if reason == "wrong_audience":
        return args.audience[0] if len(args.audience) == 1 else sorted(args.audience)
    if reason == "algorithm_not_allowed":
        return sorted(args.algorithm or ASYMMETRIC_ALGORITHMS)
    if reason == "insufficient_scope":
        return f"{args.match} of: {' '.join(args.scope)}"
    if reason == "token_expired":
        return f"in the future (leeway {args.leeway:g} s)"
    if reason == "wrong_token_type":
        return "at+jwt" if args.token_type else "absent, JWT or at+jwt"
    return None


def _unverified(token: str) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """Header and claims as the token states them, for "got" (empty when unreadable)."""
    try:
        decoded = decode(token, time.time())
    except _Refused:
        return {}, {}
    return decoded["header"], decoded["claims"] or {}


def _granted(token: AccessToken, now: float) -> dict[str, Any]:
    return {
        "subject": token.subject,
        "client_id": token.client_id,
        "audience": list(token.audience),
        "scopes": sorted(token.scopes),
        "expires_at": _date(token.expires_at),
        "expires": _relative("exp", token.expires_at, now),
        "kid": token.header.get("kid"),
        "alg": token.header.get("alg"),
    }


def check(token: str, args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    """Validate ``token`` with a real :class:`~apiguard.Validator` and explain the verdict."""
    try:
        validator = Validator(
            issuer=args.issuer,
            audience=args.audience,
            jwks_uri=args.jwks_uri,
            algorithms=args.algorithm or None,
            leeway=args.leeway,
            token_type=args.token_type,
            timeout=args.timeout,
        )
    except ConfigurationError as exc:
        raise _UsageError(str(exc)) from None
    now = time.time()
    with validator:
        try:
            granted = validator.validate(token)
        except ApiguardError as error:
            return _explain(error, token, args)
    if args.scope and not granted.has_scopes(*args.scope, match=args.match):
        return _explain(
            InsufficientScope(args.scope, match=args.match), token, args, scopes=granted.scopes
        )
    return EXIT_OK, {
        "ok": True,
        "verdict": "accepted",
        "explanation": "signature, issuer, audience, lifetime"
        + (" and scopes" if args.scope else "")
        + " all check out",
        "token": _granted(granted, now),
    }


def _explain(
    error: ApiguardError,
    token: str,
    args: argparse.Namespace,
    *,
    scopes: frozenset[str] | None = None,
) -> tuple[int, dict[str, Any]]:
    reason = error.reason
    rule = _RULES.get(reason)
    got: Any = None
    if scopes is not None:
        got = sorted(scopes)
    elif rule is not None and rule.got is not None:
        got = rule.got(*_unverified(token))
    result: dict[str, Any] = {
        "ok": False,
        "verdict": "unavailable" if isinstance(error, ServiceUnavailable) else "refused",
        "reason": reason,
        "description": getattr(error, "description", None),
        "detail": error.detail,
        "rule": rule.rule if rule else (error.__class__.__doc__ or reason).strip().splitlines()[0],
        "expected": _expected(reason, args),
        "got": got,
        "fix": rule.fix if rule else None,
    }
    if isinstance(error, BearerError):
        result["status"] = error.status_code
        result["www_authenticate"] = challenge(error)
    elif isinstance(error, ServiceUnavailable):
        result["status"] = error.status_code
        result["retry_after"] = error.retry_after
    code = EXIT_UNAVAILABLE if isinstance(error, ServiceUnavailable) else EXIT_NEGATIVE
    return code, result


def _print_check(result: Mapping[str, Any], out: TextIO) -> None:
    if result["ok"]:
        out.write(f"ACCEPTED - {result['explanation']}.\n\n")
        for name, value in result["token"].items():
            shown = " ".join(value) if isinstance(value, list) else value
            out.write(f"  {name:<11} {_printable(shown if shown not in (None, '') else '-')}\n")
        return
    title = "UNAVAILABLE" if result["verdict"] == "unavailable" else "REFUSED"
    out.write(f"{title} - {result['reason']}: {_printable(result['description'] or '')}\n\n")
    rows = [
        ("rule", result["rule"]),
        ("detail", result["detail"]),
        ("expected", result["expected"]),
        ("got", result["got"]),
        ("what to do", result["fix"]),
    ]
    for name, value in rows:
        if value is not None:
            shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=True)
            out.write(f"  {name:<11} {_printable(shown, 400)}\n")
    if "www_authenticate" in result:
        out.write(
            f"\nAn API answers: HTTP {result['status']}\n"
            f"  WWW-Authenticate: {result['www_authenticate']}\n"
        )
    elif "status" in result:
        out.write(
            f"\nAn API answers: HTTP {result['status']}, Retry-After: {result['retry_after']}\n"
        )


# --- jwks -----------------------------------------------------------------------------------


@dataclass
class _Fetched:
    url: str
    status: int
    headers: dict[str, str]
    body: bytes


def _get(client: httpx.Client, url: str, timeout: float) -> _Fetched:
    """GET ``url`` as the validator does (its own fetch): no redirects, one deadline over
    connecting, headers and body, a size cap."""
    if not is_safe_url(url):
        raise _Unavailable(f"{_printable(url)} is not https (http only for loopback hosts)")
    reader = functools.partial(BodyReader, limit=_MAX_DOCUMENT)
    outcome = _fetch(client, FetchRequest(url, "discovery"), reader, timeout, fresh=True)
    if isinstance(outcome, Exception):
        raise _Unavailable(
            f"GET {_printable(url)} failed: {type(outcome).__name__}: {_printable(outcome)}"
        )
    headers = {name: outcome.headers[name] for name in _CACHE_HEADERS if name in outcome.headers}
    return _Fetched(url, outcome.status, headers, outcome.body)


def _document(fetched: _Fetched, what: str) -> dict[str, Any]:
    """The fetched JSON object, judged as the validator judges it."""
    try:
        return _json_document(Response(fetched.status, fetched.headers, fetched.body), what)
    except _FetchFailed as exc:
        hint = " (redirects are never followed)" if 300 <= fetched.status < 400 else ""
        raise _Unavailable(f"{_printable(fetched.url)}: {exc}{hint}") from None


@dataclass
class _KeyReport:
    index: int
    kid: str | None
    kty: str | None
    alg: str | None
    use: str | None
    size: str | None
    usable: bool
    algorithms: list[str] = field(default_factory=list)
    why: str | None = None


def _size(member: Mapping[str, Any]) -> str | None:
    kty = member.get("kty")
    try:
        if kty == "RSA":
            n = int.from_bytes(b64url_decode(member.get("n", "")), "big")
            return f"{n.bit_length()} bits"
        if kty == "oct":
            return f"{len(b64url_decode(member.get('k', ''))) * 8} bits"
    except (ValueError, UnicodeError, TypeError, AttributeError):
        return None
    crv = member.get("crv")
    return str(crv) if isinstance(crv, str) else None


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def inspect_keys(document: Mapping[str, Any]) -> tuple[list[_KeyReport], list[str]]:
    """Each member of a JWK Set as apiguard sees it, and the warnings the set deserves."""
    members = document.get("keys")
    if not isinstance(members, list):
        raise _Unavailable('the JWKS is not an object with a "keys" array')
    reports: list[_KeyReport] = []
    warnings: list[str] = []
    duplicates = _duplicate_kids(members)
    for index, member in enumerate(members, start=1):
        if not isinstance(member, dict):
            reports.append(
                _KeyReport(index, None, None, None, None, None, False, why="not a JSON object")
            )
            warnings.append(f"key #{index} is not a JSON object")
            continue
        kid = _text_or_none(member.get("kid"))
        report = _KeyReport(
            index,
            kid,
            _text_or_none(member.get("kty")),
            _text_or_none(member.get("alg")),
            _text_or_none(member.get("use")),
            _size(member),
            False,
        )
        name = f"key #{index}" + (f" ({_printable(kid, 64)})" if kid else "")
        try:
            key = VerificationKey.from_jwk(member, algorithms=ASYMMETRIC_ALGORITHMS)
        except UnusableKey as exc:
            report.why = str(exc)
        else:
            report.usable = True
            report.algorithms = sorted(key.algorithms)
        if member.get("kty") == "oct":
            warnings.append(
                f"{name} is a symmetric (oct/HS) key: a JWKS is public, so "
                "this secret is leaked; rotate it and never publish it"
            )
        elif any(name_ in member for name_ in ("d", "p", "q", "dp", "dq", "qi")):
            warnings.append(f"{name} contains private key material: rotate it at once")
        elif (
            member.get("kty") == "RSA"
            and report.size
            and int(report.size.split()[0]) < MIN_RSA_BITS
        ):
            warnings.append(
                f"{name} is a weak RSA key ({report.size}, at least "
                f"{MIN_RSA_BITS} needed): apiguard refuses it"
            )
        elif not report.usable and member.get("use", "sig") == "sig":
            warnings.append(f"{name} cannot verify signatures: {report.why}")
        if kid is None:
            warnings.append(
                f"{name} has no kid: tokens cannot name it, and with several "
                "keys apiguard cannot pick one"
            )
        elif kid in duplicates:
            warnings.append(
                f"{name}: several keys share kid {_printable(kid, 64)}; apiguard "
                "refuses tokens that name it"
            )
        reports.append(report)
    if not any(report.usable for report in reports):
        warnings.append("no key in the set can verify a signature: every token is refused")
    return reports, warnings


def inspect_issuer(issuer: str, args: argparse.Namespace) -> dict[str, Any]:
    """Discovery (unless ``--jwks-uri``), the JWKS, its cache headers, and warnings."""
    warnings: list[str] = []
    result: dict[str, Any] = {"issuer": issuer}
    with httpx.Client(follow_redirects=False, timeout=args.timeout, trust_env=False) as client:
        jwks_uri = args.jwks_uri
        if jwks_uri is None:
            fetched = None
            for url in discovery_urls(issuer):
                fetched = _get(client, url, args.timeout)
                if fetched.status != 404:
                    break
            assert fetched is not None
            metadata = _document(fetched, "the discovery document")
            result["discovery"] = {"url": fetched.url, "status": fetched.status}
            named = metadata.get("issuer")
            if named != issuer:
                result["usable"] = False
                warnings.append(
                    f"the discovery document names issuer "
                    f"{_printable(named)!r}, not {_printable(issuer)!r}: apiguard "
                    "refuses it (RFC 8414 §3.3); pass --issuer exactly as it says"
                )
            jwks_uri = metadata.get("jwks_uri")
            if not isinstance(jwks_uri, str):
                raise _Unavailable("the discovery document has no jwks_uri")
            algs = metadata.get("id_token_signing_alg_values_supported")
            if isinstance(algs, list):
                result["discovery"]["signing_algorithms"] = algs
        fetched = _get(client, jwks_uri, args.timeout)
        document = _document(fetched, "the JWKS")
    lifetime = freshness_lifetime(fetched.headers.get("cache-control"))
    keys, key_warnings = inspect_keys(document)
    result["jwks"] = {
        "url": fetched.url,
        "status": fetched.status,
        "bytes": len(fetched.body),
        "headers": fetched.headers,
        "fresh_for_seconds": lifetime,
    }
    result["keys"] = [vars(report) for report in keys]
    result["warnings"] = warnings + key_warnings
    result["usable"] = result.get("usable", True) and any(report.usable for report in keys)
    return result


def _print_issuer(result: Mapping[str, Any], out: TextIO) -> None:
    out.write(f"Issuer     {_printable(result['issuer'])}\n")
    if "discovery" in result:
        discovery = result["discovery"]
        out.write(f"Discovery  {_printable(discovery['url'])} (HTTP {discovery['status']})\n")
    jwks = result["jwks"]
    out.write(
        f"JWKS       {_printable(jwks['url'])} (HTTP {jwks['status']}, {jwks['bytes']} bytes)\n"
    )
    for name, value in jwks["headers"].items():
        out.write(f"           {name}: {_printable(value)}\n")
    out.write(f"Cache      apiguard keeps these keys fresh for {jwks['fresh_for_seconds']:g} s\n")
    out.write(f"\nKeys ({len(result['keys'])})\n")
    rows = [["kid", "kty", "alg", "size", "use", "apiguard"]]
    for key in result["keys"]:
        cells = (key["kid"], key["kty"], key["alg"], key["size"], key["use"])
        row = [_printable(cell if cell is not None else "-", 48) for cell in cells]
        verdict = (
            f"verifies {', '.join(key['algorithms'])}"
            if key["usable"]
            else f"skipped: {key['why']}"
        )
        rows.append([*row, _printable(verdict)])
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        out.write("  " + "  ".join([*padded, row[5]]) + "\n")
    if result["warnings"]:
        out.write("\nWarnings\n")
        for warning in result["warnings"]:
            out.write(f"  - {_printable(warning, 400)}\n")


# --- serve ---------------------------------------------------------------------------------


def _server_main() -> Callable[[Sequence[str]], int]:
    """The bundled server's entry point: packaged in the wheel, or a checkout's example."""
    try:
        module = importlib.import_module("apiguard._server.__main__")
    except ModuleNotFoundError as exc:
        if exc.name not in ("apiguard._server", "apiguard._server.__main__"):
            raise
        # An editable install runs the checkout's copy of the same code.
        checkout = Path(__file__).resolve().parents[2]
        if not (checkout / "examples" / "authz_server" / "__main__.py").is_file():
            raise _UsageError("the bundled server is not part of this installation") from None
        if str(checkout) not in sys.path:
            sys.path.insert(0, str(checkout))
        module = importlib.import_module("examples.authz_server.__main__")
    entry: Callable[[Sequence[str]], int] = module.main
    return entry


#: What the server imports beyond apiguard's own dependencies (the ``server`` extra).
_SERVER_MODULES: Final = ("starlette", "jinja2", "multipart", "uvicorn")


def serve(args: argparse.Namespace, err: TextIO) -> int:
    """Run the bundled authorization server until interrupted (``apiguard serve``)."""
    missing = [name for name in _SERVER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise _UsageError(f'the server needs {", ".join(missing)}: pip install "apiguard[server]"')
    entry = _server_main()
    for name, value in (("PORT", args.port), ("AUTHZ_DB", args.db), ("AUTHZ_ISSUER", args.issuer)):
        if value is not None:
            os.environ[name] = str(value)
    try:
        return entry(["serve"])
    except KeyboardInterrupt:  # pragma: no cover - Ctrl-C in a terminal
        return EXIT_OK


# --- the command line -----------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="apiguard",
        description="Decode and check OAuth 2.0 JWT access tokens, inspect an issuer's keys.",
        epilog="Exit codes: 0 done, 1 refused or warnings, 2 usage, 3 issuer unavailable. "
        "Pass '-' as TOKEN to read it from stdin (keeps it out of shell history).",
    )
    parser.add_argument("--version", action="version", version=f"apiguard {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_, description=help_)
        sub.add_argument("--json", action="store_true", help="print JSON instead of text")
        return sub

    decode_ = command("decode", "Show a token's header and claims (NOT verified, no network).")
    decode_.add_argument("token", metavar="TOKEN", help="the token, or '-' to read stdin")

    check_ = command("check", "Validate a token as an API would, and explain the verdict.")
    check_.add_argument("token", metavar="TOKEN", help="the token, or '-' to read stdin")
    check_.add_argument("--issuer", required=True, help="the exact iss expected")
    check_.add_argument(
        "--audience",
        required=True,
        action="append",
        help="the API identifier (repeat for several; any one suffices)",
    )
    check_.add_argument(
        "--scope",
        action="append",
        default=[],
        help="a scope the route requires (repeat for several)",
    )
    check_.add_argument(
        "--match",
        choices=("all", "any"),
        default="all",
        help="whether all --scope values are needed or any one (default all)",
    )
    check_.add_argument("--jwks-uri", help="the key set URL, instead of discovery")
    check_.add_argument(
        "--algorithm",
        action="append",
        default=[],
        help="an allowed alg (repeat; default every asymmetric one)",
    )
    check_.add_argument(
        "--leeway", type=float, default=30.0, help="clock skew tolerated, in seconds (default 30)"
    )
    check_.add_argument(
        "--token-type", choices=("at+jwt",), default=None, help="at+jwt for RFC 9068 strict mode"
    )
    check_.add_argument(
        "--timeout", type=float, default=5.0, help="deadline of each fetch, in seconds (default 5)"
    )
    check_.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show apiguard's log (fetches, cache) on stderr",
    )

    serve_ = commands.add_parser(
        "serve",
        help="Run the bundled authorization server (development only).",
        description="Run the bundled Auth0-shaped authorization server on 127.0.0.1, on its "
        "SQLite file, seeded with the Organizer scenario (needs apiguard[server]). "
        "Development only: it ships fixed, public credentials.",
    )
    serve_.add_argument("--port", type=int, help="port on 127.0.0.1 (default $PORT or 9000)")
    serve_.add_argument(
        "--db", help="SQLite file (default $AUTHZ_DB or authz_server.sqlite3; :memory: too)"
    )
    serve_.add_argument("--issuer", help="issuer URL, ending in / (default http://127.0.0.1:PORT/)")

    jwks_ = command("jwks", "Show an issuer's discovery and key set, with warnings.")
    jwks_.add_argument("issuer", metavar="ISSUER", help="the issuer URL (iss)")
    jwks_.add_argument("--jwks-uri", help="the key set URL, instead of discovery")
    jwks_.add_argument(
        "--timeout", type=float, default=5.0, help="deadline of each fetch, in seconds (default 5)"
    )
    return parser


def _fail(message: str, code: int, err: TextIO) -> int:
    err.write(f"apiguard: {message}\n")
    return code


def main(
    argv: Sequence[str] | None = None,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the ``apiguard`` command and return its exit code (see the module docstring)."""
    stdin = stdin or sys.stdin
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args = _parser().parse_args(argv)
    with _logging(getattr(args, "verbose", False), err):
        return _run(args, stdin, out, err)


def _run(args: argparse.Namespace, stdin: TextIO, out: TextIO, err: TextIO) -> int:
    try:
        if args.command == "decode":
            token = _read_token(args.token, stdin)
            try:
                decoded = decode(token, time.time())
            except _Refused as exc:
                if args.json:
                    out.write(json.dumps({"verified": False, "error": str(exc)}) + "\n")
                return _fail(f"cannot decode the token: {exc}", EXIT_NEGATIVE, err)
            if args.json:
                out.write(json.dumps(decoded, indent=2) + "\n")
            else:
                _print_decoded(decoded, out)
            return EXIT_OK
        if args.command == "check":
            token = _read_token(args.token, stdin)
            code, result = check(token, args)
            if args.json:
                out.write(json.dumps(result, indent=2) + "\n")
            else:
                _print_check(result, out)
            return code
        if args.command == "serve":
            return serve(args, err)
        inspected = inspect_issuer(args.issuer, args)
        if args.json:
            out.write(json.dumps(inspected, indent=2) + "\n")
        else:
            _print_issuer(inspected, out)
        if not inspected["usable"]:
            return EXIT_UNAVAILABLE
        return EXIT_NEGATIVE if inspected["warnings"] else EXIT_OK
    except _UsageError as exc:
        return _fail(str(exc), EXIT_USAGE, err)
    except _Unavailable as exc:
        if getattr(args, "json", False):
            out.write(json.dumps({"ok": False, "verdict": "unavailable", "error": str(exc)}) + "\n")
        return _fail(str(exc), EXIT_UNAVAILABLE, err)


@contextlib.contextmanager
def _logging(verbose: bool, err: TextIO) -> Iterator[None]:
    """apiguard's log on stderr with ``--verbose``; otherwise quiet (the verdict says it all)."""
    logger = logging.getLogger("apiguard")
    handler: logging.Handler
    if verbose:
        handler = logging.StreamHandler(err)
        handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    else:
        # Found by the logging machinery, so its last-resort stderr handler stays silent.
        handler = logging.NullHandler()
    level = logger.level
    logger.addHandler(handler)
    if verbose:
        logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def run() -> NoReturn:  # pragma: no cover - the console script's entry point
    """Entry point of the console script."""
    sys.exit(main())
