"""Django settings of the Organizer API example (``DJANGO_SETTINGS_MODULE``).

``APIGUARD_ISSUER`` and ``APIGUARD_AUDIENCE`` come from the environment, with defaults that
point at the local authorization server (``python -m examples.authz_server``) and its
Organizer API (and, for opaque tokens, ``APIGUARD_TOKEN_MODE`` with
``APIGUARD_INTROSPECTION_CLIENT_ID`` and ``APIGUARD_INTROSPECTION_CLIENT_SECRET``). The API
has no database, no sessions and no templates: it serves JSON only.
"""

from __future__ import annotations

import os
import secrets

from apiguard import Introspection

DEBUG = False
# The example listens on 127.0.0.1 only; a real API keeps its key in its environment.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(32)
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "examples.django_api.urls"
USE_TZ = True
DATABASES: dict[str, object] = {}

INSTALLED_APPS = [
    "rest_framework",
    "apiguard.django.ApiguardConfig",
]
MIDDLEWARE = [
    "apiguard.django.BearerAuthMiddleware",
]

AUDIENCE = os.environ.get("APIGUARD_AUDIENCE", "https://organizer.example/api")
APIGUARD = {
    "ISSUER": os.environ.get("APIGUARD_ISSUER", "http://127.0.0.1:9000/"),
    "AUDIENCE": AUDIENCE,
    # The API's protected-resource metadata (RFC 9728): its identifier is its audience.
    "RESOURCE": AUDIENCE,
    # DPoP (RFC 9449): off, allowed or required, as the other Organizer APIs read it.
    "DPOP": os.environ.get("APIGUARD_DPOP", "off"),
    # Opaque tokens: jwt (the default), introspection or auto, with the API's client.
    "TOKEN_MODE": os.environ.get("APIGUARD_TOKEN_MODE", "jwt"),
    "INTROSPECTION": Introspection.from_env(),
    # The public route is not inspected at all, so even a bad token there gets the answer.
    "EXCLUDE_PATHS": ["/api/public"],
}

if os.environ.get("APIGUARD_REPLAY_STORE"):
    APIGUARD["REPLAY_STORE"] = os.environ["APIGUARD_REPLAY_STORE"]
if os.environ.get("APIGUARD_KEY_STORE"):
    APIGUARD["KEY_STORE"] = os.environ["APIGUARD_KEY_STORE"]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apiguard.django.BearerAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "apiguard.django.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
