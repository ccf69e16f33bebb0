"""SQLAlchemy engines for the state database, and the translation of database errors.

SQLite runs in WAL mode with a 30 s busy timeout and foreign keys on. Its driver's implicit
transactions are turned off so that lakestack issues ``BEGIN`` itself: write transactions use
``BEGIN IMMEDIATE`` and take the database's write lock before their first read, which is what
makes read-check-write sequences such as ``claim_run`` atomic across processes. PostgreSQL goes
through psycopg 3.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from lakestack.errors import StateConflictError, StateError
from lakestack.state.urls import is_memory_sqlite, redact_url, sqlite_path, url_dialect

__all__ = ["WRITE_OPTION", "create_state_engine", "translate_error"]

WRITE_OPTION = "lakestack_write"
"""Execution option that marks a connection's transactions as writes (``BEGIN IMMEDIATE``)."""

BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_S = 10

# SQLSTATE classes: retrying can succeed (serialization failure, deadlock, lock not available)
_PG_TRANSIENT = {"40001", "40P01", "55P03"}
_SQLITE_TRANSIENT = ("database is locked", "database table is locked", "database is busy")


def create_state_engine(url: str) -> Engine:
    """An engine for a normalised state URL (see ``urls.normalize_state_url``).

    Creates the parent folder of a SQLite file. Connects lazily: nothing touches the database
    until the first statement.

    Raises:
        StateError: The URL cannot be parsed, or the PostgreSQL driver is not installed.
    """
    try:
        if url_dialect(url) == "sqlite":
            return _sqlite_engine(url)
        return sa.create_engine(
            url,
            pool_pre_ping=True,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
        )
    except ModuleNotFoundError as exc:
        raise StateError(
            f"state_url '{redact_url(url)}' needs the PostgreSQL driver psycopg ({exc.name} is "
            "missing); install it with: pip install 'lakestack[postgres]'"
        ) from exc
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise StateError(
            f"state_url '{redact_url(url)}' cannot be parsed ({exc}); "
            "expected sqlite:////abs/path/state.db or postgresql://user:pass@host:5432/db"
        ) from exc


def _sqlite_engine(url: str) -> Engine:
    path = sqlite_path(url)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(
                f"cannot create the folder of the state database {path}: {exc}; "
                "check the path in state_url and your permissions"
            ) from exc
    memory = is_memory_sqlite(url)
    if memory:
        engine = sa.create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    else:
        engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # lakestack emits BEGIN itself (see on_begin)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not memory:
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    def on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)
    return engine


def translate_error(exc: BaseException, *, url: str, action: str) -> StateError:
    """Turn a database error into a ``StateError`` that says what to check.

    Lock timeouts and serialization failures become ``StateConflictError`` (retrying is safe).

    Args:
        exc: The error SQLAlchemy or the driver raised.
        url: The state URL (its password is never shown).
        action: What lakestack was doing, as a verb phrase ("claim run 7").
    """
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    detail = lines[0] if lines else type(orig).__name__
    where = f"the state database at {redact_url(url)}"
    if url_dialect(url) == "sqlite":
        return _translate_sqlite(detail, where=where, action=action)
    return _translate_postgres(getattr(orig, "sqlstate", None), detail, where, action)


def _translate_sqlite(detail: str, *, where: str, action: str) -> StateError:
    lowered = detail.lower()
    if any(text in lowered for text in _SQLITE_TRANSIENT):
        return StateConflictError(
            f"cannot {action}: {where} stayed locked by another process for "
            f"{BUSY_TIMEOUT_MS // 1000} s ({detail}); retry, or look for a stuck lakestack process"
        )
    if "unable to open" in lowered or "readonly" in lowered or "read-only" in lowered:
        return StateError(
            f"cannot {action}: {where} cannot be opened for writing ({detail}); check the path "
            "in state_url and that you have write permission on the file and its folder"
        )
    if "not a database" in lowered or "malformed" in lowered:
        return StateError(
            f"cannot {action}: {where} is not a valid SQLite database ({detail}); check the path "
            "in state_url, or move the damaged file away to start a new state"
        )
    return StateError(
        f"cannot {action}: {where} failed ({detail}); check the path in state_url and your "
        "permissions"
    )


def _translate_postgres(sqlstate: str | None, detail: str, where: str, action: str) -> StateError:
    if sqlstate in _PG_TRANSIENT:
        return StateConflictError(
            f"cannot {action}: a concurrent writer changed {where} first ({detail}); retry"
        )
    if sqlstate is None or sqlstate.startswith("08"):
        return StateError(
            f"cannot {action}: cannot connect to {where} ({detail}); check that the server is "
            "running and reachable and that host, port and database in state_url are right"
        )
    if sqlstate.startswith("28"):
        return StateError(
            f"cannot {action}: {where} refused the login ({detail}); check the user and password "
            "in state_url"
        )
    if sqlstate == "3D000":
        return StateError(
            f"cannot {action}: {where} does not exist ({detail}); create the database or fix the "
            "database name in state_url"
        )
    if sqlstate == "42501":
        return StateError(
            f"cannot {action}: {where} denied access ({detail}); check that the user in state_url "
            "may create, read and write tables in that database"
        )
    return StateError(
        f"cannot {action}: {where} failed ({detail}); check the URL, the server and your "
        "permissions"
    )
