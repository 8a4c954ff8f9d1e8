"""OAuth 2.0 grants: codes, refresh tokens and the token-endpoint flows, without HTTP.

Every failure is an :class:`OAuthError` carrying the RFC 6749 §5.2 error code (Auth0's
403 ``access_denied`` for a missing client grant). ``error_description`` texts are fixed
or built from server-side values, never from echoed request text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt

from . import models
from .models import OIDC_SCOPES, AuthorizationCode, Client, RefreshToken, ResourceServer, User
from .rules import scope_list
from .security import (
    is_valid_pkce_value,
    new_id,
    new_secret,
    pkce_matches,
    token_digest,
)
from .services import Domain
from .tokens import TokenMinter


@dataclass
class OAuthError(Exception):
    """An RFC 6749 error response."""

    error: str
    description: str
    status: int = 400
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, str]:
        """The JSON body: ``error`` and ``error_description``."""
        return {"error": self.error, "error_description": self.description}


def check_binding(
    api: ResourceServer | None, jkt: str | None, bound_to: str | None, what: str
) -> None:
    """The request's DPoP key (``jkt``) must fit the API and what the grant is bound to."""
    if bound_to is not None and jkt != bound_to:
        raise OAuthError("invalid_dpop_proof", f"The {what} is bound to another DPoP key")
    if api is not None and api.dpop_required and jkt is None:
        raise OAuthError("invalid_request", "This API requires a DPoP proof")


def resolve_audience(params: Mapping[str, str]) -> str | None:
    """``audience``, or RFC 8707 ``resource`` as its alias (both must agree when both given)."""
    audience = params.get("audience") or None
    resource = params.get("resource") or None
    if audience and resource and audience != resource:
        raise OAuthError("invalid_request", "audience and resource must be the same")
    return audience or resource


def target_api(domain: Domain, audience: str | None, *, for_users: bool) -> ResourceServer | None:
    """The API an audience names; user flows may not target the Management API."""
    if audience is None:
        return None
    api = domain.apis.find(audience)
    if api is None or api.identifier != audience or (for_users and api.is_system):
        raise OAuthError("invalid_target", "The audience is not a registered API")
    return api


def check_user_scopes(api: ResourceServer | None, scopes: Sequence[str]) -> None:
    """Every scope must be an OIDC scope or one the API defines."""
    known = set(OIDC_SCOPES) | (set(api.scope_values) if api else set())
    unknown = [s for s in scopes if s not in known]
    if unknown:
        raise OAuthError("invalid_scope", "The requested scope is not defined by the API")
    if api is None and "openid" not in scopes:
        raise OAuthError(
            "invalid_request", "An audience is required unless the openid scope is requested"
        )


@dataclass(frozen=True)
class CodeGrant:
    """What an authorization code is bound to."""

    client_id: str
    user_id: str
    redirect_uri: str
    redirect_uri_sent: bool
    code_challenge: str | None
    audience: str | None
    scopes: tuple[str, ...]
    nonce: str | None
    sign_in: models.SignIn
    #: The DPoP key the code is bound to (``dpop_jkt`` at /authorize, RFC 9449 §10).
    dpop_jkt: str | None = None


class Grants:
    """The token endpoint's grants on top of a :class:`Domain` and a :class:`TokenMinter`.

    Built once per application (``app.state.services.grants``), never per request.
    """

    def __init__(self, domain: Domain, minter: TokenMinter) -> None:
        self.domain = domain
        self.minter = minter
        self.settings = domain.settings
        self._tokens = domain.store.tokens

    # ---------------------------------------------------------------- codes

    def issue_code(self, grant: CodeGrant) -> str:
        """Store a new single-use code (hashed) and return it (256 bits of entropy)."""
        code = new_secret(32)
        now = self.domain.now()
        self._tokens.add_code(
            AuthorizationCode(
                code_hash=token_digest(code),
                family_id=new_id("fam_"),
                client_id=grant.client_id,
                user_id=grant.user_id,
                redirect_uri=grant.redirect_uri,
                redirect_uri_sent=grant.redirect_uri_sent,
                code_challenge=grant.code_challenge,
                audience=grant.audience,
                scopes=grant.scopes,
                nonce=grant.nonce,
                expires_at=now + self.settings.code_ttl,
                **grant.sign_in.fields(),
                dpop_jkt=grant.dpop_jkt,
            ),
            now,
        )
        return code

    # -------------------------------------------------------- token responses

    def _user_tokens(
        self,
        *,
        client: Client,
        user: User,
        api: ResourceServer | None,
        scopes: Sequence[str],
        sign_in: models.SignIn,
        family_id: str,
        grant_type: str | None,
        nonce: str | None = None,
        refresh_scopes: Sequence[str] | None = None,
        family_expires_at: int | None = None,
        jkt: str | None = None,
    ) -> dict[str, Any]:
        """The token response of a user-based grant (the refresh token keeps the consented
        scopes; RBAC cuts them again at each use): AT, ID token and refresh token."""
        issued = self.minter.user_access_token(
            api=api,
            user=user,
            client_id=client.client_id,
            scopes=scopes,
            sign_in=sign_in,
            grant_type=grant_type,
            jkt=jkt,
        )
        response: dict[str, Any] = {
            "access_token": issued.token,
            "scope": " ".join(issued.scope),
            "expires_in": issued.expires_in,
            "token_type": "Bearer" if jkt is None else "DPoP",
        }
        if "openid" in scopes:
            response["id_token"] = self.minter.id_token(
                user=user,
                client_id=client.client_id,
                scopes=scopes,
                sign_in=sign_in,
                nonce=nonce,
            )
        rt_scopes = list(refresh_scopes if refresh_scopes is not None else scopes)
        if (
            api is not None
            and api.allow_offline_access
            and "offline_access" in rt_scopes
            and "refresh_token" in client.grant_types
        ):
            response["refresh_token"] = self._store_refresh_token(
                family_id=family_id,
                client=client,
                user=user,
                api=api,
                scopes=rt_scopes,
                sign_in=sign_in,
                family_expires_at=family_expires_at,
                # A public client's refresh token is bound to its key (RFC 9449 §5): only
                # the key holder can use it. A confidential client authenticates anyway.
                jkt=None if client.is_confidential else jkt,
            )
        return response

    def _store_refresh_token(
        self,
        *,
        family_id: str,
        client: Client,
        user: User,
        api: ResourceServer,
        scopes: Sequence[str],
        sign_in: models.SignIn,
        family_expires_at: int | None,
        jkt: str | None = None,
    ) -> str:
        token = new_secret(32)
        now = self.domain.now()
        self._tokens.add_refresh(
            RefreshToken(
                token_hash=token_digest(token),
                family_id=family_id,
                client_id=client.client_id,
                user_id=user.user_id,
                audience=api.identifier,
                scopes=tuple(scopes),
                created_at=now,
                family_expires_at=family_expires_at
                or now + self.settings.refresh_token_absolute_ttl,
                dpop_jkt=jkt,
                **sign_in.fields(),
            )
        )
        return token

    # ------------------------------------------------------------------ grants

    def token(
        self, client: Client, params: Mapping[str, str], *, jkt: str | None = None
    ) -> dict[str, Any]:
        """Dispatch on ``grant_type`` and return the token response body; the tokens are
        bound to ``jkt``, the key of the request's DPoP proof (checked by the endpoint)."""
        grant_type = params.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "Missing required parameter: grant_type")
        handlers = {
            "client_credentials": self.client_credentials,
            "authorization_code": self.authorization_code,
            "refresh_token": self.refresh_token,
            "password": self.password,
        }
        handler = handlers.get(grant_type)
        if handler is None:
            raise OAuthError("unsupported_grant_type", "Unsupported grant type")
        if grant_type not in client.grant_types:
            raise OAuthError("unauthorized_client", "The grant type is not allowed for this client")
        return handler(client, params, jkt)

    def client_credentials(
        self, client: Client, params: Mapping[str, str], jkt: str | None = None
    ) -> dict[str, Any]:
        """Machine-to-machine tokens; the client needs a client grant for the audience."""
        if not client.is_confidential:
            raise OAuthError("unauthorized_client", "Public clients cannot use this grant")
        audience = resolve_audience(params)
        if audience is None:
            raise OAuthError(
                "invalid_request",
                "No audience parameter was provided, and no default audience has been configured",
            )
        api = target_api(self.domain, audience, for_users=False)
        assert api is not None
        check_binding(api, jkt, None, "grant")
        grant = self.domain.client_grants.find(client.client_id, api.identifier)
        if grant is None:
            raise OAuthError(
                "access_denied",
                f'Client is not authorized to access "{api.identifier}". You might probably want '
                'to create a "client-grant" associated to this API. See: '
                "https://auth0.com/docs/api/v2#!/Client_Grants/post_client_grants",
                403,
            )
        if "scope" in params:
            requested = scope_list(params["scope"])
            if any(s not in api.scope_values for s in requested):
                raise OAuthError("invalid_scope", "The requested scope is not defined by the API")
            missing = [s for s in requested if s not in grant.scope]
            if missing:
                raise OAuthError(
                    "access_denied",
                    f"Client has not been granted scopes: {' '.join(missing)}",
                    403,
                )
        else:
            requested = list(grant.scope)
        issued = self.minter.access_token(
            api=api,
            subject=f"{client.client_id}@clients",
            client_id=client.client_id,
            scopes=requested,
            grant_type="client-credentials",
            jkt=jkt,
        )
        return {
            "access_token": issued.token,
            "scope": " ".join(requested),
            "expires_in": issued.expires_in,
            "token_type": "Bearer" if jkt is None else "DPoP",
        }

    def authorization_code(
        self, client: Client, params: Mapping[str, str], jkt: str | None = None
    ) -> dict[str, Any]:
        """Redeem a code: single use, bound to client, redirect URI, PKCE challenge and user."""
        value = params.get("code")
        if not value:
            raise OAuthError("invalid_request", "Missing required parameter: code")
        code = self._tokens.find_code(token_digest(value))
        invalid = OAuthError("invalid_grant", "Invalid authorization code")
        if code is None or code.client_id != client.client_id:
            raise invalid
        now = self.domain.now()
        if code.used_at is not None:
            self._replayed(code)
            raise invalid
        if code.expires_at <= now:
            raise OAuthError("invalid_grant", "The authorization code has expired")
        # Before the code is spent: a request with the wrong key does not burn it.
        code_api = self.domain.apis.find(code.audience) if code.audience else None
        check_binding(code_api, jkt, code.dpop_jkt, "code")
        redirect_uri = params.get("redirect_uri")
        if code.redirect_uri_sent and redirect_uri is None:
            raise OAuthError("invalid_grant", "redirect_uri is required for this code")
        if redirect_uri is not None and redirect_uri != code.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization")
        # RFC 8707 §2.2: a resource (or Auth0 audience) named again here must be the one
        # the code was issued for; a code is never turned into a token for another API.
        requested = resolve_audience(params)
        if requested is not None and requested != (code.audience or None):
            raise OAuthError(
                "invalid_target", "The resource is not the one the code was issued for"
            )
        verifier = params.get("code_verifier")
        challenge = code.code_challenge
        if challenge is None and verifier is not None:
            raise OAuthError("invalid_grant", "code_verifier sent for a code issued without PKCE")
        if challenge is not None:
            if verifier is None:
                raise OAuthError("invalid_grant", "Missing code_verifier")
            if not is_valid_pkce_value(verifier) or not pkce_matches(verifier, challenge):
                raise OAuthError("invalid_grant", "Failed to verify code_verifier")
        if not self._tokens.use_code(code.code_hash, now):
            self._replayed(code)
            raise invalid
        user = self.domain.users.find(code.user_id)
        if user is None or user.blocked:
            raise invalid
        api = self.domain.apis.find(code.audience) if code.audience else None
        if code.audience and api is None:
            raise invalid
        return self._user_tokens(
            client=client,
            user=user,
            api=api,
            scopes=code.scopes,
            sign_in=code.sign_in,
            family_id=code.family_id,
            grant_type=None,
            nonce=code.nonce,
            jkt=jkt,
        )

    def _replayed(self, code: AuthorizationCode) -> None:
        """A code used twice: revoke every refresh token issued from it (RFC 6749 §4.1.2)."""
        self.domain.revocations.refresh_tokens(family_id=code.family_id)

    def password(
        self, client: Client, params: Mapping[str, str], jkt: str | None = None
    ) -> dict[str, Any]:
        """Resource-owner password grant: first-party confidential clients that enable it."""
        if not (client.is_first_party and client.is_confidential):
            raise OAuthError(
                "unauthorized_client", "Only first-party confidential clients may use this"
            )
        username, password = params.get("username"), params.get("password")
        if not username or not password:
            raise OAuthError("invalid_request", "Missing required parameter: username or password")
        user = self.domain.users.authenticate(username, password)
        if user is None:
            raise OAuthError("invalid_grant", "Wrong email or password.")
        return self.user_token(client, user, params, grant_type="password", jkt=jkt)

    def user_token(
        self,
        client: Client,
        user: User,
        params: Mapping[str, str],
        *,
        grant_type: str | None = None,
        jkt: str | None = None,
    ) -> dict[str, Any]:
        """Tokens for *user* and *client* now: the password grant, and the CLI's
        ``mint-token --user`` (which names no scope to get every scope of the API).

        The audience must be an API users may target; the scopes must exist.
        """
        api = target_api(self.domain, resolve_audience(params), for_users=True)
        scopes = scope_list(params.get("scope"))
        if not scopes and grant_type is None and api is not None:
            scopes = sorted(api.scope_values)
        check_user_scopes(api, scopes)
        if grant_type is not None:  # the CLI mints what the operator asks for
            check_binding(api, jkt, None, "grant")
        return self._user_tokens(
            client=client,
            user=user,
            api=api,
            scopes=scopes,
            sign_in=models.SignIn(self.domain.now()),
            family_id=new_id("fam_"),
            grant_type=grant_type,
            jkt=jkt,
        )

    def refresh_token(
        self, client: Client, params: Mapping[str, str], jkt: str | None = None
    ) -> dict[str, Any]:
        """Rotate a refresh token; a reused one revokes its whole family. Scope only shrinks."""
        value = params.get("refresh_token")
        if not value:
            raise OAuthError("invalid_request", "Missing required parameter: refresh_token")
        token = self._tokens.find_refresh(token_digest(value))
        invalid = OAuthError("invalid_grant", "Unknown or invalid refresh token.")
        if token is None or token.client_id != client.client_id or token.revoked_at is not None:
            raise invalid
        if token.rotated_at is not None:
            self.domain.revocations.refresh_tokens(family_id=token.family_id)
            raise invalid
        now = self.domain.now()
        if token.expired(now, self.settings.refresh_token_idle_ttl):
            raise invalid
        original = list(token.scopes)
        if "scope" in params:
            requested = scope_list(params["scope"])
            if not requested or any(s not in original for s in requested):
                raise OAuthError(
                    "invalid_scope", "The requested scope exceeds the scope originally granted"
                )
        else:
            requested = original
        api = self.domain.apis.find(token.audience)
        user = self.domain.users.find(token.user_id)
        if api is None or user is None or user.blocked or not api.allow_offline_access:
            raise invalid
        # Before the rotation: a thief without the key does not burn the token.
        check_binding(api, jkt, token.dpop_jkt, "refresh token")
        if not self._tokens.rotate_refresh(token.token_hash, now):
            self.domain.revocations.refresh_tokens(family_id=token.family_id)
            raise invalid
        return self._user_tokens(
            client=client,
            user=user,
            api=api,
            scopes=requested,
            sign_in=token.sign_in,
            family_id=token.family_id,
            grant_type=None,
            refresh_scopes=original,
            family_expires_at=token.family_expires_at,
            jkt=jkt,
        )

    def revoke(self, client: Client, token: str) -> None:
        """RFC 7009: revoke a refresh token (with its family) or an access token.

        A revoked access token is refused wherever this server checks tokens itself
        (``/userinfo`` and the Management API) until it expires; APIs that validate JWTs
        on their own keep accepting it until ``exp``, which is why access tokens are short.
        Unknown, expired or foreign-issuer tokens are ignored (RFC 7009 §2.2).
        """
        reference = self.domain.revocations.reference(token_digest(token))
        if reference is not None:
            # An opaque access token: inactive at introspection from now on.
            if reference.client_id != client.client_id:
                raise OAuthError("invalid_grant", "The token was not issued to this client")
            self.domain.revocations.revoke_reference(reference.token_hash)
            return
        refresh = self._tokens.find_refresh(token_digest(token))
        if refresh is not None:
            if refresh.client_id != client.client_id:
                raise OAuthError("invalid_grant", "The token was not issued to this client")
            self.domain.revocations.refresh_tokens(family_id=refresh.family_id)
            return
        try:
            claims = self.minter.verify(token, audience=None, allow_hs256=True)
        except jwt.PyJWTError:
            return
        if claims.get("azp") != client.client_id:
            raise OAuthError("invalid_grant", "The token was not issued to this client")
        jti, expires = claims.get("jti"), claims.get("exp")
        if isinstance(jti, str) and isinstance(expires, int):
            self.domain.revocations.access_token(jti, expires)
