"""Property-based tests: hostile input to the token parser, the Authorization header parser
and the path-exemption matcher never raises anything but apiguard's own errors, and never
opens an exemption it should not (SECURITY.md, "Requests").
"""

from __future__ import annotations

import base64
import contextlib
import json
import posixpath
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from apiguard import AccessToken, BearerError, ConfigurationError, InvalidRequest, MissingToken
from apiguard._request import PathExemptions, RequestView, bearer_token
from apiguard.bearer import extract_credentials, extract_token, is_b64token
from apiguard.jws import decode_compact
from apiguard.testing import KeyPool, LocalIssuer

PROPERTIES = settings(
    max_examples=300,
    deadline=None,
    database=None,
    # The same examples on every run: a gate must not pass or fail by chance.
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# -- the token parser ------------------------------------------------------------------------

segment = st.text(alphabet=B64URL + "=.+/ %", max_size=40)
token_like = st.one_of(
    st.text(max_size=200),
    st.builds(lambda *parts: ".".join(parts), segment, segment, segment),
    st.lists(segment, min_size=1, max_size=7).map(".".join),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["RS256", "none", "HS256", "rs256", ""]) | json_values,
        "kid": st.text(max_size=10) | json_values,
        "typ": st.sampled_from(["JWT", "at+jwt", "dpop+jwt"]) | json_values,
        "crit": json_values,
        "cty": json_values,
        "b64": json_values,
    },
)


@PROPERTIES
@given(token_like)
@example("..")
@example("a.b.c.d.e")
@example("eyJhbGciOiJub25lIn0.e30.")
def test_token_parser_raises_only_its_own_errors(token: str) -> None:
    """Any text given to the compact JWS parser parses or raises a BearerError."""
    with contextlib.suppress(BearerError):
        decode_compact(token, max_size=16384)


@PROPERTIES
@given(head=headers, body=st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_signed_hostile_json_is_validated_or_refused(
    validator_for: Any, head: dict[str, Any], body: dict[str, Any]
) -> None:
    """Correctly signed tokens with arbitrary header and claims are accepted or InvalidToken."""
    issuer, validator = validator_for
    header = {"alg": "RS256", "kid": issuer.current_key.kid, **head}
    token = issuer.sign_raw(json.dumps(header).encode(), json.dumps(body).encode())
    try:
        result = validator.validate(token)
    except BearerError:
        return
    assert isinstance(result, AccessToken)


@PROPERTIES
@given(position=st.integers(min_value=0), char=st.sampled_from(B64URL + ".=+/ "))
def test_a_mutated_token_is_refused_or_unchanged(
    validator_for: Any, position: int, char: str
) -> None:
    """One character of a valid token changed: it still verifies only if nothing changed."""
    issuer, validator = validator_for
    token = issuer.token()
    index = position % len(token)
    mutated = token[:index] + char + token[index + 1 :]
    try:
        validator.validate(mutated)
    except BearerError:
        return
    # Accepted: the change must be nothing, or only unused bits of the signature's last
    # base64url character (that decodes to the same bytes).
    assert mutated.rsplit(".", 1)[0] == token.rsplit(".", 1)[0]


@pytest.fixture(scope="module")
def key_pool() -> KeyPool:
    return KeyPool()


@pytest.fixture(scope="module")
def validator_for(key_pool: KeyPool) -> Iterator[tuple[LocalIssuer, Any]]:
    """One issuer and its validator for a whole module of examples (no cache, no clock tricks)."""
    with LocalIssuer(key_pool=key_pool) as issuer, issuer.validator(token_cache_size=0) as v:
        yield issuer, v


# -- the Authorization header parser ---------------------------------------------------------

header_values = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda scheme, spaces, value: f"{scheme}{spaces}{value}",
        st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", "DPoP", "Bearer,", ""]),
        st.text(alphabet=" \t", max_size=3),
        st.text(alphabet=B64URL + "~+/=., \"'\\\t", max_size=40),
    ),
)


@PROPERTIES
@given(st.lists(header_values, max_size=3))
def test_header_parser_returns_one_b64token_or_refuses(values: list[str]) -> None:
    """A token comes back only from exactly one Bearer header, as one RFC 6750 b64token."""
    try:
        token = extract_token(values)
    except (MissingToken, InvalidRequest):
        return
    assert len(values) == 1
    assert values[0].strip(" \t")[:6].lower() == "bearer"
    assert token
    assert token in values[0]
    assert not set(token) - set(B64URL + "~+/=.")
    assert "=" not in token.rstrip("=")


@PROPERTIES
@given(st.lists(header_values, min_size=1, max_size=2), st.booleans())
def test_remembered_header_values_read_as_the_first_time(values: list[str], dpop: bool) -> None:
    """A header value read again (remembered) gives the same token, or the same refusal."""
    outcomes = []
    for _ in range(2):
        try:
            outcomes.append(extract_credentials(values, dpop=dpop))
        except BearerError as exc:
            outcomes.append(type(exc))
    assert outcomes[0] == outcomes[1]


def test_a_remembered_value_is_read_per_scheme_set() -> None:
    """The same DPoP value read without and then with DPoP gives each reading its answer."""
    with pytest.raises(MissingToken):
        extract_credentials("DPoP abc.def.ghi")
    assert extract_credentials("DPoP abc.def.ghi", dpop=True) == ("DPoP", "abc.def.ghi")
    with pytest.raises(MissingToken):
        extract_credentials("DPoP abc.def.ghi")


# RFC 6750 §2.1, as a regular expression: the grammar is_b64token must agree with.
B64TOKEN_GRAMMAR = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


@PROPERTIES
@given(st.text(alphabet=B64URL + "~+/=., \"'\\\t\x00\x7f\xe9\u0130\U0001f600", max_size=40))
@example("==")
@example("a=b")
@example("")
def test_b64token_check_agrees_with_the_rfc_grammar(value: str) -> None:
    """is_b64token says yes exactly when RFC 6750's b64token grammar matches the whole value."""
    assert is_b64token(value) == bool(B64TOKEN_GRAMMAR.fullmatch(value))


@PROPERTIES
@given(
    values=st.lists(header_values, max_size=2),
    query=st.text(max_size=40) | st.binary(max_size=40),
)
def test_request_token_reading_raises_only_bearer_errors(
    values: list[str], query: str | bytes
) -> None:
    """Reading the token from any header values and query either answers or is a BearerError."""
    view = RequestView(method="GET", path="/", authorization=tuple(values), query=query)
    try:
        token = bearer_token(view)
    except BearerError:
        return
    assert token is None or isinstance(token, str)


# -- the path-exemption matcher ----------------------------------------------------------------

PIECES = [
    "static",
    "public",
    "private",
    "secret.txt",
    "..",
    ".",
    "",
    "%2e%2e",
    "%2E%2e",
    ".%2E",
    "%2e",
    "..%2f",
    "..%2F",
    "%2f",
    "%5c",
    "..\\",
    "%25",
    "%252e%252e",
    "a;b",
    "%00",
    "x%20y",
]
exempt = PathExemptions(["/public", "/static/public/*"])


def resolved(raw: str) -> str:
    """Where a path could lead a lenient handler: decoded twice, backslashes as slashes."""
    text = unquote(unquote(raw)).replace("\\", "/")
    return posixpath.normpath(text) if text else text


@PROPERTIES
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=8))
@example(["static", "public", "..", "private", "secret.txt"])
@example(["static", "public", "..%2f", "private"])
@example(["static", "public", "%252e%252e", "private"])
def test_exemption_never_matches_a_path_that_leaves_it(pieces: list[str]) -> None:
    """A matched path resolves (however a handler decodes it) inside the exempt subtree."""
    raw = "/" + "/".join(pieces)
    if exempt.match(unquote(raw), raw):
        target = resolved(raw)
        assert (
            target == "/public"
            or target == "/static/public"
            or target.startswith("/static/public/")
        ), (raw, target)
        assert ".." not in target.split("/")


@PROPERTIES
@given(path=st.text(max_size=60), raw=st.none() | st.text(max_size=60))
def test_exemption_matcher_never_raises(path: str, raw: str | None) -> None:
    """Arbitrary paths (control characters, non-ASCII, no leading slash) give a yes or a no."""
    assert exempt.match(path, raw) in (True, False)


@PROPERTIES
@given(st.text(max_size=30))
def test_exemption_configuration_raises_only_configuration_errors(path: str) -> None:
    """Any configured path is accepted or refused with ConfigurationError."""
    with contextlib.suppress(ConfigurationError):
        PathExemptions([path])
