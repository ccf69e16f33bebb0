"""State database URLs: normalise them, hide their passwords, find the default one.

Kept free of SQLAlchemy so that the CLI and the workspace can handle ``state_url`` values
without importing the database stack.
"""

from __future__ import annotations

import re
from pathlib import Path

from lakestack.errors import StateError

__all__ = [
    "default_state_url",
    "is_memory_sqlite",
    "normalize_state_url",
    "redact_url",
    "sqlite_path",
    "url_dialect",
]

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<rest>.*)$", re.DOTALL)
# greedy up to the last "@": an unescaped "@" in a password must not leak the rest of it
_PASSWORD = re.compile(r"^(?P<scheme>[^:/]+://)(?P<user>[^:@/]*):(?P<password>.*)@", re.DOTALL)
_SUPPORTED = "sqlite:////abs/path/state.db, postgresql://user:pass@host:5432/db"


def default_state_url(workspace_root: Path) -> str:
    """The embedded default: ``<workspace_root>/state.db`` (SQLite).

    Args:
        workspace_root: The workspace folder (``.lakestack`` beside the bundle file).

    Returns:
        A ``sqlite:////abs/path/state.db`` URL.
    """
    return f"sqlite:///{(Path(workspace_root).expanduser().resolve() / 'state.db').as_posix()}"


def normalize_state_url(url: str) -> str:
    """Check a state URL and pick the driver lakestack uses for it.

    ``postgresql://`` and ``postgres://`` become ``postgresql+psycopg://`` (psycopg 3);
    ``sqlite://`` URLs are kept, but a relative file path is rejected because it would depend
    on the current directory.

    Args:
        url: A SQLAlchemy-style database URL.

    Returns:
        The URL to hand to SQLAlchemy.

    Raises:
        StateError: The URL is malformed, relative, or names an unsupported database.
    """
    match = _SCHEME.match(url.strip())
    if match is None:
        raise StateError(
            f"state_url '{redact_url(url)}' is not a database URL; use one of: {_SUPPORTED}"
        )
    scheme, rest = match["scheme"].lower(), match["rest"]
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return f"postgresql+psycopg://{rest}"
    if scheme in ("sqlite", "sqlite+pysqlite"):
        path = rest[1:] if rest.startswith("/") else rest
        if path.split("?", 1)[0] not in ("", ":memory:") and not path.startswith("/"):
            raise StateError(
                f"state_url '{url}' has a relative path; SQLite URLs need an absolute path "
                "after three slashes, as in sqlite:////abs/path/state.db"
            )
        return f"sqlite://{rest}"
    raise StateError(
        f"state_url '{redact_url(url)}' uses the unsupported scheme '{scheme}'; "
        f"use one of: {_SUPPORTED}"
    )


def url_dialect(url: str) -> str:
    """``"sqlite"`` or ``"postgresql"`` for a normalised URL."""
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def sqlite_path(url: str) -> Path | None:
    """The database file of a normalised SQLite URL (None for other databases and memory)."""
    if url_dialect(url) != "sqlite" or is_memory_sqlite(url):
        return None
    return Path(url.split("://", 1)[1][1:].split("?", 1)[0])


def is_memory_sqlite(url: str) -> bool:
    """Whether a normalised URL names an in-memory SQLite database (handy in unit tests)."""
    if url_dialect(url) != "sqlite":
        return False
    return url.split("://", 1)[1].split("?", 1)[0] in ("", "/", "/:memory:")


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***``, safe for messages and logs."""
    return _PASSWORD.sub(r"\g<scheme>\g<user>:***@", url.strip())
