"""Run the server, or administer its tenant from the command line.

    python -m examples.authz_server                 # serve on 127.0.0.1:$PORT (default 9000)
    python -m examples.authz_server --help          # the admin subcommands

Every subcommand works on the store named by ``AUTHZ_DB`` and prints JSON.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .models import APP_TYPES, AUTH_METHODS, GRANT_TYPES, TOKEN_DIALECTS
from .settings import Settings
from .store import Store
from .tenant import Tenant, TenantError, scope_list
from .tokens import TokenMinter


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m examples.authz_server",
        description="Local Auth0-shaped authorization server (development only). "
        "Without a subcommand it serves HTTP; the store is $AUTHZ_DB.",
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve HTTP on 127.0.0.1:$PORT (the default command)")

    api = sub.add_parser("create-api", help="register an API (resource server)")
    api.add_argument("--name", required=True)
    api.add_argument("--identifier", required=True, help="the audience, e.g. https://api.example")
    api.add_argument("--alg", choices=["RS256", "HS256"], default="RS256")
    api.add_argument("--lifetime", type=int, default=86400, help="token lifetime in seconds")
    api.add_argument("--offline", action="store_true", help="allow offline access (refresh)")
    api.add_argument("--dialect", choices=TOKEN_DIALECTS, default="access_token")

    scope = sub.add_parser("add-scope", help="add a scope to an API")
    scope.add_argument("api", help="API id or identifier")
    scope.add_argument("scope")
    scope.add_argument("description", nargs="?", default="")

    client = sub.add_parser("create-client", help="register a client (its secret is shown once)")
    client.add_argument("--name", required=True)
    client.add_argument("--type", choices=APP_TYPES, default="regular_web", dest="app_type")
    client.add_argument("--third-party", action="store_true")
    client.add_argument("--callback", action="append", default=[], help="repeatable")
    client.add_argument("--grant", action="append", choices=GRANT_TYPES, help="repeatable")
    client.add_argument("--auth-method", choices=AUTH_METHODS)

    grant = sub.add_parser("authorize-client", help="create a client grant (M2M access)")
    grant.add_argument("client_id")
    grant.add_argument("audience")
    grant.add_argument("scopes", nargs="*")

    user = sub.add_parser("add-user", help="add a user (password from $AUTHZ_PASSWORD or a prompt)")
    user.add_argument("--email", required=True)
    user.add_argument("--name")
    user.add_argument("--admin", action="store_true")
    user.add_argument("--verified", action="store_true", help="mark the email address verified")

    admin = sub.add_parser(
        "set-admin", help="make a user a dashboard administrator (the only way to do so)"
    )
    admin.add_argument("user", help="user id or email")
    admin.add_argument("--off", action="store_true", help="take administrator status away")

    mint = sub.add_parser("mint-token", help="print an access token, as the token endpoint would")
    mint.add_argument("--client", required=True, dest="client_id")
    mint.add_argument("--audience", required=True)
    mint.add_argument("--scope", help="space-separated; default: everything granted")
    mint.add_argument("--user", help="a user id: mint a user token instead of an M2M one")

    sub.add_parser("rotate-keys", help="next signing key becomes current")
    revoke = sub.add_parser("revoke-key", help="revoke the previous signing key")
    revoke.add_argument("kid")

    export = sub.add_parser("export", help="write the tenant as a seed document")
    export.add_argument("--output", "-o", help="file to write (default: stdout)")
    export.add_argument("--include-keys", action="store_true", help="include private keys")

    load = sub.add_parser("import", help="load a seed or export document (existing kept)")
    load.add_argument("file")

    show = sub.add_parser("list", help="list objects")
    show.add_argument("kind", choices=["apis", "clients", "client-grants", "users", "grants"])
    return parser


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2))


def _mint(tenant: Tenant, args: argparse.Namespace) -> dict[str, Any]:
    client = tenant.get_client(args.client_id)
    api = tenant.get_api(args.audience)
    minter = TokenMinter(tenant)
    if args.user:
        user = tenant.get_user(args.user)
        scopes = scope_list(args.scope) or sorted(api.scope_values)
        unknown = [s for s in scopes if s not in api.scope_values]
        if unknown:
            raise TenantError(f"scope(s) not defined by the API: {' '.join(unknown)}")
        issued = minter.access_token(
            api=api, subject=user.user_id, client_id=client.client_id, scopes=scopes
        )
    else:
        grant = tenant.find_client_grant(client.client_id, api.identifier)
        if grant is None:
            raise TenantError("the client has no grant for this API (use authorize-client)")
        scopes = scope_list(args.scope) if args.scope else list(grant.scope)
        if any(s not in grant.scope for s in scopes):
            raise TenantError("the client has not been granted these scopes")
        issued = minter.access_token(
            api=api,
            subject=f"{client.client_id}@clients",
            client_id=client.client_id,
            scopes=scopes,
            grant_type="client-credentials",
        )
    return {
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": " ".join(issued.scope),
    }


def run_admin(tenant: Tenant, args: argparse.Namespace) -> Any:
    """Carry out one admin subcommand; return what to print."""
    command = args.command
    if command == "create-api":
        api = tenant.create_api(
            name=args.name,
            identifier=args.identifier,
            signing_alg=args.alg,
            token_lifetime=args.lifetime,
            allow_offline_access=args.offline,
            token_dialect=args.dialect,
        )
        return api.to_json(include_secret=True)
    if command == "add-scope":
        return tenant.add_scope(args.api, args.scope, args.description).to_json()
    if command == "create-client":
        client, secret = tenant.create_client(
            name=args.name,
            app_type=args.app_type,
            is_first_party=not args.third_party,
            callbacks=args.callback,
            grant_types=args.grant,
            token_endpoint_auth_method=args.auth_method,
        )
        return client.to_json() | ({"client_secret": secret} if secret else {})
    if command == "authorize-client":
        return tenant.create_client_grant(args.client_id, args.audience, args.scopes).to_json()
    if command == "add-user":
        password = os.environ.get("AUTHZ_PASSWORD") or getpass.getpass("Password: ")
        return tenant.create_user(
            email=args.email,
            password=password,
            name=args.name,
            is_admin=args.admin,
            email_verified=args.verified,
        ).to_json()
    if command == "set-admin":
        found = tenant.find_user_by_email(args.user) or tenant.get_user(args.user)
        return tenant.set_admin(found.user_id, not args.off).to_json()
    if command == "mint-token":
        return _mint(tenant, args)
    if command == "rotate-keys":
        return tenant.keys.rotate().to_json()
    if command == "revoke-key":
        return tenant.keys.revoke(args.kid).to_json()
    if command == "export":
        document = tenant.export_tenant(include_keys=args.include_keys)
        if args.output:
            Path(args.output).write_text(json.dumps(document, indent=2) + "\n", "utf-8")
            return {"written": args.output}
        return document
    if command == "import":
        return tenant.import_tenant(json.loads(Path(args.file).read_text("utf-8")))
    if command == "list":
        listing = {
            "apis": lambda: [a.to_json() for a in tenant.list_apis()],
            "clients": lambda: [c.to_json() for c in tenant.list_clients()],
            "client-grants": lambda: [g.to_json() for g in tenant.list_client_grants()],
            "users": lambda: [u.to_json() for u in tenant.list_users()],
            "grants": lambda: [g.to_json() for g in tenant.list_user_grants()],
        }
        return listing[args.kind]()
    raise AssertionError(command)


def serve(settings: Settings) -> None:
    """Serve HTTP with uvicorn on the settings' host and port."""
    import uvicorn

    from .app import create_app

    app = create_app(settings)
    print(f"Authorization server: issuer {settings.issuer} (store {settings.db_path})")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: serve, or run one admin subcommand. Returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command in (None, "serve"):
        serve(settings)
        return 0
    store = Store(settings.db_path)
    try:
        tenant = Tenant(store, settings)
        tenant.initialise()
        _print(run_admin(tenant, args))
    except (TenantError, LookupError, ValueError, OSError) as exc:
        message = exc.message if isinstance(exc, TenantError) else str(exc)
        print(f"error: {message}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
