"""What roles, permissions and the rules beyond scopes cost a validation and a request.

The target (issue: "Reading roles/permissions adds under 1 us to a validate and nothing
when not configured") is measured where the work happens, building the AccessToken from
checked claims, so that the RSA verify's noise (tens of microseconds) does not hide it; the
whole validate of unique tokens is measured too, for scale, the loops taking turns.
"""

from __future__ import annotations

from collections.abc import Callable

from apiguard import AccessToken, has_permissions, has_roles, step_up
from apiguard.claims import claim_paths
from apiguard.testing import LocalIssuer

from ._util import Row, interleaved

AUDIENCE = "https://bench.example/api"
ROLES = "https://organizer.example/roles"
PERMISSIONS = [
    "read:appointments",
    "create:appointments",
    "delete:appointments",
    "read:contacts",
    "read:tasks",
]
MFA = "http://schemas.openid.net/pape/policies/2007/06/multi-factor"


def run(calls: int = 2000) -> list[Row]:
    """The rows: AccessToken building, whole validations, and the per-request rule checks."""
    issuer = LocalIssuer("https://issuer.bench/", audience=AUDIENCE)
    header = {"alg": "RS256", "kid": "k", "typ": "JWT"}
    plain = issuer.claims(scope="read:appointments")
    rbac = issuer.claims(
        scope="read:appointments",
        permissions=PERMISSIONS,
        **{ROLES: ["organizer-admin", "assistant"]},
        acr=MFA,
        auth_time=issuer.clock(),
    )
    paths = claim_paths([(ROLES,), "realm_access.roles"], name="role_claims")

    def building(claims: dict[str, object], role_claims: tuple[object, ...]) -> Callable[[], None]:
        build = AccessToken.from_claims

        def loop() -> None:
            # from_claims keeps the dict as it is, so one dict serves every call.
            for _ in range(calls):
                build(header, claims, role_claims=role_claims)  # type: ignore[arg-type]

        return loop

    built = interleaved(
        {
            "plain": building(plain, ()),
            "rbac-unconfigured": building(rbac, ()),
            "rbac-configured": building(rbac, paths),
        },
        calls,
    )
    rows = [
        Row("authorization", "AccessToken, no permissions/roles", built["plain"] * 1e6, "us"),
    ]
    for name, label in (
        ("rbac-unconfigured", "+ permissions claim, role_claims unset"),
        ("rbac-configured", "+ permissions and 2 role paths"),
    ):
        added = (built[name] - built["plain"]) * 1e6
        rows.append(
            Row(
                "authorization",
                label,
                built[name] * 1e6,
                "us",
                ratio=f"+{added:.2f} us",
                target="< +1 us",
                met=added < 1.0,
            )
        )

    # Whole validations of unique tokens (the cache cannot help), with and without roles.
    tokens_plain = [issuer.token(scope="read:appointments") for _ in range(calls)]
    tokens_rbac = [
        issuer.token(permissions=PERMISSIONS, **{ROLES: ["organizer-admin"]}) for _ in range(calls)
    ]
    unconfigured = issuer.validator(token_cache_size=0)
    configured = issuer.validator(token_cache_size=0, role_claims=[(ROLES,)])
    for token in tokens_plain[:1] + tokens_rbac[:1]:
        unconfigured.validate(token)  # keys fetched before timing
        configured.validate(token)
    whole = interleaved(
        {
            "plain": lambda: [unconfigured.validate(t) for t in tokens_plain],
            "roles": lambda: [configured.validate(t) for t in tokens_rbac],
        },
        calls,
        rounds=5,
    )
    unconfigured.close()
    configured.close()
    rows.append(Row("authorization", "validate RS256, no roles", whole["plain"] * 1e6, "us"))
    rows.append(
        Row(
            "authorization",
            "validate RS256, role_claims + permissions",
            whole["roles"] * 1e6,
            "us",
            ratio=f"{whole['plain'] / whole['roles']:.2f}x",
        )
    )

    # The rules a route checks per request, on a built token.
    access = AccessToken.from_claims(header, dict(rbac), role_claims=paths)
    rules = {
        "has_permissions": has_permissions("delete:appointments"),
        "has_roles": has_roles("organizer-admin"),
        "step_up": step_up([MFA], max_age=600),
    }
    now = issuer.clock()

    def checking(rule: object) -> Callable[[], None]:
        check = rule.check  # type: ignore[attr-defined]

        def loop() -> None:
            for _ in range(calls):
                check(access, now)

        return loop

    checked = interleaved({name: checking(rule) for name, rule in rules.items()}, calls)
    rows.extend(
        Row("authorization", f"rule check: {name}", seconds * 1e6, "us")
        for name, seconds in checked.items()
    )
    return rows
