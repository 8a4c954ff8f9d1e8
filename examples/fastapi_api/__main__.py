"""Run the Organizer API on 127.0.0.1 (``PORT``, default 8001): ``python -m examples.fastapi_api``.

Swagger UI is at http://127.0.0.1:8001/docs.
"""

from __future__ import annotations

import os

import uvicorn


def main() -> None:
    port = int(os.environ.get("PORT", "8001"))
    uvicorn.run("examples.fastapi_api.app:create_app", factory=True, host="127.0.0.1", port=port)


if __name__ == "__main__":
    main()
