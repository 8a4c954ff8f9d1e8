"""Start the authorization server, the Organizer APIs and the MCP server, and stop them."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = ["PortTaken", "Service", "Stack", "port_is_free"]

ROOT = Path(__file__).resolve().parents[2]


class PortTaken(RuntimeError):
    """A port the demo needs is in use by another program."""


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Tell whether ``host:port`` can be listened on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port the system considers free right now (for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Service:
    """One server process: ``python -m <module>`` on 127.0.0.1:<port>."""

    name: str
    module: str
    port: int
    ready_path: str
    env: dict[str, str] = field(default_factory=dict)
    option: str = ""  # the command-line option that changes this port, for error messages
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        """Where it listens."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, log_dir: Path, *, timeout: float = 30.0) -> None:
        """Start the process (output to a log file in ``log_dir``) and wait until it answers.

        Raises:
            RuntimeError: it exited, or did not answer within ``timeout`` seconds.
        """
        env = {**os.environ, **self.env, "PORT": str(self.port), "PYTHONUNBUFFERED": "1"}
        self.log = log_dir / f"{self.module.rsplit('.', 1)[-1]}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own modules, fixed arguments
                [sys.executable, "-m", self.module],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the {self.name} exited with code {self.process.returncode}:\n"
                    + self.log_tail()
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + self.ready_path, timeout=1.0).status_code < 500:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the {self.name} did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        """Stop the process if it runs: Ctrl-C first, as a person would, then harder."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def log_tail(self, lines: int = 20) -> str:
        """The end of what the process printed."""
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


class Stack:
    """The servers of the quick start, started in order and stopped in reverse."""

    def __init__(
        self,
        *,
        authz_port: int = 9000,
        flask_port: int = 5000,
        starlette_port: int = 8000,
        fastapi_port: int = 8001,
        django_port: int = 8002,
        mcp_port: int = 8003,
        db: str = "authz_server.sqlite3",
        log_dir: Path | None = None,
    ) -> None:
        self.issuer = f"http://127.0.0.1:{authz_port}/"
        self.db = db
        api_env = {
            "APIGUARD_ISSUER": self.issuer,
            "APIGUARD_AUDIENCE": "https://organizer.example/api",
            # Bearer tokens as in the quick start, and DPoP-bound ones (the DPoP step).
            "APIGUARD_DPOP": "allowed",
        }
        self.authz = Service(
            "authorization server",
            "examples.authz_server",
            authz_port,
            "/.well-known/openid-configuration",
            {"AUTHZ_DB": db, "AUTHZ_ISSUER": self.issuer},
            "--authz-port",
        )
        self.flask = Service(
            "Flask API", "examples.flask_api", flask_port, "/api/public", api_env, "--flask-port"
        )
        self.starlette = Service(
            "Starlette API",
            "examples.starlette_api",
            starlette_port,
            "/api/public",
            api_env,
            "--starlette-port",
        )
        self.fastapi = Service(
            "FastAPI API",
            "examples.fastapi_api",
            fastapi_port,
            "/api/public",
            api_env,
            "--fastapi-port",
        )
        self.django = Service(
            "Django API",
            "examples.django_api",
            django_port,
            "/api/public",
            api_env,
            "--django-port",
        )
        self.mcp = Service(
            "MCP server",
            "examples.mcp_server",
            mcp_port,
            "/.well-known/oauth-protected-resource",
            api_env,
            "--mcp-port",
        )
        self.services = [
            self.authz,
            self.flask,
            self.starlette,
            self.fastapi,
            self.django,
            self.mcp,
        ]
        self._log_dir = log_dir

    def start(self, *, timeout: float = 30.0) -> None:
        """Start every server and wait until each answers.

        Raises:
            PortTaken: a port is in use (the message says which option changes it).
            RuntimeError: a server exited or did not answer within ``timeout`` seconds.
        """
        taken = [s for s in self.services if not port_is_free(s.port)]
        if taken:
            raise PortTaken(
                "; ".join(
                    f"port {s.port} for the {s.name} is in use (choose another with {s.option})"
                    for s in taken
                )
            )
        log_dir = self._log_dir or Path(tempfile.mkdtemp(prefix="apiguard-demo-"))
        for service in self.services:
            service.start(log_dir, timeout=timeout)

    def stop(self) -> None:
        """Stop every server still running, in reverse order."""
        for service in reversed(self.services):
            service.stop()

    @contextlib.contextmanager
    def running(self, *, timeout: float = 30.0) -> Iterator[Stack]:
        """Start the servers for the ``with`` block and stop them after it."""
        try:
            self.start(timeout=timeout)
            yield self
        finally:
            self.stop()
