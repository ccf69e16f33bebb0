"""``state_url``: every state test runs on SQLite and on the throwaway PostgreSQL server."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def state_url(request: pytest.FixtureRequest) -> str:
    """A fresh state database URL, one per backend."""
    name = "sqlite_state_url" if request.param == "sqlite" else "pg_state_url"
    return str(request.getfixturevalue(name))
