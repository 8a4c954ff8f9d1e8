"""The whole quick start on one machine, with a readable transcript.

    python -m examples.demo            # walk the quick start, then keep the servers running
    python -m examples.demo --exit     # walk it and stop (what the tests run)

Starts the authorization server (on its SQLite file, seeded with the Organizer scenario),
the Flask, Starlette and FastAPI Organizer APIs and the Organizer MCP server trusting it,
and walks every flow of Auth0's "API Authorization" quick start against the APIs, then
uses the MCP server's tools. Ports: --authz-port (9000), --flask-port (5000),
--starlette-port (8000), --fastapi-port (8001), --django-port (8002), --mcp-port (8003), or
AUTHZ_PORT, FLASK_PORT, STARLETTE_PORT, FASTAPI_PORT, DJANGO_PORT, MCP_PORT.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from .servers import PortTaken, Stack
from .walk import DEMO_USER, Walk


def _port(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    try:
        port = int(value)
    except ValueError:
        raise SystemExit(f"error: {name} must be a port number, not {value!r}") from None
    return port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m examples.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--authz-port", type=int, default=_port("AUTHZ_PORT", 9000))
    parser.add_argument("--flask-port", type=int, default=_port("FLASK_PORT", 5000))
    parser.add_argument("--starlette-port", type=int, default=_port("STARLETTE_PORT", 8000))
    parser.add_argument("--fastapi-port", type=int, default=_port("FASTAPI_PORT", 8001))
    parser.add_argument("--django-port", type=int, default=_port("DJANGO_PORT", 8002))
    parser.add_argument("--mcp-port", type=int, default=_port("MCP_PORT", 8003))
    parser.add_argument(
        "--db",
        default=os.environ.get("AUTHZ_DB", "authz_server.sqlite3"),
        help="the authorization server's SQLite file (default: authz_server.sqlite3)",
    )
    parser.add_argument("--exit", action="store_true", help="stop the servers after the walk")
    args = parser.parse_args(argv)
    ports = (
        args.authz_port,
        args.flask_port,
        args.starlette_port,
        args.fastapi_port,
        args.django_port,
        args.mcp_port,
    )
    for port in ports:
        if not 0 < port < 65536:
            parser.error(f"{port} is not a port number")

    stack = Stack(
        authz_port=args.authz_port,
        flask_port=args.flask_port,
        starlette_port=args.starlette_port,
        fastapi_port=args.fastapi_port,
        django_port=args.django_port,
        mcp_port=args.mcp_port,
        db=os.path.abspath(args.db),
    )
    print(
        "Starting the authorization server, the Flask, Starlette, FastAPI and Django Organizer"
        " APIs"
        " and the Organizer MCP server ..."
    )
    try:
        with stack.running():
            walk = Walk(
                stack.issuer,
                {
                    "flask": stack.flask.url,
                    "starlette": stack.starlette.url,
                    "fastapi": stack.fastapi.url,
                    "django": stack.django.url,
                },
                stack.db,
                mcp=stack.mcp.url + "/mcp",
                server_log=stack.authz.log,
            )
            try:
                walk.run()
            finally:
                walk.close()
            issuer = stack.issuer
            print(
                "\nAll running:\n"
                f"  authorization server  {issuer}  (store: {stack.db})\n"
                f"  dashboard             {issuer}dashboard  "
                "(admin@organizer.example / organizer-admin-password)\n"
                f"  developer portal      {issuer}portal\n"
                f"  Flask Organizer API   {stack.flask.url}/api/public\n"
                f"  Starlette Organizer   {stack.starlette.url}/api/public\n"
                f"  FastAPI Organizer     {stack.fastapi.url}/api/public\n"
                f"  Swagger UI            {stack.fastapi.url}/docs  "
                f"(Authorize, sign in as {DEMO_USER[0]} / {DEMO_USER[1]})\n"
                f"  Django Organizer      {stack.django.url}/api/public\n"
                f"  Organizer MCP server  {stack.mcp.url}/mcp"
            )
            if args.exit:
                return 0
            print("\nPress Ctrl-C to stop.")
            while True:
                time.sleep(3600)
    except PortTaken as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopped.")
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
