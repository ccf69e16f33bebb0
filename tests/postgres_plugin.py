"""A throwaway PostgreSQL server for the tests, and state URLs for SQLite and PostgreSQL.

``postgres_url`` (session) runs ``initdb`` and ``pg_ctl`` from PATH or /usr/lib/postgresql/*/bin
on a free loopback port, with its data and socket in a temporary folder, and stops it at the end.
PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user. Missing
binaries fail the tests that need them (install with ``scripts/ensure-postgres.sh``): a silently
skipped PostgreSQL suite would hide the backend teams rely on.

``pg_state_url`` gives each test its own database; ``sqlite_state_url`` a file in ``tmp_path``.
Under pytest-xdist every worker starts its own server.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["pg_state_url", "postgres_url", "sqlite_state_url"]

DATABASE = "lakestack_test"
SUPERUSER = "postgres"
_INSTALL_HINT = (
    "install PostgreSQL with scripts/ensure-postgres.sh (Debian/Ubuntu: apt-get install "
    "postgresql), or put its bin folder on PATH"
)


@dataclass
class _Server:
    bindir: Path
    root: Path
    port: int
    as_postgres_user: bool

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def run(self, tool: str, *args: str, timeout: float = 120) -> None:
        command = [str(self.bindir / tool), *args]
        if self.as_postgres_user:
            command = ["runuser", "-u", SUPERUSER, "--", *command]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, cwd=self.root
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""
            pytest.fail(
                f"PostgreSQL test server: {' '.join(command)} exited with {result.returncode}\n"
                f"{result.stdout}\n{result.stderr}\n{log}",
                pytrace=False,
            )

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            command = [str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate"]
            if self.as_postgres_user:
                command = ["runuser", "-u", SUPERUSER, "--", *command]
            subprocess.run(command, capture_output=True, timeout=60, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def find_postgres_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: PATH first, then the newest Debian install."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    candidates = glob.glob("/usr/lib/postgresql/*/bin/initdb")

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.parent.name
        return tuple(int(part) for part in name.split(".") if part.isdigit())

    for path in sorted(candidates, key=version, reverse=True):
        if (Path(path).parent / "pg_ctl").exists():
            return Path(path).parent
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _admin(url: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        for statement in statements:
            conn.execute(statement)


def _start_server() -> _Server:
    bindir = find_postgres_bindir()
    if bindir is None:
        pytest.fail(
            "PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH or in "
            f"/usr/lib/postgresql/*/bin; {_INSTALL_HINT}",
            pytrace=False,
        )
    as_postgres_user = os.geteuid() == 0
    if as_postgres_user and shutil.which("runuser") is None:
        pytest.fail(
            "running as root needs runuser to start PostgreSQL as 'postgres'", pytrace=False
        )
    root = Path(tempfile.mkdtemp(prefix="lakestack-pg-"))  # short: unix socket paths are limited
    if as_postgres_user:
        shutil.chown(root, user=SUPERUSER)
    server = _Server(bindir=bindir, root=root, port=_free_port(), as_postgres_user=as_postgres_user)
    atexit.register(server.stop)  # also when the session dies before the fixture's teardown
    server.run(
        "initdb", "-D", str(server.data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
        "--locale=C", "--no-sync",
    )  # fmt: skip
    options = (
        f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    server.run(
        "pg_ctl", "start", "-D", str(server.data), "-l", str(server.log), "-w", "-t", "60",
        "-o", options,
    )  # fmt: skip
    _admin(server.url("postgres"), f"CREATE DATABASE {DATABASE}")
    return server


@pytest.fixture(scope="session")
def _postgres_server() -> Iterator[_Server]:
    server = _start_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(_postgres_server: _Server) -> str:
    """``postgresql://postgres@127.0.0.1:<port>/lakestack_test`` on a throwaway server."""
    return _postgres_server.url()


@pytest.fixture
def pg_state_url(_postgres_server: _Server) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test (dropped afterwards)."""
    name = f"lakestack_t_{uuid.uuid4().hex[:12]}"
    admin = _postgres_server.url("postgres")
    _admin(admin, f"CREATE DATABASE {name}")
    try:
        yield _postgres_server.url(name)
    finally:
        with contextlib.suppress(Exception):
            _admin(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def sqlite_state_url(tmp_path: Path) -> str:
    """A SQLite state URL in a folder of ``tmp_path`` that does not exist yet."""
    return f"sqlite:///{(tmp_path / 'workspace' / 'state.db').as_posix()}"
