"""The state package: lazy imports, and alembic scripts that agree with the schema module."""

from __future__ import annotations

import subprocess
import sys

from lakestack.state import schema
from lakestack.state.migrate import MIGRATIONS_DIR


def test_importing_lakestack_state_does_not_load_sqlalchemy() -> None:
    code = "import sys, lakestack.state; print('sqlalchemy' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_revisions_match_the_alembic_scripts() -> None:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(str(MIGRATIONS_DIR))
    chain = [script.revision for script in scripts.walk_revisions()][::-1]
    assert tuple(chain) == schema.REVISIONS
    assert scripts.get_current_head() == schema.HEAD_REVISION


def test_lazy_attribute_gives_the_store_class() -> None:
    import lakestack.state as state
    from lakestack.state.sql_store import SqlStateStore

    assert state.SqlStateStore is SqlStateStore
