"""The admin CLI, persistence across restarts, seed handling, export/import and settings."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import jwt
import pytest

from examples.authz_server import Settings, create_app
from examples.authz_server.__main__ import main
from examples.authz_server.services import Domain
from examples.authz_server.store import Store

from .support import ISSUER, ORGANIZER, ORIGIN, token_request


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeded_store: Store) -> Path:
    """A store file (a copy of the seeded store) named by AUTHZ_DB for the CLI."""
    path = tmp_path / "tenant.sqlite3"
    target = Store(str(path))
    with seeded_store._lock:
        seeded_store._conn.backup(target._conn)
    target.close()
    monkeypatch.setenv("AUTHZ_DB", str(path))
    monkeypatch.delenv("AUTHZ_ISSUER", raising=False)
    monkeypatch.delenv("PORT", raising=False)
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    """Run the CLI and return its JSON output."""
    assert main(list(argv)) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_quickstart_with_the_cli(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """create-api, add-scope, create-client, authorize-client and mint-token work together."""
    api = cli(capsys, "create-api", "--name", "Weather", "--identifier", "https://w.example")
    assert isinstance(api, dict)
    assert api["identifier"] == "https://w.example"
    cli(capsys, "add-scope", "https://w.example", "read:forecast", "Read forecasts")
    client = cli(capsys, "create-client", "--name", "Bot", "--type", "non_interactive")
    assert isinstance(client, dict)
    assert len(client["client_secret"]) >= 43
    cli(capsys, "authorize-client", client["client_id"], "https://w.example", "read:forecast")
    minted = cli(
        capsys, "mint-token", "--client", client["client_id"], "--audience", "https://w.example"
    )
    assert isinstance(minted, dict)
    claims = jwt.decode(minted["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "https://w.example"
    assert claims["sub"] == f"{client['client_id']}@clients"
    assert claims["scope"] == "read:forecast"


def test_cli_errors_are_reported_not_raised(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Bad input gives a message and exit status 1, never a traceback."""
    assert main(["add-scope", "urn:nowhere", "read:x"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["mint-token", "--client", "calendar-app", "--audience", ORGANIZER]) == 1
    assert "authorize-client" in capsys.readouterr().err


def test_add_user_reads_the_password_from_the_environment(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """add-user hashes the password it is given; the output never contains it."""
    monkeypatch.setenv("AUTHZ_PASSWORD", "cli-user-password")
    user = cli(capsys, "add-user", "--email", "cli@organizer.example", "--admin")
    assert isinstance(user, dict)
    assert user["app_metadata"] == {"is_admin": True}
    assert "cli-user-password" not in json.dumps(user)
    assert "cli-user-password" not in db.read_bytes().decode("latin-1")


def test_rotate_keys_persists(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Keys rotated by the CLI are what a restarted server publishes."""
    rotated = cli(capsys, "rotate-keys")
    assert isinstance(rotated, dict)
    store = Store(str(db))
    tenant = Domain(store, Settings(db_path=str(db)))
    assert tenant.keys.current().kid == rotated["kid"]
    store.close()


def test_export_and_import_round_trip(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An export holds hashes, not secrets, and imports into a fresh store."""
    out = tmp_path / "tenant.json"
    cli(capsys, "export", "--output", str(out))
    text = out.read_text()
    for secret in ("world-mappers-dev-secret", "organizer-demo-password"):
        assert secret not in text
    document = json.loads(text)
    assert {c["client_id"] for c in document["clients"]} >= {"world-mappers", "calendar-app"}
    fresh = Domain(Store(":memory:"), Settings(db_path=":memory:", seed_path=out))
    fresh.initialise()
    assert fresh.clients.authenticate("world-mappers", "world-mappers-dev-secret") is not None
    assert fresh.users.authenticate("demo@organizer.example", "organizer-demo-password")
    assert fresh.client_grants.find("world-mappers", ORGANIZER) is not None


@pytest.mark.anyio
async def test_state_survives_a_restart(tmp_path: Path) -> None:
    """A file store keeps clients, secrets and keys across two app instances."""
    settings = Settings(db_path=str(tmp_path / "a.sqlite3"))
    first = create_app(settings)
    tenant: Domain = first.state.services.domain
    client, secret = tenant.clients.create(name="Persisted", app_type="non_interactive")
    assert secret is not None
    tenant.client_grants.create(client.client_id, ORGANIZER, ["read:tasks"])
    kid = tenant.keys.current().kid
    tenant.store.close()
    second = create_app(settings)
    transport = httpx.ASGITransport(app=second)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as http:
        response = await token_request(
            http,
            grant_type="client_credentials",
            audience=ORGANIZER,
            client_id=client.client_id,
            client_secret=secret,
        )
        assert response.status_code == 200
        assert jwt.get_unverified_header(response.json()["access_token"])["kid"] == kid
    second.state.services.domain.store.close()


def test_seed_is_loaded_once(tmp_path: Path) -> None:
    """Objects deleted after the first start are not re-seeded on the next start."""
    settings = Settings(db_path=str(tmp_path / "s.sqlite3"))
    store = Store(settings.db_path)
    tenant = Domain(store, settings)
    tenant.initialise()
    tenant.clients.delete("textapp-io")
    tenant.initialise()
    assert tenant.clients.find("textapp-io") is None
    store.close()


def test_seeded_secrets_and_passwords_are_hashed(seeded_store: Store) -> None:
    """The seeded store holds no plaintext dev secret or password."""
    dump = "\n".join(seeded_store._conn.iterdump())
    for secret in (
        "world-mappers-dev-secret",
        "calendar-app-dev-secret",
        "organizer-demo-password",
        "organizer-admin-password",
    ):
        assert secret not in dump


def test_seed_matches_the_documented_scenario(seeded_store: Store) -> None:
    """The seed has the Organizer API scopes, the named clients and an admin user."""
    tenant = Domain(Store.copy_of(seeded_store), Settings(db_path=":memory:"))
    api = tenant.apis.get(ORGANIZER)
    assert api.scope_values == {
        "read:appointments",
        "create:appointments",
        "delete:appointments",
        "read:contacts",
        "create:contacts",
        "read:tasks",
        "create:tasks",
    }
    assert all(s.description for s in api.scopes)
    names = {c.name for c in tenant.clients.all()}
    assert {"CalendarApp", "MyTodos.io", "TextApp.io", "World Mappers"} <= names
    third_party = {c.name for c in tenant.clients.all() if not c.is_first_party}
    assert {"CalendarApp", "MyTodos.io", "TextApp.io"} <= third_party
    admin = tenant.users.find_by_email("admin@organizer.example")
    assert admin is not None
    assert admin.is_admin


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param({"AUTHZ_ISSUER": "http://127.0.0.1:9000"}, "end with", id="no-slash"),
        pytest.param({"AUTHZ_ISSUER": "http://auth.example/"}, "loopback", id="plain-http"),
        pytest.param({"PORT": "ninety"}, "PORT", id="bad-port"),
    ],
)
def test_bad_settings_are_refused_at_start(env: dict[str, str], message: str) -> None:
    """An issuer without a trailing slash or plain http off loopback is refused."""
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


def test_settings_from_the_environment() -> None:
    """PORT picks the issuer's port; AUTHZ_ISSUER overrides it; AUTHZ_DB picks the store."""
    settings = Settings.from_env({"PORT": "9100", "AUTHZ_DB": ":memory:"})
    assert settings.issuer == "http://127.0.0.1:9100/"
    assert settings.port == 9100
    assert settings.db_path == ":memory:"
    custom = Settings.from_env({"AUTHZ_ISSUER": "https://auth.example/"})
    assert custom.issuer == "https://auth.example/"
    assert Settings.from_env({}).issuer == ISSUER


def test_issuer_change_moves_the_management_api(seeded_store: Store) -> None:
    """Restarting on another port re-points the Management API and its client grants."""
    store = Store.copy_of(seeded_store)
    first = Domain(store, Settings(db_path=":memory:"))
    first.client_grants.create("world-mappers", f"{ISSUER}api/v2/", ["read:clients"])
    moved = Domain(store, Settings(db_path=":memory:", issuer="http://127.0.0.1:9100/"))
    moved.initialise()
    assert moved.client_grants.find("world-mappers", "http://127.0.0.1:9100/api/v2/") is not None
