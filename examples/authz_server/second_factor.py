"""The second factor of a sign-in: a one-time code, sent to the server log, without HTTP.

This is a development server: the log stands in for a text message or an authenticator
app, so that a sign-in truly becomes multi-factor (``acr`` changes) when a client asks for
it with ``acr_values``. Only the code's digest is stored, for one session, for a few
minutes, and a few wrong attempts void it.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from dataclasses import replace

from .models import ACR_MFA, Session, SignIn, User
from .security import token_digest
from .services import Domain

#: Wrong one-time codes allowed before the code is void.
MAX_ATTEMPTS = 5
#: The methods of a sign-in with a password and a one-time code (RFC 8176).
MFA_METHODS = ("pwd", "otp", "mfa")

log = logging.getLogger("examples.authz_server")


def send_code(domain: Domain, session: Session, user: User) -> None:
    """Make a new code for the session (any earlier one is void) and write it to the log."""
    code = f"{secrets.randbelow(10**6):06d}"
    ttl = domain.settings.one_time_code_ttl
    domain.store.sessions.set_code(session.sid_hash, token_digest(code), domain.now() + ttl)
    log.warning("One-time code for %s: %s (valid for %d s)", user.email, code, ttl)


def check_code(domain: Domain, session: Session, code: str) -> str | None:
    """None when *code* is the session's live code (then used up); else why not, for the page.

    A void code (expired, or too many wrong attempts) is dropped: the page sends a new one.
    """
    sessions = domain.store.sessions
    live = sessions.code(session.sid_hash, domain.now())
    if live is None or live[1] >= MAX_ATTEMPTS:
        sessions.drop_code(session.sid_hash)
        return "expired"
    given = code.strip()
    # compare_digest refuses non-ASCII text: such a code is simply wrong.
    if not (given.isascii() and hmac.compare_digest(token_digest(given), live[0])):
        sessions.code_failed(session.sid_hash)
        return "wrong"
    sessions.drop_code(session.sid_hash)
    return None


def step_up(domain: Domain, session: Session) -> Session:
    """Record the second factor: the session's sign-in is multi-factor from now on.

    ``auth_time`` moves to now: the second factor is a new authentication event (what a
    resource server's ``max_age`` measures).
    """
    sign_in = SignIn(domain.now(), ACR_MFA, MFA_METHODS)
    domain.store.sessions.step_up(session.sid_hash, sign_in)
    return replace(session, auth_time=sign_in.auth_time, acr=sign_in.acr, amr=sign_in.amr)
