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

from . import wire
from .grants import Grants, OAuthError
from .models import ACCESS_TOKEN_FORMATS, APP_TYPES, AUTH_METHODS, GRANT_TYPES, TOKEN_DIALECTS
from .rules import TenantError
from .services import Domain
from .settings import Settings
from .store import Store
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
    api.add_argument(
        "--token-format", choices=ACCESS_TOKEN_FORMATS, default="jwt", help="access tokens"
    )
    api.add_argument(
        "--introspection-client",
        action="append",
        default=[],
        help="a client that may introspect the API's tokens (repeatable)",
    )

    token_format = sub.add_parser(
        "set-token-format", help="issue JWTs or opaque reference tokens for an API"
    )
    token_format.add_argument("api", help="API id or identifier")
    token_format.add_argument("format", choices=ACCESS_TOKEN_FORMATS)

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

    role = sub.add_parser("create-role", help="create a role (RBAC)")
    role.add_argument("--name", required=True)
    role.add_argument("--description", default="")

    perms = sub.add_parser("add-role-permissions", help="give a role permissions (API scopes)")
    perms.add_argument("role", help="role id or name")
    perms.add_argument("audience", help="the API identifier")
    perms.add_argument("permissions", nargs="+")

    assign = sub.add_parser("assign-role", help="assign a role to a user")
    assign.add_argument("user", help="user id or email")
    assign.add_argument("role", help="role id or name")
    assign.add_argument("--remove", action="store_true", help="take the role away instead")

    held = sub.add_parser("user-permissions", help="a user's roles and permissions")
    held.add_argument("user", help="user id or email")

    rbac = sub.add_parser("enable-rbac", help="turn RBAC on for an API (Auth0's Enable RBAC)")
    rbac.add_argument("api", help="API id or identifier")
    rbac.add_argument("--off", action="store_true", help="turn it off")
    rbac.add_argument(
        "--permissions-in-token",
        action="store_true",
        help="add permissions in the access token (token_dialect access_token_authz)",
    )

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
    show.add_argument(
        "kind", choices=["apis", "clients", "client-grants", "users", "grants", "roles"]
    )
    return parser


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2))


def _mint(domain: Domain, args: argparse.Namespace) -> dict[str, Any]:
    """Run the grant the token endpoint would run (client credentials, or a user token)."""
    client = domain.clients.get(args.client_id)
    api = domain.apis.get(args.audience)
    grants = Grants(domain, TokenMinter(domain))
    params = {"audience": api.identifier}
    if args.scope is not None:
        params["scope"] = args.scope
    try:
        if args.user:
            return grants.user_token(client, domain.users.get(args.user), params)
        return grants.client_credentials(client, params)
    except OAuthError as exc:
        if exc.status == 403 and "client-grant" in exc.description:
            raise TenantError(
                "the client has no grant for this API (use authorize-client)"
            ) from None
        raise TenantError(exc.description) from None


RBAC_COMMANDS = frozenset(
    {"create-role", "add-role-permissions", "assign-role", "user-permissions", "enable-rbac"}
)


def _rbac_command(domain: Domain, args: argparse.Namespace) -> Any:
    rbac = domain.rbac
    command = args.command
    if command == "create-role":
        return wire.role_json(rbac.create(args.name, args.description))
    if command == "add-role-permissions":
        items = [
            {"resource_server_identifier": args.audience, "permission_name": p}
            for p in args.permissions
        ]
        rbac.grant_role(args.role, items)
        return [
            wire.permission_json(p, domain.apis.get(p.audience).name)
            for p in rbac.of_role(args.role)
        ]
    if command == "enable-rbac":
        api = domain.apis.get(args.api)
        changes: dict[str, object] = {"enforce_policies": not args.off}
        if args.permissions_in_token:
            changes["token_dialect"] = api.token_dialect.removesuffix("_authz") + "_authz"
        return wire.api_json(domain.apis.update(api.id, changes))
    user = domain.users.find_by_email(args.user) or domain.users.get(args.user)
    if command == "assign-role":
        role = rbac.get(args.role)
        if args.remove:
            rbac.unassign(user.user_id, [role.id])
        else:
            rbac.assign(user.user_id, [role.id])
    return {
        "user_id": user.user_id,
        "roles": [wire.role_json(r) for r in rbac.roles_of(user.user_id)],
        "permissions": [
            wire.user_permission_json(p, domain.apis.get(p.audience).name)
            for p in rbac.of_user(user.user_id)
        ],
    }


def run_admin(domain: Domain, args: argparse.Namespace) -> Any:
    """Carry out one admin subcommand; return what to print."""
    command = args.command
    if command == "create-api":
        api = domain.apis.create(
            name=args.name,
            identifier=args.identifier,
            signing_alg=args.alg,
            token_lifetime=args.lifetime,
            allow_offline_access=args.offline,
            token_dialect=args.dialect,
            access_token_format=args.token_format,
            introspection_clients=args.introspection_client,
        )
        return wire.api_json(api, include_secret=True)
    if command == "set-token-format":
        return wire.api_json(domain.apis.update(args.api, {"access_token_format": args.format}))
    if command == "add-scope":
        return wire.api_json(domain.apis.add_scope(args.api, args.scope, args.description))
    if command == "create-client":
        client, secret = domain.clients.create(
            name=args.name,
            app_type=args.app_type,
            is_first_party=not args.third_party,
            callbacks=args.callback,
            grant_types=args.grant,
            token_endpoint_auth_method=args.auth_method,
        )
        return wire.client_json(client) | ({"client_secret": secret} if secret else {})
    if command == "authorize-client":
        grant = domain.client_grants.create(args.client_id, args.audience, args.scopes)
        return wire.client_grant_json(grant)
    if command == "add-user":
        password = os.environ.get("AUTHZ_PASSWORD") or getpass.getpass("Password: ")
        created = domain.users.create(
            email=args.email,
            password=password,
            name=args.name,
            is_admin=args.admin,
            email_verified=args.verified,
        )
        return wire.user_json(created)
    if command == "set-admin":
        found = domain.users.find_by_email(args.user) or domain.users.get(args.user)
        return wire.user_json(domain.users.set_admin(found.user_id, not args.off))
    if command in RBAC_COMMANDS:
        return _rbac_command(domain, args)
    if command == "mint-token":
        return _mint(domain, args)
    if command == "rotate-keys":
        return wire.signing_key_json(domain.keys.rotate())
    if command == "revoke-key":
        return wire.signing_key_json(domain.keys.revoke(args.kid))
    if command == "export":
        document = domain.export(include_keys=args.include_keys)
        if args.output:
            Path(args.output).write_text(json.dumps(document, indent=2) + "\n", "utf-8")
            return {"written": args.output}
        return document
    if command == "import":
        return domain.load(json.loads(Path(args.file).read_text("utf-8")))
    if command == "list":
        listing = {
            "apis": lambda: [wire.api_json(a) for a in domain.apis.all()],
            "clients": lambda: [wire.client_json(c) for c in domain.clients.all()],
            "client-grants": lambda: [
                wire.client_grant_json(g) for g in domain.client_grants.all()
            ],
            "users": lambda: [wire.user_json(u) for u in domain.users.all()],
            "grants": lambda: [wire.user_grant_json(g) for g in domain.consents.all()],
            "roles": lambda: [wire.role_json(r) for r in domain.rbac.all()],
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
        domain = Domain(store, settings)
        domain.initialise()
        _print(run_admin(domain, args))
    except (TenantError, LookupError, ValueError, OSError) as exc:
        message = exc.message if isinstance(exc, TenantError) else str(exc)
        print(f"error: {message}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
