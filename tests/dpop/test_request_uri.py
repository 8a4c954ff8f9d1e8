"""The request URI a proof is checked against: built from parts, normalised, never laundered."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from apiguard import errors
from apiguard.dpop import DPoPPolicy, ProofVerifier, TrustedProxies, normalize_uri, request_uri
from apiguard.testing import DPoPKey

from .conftest import NOW


def _headers(**values: str | list[str]) -> object:
    table = {
        name.replace("_", "-").lower(): [value] if isinstance(value, str) else value
        for name, value in values.items()
    }

    def get(name: str) -> Sequence[str]:
        return table.get(name, [])

    return get


@pytest.mark.parametrize(
    ("parts", "uri"),
    [
        pytest.param(("https", "api.test", b"/x"), "https://api.test/x", id="plain"),
        pytest.param(("HTTPS", "API.Test:443", b"/x"), "https://api.test/x", id="case-and-port"),
        pytest.param(("http", "api.test:80", b"/x"), "http://api.test/x", id="http-default"),
        pytest.param(("http", "api.test:8080", b"/x"), "http://api.test:8080/x", id="other-port"),
        pytest.param(("http", "127.0.0.1:08080", b"/x"), "http://127.0.0.1:8080/x", id="zeros"),
        pytest.param(("http", "[::1]:8000", b"/x"), "http://[::1]:8000/x", id="ipv6"),
        pytest.param(("https", "api.test", b"/x?a=1&b"), "https://api.test/x", id="query"),
        pytest.param(("https", "api.test", b"/a/%7eb/%2f"), "https://api.test/a/~b/%2F", id="pct"),
        pytest.param(("https", "api.test", b"/a/../b/./c"), "https://api.test/b/c", id="dots"),
        pytest.param(("https", "api.test", b"/a b"), "https://api.test/a%20b", id="raw-space"),
        pytest.param(
            ("https", "api.test", b"/caf\xc3\xa9"), "https://api.test/caf%C3%A9", id="octets"
        ),
        pytest.param(("https", "api.test", "/café"), "https://api.test/caf%C3%A9", id="text"),
        pytest.param(("https", "api.test", b"/100%"), "https://api.test/100%25", id="lone-percent"),
        pytest.param(("wss", "api.test", b"/ws"), "https://api.test/ws", id="websocket"),
    ],
)
def test_request_uri_is_normalised(parts: tuple[str, str, bytes | str], uri: str) -> None:
    """The URI is rebuilt in the normal form normalize_uri gives a client's htu."""
    scheme, host, path = parts
    assert request_uri(scheme=scheme, host=host, path=path) == uri


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("api.test/api/private?", id="path-and-query-in-host"),
        pytest.param("api.test/", id="slash"),
        pytest.param("api.test?x", id="query"),
        pytest.param("api.test#x", id="fragment"),
        pytest.param("user@api.test", id="userinfo"),
        pytest.param("https://api.test", id="scheme"),
        pytest.param("api.test:99999", id="port-out-of-range"),
        pytest.param("api.test:0", id="port-zero"),
        pytest.param("api.test:http", id="port-not-a-number"),
        pytest.param("api.test:80:80", id="two-ports"),
        pytest.param("api test", id="space"),
        pytest.param("api.test\r\nX: y", id="crlf"),
        pytest.param("api%2etest", id="percent"),
        pytest.param("[::1", id="open-bracket"),
        pytest.param("", id="empty"),
        pytest.param(None, id="missing"),
    ],
)
def test_a_host_that_is_not_a_host_is_a_bad_request(host: str | None) -> None:
    """Host is matched against the host[:port] grammar before a URI is built (400)."""
    with pytest.raises(errors.MalformedRequestURI) as caught:
        request_uri(scheme="https", host=host, path=b"/api/public")
    assert caught.value.status_code == 400


@pytest.mark.parametrize(
    ("scheme", "path"),
    [
        pytest.param("ftp", b"/x", id="scheme"),
        pytest.param("https", b"https://api.test/x", id="absolute-form-target"),
        pytest.param("https", b"*", id="asterisk-form"),
        pytest.param("https", b"", id="empty-target"),
    ],
)
def test_other_unusable_requests_are_bad_requests(scheme: str, path: bytes) -> None:
    """Only http(s) requests with an origin-form target have a URI to check."""
    with pytest.raises(errors.MalformedRequestURI):
        request_uri(scheme=scheme, host="api.test", path=path)


def test_a_host_header_cannot_move_a_stolen_proof_to_another_path() -> None:
    """A proof for /api/private replayed to /api/admin with the path put in Host is refused.

    Joining ``https://`` + ``api.test/api/private?`` + ``/api/admin`` and parsing it again
    gives ``https://api.test/api/private?/api/admin``, whose query a normaliser drops: the
    URI the proof names. apiguard refuses the Host instead.
    """
    key = DPoPKey(clock=lambda: NOW)
    proof = key.proof("GET", "https://api.test/api/private")
    verifier = ProofVerifier(DPoPPolicy(mode="required"))
    with pytest.raises(errors.MalformedRequestURI):
        request_uri(scheme="https", host="api.test/api/private?", path=b"/api/admin")
    honest = request_uri(scheme="https", host="api.test", path=b"/api/admin")
    with pytest.raises(errors.DPoPURIMismatch):
        verifier.verify(proof, method="GET", uri=honest, now=NOW)


def test_normalize_uri_refuses_what_is_no_uri() -> None:
    """normalize_uri is for absolute http(s) URIs only."""
    for bad in ("/relative", "mailto:a@b", "https://", "https://a b/", 7, "h" * 9000):
        with pytest.raises(ValueError):  # noqa: PT011 - the message varies by case
            normalize_uri(bad)  # type: ignore[arg-type]


# --- forwarded headers ---------------------------------------------------------------------


def test_forwarded_headers_are_ignored_by_default() -> None:
    """Without trusted proxies, X-Forwarded-* cannot choose the URI a proof is checked on."""
    headers = _headers(x_forwarded_proto="https", x_forwarded_host="victim.test")
    uri = request_uri(scheme="http", host="api.test", path=b"/x", peer="10.0.0.1", headers=headers)  # type: ignore[arg-type]
    assert uri == "http://api.test/x"


@pytest.mark.parametrize(
    ("peer", "uri"),
    [
        pytest.param("10.0.0.1", "https://public.example/x", id="trusted-proxy"),
        pytest.param("10.9.9.9", "https://public.example/x", id="trusted-network"),
        pytest.param("192.0.2.1", "http://internal:8000/x", id="untrusted-peer"),
        pytest.param(None, "http://internal:8000/x", id="unknown-peer"),
    ],
)
def test_x_forwarded_headers_count_only_from_a_trusted_proxy(peer: str | None, uri: str) -> None:
    """X-Forwarded-Proto/Host from a named proxy (or network) say what the client used."""
    proxies = TrustedProxies(["10.0.0.1", "10.9.0.0/16"], headers="x-forwarded")
    headers = _headers(x_forwarded_proto="https", x_forwarded_host="Public.Example")
    assert (
        request_uri(
            scheme="http",
            host="internal:8000",
            path=b"/x",
            peer=peer,
            headers=headers,  # type: ignore[arg-type]
            proxies=proxies,
        )
        == uri
    )


def test_the_value_the_nearest_proxy_set_wins() -> None:
    """With several values, the last one is what the trusted proxy itself said."""
    proxies = TrustedProxies(["127.0.0.1"])
    headers = _headers(x_forwarded_host=["attacker.test", "public.example"])
    uri = request_uri(
        scheme="https", host="internal", path=b"/x", peer="127.0.0.1",
        headers=headers, proxies=proxies,  # type: ignore[arg-type]
    )  # fmt: skip
    assert uri == "https://public.example/x"


@pytest.mark.parametrize(
    ("forwarded", "uri"),
    [
        pytest.param(
            'for=192.0.2.60;proto=https;host="public.example"', "https://public.example/x", id="one"
        ),
        pytest.param(
            "for=192.0.2.60;proto=https;host=public.example, for=10.0.0.2;host=lb.internal",
            "https://public.example/x",
            id="chain-through-a-trusted-proxy",
        ),
        pytest.param(
            "for=192.0.2.60;host=forged.example, for=198.51.100.7;proto=https;host=public.example",
            "https://public.example/x",
            id="client-forged-element-ignored",
        ),
        pytest.param('for="[2001:db8::1]:4711";proto=https', "https://internal/x", id="no-host"),
    ],
)
def test_rfc7239_forwarded_is_read_back_to_the_first_untrusted_hop(
    forwarded: str, uri: str
) -> None:
    """Each proxy appends an element; the one appended by the outermost trusted proxy counts."""
    proxies = TrustedProxies(["10.0.0.0/8"], headers="forwarded")
    assert (
        request_uri(
            scheme="http",
            host="internal",
            path=b"/x",
            peer="10.0.0.1",
            headers=_headers(forwarded=forwarded),  # type: ignore[arg-type]
            proxies=proxies,
        )
        == uri
    )


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"forwarded": "for"}, id="forwarded-without-value"),
        pytest.param({"forwarded": "host=a;host=b"}, id="forwarded-repeated-parameter"),
        pytest.param({"forwarded": 'host="unterminated'}, id="forwarded-open-quote"),
        pytest.param({"forwarded": "host=api.test/x?"}, id="forwarded-host-with-path"),
        pytest.param({"forwarded": "proto=gopher"}, id="forwarded-bad-proto"),
    ],
)
def test_a_trusted_header_that_does_not_parse_is_a_bad_request(headers: dict[str, str]) -> None:
    """A proxy we trust that sends nonsense is a misconfiguration to surface: 400."""
    proxies = TrustedProxies(["127.0.0.1"], headers="forwarded")
    with pytest.raises(errors.MalformedRequestURI):
        request_uri(
            scheme="http", host="internal", path=b"/x", peer="127.0.0.1",
            headers=_headers(**headers), proxies=proxies,  # type: ignore[arg-type]
        )  # fmt: skip


@pytest.mark.parametrize(
    ("proxies", "headers"),
    [
        pytest.param([], "x-forwarded", id="none"),
        pytest.param(["not-an-ip"], "x-forwarded", id="a-name"),
        pytest.param(["10.0.0.0/8"], "x-real-ip", id="unknown-headers"),
    ],
)
def test_bad_proxy_settings_are_refused(proxies: list[str], headers: str) -> None:
    """Trusted proxies are named explicitly, by address or network."""
    with pytest.raises(errors.ConfigurationError, match="trusted_proxies"):
        TrustedProxies(proxies, headers=headers)  # type: ignore[arg-type]


def test_one_proxy_may_be_given_as_a_string() -> None:
    """A single address reads as a list of one."""
    assert TrustedProxies("127.0.0.1").trusts("127.0.0.1:5000")
    assert not TrustedProxies("127.0.0.1").trusts("unknown")
