"""Which modules the warm worker imports before forking tasks."""

from __future__ import annotations

import json
from pathlib import Path

from lakestack.bundle.specs.jobs import JobSpec
from lakestack.jobs.preload import preload_modules


def _job(root: Path) -> JobSpec:
    (root / "helpers.py").write_text("X = 1\n")
    (root / "train.py").write_text(
        "import json\nimport numpy as np\nfrom helpers import X\n\ndef f():\n    import pandas\n"
    )
    cell = {"cell_type": "code", "source": ["import sklearn\n"], "metadata": {}, "outputs": []}
    (root / "nb.ipynb").write_text(json.dumps({"cells": [cell], "nbformat": 4, "metadata": {}}))
    return JobSpec.model_validate(
        {
            "tasks": [
                {"task_key": "t", "spark_python_task": {"python_file": str(root / "train.py")}},
                {"task_key": "n", "notebook_task": {"notebook_path": str(root / "nb.ipynb")}},
            ]
        }
    )


def test_top_level_third_party_imports_of_python_files_are_preloaded(tmp_path: Path) -> None:
    job = _job(tmp_path)
    # json is stdlib (already cheap), helpers lives in the bundle, pandas is imported lazily,
    # sklearn belongs to a notebook, which runs in its own kernel process
    assert preload_modules([job], tmp_path, True) == ["lakestack.jobs.notebook", "numpy"]


def test_the_bundle_setting_adds_or_turns_off_preloading(tmp_path: Path) -> None:
    job = _job(tmp_path)
    assert preload_modules([job], tmp_path, False) == []
    assert preload_modules([job], tmp_path, ["scipy"]) == [
        "lakestack.jobs.notebook",
        "numpy",
        "scipy",
    ]
