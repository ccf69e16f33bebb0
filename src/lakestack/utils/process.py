"""Ending a process that has used delta-rs.

delta-rs keeps Rust runtime threads that can abort the interpreter at shutdown ("terminate called
without an active exception", exit code 134) after all the work is done and committed
(delta-io/delta-rs#2184; seen here in about 1 of 20 processes). A process that has imported
``deltalake`` therefore ends without the interpreter's shutdown, after flushing its output, so
that its exit code is the one it meant.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["exit_process"]


def exit_process(code: int) -> None:
    """Exit with ``code``; skip interpreter shutdown when delta-rs is loaded."""
    if "deltalake" not in sys.modules:
        sys.exit(code)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
