"""Schema migrations: fresh databases at head, the alembic scripts, newer databases, first opens."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import sys

import pytest
import sqlalchemy as sa

from lakestack.errors import StateError
from lakestack.state import SqlStateStore, schema
from lakestack.state.engine import WRITE_OPTION, create_state_engine
from lakestack.state.migrate import current_revision, run_alembic_upgrade
from lakestack.state.urls import normalize_state_url

pytestmark = pytest.mark.integration


def test_fresh_database_is_at_head(state_url: str) -> None:
    with SqlStateStore(state_url):
        pass
    url = normalize_state_url(state_url)
    engine = create_state_engine(url)
    try:
        assert current_revision(engine, url) == schema.HEAD_REVISION
        tables = set(sa.inspect(engine).get_table_names())
        assert set(schema.metadata.tables) | {"alembic_version"} <= tables
    finally:
        engine.dispose()


def test_alembic_scripts_build_the_schema_module(state_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    url = normalize_state_url(state_url)
    engine = create_state_engine(url)
    try:
        with engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                run_alembic_upgrade(conn)
            with conn.begin():
                differences = compare_metadata(MigrationContext.configure(conn), schema.metadata)
        assert differences == []
        assert current_revision(engine, url) == schema.HEAD_REVISION
    finally:
        engine.dispose()
    with SqlStateStore(state_url) as store:  # a database built by the scripts opens as is
        assert store.list_runs() == []


def test_database_newer_than_the_code_is_refused(state_url: str) -> None:
    with SqlStateStore(state_url):
        pass
    url = normalize_state_url(state_url)
    engine = create_state_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.update(schema.alembic_version).values(version_num="0999"))
    finally:
        engine.dispose()
    with pytest.raises(StateError) as caught:
        SqlStateStore(state_url)
    assert str(caught.value).startswith(
        f"state database at revision 0999 is newer than this lakestack "
        f"(knows {schema.HEAD_REVISION}); upgrade lakestack"
    )


def _open_and_create_run(url: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    barrier.wait(timeout=60)
    with SqlStateStore(url) as store:
        store.create_run(
            target="dev", job_key="j", job_name="J", definition={}, parameters={},
            trigger_type="ONE_TIME", created_by="test",
        )  # fmt: skip


def test_concurrent_first_opens_do_not_break(state_url: str) -> None:
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    barrier = context.Barrier(4)
    workers = [
        context.Process(target=_open_and_create_run, args=(state_url, barrier)) for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    with SqlStateStore(state_url) as store:
        assert len(store.list_runs()) == 4
