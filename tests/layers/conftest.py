"""Fixtures of the layer table: the adapters import as a plain module."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from tests.django_setup import configure

configure()
