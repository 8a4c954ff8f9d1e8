"""DPoP at the token endpoint (RFC 9449 §5, §8, §10), without HTTP.

The server checks a token request's proof with apiguard's own verifier (the one the APIs
use), against the token endpoint's URI as this server names it (never the request's
``Host``), and remembers each proof's ``jti`` for its window. The result is the key's
thumbprint that the tokens of the response are bound to, or None for a request without a
proof. Server nonces, when configured, are stateless (:class:`apiguard.dpop.NonceIssuer`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from apiguard.dpop import (
    DPOP_ALGORITHMS,
    DPoPPolicy,
    MemoryReplayStore,
    NonceIssuer,
    ProofVerifier,
    check_replay,
    normalize_uri,
)
from apiguard.errors import BearerError, UseDPoPNonce
from apiguard.testing import DPoPKey

from .grants import Grants, OAuthError
from .models import Client, ResourceServer

__all__ = ["SIGNING_ALGORITHMS", "TokenEndpointProofs", "client_credentials_with_proof"]

#: What discovery advertises as ``dpop_signing_alg_values_supported``.
SIGNING_ALGORITHMS = DPOP_ALGORITHMS


class TokenEndpointProofs:
    """Checks the DPoP proofs of token requests (RFC 9449 §4.3 with the §5 endpoint rules).

    Args:
        token_url: the token endpoint's URI, as discovery names it.
        nonces: a nonce issuer to require server nonces (RFC 9449 §8), or None.
        clock: seconds since the epoch.
    """

    def __init__(
        self,
        token_url: str,
        *,
        nonces: NonceIssuer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._uri = normalize_uri(token_url)
        self._verifier = ProofVerifier(
            DPoPPolicy(mode="allowed", algorithms=SIGNING_ALGORITHMS, nonces=nonces)
        )
        self._replays = MemoryReplayStore()
        self._clock = clock
        self.nonces = nonces

    def check(self, proofs: Sequence[str]) -> str | None:
        """The thumbprint of a token request's key, or None when it sent no proof.

        Raises:
            OAuthError: 400 ``invalid_dpop_proof`` (a bad, repeated or replayed proof), or
                400 ``use_dpop_nonce`` with a ``DPoP-Nonce`` header (RFC 9449 §8).
        """
        if not proofs:
            return None
        try:
            proof = self._verifier.verify(proofs, method="POST", uri=self._uri, now=self._clock())
            check_replay(self._replays, proof)
        except UseDPoPNonce as exc:
            raise OAuthError(
                "use_dpop_nonce",
                "Authorization server requires nonce in DPoP proof",
                400,
                {"DPoP-Nonce": exc.nonce},
            ) from None
        except BearerError as exc:
            # The fixed description of the rule that failed; nothing of the proof echoed.
            raise OAuthError("invalid_dpop_proof", exc.description, 400) from None
        return proof.jkt


def client_credentials_with_proof(
    proofs: TokenEndpointProofs,
    grants: Grants,
    client: Client,
    api: ResourceServer,
    key: DPoPKey,
    token_url: str,
) -> tuple[dict[str, Any], int, str]:
    """A client-credentials exchange with a DPoP proof, checked as the endpoint checks it.

    The dashboard's Test tab plays the client with ``key``; a server that asks for a nonce
    gets the retry a client makes. Returns the token response (or error) body, its status
    and the proof that was sent.
    """
    params = {"grant_type": "client_credentials", "audience": api.identifier}
    proof = key.proof("POST", token_url)
    try:
        try:
            jkt = proofs.check([proof])
        except OAuthError as exc:
            if exc.error != "use_dpop_nonce":
                raise
            proof = key.proof("POST", token_url, nonce=exc.headers["DPoP-Nonce"])
            jkt = proofs.check([proof])
        return grants.token(client, params, jkt=jkt), 200, proof
    except OAuthError as exc:
        return exc.body(), exc.status, proof
