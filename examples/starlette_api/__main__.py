"""Run the Organizer API on 127.0.0.1 (``PORT``, default 8000).

python -m examples.starlette_api
"""

from __future__ import annotations

import os

import uvicorn


def main() -> None:
    port = int(os.environ.get("PORT", "8000"))
    uvicorn.run("examples.starlette_api.app:create_app", factory=True, host="127.0.0.1", port=port)


if __name__ == "__main__":
    main()
