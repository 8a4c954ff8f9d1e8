"""``python -m apiguard`` runs the ``apiguard`` command (see :mod:`apiguard.cli`)."""

from .cli import run

run()
