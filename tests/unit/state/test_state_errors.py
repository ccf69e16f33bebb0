"""Database errors become StateError (transient: StateConflictError) saying what to check."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa

from lakestack.errors import StateConflictError, StateError, TransientError
from lakestack.state.engine import translate_error

SQLITE = "sqlite:////data/state.db"
PG = "postgresql+psycopg://lake:s3cret@db:5432/lake"


class _PgError(Exception):
    def __init__(self, message: str, sqlstate: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def _wrapped(orig: Exception) -> sa.exc.OperationalError:
    return sa.exc.OperationalError("SELECT 1", {}, orig)


def test_sqlite_lock_is_transient() -> None:
    error = translate_error(
        _wrapped(sqlite3.OperationalError("database is locked")), url=SQLITE, action="claim run 7"
    )
    assert isinstance(error, StateConflictError) and isinstance(error, TransientError)
    assert str(error).startswith("cannot claim run 7: the state database at sqlite:////data/")


def test_sqlite_readonly_points_at_permissions() -> None:
    orig = sqlite3.OperationalError("attempt to write a readonly database")
    error = translate_error(_wrapped(orig), url=SQLITE, action="create a run")
    assert type(error) is StateError
    assert "permission" in str(error) and "readonly database" in str(error)


@pytest.mark.parametrize("sqlstate", ["40001", "40P01", "55P03"])
def test_postgres_serialization_failures_are_transient(sqlstate: str) -> None:
    error = translate_error(_wrapped(_PgError("conflict", sqlstate)), url=PG, action="claim run 1")
    assert isinstance(error, StateConflictError)


@pytest.mark.parametrize(
    ("sqlstate", "hint"),
    [
        (None, "check that the server is running"),
        ("08006", "check that the server is running"),
        ("28P01", "check the user and password"),
        ("3D000", "create the database"),
        ("42501", "may create, read and write tables"),
        ("XX000", "check the URL, the server and your permissions"),
    ],
)
def test_postgres_errors_say_what_to_check(sqlstate: str | None, hint: str) -> None:
    error = translate_error(_wrapped(_PgError("boom\nmore", sqlstate)), url=PG, action="list runs")
    message = str(error)
    assert type(error) is StateError
    assert hint in message
    assert "lake:***@db:5432/lake" in message and "s3cret" not in message
    assert "(boom)" in message
