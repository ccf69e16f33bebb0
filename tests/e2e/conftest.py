"""Drive the real ``lakestack`` command in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def lakestack(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> Result:
    """Run ``lakestack ARGS`` in ``cwd``."""
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    full_env.pop("LAKESTACK_BUNDLE_ROOT", None)
    # an earlier test's mlflow.set_tracking_uri() exports these; the CLI must see only its own
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        full_env.pop(name, None)
    proc = subprocess.run(
        [sys.executable, "-m", "lakestack", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli() -> Any:
    return lakestack
