"""The installed ``apiguard`` command, run as a subprocess against issuers on real sockets."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from apiguard.testing import REMOVE, LocalIssuer, serve_issuer
from tests.trickling import TricklingServer

API = "https://api.example"
SCRIPT = Path(sys.executable).with_name("apiguard")


def apiguard(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run the console script that installing apiguard puts beside the interpreter."""
    assert SCRIPT.exists(), f"the console script is not installed at {SCRIPT}"
    return subprocess.run(
        [str(SCRIPT), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(result.stdout)


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    """A LocalIssuer answering discovery and JWKS on a loopback socket."""
    with serve_issuer(audience=API) as served:
        yield served


def check_args(issuer: LocalIssuer, *extra: str) -> list[str]:
    return ["check", "-", "--issuer", issuer.issuer, "--audience", API, *extra]


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# --- decode ---------------------------------------------------------------------------------


def test_decode_shows_header_claims_and_times_and_sends_nothing(issuer: LocalIssuer) -> None:
    """decode prints header and claims marked not verified, times as dates, and fetches nothing."""
    token = issuer.token(scope="read:appointments", expires_in=720)
    result = apiguard("decode", "-", stdin=token + "\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("NOT VERIFIED")
    assert '"scope": "read:appointments"' in result.stdout
    assert f'"kid": "{issuer.current_key.kid}"' in result.stdout
    assert "(expires in 12 min)" in result.stdout
    assert "UTC" in result.stdout
    assert token not in result.stdout + result.stderr
    assert sum(issuer.requests.values()) == 0


def test_decode_json_reports_relative_times(issuer: LocalIssuer) -> None:
    """decode --json gives the claims and each time claim with seconds from now."""
    token = issuer.token(expires_in=-7200, nbf=REMOVE)
    result = apiguard("decode", "--json", token)
    assert result.returncode == 0, result.stderr
    decoded = as_json(result)
    assert decoded["verified"] is False
    assert decoded["claims"]["aud"] == API
    assert decoded["times"]["exp"]["relative"] == "expired 2 h ago"
    assert -7210 < decoded["times"]["exp"]["seconds_from_now"] <= -7199
    assert decoded["problems"] == []


def test_decode_a_bearer_header_value_and_warn_about_alg_none() -> None:
    """A pasted 'Bearer ...' value decodes; an alg none token is shown with apiguard's refusal."""
    token = f"{_b64({'alg': 'none'})}.{_b64({'sub': 'x', 'exp': 'soon'})}."
    result = apiguard("decode", "-", stdin=f"Bearer {token}")
    assert result.returncode == 0, result.stderr
    assert "warning: apiguard refuses it before any key is looked at" in result.stdout
    assert "'none' is not allowed" in result.stdout
    assert "exp        soon (not a NumericDate)" in result.stdout


def test_decode_escapes_terminal_control_characters() -> None:
    """A claim carrying an escape sequence cannot drive the terminal of whoever decodes it."""
    claims = _b64({"sub": "\x1b[2Jgotcha"})
    token = f"{_b64({'alg': 'RS256'})}.{claims}.c2ln"
    result = apiguard("decode", token)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout
    assert "\\u001b[2Jgotcha" in result.stdout


@pytest.mark.parametrize(
    ("token", "message"),
    [
        pytest.param("not-a-token", "1 segments", id="one-segment"),
        pytest.param("a.b.c.d", "4 segments", id="four-segments"),
        pytest.param("e30.!!!.c2ln", "claims is not canonical base64url", id="bad-base64"),
        pytest.param(f"{_b64({'alg': 'RS256'})}.W10.c2ln", "not a strict JSON", id="array"),
        pytest.param("eyJhIjoxLCJhIjoyfQ.e30.c2ln", "header is not a strict JSON", id="duplicate"),
    ],
)
def test_decode_refuses_what_is_not_a_jwt(token: str, message: str) -> None:
    """Input that is not a compact JWS exits 1 with the reason, never echoing the input."""
    result = apiguard("decode", "-", stdin=token)
    assert result.returncode == 1
    assert message in result.stderr
    assert token not in result.stderr + result.stdout


def test_decode_shows_only_the_header_of_an_encrypted_token() -> None:
    """A JWE's protected header is shown; its claims cannot be read."""
    jwe = f"{_b64({'alg': 'RSA-OAEP', 'enc': 'A256GCM'})}.a.b.c.d"
    result = apiguard("decode", "--json", jwe)
    assert result.returncode == 0, result.stderr
    decoded = as_json(result)
    assert (decoded["header"]["enc"], decoded["claims"]) == ("A256GCM", None)
    assert "JWE" in decoded["problems"][0]


@pytest.mark.parametrize("stdin", [pytest.param("", id="empty"), pytest.param("  \n", id="blank")])
def test_no_token_is_a_usage_error(stdin: str) -> None:
    """Reading '-' from an empty stdin exits 2 and says how to pass the token."""
    result = apiguard("decode", "-", stdin=stdin)
    assert result.returncode == 2
    assert "no token given" in result.stderr


# --- check ----------------------------------------------------------------------------------


def test_check_accepts_a_good_token_without_printing_it(issuer: LocalIssuer) -> None:
    """A valid token with the scope is accepted (exit 0) after a real discovery and JWKS fetch."""
    token = issuer.token(scope="read:appointments read:contacts", expires_in=600)
    result = apiguard(*check_args(issuer, "--scope", "read:appointments"), stdin=token)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ACCEPTED")
    assert "read:appointments read:contacts" in result.stdout
    assert "expires in 10 min" in result.stdout
    assert token not in result.stdout + result.stderr
    assert issuer.requests["/.well-known/openid-configuration"] == 1
    assert issuer.requests["/.well-known/jwks.json"] == 1


def _unknown_key_token(issuer: LocalIssuer) -> str:
    stray = issuer.add_key()
    issuer.keys.remove(stray)
    return issuer.token(key=stray)


def _tampered(issuer: LocalIssuer) -> str:
    head, _, signature = issuer.token().split(".")
    return f"{head}.{_b64({'iss': issuer.issuer, 'aud': API, 'exp': 2**40})}.{signature}"


@pytest.mark.parametrize(
    ("mint", "extra", "reason", "expected", "got"),
    [
        pytest.param(
            lambda i: i.token(aud="https://other.example"),
            (),
            "wrong_audience",
            API,
            "https://other.example",
            id="audience",
        ),
        pytest.param(
            lambda i: i.token(iss="https://evil.example/"),
            (),
            "untrusted_issuer",
            "ISSUER",
            "https://evil.example/",
            id="issuer",
        ),
        pytest.param(
            lambda i: i.token(expires_in=-3600),
            (),
            "token_expired",
            "in the future (leeway 30 s)",
            "EXP",
            id="expired",
        ),
        pytest.param(
            lambda i: i.token(scope="read:tasks"),
            ("--scope", "read:appointments", "--scope", "read:contacts", "--match", "any"),
            "insufficient_scope",
            "any of: read:appointments read:contacts",
            ["read:tasks"],
            id="scope",
        ),
        pytest.param(_unknown_key_token, (), "unknown_signing_key", None, "KID", id="kid"),
        pytest.param(_tampered, (), "invalid_signature", None, "KID", id="signature"),
        pytest.param(
            lambda i: i.token(nonce="n-0S6_WzA2Mj"),
            (),
            "wrong_token_type",
            "absent, JWT or at+jwt",
            "JWT",
            id="id-token",
        ),
        pytest.param(
            lambda i: i.token(),
            ("--algorithm", "ES256"),
            "algorithm_not_allowed",
            ["ES256"],
            "RS256",
            id="algorithm",
        ),
    ],
)
def test_check_explains_each_refusal(
    issuer: LocalIssuer,
    mint: Any,
    extra: tuple[str, ...],
    reason: str,
    expected: Any,
    got: Any,
) -> None:
    """A refused token exits 1 and says which rule failed, expected vs got, and what to do."""
    token = mint(issuer)
    result = apiguard(*check_args(issuer, "--json", *extra), stdin=token)
    assert result.returncode == 1, result.stdout + result.stderr
    verdict = as_json(result)
    claims = jwt.decode(token, options={"verify_signature": False})
    expected = issuer.issuer if expected == "ISSUER" else expected
    if got == "KID":  # each LocalIssuer has key ids of its own
        got = jwt.get_unverified_header(token)["kid"]
    if got == "EXP":
        date = datetime.fromtimestamp(claims["exp"], UTC)
        got = f"{date:%Y-%m-%d %H:%M:%S} UTC (expired 60 min ago)"
    assert verdict["ok"] is False
    assert verdict["reason"] == reason
    assert (verdict["expected"], verdict["got"]) == (expected, got)
    assert verdict["rule"]
    assert verdict["fix"]
    assert verdict["www_authenticate"].startswith("Bearer error=")
    assert token not in result.stdout + result.stderr
    text = apiguard(*check_args(issuer, *extra), stdin=token)
    assert text.returncode == 1
    assert text.stdout.startswith(f"REFUSED - {reason}: ")
    assert "what to do" in text.stdout


def test_check_says_when_the_issuer_is_unreachable() -> None:
    """No issuer listening: exit 3, the 503 an API would answer, and the network error."""
    with serve_issuer(audience=API) as gone:
        token = gone.token()
        url = gone.issuer
    result = apiguard("check", "-", "--issuer", url, "--audience", API, "--json", stdin=token)
    assert result.returncode == 3, result.stdout + result.stderr
    verdict = as_json(result)
    assert (verdict["verdict"], verdict["reason"], verdict["status"]) == (
        "unavailable",
        "key_set_unavailable",
        503,
    )
    assert "ConnectError" in verdict["detail"]
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--issuer", "ftp://issuer.example/"], "issuer:", id="issuer-scheme"),
        pytest.param(["--issuer", "http://issuer.example/"], "issuer:", id="issuer-http"),
        pytest.param(
            ["--issuer", "https://issuer.example/", "--leeway", "3600"], "leeway", id="leeway"
        ),
    ],
)
def test_check_refuses_unsafe_settings(args: list[str], message: str) -> None:
    """Settings the validator refuses exit 2 with its message, before any network call."""
    result = apiguard("check", "x.y.z", "--audience", API, *args)
    assert result.returncode == 2
    assert message in result.stderr


# --- jwks -----------------------------------------------------------------------------------


def test_jwks_lists_the_keys_and_the_cache_lifetime(issuer: LocalIssuer) -> None:
    """jwks shows discovery, each key with kid, alg and size, and the Cache-Control it honours."""
    issuer.add_key("ES256", kid="ec-key")
    issuer.jwks_override = httpx.Response(
        200, json=issuer.jwks, headers={"Cache-Control": "public, max-age=300"}
    )
    result = apiguard("jwks", issuer.issuer)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Discovery  " + issuer.issuer + ".well-known/openid-configuration (HTTP 200)" in (
        result.stdout
    )
    assert "cache-control: public, max-age=300" in result.stdout
    assert "fresh for 300 s" in result.stdout
    assert re.search(rf"{issuer.current_key.kid} +RSA  RS256  2048 bits", result.stdout)
    assert re.search(r"ec-key +EC   ES256  P-256", result.stdout)
    assert "Warnings" not in result.stdout


def _weak_rsa() -> dict[str, Any]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    return {**jwk, "kid": "weak", "alg": "RS256"}


def test_jwks_warns_about_dangerous_members(issuer: LocalIssuer) -> None:
    """Secrets, private keys, weak RSA, missing and duplicate kids each get a warning (exit 1)."""
    good = issuer.jwks["keys"][0]
    secret = base64.urlsafe_b64encode(b"s" * 32).rstrip(b"=").decode()
    private = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(issuer.current_key.private_key))
    issuer.jwks_override = {
        "keys": [
            good,
            {"kty": "oct", "k": secret, "kid": "hs", "alg": "HS256"},
            {**private, "kid": "leaked"},
            _weak_rsa(),
            {k: v for k, v in good.items() if k != "kid"},
            {**good, "kid": "twin"},
            {**good, "kid": "twin"},
        ]
    }
    result = apiguard("jwks", issuer.issuer, "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    report = as_json(result)
    warnings = "\n".join(report["warnings"])
    assert "key #2 (hs) is a symmetric (oct/HS) key" in warnings
    assert "key #3 (leaked) contains private key material" in warnings
    assert "key #4 (weak) is a weak RSA key (1024 bits" in warnings
    assert "key #5 has no kid" in warnings
    assert "several keys share kid twin" in warnings
    usable = [key["kid"] for key in report["keys"] if key["usable"]]
    assert usable == [issuer.current_key.kid, None, "twin", "twin"]
    assert secret not in result.stdout


@pytest.mark.parametrize(
    ("override", "message"),
    [
        pytest.param(httpx.Response(500), "answered HTTP 500", id="http-500"),
        pytest.param(
            httpx.Response(302, headers={"Location": "https://elsewhere.example/"}),
            "redirects are never followed",
            id="redirect",
        ),
        pytest.param(b"<html>", "is not JSON", id="not-json"),
        pytest.param({"keys": "none"}, '"keys" array', id="no-keys-array"),
    ],
)
def test_jwks_unavailable(issuer: LocalIssuer, override: Any, message: str) -> None:
    """A JWKS an API could not use exits 3 and says why."""
    issuer.jwks_override = override
    result = apiguard("jwks", issuer.issuer)
    assert result.returncode == 3, result.stdout + result.stderr
    assert message in result.stderr


def test_jwks_with_no_usable_key_is_unavailable(issuer: LocalIssuer) -> None:
    """A key set in which no key can verify exits 3: every token would get a 503."""
    issuer.jwks_override = {"keys": [_weak_rsa()]}
    result = apiguard("jwks", issuer.issuer)
    assert result.returncode == 3
    assert "no key in the set can verify a signature" in result.stdout


def test_jwks_refuses_metadata_for_another_issuer(issuer: LocalIssuer) -> None:
    """Discovery naming another issuer is what apiguard refuses (RFC 8414 §3.3): exit 3."""
    result = apiguard("jwks", issuer.issuer.rstrip("/"))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "pass --issuer exactly as it says" in result.stdout


def test_jwks_refuses_plain_http_to_a_remote_host() -> None:
    """http:// is only for loopback hosts, as in the validator: nothing is fetched."""
    result = apiguard("jwks", "http://issuer.example/")
    assert result.returncode == 3
    assert "is not https" in result.stderr


def test_help_names_every_command_and_the_exit_codes() -> None:
    """apiguard --help lists decode, check and jwks and documents the exit codes."""
    result = apiguard("--help")
    assert result.returncode == 0
    for word in ("decode", "check", "jwks", "Exit codes"):
        assert word in result.stdout


def test_jwks_deadline_covers_trickled_headers() -> None:
    """A server trickling its headers byte by byte cannot hold the command past --timeout."""
    server = TricklingServer(pause=0.05)
    try:
        started = time.monotonic()
        result = apiguard("jwks", f"http://127.0.0.1:{server.port}/", "--timeout", "1")
        elapsed = time.monotonic() - started
    finally:
        server.close()
    assert result.returncode == 3, result.stdout + result.stderr
    assert "TimeoutError" in result.stdout + result.stderr
    # Each byte comes well within httpx's per-read timeout; only a deadline over the whole
    # fetch stops it before the 20 s the headers take.
    assert elapsed < 8
