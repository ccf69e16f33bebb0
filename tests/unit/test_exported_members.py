"""The public API is what lakestack/__init__.py exports, and importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys

import lakestack


def test_public_names_are_pinned() -> None:
    assert lakestack.__all__ == [
        "Bundle",
        "LakestackError",
        "Workspace",
        "__version__",
        "dbutils",
        "load_bundle",
    ]
    for name in lakestack.__all__:
        assert getattr(lakestack, name) is not None


def test_importing_lakestack_loads_no_heavy_library() -> None:
    code = (
        "import sys, lakestack, lakestack.cli.main; "
        "heavy = {'sqlalchemy', 'pydantic', 'rich', 'nbclient', 'duckdb', 'psutil', 'yaml'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
