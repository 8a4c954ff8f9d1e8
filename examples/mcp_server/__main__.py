"""Run the Organizer MCP server on 127.0.0.1 (``PORT``, default 8003), streamable HTTP at /mcp.

python -m examples.mcp_server
"""

from __future__ import annotations

import os

import uvicorn


def main() -> None:
    port = int(os.environ.get("PORT", "8003"))
    uvicorn.run("examples.mcp_server.app:create_app", factory=True, host="127.0.0.1", port=port)


if __name__ == "__main__":
    main()
