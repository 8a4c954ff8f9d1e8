"""The ASGI application (uvicorn serves it: ``python -m examples.django_api``)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_api.settings")
application = get_asgi_application()
