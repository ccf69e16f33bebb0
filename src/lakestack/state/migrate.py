"""Bring a state database to the schema this lakestack knows, cheaply and safely.

Every process opens its own store, so the common case, a database already at head, costs one
query and never imports alembic. A fresh database is built from ``schema.metadata`` and stamped
with the head revision in one transaction (what alembic recommends for new databases, and much
faster than replaying scripts). Only a database at an older revision loads alembic's command
machinery and runs the scripts in ``migrations/``.

Two processes opening a fresh database at once take turns: the work happens inside a write
transaction that holds SQLite's write lock (``BEGIN IMMEDIATE``) or a PostgreSQL advisory lock,
and the revision is read again once the lock is held.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from lakestack.errors import StateError
from lakestack.state import schema
from lakestack.state.engine import WRITE_OPTION, translate_error
from lakestack.state.urls import redact_url, url_dialect

__all__ = ["MIGRATIONS_DIR", "current_revision", "ensure_schema", "run_alembic_upgrade"]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

_PG_MIGRATION_LOCK = 0x6C616B65  # "lake": pg_advisory_xact_lock key for schema changes
_UNDEFINED_TABLE = "42P01"


def ensure_schema(engine: Engine, url: str) -> None:
    """Create or upgrade the schema of the database behind ``engine`` to the head revision.

    Raises:
        StateError: The database is newer than this lakestack, or cannot be reached.
    """
    revision = current_revision(engine, url)
    if revision == schema.HEAD_REVISION:
        return
    _check_known(revision, url)
    try:
        with engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                if url_dialect(url) == "postgresql":
                    conn.execute(
                        sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                    )
                revision = _read_revision(conn) if _has_version_table(conn) else None
                _check_known(revision, url)
                if revision is None:
                    schema.metadata.create_all(conn)
                    schema.alembic_version.create(conn, checkfirst=True)
                    conn.execute(
                        schema.alembic_version.insert().values(version_num=schema.HEAD_REVISION)
                    )
                elif revision != schema.HEAD_REVISION:
                    run_alembic_upgrade(conn)
    except sa.exc.SQLAlchemyError as exc:
        raise translate_error(exc, url=url, action="create the state schema") from exc


def current_revision(engine: Engine, url: str) -> str | None:
    """The alembic revision of the database, or None for a database without lakestack tables.

    One query; a missing version table counts as a fresh database.
    """
    try:
        with engine.connect() as conn, conn.begin():
            return _read_revision(conn)
    except sa.exc.DBAPIError as exc:
        if _is_missing_table(exc):
            return None
        raise translate_error(exc, url=url, action="open the state database") from exc
    except sa.exc.SQLAlchemyError as exc:
        raise translate_error(exc, url=url, action="open the state database") from exc


def run_alembic_upgrade(conn: Connection, revision: str = "head") -> None:
    """Run the alembic scripts on ``conn`` (inside the caller's transaction) up to ``revision``."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = conn
    command.upgrade(config, revision)


def _read_revision(conn: Connection) -> str | None:
    return conn.execute(sa.select(schema.alembic_version.c.version_num)).scalar()


def _has_version_table(conn: Connection) -> bool:
    return sa.inspect(conn).has_table(schema.alembic_version.name)


def _is_missing_table(exc: sa.exc.DBAPIError) -> bool:
    if getattr(exc.orig, "sqlstate", None) == _UNDEFINED_TABLE:
        return True
    return "no such table" in str(exc.orig).lower()


def _check_known(revision: str | None, url: str) -> None:
    if revision is not None and revision not in schema.REVISIONS:
        raise StateError(
            f"state database at revision {revision} is newer than this lakestack "
            f"(knows {schema.HEAD_REVISION}); upgrade lakestack "
            f"(state_url: {redact_url(url)})"
        )
