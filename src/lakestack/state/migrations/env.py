"""Alembic environment for the lakestack state database.

lakestack runs migrations programmatically (``lakestack.state.migrate``) and hands over an open
connection in ``config.attributes["connection"]``, inside a transaction that already holds the
migration lock. Given a ``sqlalchemy.url`` instead (alembic's command line), it connects itself.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from lakestack.state.schema import metadata

__all__: list[str] = []


def _run(connection: sa.Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url or pass a connection in config.attributes")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


_main()
