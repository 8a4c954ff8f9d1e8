"""The examples of RFC 9449 (and the RFC 7638/8037 thumbprints) verified on a fixed clock."""

from __future__ import annotations

import pytest

from apiguard import errors
from apiguard.dpop import (
    DPoPPolicy,
    ProofVerifier,
    access_token_hash,
    jwk_thumbprint,
    normalize_uri,
    request_uri,
)

#: RFC 9449 §4.1, Figure 2 and §4.2: the key of every example proof.
RFC9449_JWK = {
    "kty": "EC",
    "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
    "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
    "crv": "P-256",
}
#: RFC 9449 §6.1, Figure 9: that key's thumbprint, as ``cnf.jkt``.
RFC9449_JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
#: RFC 9449 §4.1, Figure 2: a proof for a token request.
TOKEN_REQUEST_PROOF = (
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0Vj"
    "NoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5"
    "VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TV"
    "CIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8"
    "lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
)
#: RFC 9449 §7.1, Figure 12 and 13: a DPoP-bound access token and the proof sent with it.
ACCESS_TOKEN = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
RESOURCE_REQUEST_PROOF = (
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0Vj"
    "NoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5"
    "VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUI"
    "iwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI"
    "2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqz"
    "hrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA"
)
TOKEN_URI = "https://server.example.com/token"
RESOURCE_URI = "https://resource.example.org/protectedresource"
#: RFC 7638 §3.1: the RSA key and its thumbprint.
RFC7638_JWK = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
    "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2"
    "QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6W"
    "eZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}


@pytest.fixture
def verifier() -> ProofVerifier:
    """The default policy: every asymmetric algorithm, 300 s window, 30 s leeway."""
    return ProofVerifier(DPoPPolicy(mode="required"))


def test_token_request_proof_of_figure_2_verifies(verifier: ProofVerifier) -> None:
    """The RFC's token-request proof verifies at its iat, naming its key's thumbprint."""
    proof = verifier.verify(
        TOKEN_REQUEST_PROOF, method="POST", uri=normalize_uri(TOKEN_URI), now=1562262616
    )
    assert proof.jkt == RFC9449_JKT
    assert proof.jti == "-BwC3ESc6acc2lTc"
    assert proof.iat == 1562262616


def test_resource_request_proof_of_figure_13_verifies_with_its_token(
    verifier: ProofVerifier,
) -> None:
    """The RFC's resource-request proof verifies with its access token and cnf.jkt."""
    uri = request_uri(scheme="https", host="resource.example.org", path=b"/protectedresource")
    proof = verifier.verify(
        RESOURCE_REQUEST_PROOF,
        method="GET",
        uri=uri,
        now=1562262618 + 10,
        access_token=ACCESS_TOKEN,
        jkt=RFC9449_JKT,
    )
    assert proof.jti == "e1j3V_bKic8-LAEB"


def test_ath_of_the_rfc_token() -> None:
    """ath is the base64url SHA-256 of the token's ASCII text (RFC 9449 §4.2)."""
    assert access_token_hash(ACCESS_TOKEN) == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"


@pytest.mark.parametrize(
    ("jwk", "thumbprint"),
    [
        pytest.param(RFC9449_JWK, RFC9449_JKT, id="rfc9449-ec-p256"),
        pytest.param(RFC7638_JWK, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", id="rfc7638-rsa"),
        pytest.param(
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
            id="rfc8037-ed25519",
        ),
    ],
)
def test_thumbprints_of_the_rfcs(jwk: dict[str, str], thumbprint: str) -> None:
    """RFC 7638 thumbprints hash only the required members, so kid and alg change nothing."""
    assert jwk_thumbprint(jwk) == thumbprint
    assert jwk_thumbprint({**jwk, "kid": "other", "use": "sig"}) == thumbprint


@pytest.mark.parametrize(
    "jwk",
    [
        pytest.param({"kty": "oct", "k": "c2VjcmV0"}, id="symmetric"),
        pytest.param({"crv": "P-256", "x": "a", "y": "b"}, id="no-kty"),
        pytest.param({"kty": "EC", "crv": "P-256", "x": 1, "y": "b"}, id="member-not-a-string"),
        pytest.param({"kty": "RSA", "e": "AQAB"}, id="member-missing"),
    ],
)
def test_thumbprint_of_an_unusable_jwk_is_refused(jwk: dict[str, object]) -> None:
    """A thumbprint is only computed for RSA, EC and OKP keys with their string members."""
    with pytest.raises(ValueError, match=r"thumbprint|members"):
        jwk_thumbprint(jwk)


def test_rfc_proof_outside_its_window_is_refused(verifier: ProofVerifier) -> None:
    """The same proof a day later is too old: the window is 300 s plus the leeway."""
    with pytest.raises(errors.DPoPProofExpired):
        verifier.verify(
            TOKEN_REQUEST_PROOF, method="POST", uri=normalize_uri(TOKEN_URI), now=1562262616 + 86400
        )


def test_rfc_proof_with_a_changed_signature_is_refused(verifier: ProofVerifier) -> None:
    """One flipped signature character and the proof no longer verifies with its own jwk."""
    head, payload, signature = TOKEN_REQUEST_PROOF.split(".")
    forged = f"{head}.{payload}.{'3' + signature[1:]}"
    with pytest.raises(errors.InvalidDPoPSignature):
        verifier.verify(forged, method="POST", uri=normalize_uri(TOKEN_URI), now=1562262616)


def test_rfc_proof_for_another_token_is_refused(verifier: ProofVerifier) -> None:
    """The resource proof sent with another access token fails on ath."""
    with pytest.raises(errors.DPoPTokenHashMismatch):
        verifier.verify(
            RESOURCE_REQUEST_PROOF,
            method="GET",
            uri=normalize_uri(RESOURCE_URI),
            now=1562262618,
            access_token=ACCESS_TOKEN + "x",
        )
