"""Run the Organizer API on 127.0.0.1 (``PORT``, default 8002): ``python -m examples.django_api``.

Served by uvicorn through Django's ASGI handler: apiguard's middleware runs async and
the DRF views in Django's thread pool.
"""

from __future__ import annotations

import os

import uvicorn


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_api.settings")
    port = int(os.environ.get("PORT", "8002"))
    uvicorn.run("examples.django_api.asgi:application", host="127.0.0.1", port=port)


if __name__ == "__main__":
    main()
