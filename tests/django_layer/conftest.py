"""Django tests run on the process's one Django configuration (tests/django_setup.py)."""

from __future__ import annotations

from tests.django_setup import configure

configure()
