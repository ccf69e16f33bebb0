"""Which tables this process has read, and at which Delta version: the input half of lineage.

Every read through ``Table.dataset`` (and so ``Table.read``, ``Table.batches`` and SQL over the
catalog) records the table and the version it actually read. When a model is logged, the
registry writes this log onto the run and the model version as its input tables, so training
code records its lineage without saying anything. The log belongs to the process: a task runs in
its own process, and a process forked from this one starts with an empty log.
"""

from __future__ import annotations

import os
import threading

__all__ = ["clear_reads", "record_read", "tables_read"]

_reads: dict[str, int] = {}
_lock = threading.Lock()


def record_read(name: str, version: int) -> None:
    """Note that table ``name`` was read at Delta ``version`` (a later read of it wins)."""
    with _lock:
        _reads[name] = int(version)


def tables_read() -> dict[str, int]:
    """The tables read in this process so far, ``{catalog.schema.table: version}``, by name."""
    with _lock:
        return dict(sorted(_reads.items()))


def clear_reads() -> None:
    """Forget the tables read so far (e.g. between two trainings in one notebook)."""
    with _lock:
        _reads.clear()


def _forget_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    _reads.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)
