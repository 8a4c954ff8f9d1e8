"""Every proof rule of RFC 9449 §4.3, checked by ProofVerifier on a fixed clock."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from apiguard import errors
from apiguard.dpop import DPOP_ALGORITHMS, DPoPPolicy, NonceIssuer, ProofVerifier, normalize_uri
from apiguard.testing import REMOVE, DPoPKey

from .conftest import NOW, URL, Clock

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"
URI = normalize_uri(URL)


def _verify(verifier: ProofVerifier, proof: Any, **overrides: Any) -> Any:
    options: dict[str, Any] = {"method": "GET", "uri": URI, "now": NOW, "access_token": TOKEN}
    options.update(overrides)
    return verifier.verify(proof, **options)


def test_a_good_proof_verifies(verifier: ProofVerifier, key: DPoPKey) -> None:
    """A proof for the method, URI and token verifies and names its key and window."""
    proof = _verify(verifier, key.proof("GET", URL, access_token=TOKEN), jkt=key.thumbprint)
    assert proof.jkt == key.thumbprint
    assert len(proof.jti) == 32
    assert proof.replay_ttl == 330  # max_age 300 + leeway 30, from iat == now
    assert proof.next_nonce is None


@pytest.mark.parametrize(
    ("kind", "reason"),
    [pytest.param(kind, reason, id=kind) for kind, reason in DPoPKey.BAD_PROOFS.items()],
)
@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA", "PS256"])
def test_each_bad_proof_is_refused_with_its_reason(
    kind: str, reason: str, algorithm: str, clock: Clock
) -> None:
    """Each rule of RFC 9449 §4.3 broken on its own gives its own stable reason."""
    key = _keys(algorithm, clock)
    verifier = ProofVerifier(DPoPPolicy(mode="required"))
    with pytest.raises(errors.InvalidDPoPProof) as caught:
        _verify(verifier, key.bad_proof(kind, "GET", URL, access_token=TOKEN))
    assert caught.value.reason == reason
    assert caught.value.error == "invalid_dpop_proof"
    assert caught.value.status_code == 401


_KEYS: dict[str, DPoPKey] = {}


def _keys(algorithm: str, clock: Clock) -> DPoPKey:
    key = _KEYS.setdefault(algorithm, DPoPKey(algorithm))
    key.clock = clock
    return key


def test_the_proof_of_another_key_than_the_tokens_is_refused(
    verifier: ProofVerifier, key: DPoPKey
) -> None:
    """cnf.jkt must be the proof key's thumbprint: a thief's own key does not fit."""
    thief = DPoPKey(clock=key.clock)
    with pytest.raises(errors.DPoPKeyMismatch) as caught:
        _verify(verifier, thief.proof("GET", URL, access_token=TOKEN), jkt=key.thumbprint)
    assert caught.value.error == "invalid_token"
    assert caught.value.description == "Invalid DPoP key binding"


@pytest.mark.parametrize(
    ("proofs", "error"),
    [
        pytest.param(None, errors.MissingDPoPProof, id="none"),
        pytest.param([], errors.MissingDPoPProof, id="no-values"),
        pytest.param("  ", errors.MissingDPoPProof, id="empty"),
        pytest.param(["a.b.c", "a.b.c"], errors.MultipleDPoPProofs, id="two-headers"),
        pytest.param("a.b.c, a.b.c", errors.MultipleDPoPProofs, id="joined-by-a-proxy"),
    ],
)
def test_exactly_one_dpop_header(
    proofs: Any, error: type[Exception], verifier: ProofVerifier
) -> None:
    """No proof is 401 invalid_dpop_proof; two are a malformed request (400)."""
    with pytest.raises(error):
        _verify(verifier, proofs)


def test_repeated_proofs_are_a_bad_request(verifier: ProofVerifier, key: DPoPKey) -> None:
    """Two good proofs are still refused, with 400 invalid_request on the DPoP challenge."""
    proof = key.proof("GET", URL, access_token=TOKEN)
    with pytest.raises(errors.MultipleDPoPProofs) as caught:
        _verify(verifier, [proof, proof])
    assert (caught.value.status_code, caught.value.error, caught.value.scheme) == (
        400,
        "invalid_request",
        "DPoP",
    )


def test_a_proof_over_the_size_cap_is_refused_before_decoding(key: DPoPKey) -> None:
    """max_proof_size bounds the work an attacker can ask for."""
    verifier = ProofVerifier(DPoPPolicy(mode="required", max_proof_size=512))
    proof = key.proof("GET", URL, access_token=TOKEN, padding="x" * 600)
    with pytest.raises(errors.MalformedDPoPProof, match="longer than 512"):
        _verify(verifier, proof)


def test_an_algorithm_outside_the_allow_list_is_refused(clock: Clock) -> None:
    """A policy that allows ES256 only refuses an EdDSA proof."""
    verifier = ProofVerifier(DPoPPolicy(mode="required", algorithms=["ES256"]))
    with pytest.raises(errors.DPoPAlgorithmNotAllowed):
        _verify(verifier, _keys("EdDSA", clock).proof("GET", URL, access_token=TOKEN))


def test_a_short_rsa_key_is_refused(clock: Clock) -> None:
    """The proof key passes the same key policy as an issuer's: RSA from 2048 bits."""
    key = DPoPKey("RS256", clock=clock)
    key.private_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.private_key.public_key(), as_dict=True)
    key.public_jwk = {"kty": "RSA", "n": jwk["n"], "e": jwk["e"]}
    with pytest.raises(errors.InvalidDPoPKey, match="1024 bits"):
        _verify(ProofVerifier(DPoPPolicy()), key.proof("GET", URL, access_token=TOKEN))


@pytest.mark.parametrize(
    ("iat", "error"),
    [
        pytest.param(NOW - 330, None, id="oldest-accepted"),
        pytest.param(NOW - 331, errors.DPoPProofExpired, id="one-second-too-old"),
        pytest.param(NOW + 30, None, id="leeway-into-the-future"),
        pytest.param(NOW + 31, errors.DPoPProofNotYetValid, id="beyond-the-leeway"),
        pytest.param(NOW + 0.5, None, id="a-float"),
        pytest.param(10**400, errors.DPoPProofNotYetValid, id="400-digits"),
        pytest.param(-(10**400), errors.DPoPProofExpired, id="minus-400-digits"),
    ],
)
def test_the_iat_window(
    iat: float, error: type[Exception] | None, verifier: ProofVerifier, key: DPoPKey
) -> None:
    """iat is within [now - max_age - leeway, now + leeway]; huge numbers cannot overflow."""
    proof = key.proof("GET", URL, access_token=TOKEN, iat=iat)
    if error is None:
        assert _verify(verifier, proof).replay_ttl >= 1
    else:
        with pytest.raises(error):
            _verify(verifier, proof)


@pytest.mark.parametrize(
    "htu",
    [
        pytest.param("https://api.test/api/appointments", id="exact"),
        pytest.param("HTTPS://API.TEST/api/appointments", id="scheme-and-host-case"),
        pytest.param("https://api.test:443/api/appointments", id="default-port"),
        pytest.param("https://api.test:/api/appointments", id="empty-port"),
        pytest.param("https://api.test/api/%61ppointments", id="encoded-unreserved"),
        pytest.param("https://api.test/api/./x/../appointments", id="dot-segments"),
        pytest.param("https://api.test/api/appointments?page=2", id="query-ignored"),
        pytest.param("https://api.test/api/appointments#top", id="fragment-ignored"),
        pytest.param("wss://api.test/api/appointments", id="websocket-scheme"),
    ],
)
def test_htu_is_compared_after_normalisation(
    htu: str, verifier: ProofVerifier, key: DPoPKey
) -> None:
    """RFC 9449 §4.3 asks for syntax- and scheme-based normalisation before comparing."""
    _verify(verifier, key.proof("GET", URL, access_token=TOKEN, htu=htu))


@pytest.mark.parametrize(
    "htu",
    [
        pytest.param("https://api.test/api/Appointments", id="path-case"),
        pytest.param("https://api.test:8443/api/appointments", id="other-port"),
        pytest.param("http://api.test/api/appointments", id="plain-http"),
        pytest.param("https://api.test/api/appointments/", id="trailing-slash"),
        pytest.param("https://api.test/api%2Fappointments", id="encoded-slash"),
        pytest.param("https://user@api.test/api/appointments", id="userinfo"),
        pytest.param("https://api.test.evil/api/appointments", id="suffix-host"),
        pytest.param("//api.test/api/appointments", id="scheme-relative"),
        pytest.param("https://api.test/api/appoint ments", id="space"),
        pytest.param("https://api.test/api/appointments\u0000", id="nul"),
        pytest.param("ftp://api.test/api/appointments", id="other-scheme"),
    ],
)
def test_htu_naming_another_uri_is_refused(htu: str, verifier: ProofVerifier, key: DPoPKey) -> None:
    """Anything that is not the same URI after normalisation is another URI."""
    with pytest.raises(errors.DPoPURIMismatch):
        _verify(verifier, key.proof("GET", URL, access_token=TOKEN, htu=htu))


def test_ath_is_not_needed_without_a_token(verifier: ProofVerifier, key: DPoPKey) -> None:
    """At a token endpoint there is no access token yet, so no ath to check."""
    _verify(verifier, key.proof("POST", URL), method="POST", access_token=None)


def test_a_replay_key_is_per_client_key(verifier: ProofVerifier, key: DPoPKey) -> None:
    """One jti under two keys gives two replay keys: nobody can block another's proofs."""
    thief = DPoPKey(clock=key.clock)
    mine = _verify(verifier, key.proof("GET", URL, access_token=TOKEN, jti="same"))
    theirs = _verify(verifier, thief.proof("GET", URL, access_token=TOKEN, jti="same"))
    assert mine.replay_key != theirs.replay_key


def test_a_bad_key_is_refused_every_time(verifier: ProofVerifier, key: DPoPKey) -> None:
    """Keys are remembered per header only once they were accepted."""
    proof = key.bad_proof("private_jwk", "GET", URL, access_token=TOKEN)
    for _ in range(2):
        with pytest.raises(errors.InvalidDPoPKey, match="private"):
            _verify(verifier, proof)


def test_a_jti_too_long_to_be_random_is_refused(verifier: ProofVerifier, key: DPoPKey) -> None:
    """A jti of more than 256 characters would only fill the replay store."""
    with pytest.raises(errors.MalformedDPoPProof, match="jti"):
        _verify(verifier, key.proof("GET", URL, access_token=TOKEN, jti="j" * 257))


@pytest.mark.parametrize(
    ("typ", "accepted"),
    [
        pytest.param("dpop+jwt", True, id="dpop+jwt"),
        pytest.param("DPoP+JWT", True, id="case-insensitive"),
        pytest.param("application/dpop+jwt", True, id="full-media-type"),
        pytest.param("at+jwt", False, id="access-token-type"),
        pytest.param(7, False, id="not-a-string"),
    ],
)
def test_proof_typ(typ: object, accepted: bool, verifier: ProofVerifier, key: DPoPKey) -> None:
    """typ is the media type dpop+jwt (case-insensitive, application/ implied)."""
    proof = key.proof("GET", URL, access_token=TOKEN, header={"typ": typ})
    if accepted:
        _verify(verifier, proof)
    else:
        with pytest.raises((errors.WrongDPoPProofType, errors.MalformedDPoPProof)):
            _verify(verifier, proof)


def test_the_jwk_must_fit_alg_even_with_its_own_alg(verifier: ProofVerifier, key: DPoPKey) -> None:
    """A jwk whose own alg disagrees with the header's is refused (RFC 8725 §3.1)."""
    proof = key.proof(
        "GET", URL, access_token=TOKEN, header={"jwk": {**key.public_jwk, "alg": "ES384"}}
    )
    with pytest.raises(errors.InvalidDPoPKey):
        _verify(verifier, proof)


def test_header_members_of_a_removed_kind_cannot_be_smuggled(
    verifier: ProofVerifier, key: DPoPKey
) -> None:
    """A jwk given as a JSON string instead of an object is no key."""
    proof = key.proof("GET", URL, access_token=TOKEN, header={"jwk": '{"kty": "EC"}'})
    with pytest.raises(errors.InvalidDPoPKey, match="not an object"):
        _verify(verifier, proof)


# --- nonces -------------------------------------------------------------------------------


@pytest.fixture
def nonces() -> NonceIssuer:
    """A nonce issuer with a one-minute step."""
    return NonceIssuer(b"n" * 32, lifetime=60)


def test_without_a_nonce_the_answer_carries_one(nonces: NonceIssuer, key: DPoPKey) -> None:
    """A policy with nonces answers use_dpop_nonce with the nonce to use (RFC 9449 §9)."""
    verifier = ProofVerifier(DPoPPolicy(mode="required", nonces=nonces))
    with pytest.raises(errors.UseDPoPNonce) as caught:
        _verify(verifier, key.proof("GET", URL, access_token=TOKEN))
    assert caught.value.nonce == nonces.current(NOW)
    assert (caught.value.status_code, caught.value.error) == (401, "use_dpop_nonce")
    proof = _verify(verifier, key.proof("GET", URL, access_token=TOKEN, nonce=caught.value.nonce))
    assert proof.next_nonce is None


@pytest.mark.parametrize(
    ("issued_at", "outcome"),
    [
        pytest.param(NOW - 60, "renew", id="previous-step-accepted-and-renewed"),
        pytest.param(NOW - 120, "refuse", id="two-steps-old"),
        pytest.param(NOW + 60, "refuse", id="from-the-future"),
    ],
)
def test_nonces_rotate(issued_at: float, outcome: str, nonces: NonceIssuer, key: DPoPKey) -> None:
    """The current and the previous nonce are accepted; the answer hands out the current one."""
    verifier = ProofVerifier(DPoPPolicy(mode="required", nonces=nonces))
    proof = key.proof("GET", URL, access_token=TOKEN, nonce=nonces.current(issued_at))
    if outcome == "renew":
        assert _verify(verifier, proof).next_nonce == nonces.current(NOW)
    else:
        with pytest.raises(errors.UseDPoPNonce):
            _verify(verifier, proof)


@pytest.mark.parametrize(
    "nonce",
    [
        pytest.param("A" * 32, id="forged"),
        pytest.param(7, id="not-a-string"),
        pytest.param("", id="empty"),
    ],
)
def test_forged_nonces_are_refused(nonce: object, nonces: NonceIssuer, key: DPoPKey) -> None:
    """Only a nonce with this issuer's MAC is a nonce."""
    verifier = ProofVerifier(DPoPPolicy(mode="required", nonces=nonces))
    with pytest.raises(errors.UseDPoPNonce):
        _verify(verifier, key.proof("GET", URL, access_token=TOKEN, nonce=nonce))


def test_workers_sharing_a_secret_share_nonces() -> None:
    """Two issuers with one secret agree; another secret does not."""
    one, two = NonceIssuer(b"s" * 32), NonceIssuer(b"s" * 32)
    assert two.is_valid(one.current(NOW), NOW)
    assert not NonceIssuer(b"t" * 32).is_valid(one.current(NOW), NOW)
    assert NonceIssuer().current(NOW) != NonceIssuer().current(NOW)


# --- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"mode": "on"}, id="unknown-mode"),
        pytest.param({"algorithms": ["HS256"]}, id="symmetric-algorithm"),
        pytest.param({"algorithms": ["none"]}, id="none"),
        pytest.param({"algorithms": []}, id="empty-algorithms"),
        pytest.param({"algorithms": 7}, id="algorithms-not-a-list"),
        pytest.param({"max_age": 0}, id="max-age-zero"),
        pytest.param({"max_age": float("nan")}, id="max-age-nan"),
        pytest.param({"leeway": 301}, id="leeway-too-large"),
        pytest.param({"leeway": True}, id="leeway-bool"),
        pytest.param({"nonces": "secret"}, id="nonces-not-an-issuer"),
        pytest.param({"max_proof_size": 100}, id="proof-size-too-small"),
    ],
)
def test_bad_policies_are_refused_at_construction(options: dict[str, Any]) -> None:
    """Every setting is checked once, naming itself."""
    with pytest.raises(errors.ConfigurationError, match="dpop"):
        DPoPPolicy(**options)


@pytest.mark.parametrize(
    ("secret", "lifetime"),
    [
        pytest.param(b"short", 300, id="short-secret"),
        pytest.param(b"s" * 32, 1, id="lifetime-too-short"),
    ],
)
def test_bad_nonce_issuers_are_refused(secret: bytes, lifetime: float) -> None:
    """A nonce secret has at least 32 bytes; a step lasts 10 s to a day."""
    with pytest.raises(errors.ConfigurationError, match="nonce"):
        NonceIssuer(secret, lifetime=lifetime)


def test_the_challenge_lists_the_policys_algorithms() -> None:
    """algs is the allow-list in the policy's order (RFC 9449 §7.1)."""
    assert DPoPPolicy(algorithms=("ES256", "EdDSA")).algs == "ES256 EdDSA"
    assert DPoPPolicy().algs == " ".join(DPOP_ALGORITHMS)
    assert "HS256" not in DPoPPolicy().algs


def test_a_verifier_needs_a_policy() -> None:
    """A verifier built from anything else is a configuration error."""
    with pytest.raises(errors.ConfigurationError):
        ProofVerifier({"mode": "required"})  # type: ignore[arg-type]


def test_remove_drops_a_header_member(key: DPoPKey) -> None:
    """The kit's REMOVE works in proof headers as in token headers."""
    proof = key.proof("GET", URL, header={"jwk": REMOVE})
    with pytest.raises(errors.InvalidDPoPKey):
        _verify(ProofVerifier(DPoPPolicy()), proof, access_token=None)
