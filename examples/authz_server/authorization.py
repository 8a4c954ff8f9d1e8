"""The authorization request, without HTTP: parse it, check the client and redirect URI,
PKCE, decide whether consent is needed, and issue what it asks for.

``parse`` returns the client and the validated request, or raises ``PageError`` (bad
client or redirect URI: shown on a page, never redirected) or returns the ``OAuthError``
to send back to the client. ``respond`` issues the code or the implicit tokens. The
routes in ``routes/authorize.py`` only render pages and redirects around these.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from . import rules
from .grants import CodeGrant, Grants, OAuthError, check_user_scopes, resolve_audience, target_api
from .models import ACR_MFA, Client, Interaction, ResourceServer, Session, SignIn, User
from .rules import ValidationError, scope_list
from .security import is_valid_pkce_value, new_secret
from .services import Domain
from .tokens import TokenMinter

RESPONSE_TYPES = {"code": "code", "token": "token", "id_token token": "id_token token"}
PROMPTS = {"none", "login", "consent"}


@dataclass
class AuthRequest:
    """A validated authorization request."""

    client_id: str
    redirect_uri: str
    redirect_uri_sent: bool
    response_type: str
    response_mode: str
    scopes: list[str] = field(default_factory=list)
    audience: str | None = None
    state: str | None = None
    nonce: str | None = None
    code_challenge: str | None = None
    #: The DPoP key the code is to be bound to (RFC 9449 §10), a thumbprint.
    dpop_jkt: str | None = None
    prompt: list[str] = field(default_factory=list)
    #: OIDC ``max_age``: the greatest age of the sign-in, in seconds, or None.
    max_age: int | None = None
    #: OIDC ``acr_values``: the authentication context classes asked for.
    acr_values: list[str] = field(default_factory=list)

    @property
    def wants_second_factor(self) -> bool:
        """Whether the client asked for a multi-factor sign-in (the one ``acr`` we raise)."""
        return ACR_MFA in self.acr_values


class PageError(Exception):
    """An error that must be shown on a page, never redirected (bad client or URI)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def match_redirect_uri(client: Client, given: str) -> bool:
    """Exact match, except any port for loopback IP literals (RFC 8252 §7.3)."""
    if given in client.callbacks:
        return True
    try:
        parts = urlsplit(given)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "::1") or port is None:
        return False
    if parts.username is not None or parts.password is not None or "#" in given:
        return False
    host = "[::1]" if parts.hostname == "::1" else parts.hostname
    without_port = parts._replace(netloc=host).geturl()
    return without_port in client.callbacks


def build_redirect(redirect_uri: str, mode: str, params: dict[str, str]) -> str:
    """The client's URI with the response in the query or the fragment."""
    encoded = urlencode(params)
    if mode == "fragment":
        return f"{redirect_uri}#{encoded}"
    return f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{encoded}"


def parse(
    domain: Domain, params: dict[str, str], repeated: set[str]
) -> tuple[Client, AuthRequest, OAuthError | None]:
    """Validate the request; bad client/URI raise ``PageError``, the rest is returned.

    *params* are the query parameters (the last of each name), *repeated* the names that
    came more than once.
    """
    if {"client_id", "redirect_uri"} & repeated:
        raise PageError("The client_id and redirect_uri parameters must not repeat.")
    client_id = params.get("client_id")
    client = domain.clients.find(client_id) if client_id else None
    if client is None:
        raise PageError("Unknown client: the application is not registered.")
    given = params.get("redirect_uri")
    if given is not None:
        if not match_redirect_uri(client, given):
            raise PageError("The redirect_uri is not registered for this application.")
        redirect_uri, sent = given, True
    elif len(client.callbacks) == 1:
        redirect_uri, sent = client.callbacks[0], False
    else:
        raise PageError("The redirect_uri parameter is required for this application.")

    raw_type = " ".join(sorted(params.get("response_type", "").split()))
    response_type = RESPONSE_TYPES.get(raw_type, raw_type)
    default_mode = "fragment" if "token" in response_type.split() else "query"
    mode = params.get("response_mode", default_mode)
    auth = AuthRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        redirect_uri_sent=sent,
        response_type=response_type,
        # Implicit answers (errors included) always travel in the fragment.
        response_mode=mode
        if mode in ("query", "fragment") and default_mode == "query"
        else default_mode,
        state=params.get("state"),
    )
    try:
        if repeated:
            raise OAuthError("invalid_request", "A parameter was repeated")
        if response_type not in RESPONSE_TYPES.values():
            raise OAuthError("unsupported_response_type", "Unsupported response_type")
        needed_grant = "authorization_code" if response_type == "code" else "implicit"
        if needed_grant not in client.grant_types:
            raise OAuthError(
                "unauthorized_client", "The response_type is not allowed for this client"
            )
        if mode not in ("query", "fragment") or (mode == "query" and response_type != "code"):
            raise OAuthError("invalid_request", "Unsupported response_mode")
        auth.scopes = scope_list(params.get("scope"))
        auth.audience = resolve_audience(params)
        api = target_api(domain, auth.audience, for_users=True)
        check_user_scopes(api, auth.scopes)
        if api is not None and api.dpop_required and response_type != "code":
            # An implicit token comes without a token request, hence without a proof.
            raise OAuthError(
                "invalid_request", "This API requires DPoP-bound tokens: use the code flow"
            )
        auth.nonce = params.get("nonce")
        if "id_token" in response_type and "openid" not in auth.scopes:
            # OIDC Core §3.1.2.1 leaves a request without openid unspecified; an ID token
            # is only ever issued for an OpenID request (as node oidc-provider does).
            raise OAuthError(
                "invalid_request", "The id_token response type requires the openid scope"
            )
        if "id_token" in response_type and not auth.nonce:
            raise OAuthError("invalid_request", "A nonce is required with id_token")
        prompt = scope_list(params.get("prompt"))
        if any(p not in PROMPTS for p in prompt) or ("none" in prompt and len(prompt) > 1):
            raise OAuthError("invalid_request", "Unsupported prompt value")
        auth.prompt = prompt
        auth.max_age = _max_age(params.get("max_age"))
        auth.acr_values = scope_list(params.get("acr_values"))
        if response_type == "code":
            auth.code_challenge = _pkce(client, params)
            try:
                auth.dpop_jkt = rules.dpop_jkt(params.get("dpop_jkt"))
            except ValidationError as exc:
                raise OAuthError("invalid_request", exc.message) from None
    except OAuthError as exc:
        return client, auth, exc
    return client, auth, None


def _max_age(raw: str | None) -> int | None:
    """OIDC Core §3.1.2.1 ``max_age``: a non-negative integer of seconds."""
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        raise OAuthError("invalid_request", "max_age must be a non-negative integer")
    return int(raw)


def must_sign_in(auth: AuthRequest, session: Session, user: User | None, now: int) -> bool:
    """Whether the user must (again) enter a password before this request goes on.

    No user, ``prompt=login``, or a sign-in older than ``max_age`` (OIDC Core §3.1.2.1).
    """
    if user is None or "login" in auth.prompt:
        return True
    if auth.max_age is None:
        return False
    return session.auth_time is None or now - session.auth_time > auth.max_age


def needs_second_factor(auth: AuthRequest, session: Session) -> bool:
    """Whether the client asked for a multi-factor sign-in the session has not had."""
    return auth.wants_second_factor and session.acr != ACR_MFA


def _pkce(client: Client, params: dict[str, str]) -> str | None:
    challenge = params.get("code_challenge")
    method = params.get("code_challenge_method")
    if challenge is None:
        if method is not None:
            raise OAuthError("invalid_request", "code_challenge_method without code_challenge")
        if not client.is_confidential:
            raise OAuthError("invalid_request", "PKCE (code_challenge) is required")
        return None
    if method != "S256":
        raise OAuthError("invalid_request", "Only the S256 code_challenge_method is supported")
    if not is_valid_pkce_value(challenge):
        raise OAuthError("invalid_request", "Malformed code_challenge")
    return challenge


def needs_consent(
    domain: Domain, client: Client, user: User, auth: AuthRequest, api: ResourceServer | None
) -> bool:
    """Third-party clients need consent (remembered); first-party may skip if the API allows.

    Skipping needs a redirect URI that only the client can receive: an https host. Any
    app on the machine can listen on a loopback port or claim a private-use URI scheme
    (RFC 8252 §8.6), so for those the user is asked even for a first-party client.
    """
    if "consent" in auth.prompt:
        return True
    if client.is_first_party:
        skip = api is None or api.skip_consent_for_verifiable_first_party_clients
        if skip and urlsplit(auth.redirect_uri).scheme == "https":
            return False
    known = domain.consents.consented_scopes(user.user_id, client.client_id, auth.audience or "")
    return not known or not set(auth.scopes) <= known


def api_of(domain: Domain, auth: AuthRequest) -> ResourceServer | None:
    """The API the request names, if any."""
    return domain.apis.find(auth.audience) if auth.audience else None


def respond(
    domain: Domain,
    grants: Grants,
    minter: TokenMinter,
    client: Client,
    auth: AuthRequest,
    user: User,
    sign_in: SignIn,
) -> dict[str, str]:
    """Issue the code (or the implicit tokens): the parameters of the answer to the client."""
    if auth.response_type == "code":
        code = grants.issue_code(
            CodeGrant(
                client_id=client.client_id,
                user_id=user.user_id,
                redirect_uri=auth.redirect_uri,
                redirect_uri_sent=auth.redirect_uri_sent,
                code_challenge=auth.code_challenge,
                audience=auth.audience,
                scopes=tuple(auth.scopes),
                nonce=auth.nonce,
                sign_in=sign_in,
                dpop_jkt=auth.dpop_jkt,
            )
        )
        return {"code": code}
    # Implicit: no refresh token, ever (RFC 6749 §4.2.2).
    scopes = [s for s in auth.scopes if s != "offline_access"]
    issued = minter.user_access_token(
        api=api_of(domain, auth),
        user=user,
        client_id=client.client_id,
        scopes=scopes,
        sign_in=sign_in,
        lifetime=domain.settings.implicit_token_ttl,
    )
    params = {
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": str(issued.expires_in),
        "scope": " ".join(issued.scope),
    }
    if "id_token" in auth.response_type:
        params["id_token"] = minter.id_token(
            user=user,
            client_id=client.client_id,
            scopes=scopes,
            sign_in=sign_in,
            nonce=auth.nonce,
            access_token=issued.token,
        )
    return params


# ------------------------------------------------------------------ interactions


def park(domain: Domain, sid_hash: str, auth: AuthRequest) -> str:
    """Park a validated request for the login/consent pages of one session; return its id."""
    now = domain.now()
    interaction = Interaction(
        new_secret(16), sid_hash, asdict(auth), now, now + domain.settings.interaction_ttl
    )
    domain.store.sessions.park(interaction, now, domain.settings.max_interactions)
    return interaction.id


def resume(domain: Domain, sid_hash: str | None, interaction_id: str | None) -> AuthRequest | None:
    """The parked request, only for the browser session that started it."""
    if sid_hash is None or not interaction_id:
        return None
    found = domain.store.sessions.interaction(interaction_id, sid_hash, domain.now())
    if found is None:
        return None
    data: dict[str, Any] = found.params
    return AuthRequest(**data)


def forget(domain: Domain, interaction_id: str) -> None:
    """Forget an interaction once it has been answered."""
    domain.store.sessions.drop(interaction_id)
