"""Minting access tokens and ID tokens the way Auth0 shapes them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from .models import ResourceServer, SignIn, User
from .security import half_hash, new_secret, token_digest
from .services import Domain


@dataclass(frozen=True)
class IssuedToken:
    """A signed access token with what the token response needs to say about it."""

    token: str
    expires_in: int
    scope: tuple[str, ...]
    jti: str


class TokenMinter:
    """Signs access tokens (RS256 with the current key, or HS256 with the API's secret)."""

    def __init__(self, domain: Domain) -> None:
        self.domain = domain
        self.settings = domain.settings

    @property
    def userinfo_url(self) -> str:
        """The ``/userinfo`` URL, which is also an access-token audience at Auth0."""
        return self.settings.url("userinfo")

    def _sign_rs256(self, claims: dict[str, Any], typ: str) -> str:
        key = self.domain.keys.current()
        return jwt.encode(
            claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, "typ": typ}
        )

    def access_token(
        self,
        *,
        api: ResourceServer | None,
        subject: str,
        client_id: str,
        scopes: Sequence[str],
        grant_type: str | None = None,
        lifetime: int | None = None,
        jkt: str | None = None,
        extra: dict[str, Any] | None = None,
        permissions: Sequence[str] | None = None,
    ) -> IssuedToken:
        """Issue an access token for *api* (or for ``/userinfo`` only when *api* is ``None``).

        A signed JWT, or for an API whose ``access_token_format`` is ``opaque`` a random
        reference token whose claims are stored under its hash.

        ``aud`` is the API identifier, or a list with the userinfo URL when ``openid`` was
        granted and the token is RS256 (``/userinfo`` refuses HS256 tokens). ``gty`` is set
        for the grants where Auth0 sets it. ``permissions`` (``_authz`` dialects) is what
        RBAC computed for a user, else the granted scopes of the API; ``extra`` adds claims
        (a user's sign-in and roles, see :meth:`user_access_token`).
        """
        now = self.domain.now()
        if api is None:
            lifetime = lifetime or 86400
        else:
            lifetime = min(lifetime or api.token_lifetime, api.token_lifetime)
        opaque = api is not None and api.access_token_format == "opaque"
        # An opaque token is checked here (introspection, /userinfo), never by a signature.
        symmetric = api is not None and api.signing_alg == "HS256" and not opaque
        audience: str | list[str]
        if api is None:
            audience = self.userinfo_url
        elif "openid" in scopes and not symmetric:
            audience = [api.identifier, self.userinfo_url]
        else:
            # /userinfo accepts only our RS256 tokens: the API holds an HS256 secret too.
            audience = api.identifier
        jti = new_secret(16)
        claims: dict[str, Any] = {
            "iss": self.settings.issuer,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "exp": now + lifetime,
            "jti": jti,
            "azp": client_id,
            "scope": " ".join(scopes),
        }
        if grant_type:
            claims["gty"] = grant_type
        if jkt is not None:
            # A DPoP-bound token: cnf names the client key's thumbprint (RFC 9449 §6).
            claims["cnf"] = {"jkt": jkt}
        dialect = api.token_dialect if api else "access_token"
        if dialect.startswith("rfc9068"):
            claims["client_id"] = client_id
        if dialect.endswith("_authz") and api is not None:
            claims["permissions"] = (
                list(permissions)
                if permissions is not None
                else [s for s in scopes if s in api.scope_values]
            )
        if extra:
            claims |= extra
        typ = "at+jwt" if dialect.startswith("rfc9068") else "JWT"
        if opaque:
            token = new_secret(32)
            self.domain.revocations.store_reference(token_digest(token), claims)
        elif api is not None and symmetric:
            assert api.signing_secret is not None
            token = jwt.encode(
                claims, api.signing_secret.encode("utf-8"), algorithm="HS256", headers={"typ": typ}
            )
        else:
            token = self._sign_rs256(claims, typ)
        return IssuedToken(token, lifetime, tuple(scopes), jti)

    def user_access_token(
        self,
        *,
        api: ResourceServer | None,
        user: User,
        client_id: str,
        scopes: Sequence[str],
        sign_in: SignIn,
        grant_type: str | None = None,
        lifetime: int | None = None,
        jkt: str | None = None,
    ) -> IssuedToken:
        """A user's access token, for every user-based flow (code, implicit, password, refresh).

        The one place where RBAC shapes a user's token: with RBAC on, ``scope`` is what was
        requested (and consented) that the user is permitted, and ``permissions`` lists all
        of the user's permissions for the API. The token says how the user signed in
        (``auth_time``, ``acr``, ``amr``) and lists the user's role names in the namespaced
        roles claim. :attr:`IssuedToken.scope` is the scope granted.
        """
        rbac = self.domain.rbac
        granted, permissions = rbac.token_scopes(user.user_id, api, scopes)
        extra = sign_in.claims() | {self.settings.roles_claim: rbac.role_names(user.user_id)}
        return self.access_token(
            api=api,
            subject=user.user_id,
            client_id=client_id,
            scopes=granted,
            grant_type=grant_type,
            lifetime=lifetime,
            extra=extra,
            permissions=permissions,
            jkt=jkt,
        )

    def verify(
        self, token: str, *, audience: str | None, allow_hs256: bool = False
    ) -> dict[str, Any]:
        """The claims of an access token this server signed and that has not expired.

        RS256 tokens verify with a published key; HS256 tokens (only when *allow_hs256*)
        with the secret of the API their ``aud`` names. ``audience=None`` accepts any
        audience. Raises ``jwt.PyJWTError``.
        """
        header = jwt.get_unverified_header(token)
        alg = header.get("alg")
        key: Any
        if alg == "RS256":
            kid = header.get("kid")
            found = [k for k in self.domain.keys.published() if k.kid == kid]
            if not found:
                raise jwt.InvalidKeyError("unknown kid")
            key = found[0].private_key.public_key()
        elif alg == "HS256" and allow_hs256:
            aud = jwt.decode(token, options={"verify_signature": False}).get("aud")
            api = self.domain.apis.find(aud) if isinstance(aud, str) else None
            if api is None or api.signing_secret is None:
                raise jwt.InvalidKeyError("not an HS256 API of this server")
            key = api.signing_secret.encode("utf-8")
        else:
            raise jwt.InvalidAlgorithmError("not a token signed by this server")
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=audience,
            issuer=self.settings.issuer,
            options={"verify_aud": audience is not None, "require": ["exp", "jti"]},
        )
        return claims

    def id_token(
        self,
        *,
        user: User,
        client_id: str,
        scopes: Sequence[str],
        sign_in: SignIn,
        nonce: str | None = None,
        access_token: str | None = None,
    ) -> str:
        """Sign an OIDC ID token: ``aud`` is the client, ``at_hash`` when given an AT.

        It says how the user signed in (``auth_time``, ``acr``, ``amr``) and, like the access
        token, lists the user's role names in the namespaced roles claim.
        """
        now = self.domain.now()
        claims: dict[str, Any] = {
            "iss": self.settings.issuer,
            "sub": user.user_id,
            "aud": client_id,
            "iat": now,
            "exp": now + self.settings.id_token_ttl,
            "sid": new_secret(12),
            **sign_in.claims(),
            self.settings.roles_claim: self.domain.rbac.role_names(user.user_id),
        }
        if nonce is not None:
            claims["nonce"] = nonce
        if access_token is not None:
            claims["at_hash"] = half_hash(access_token)
        claims |= user_claims(user, scopes)
        return self._sign_rs256(claims, "JWT")


def user_claims(user: User, scopes: Sequence[str]) -> dict[str, Any]:
    """The profile claims the granted OIDC scopes release."""
    claims: dict[str, Any] = {}
    if "profile" in scopes:
        claims["name"] = user.name
        claims["nickname"] = user.email.split("@", 1)[0]
        claims["updated_at"] = user.updated_at
    if "email" in scopes:
        claims["email"] = user.email
        # Only an address someone proved they receive mail at says so ("nOAuth").
        claims["email_verified"] = user.email_verified
    return claims
