"""State URLs: drivers, absolute SQLite paths, hidden passwords, the default location."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakestack.errors import StateError
from lakestack.state import default_state_url
from lakestack.state.urls import (
    is_memory_sqlite,
    normalize_state_url,
    redact_url,
    sqlite_path,
    url_dialect,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db:5432/lake", "postgresql+psycopg://u:p@db:5432/lake"),
        ("postgres://u@db/lake", "postgresql+psycopg://u@db/lake"),
        ("postgresql+psycopg://db/lake", "postgresql+psycopg://db/lake"),
        ("sqlite:////abs/state.db", "sqlite:////abs/state.db"),
        ("sqlite://", "sqlite://"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
    ],
)
def test_normalize_picks_the_driver(given: str, expected: str) -> None:
    assert normalize_state_url(given) == expected


def test_relative_sqlite_path_is_rejected_with_the_fix() -> None:
    with pytest.raises(StateError, match=r"relative path.*sqlite:////abs/path/state.db"):
        normalize_state_url("sqlite:///state.db")


def test_unsupported_scheme_names_the_valid_ones_without_the_password() -> None:
    with pytest.raises(StateError) as caught:
        normalize_state_url("mysql://root:hunter2@db/lake")
    message = str(caught.value)
    assert "unsupported scheme 'mysql'" in message
    assert "postgresql://" in message and "sqlite:////" in message
    assert "hunter2" not in message and "root:***@db" in message


def test_not_a_url() -> None:
    with pytest.raises(StateError, match="is not a database URL"):
        normalize_state_url("/tmp/state.db")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://lake:s3cret@db:5432/x", "postgresql://lake:***@db:5432/x"),
        ("postgresql://lake:p@ss@db/x", "postgresql://lake:***@db/x"),
        ("postgresql://lake@db/x", "postgresql://lake@db/x"),
        ("sqlite:////a/b.db", "sqlite:////a/b.db"),
    ],
)
def test_redact_url_hides_passwords(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_default_state_url_is_an_absolute_sqlite_file(tmp_path: Path) -> None:
    url = default_state_url(tmp_path / ".lakestack")
    assert url == f"sqlite:///{tmp_path.resolve().as_posix()}/.lakestack/state.db"
    assert url.startswith("sqlite:////")
    assert sqlite_path(normalize_state_url(url)) == tmp_path.resolve() / ".lakestack" / "state.db"


def test_dialect_and_memory_detection() -> None:
    assert url_dialect("sqlite:////a.db") == "sqlite"
    assert url_dialect("postgresql+psycopg://db/x") == "postgresql"
    assert is_memory_sqlite("sqlite://") and is_memory_sqlite("sqlite:///:memory:")
    assert not is_memory_sqlite("sqlite:////a.db")
    assert sqlite_path("sqlite://") is None
    assert sqlite_path("postgresql+psycopg://db/x") is None
