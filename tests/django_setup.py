"""Django settings for the in-process tests (the process has one Django configuration).

The layer table and the Django tests share it; each test picks its URLconf with
``override_settings(ROOT_URLCONF=...)`` and its validator with
``apiguard.django.use_issuer`` / ``use_state``.
"""

from __future__ import annotations

import django
from django.conf import settings


def configure() -> None:
    """Configure Django once for this process (later calls do nothing)."""
    if settings.configured:
        return
    settings.configure(
        DEBUG=False,
        SECRET_KEY="django-tests-only-not-a-secret",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF="tests.django_layer.urls",
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "rest_framework",
            "drf_spectacular",
            "apiguard.django.ApiguardConfig",
        ],
        MIDDLEWARE=["apiguard.django.BearerAuthMiddleware"],
        DATABASES={},
        USE_TZ=True,
        # Never used: each test protects the app with its own LocalIssuer.
        APIGUARD={"ISSUER": "https://issuer.test/", "AUDIENCE": "https://api.test"},
        REST_FRAMEWORK={
            "DEFAULT_AUTHENTICATION_CLASSES": ["apiguard.django.BearerAuthentication"],
            "DEFAULT_PERMISSION_CLASSES": [],
            "EXCEPTION_HANDLER": "apiguard.django.exception_handler",
            "UNAUTHENTICATED_USER": None,
            "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
        },
    )
    django.setup()
