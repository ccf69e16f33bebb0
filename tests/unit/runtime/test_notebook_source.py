"""Notebook source conversion and preparation: pure functions, no kernel."""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat
import pytest

from lakestack.errors import TaskError
from lakestack.jobs.notebook import (
    SourceCell,
    convert_source,
    find_notebook,
    load_notebook,
    prepare_notebook,
)

SOURCE = textwrap.dedent(
    """\
    # Databricks notebook source
    # MAGIC %md
    # MAGIC # Title
    # MAGIC text

    # COMMAND ----------

    # DBTITLE 1,Imports
    import os
    x = 1

    # COMMAND ----------

    # MAGIC %pip install scikit-learn

    # COMMAND ----------

    # MAGIC %sql
    # MAGIC SELECT 42 AS answer

    # COMMAND ----------

    # MAGIC %sh echo hi

    # COMMAND ----------

    # MAGIC %load_ext autoreload
    # MAGIC %autoreload 2

    # COMMAND ----------
    """
)


def test_convert_splits_cells_and_translates_magics(tmp_path: Path) -> None:
    cells = convert_source(SOURCE, base_dir=tmp_path)
    assert [c.cell_type for c in cells] == ["markdown", "code", "code", "code", "code", "code"]
    assert cells[0].source == "# Title\ntext"
    assert cells[1].source == "import os\nx = 1"
    assert "print('skipped %pip: install packages into the environment instead')" in cells[2].source
    assert "_lakestack_sql_cell(" in cells[3].source
    assert "'SELECT 42 AS answer'" in cells[3].source
    assert "subprocess.run('echo hi', shell=True" in cells[4].source
    assert cells[5].source == "%load_ext autoreload\n%autoreload 2"
    compile(cells[3].source, "sql", "exec")
    compile(cells[4].source, "sh", "exec")


def test_run_inlines_the_other_notebook(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "helpers.py").write_text(
        "# Databricks notebook source\n# MAGIC %md\n# MAGIC doc\n\n# COMMAND ----------\n"
        "def f():\n    return 1\n"
    )
    source = "# Databricks notebook source\n# MAGIC %run ./lib/helpers\n"
    [cell] = convert_source(source, base_dir=tmp_path)
    assert cell == SourceCell("code", "# %run ./lib/helpers\n\ndef f():\n    return 1")


def test_run_of_a_missing_or_cyclic_notebook(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match=r"notebook '\./nothing' not found"):
        convert_source("# MAGIC %run ./nothing", base_dir=tmp_path)
    (tmp_path / "a.py").write_text("# Databricks notebook source\n# MAGIC %run ./b\n")
    (tmp_path / "b.py").write_text("# Databricks notebook source\n# MAGIC %run ./a\n")
    with pytest.raises(TaskError, match=r"%run ./a runs in a cycle \(a.py -> b.py -> a.py\)"):
        load_notebook(tmp_path / "a.py")


def test_scala_cells_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="a %scala cell cannot run in lakestack"):
        convert_source("# MAGIC %scala\n# MAGIC val x = 1\n", base_dir=tmp_path)


def test_find_notebook_without_extension(tmp_path: Path) -> None:
    (tmp_path / "train.ipynb").write_text("{}")
    assert find_notebook("train", tmp_path) == tmp_path / "train.ipynb"
    assert find_notebook(tmp_path / "train.ipynb", Path("/")) == tmp_path / "train.ipynb"


def _notebook(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def test_prepare_injects_after_the_parameters_cell(tmp_path: Path) -> None:
    params = nbformat.v4.new_code_cell("alpha = '0.1'")
    params.metadata["tags"] = ["parameters"]
    nb = _notebook(nbformat.v4.new_markdown_cell("# t"), params, nbformat.v4.new_code_cell("y"))
    numbers = prepare_notebook(
        nb,
        parameters={"alpha": "0.5", "not-an-id": "x", "class": "y", "n": "it's"},
        notebook_path=tmp_path / "nb.ipynb",
        exit_file=tmp_path / "exit.json",
        cwd=tmp_path,
    )
    tags = [c.metadata.get("tags") for c in nb.cells]
    assert tags == [["lakestack-setup"], None, ["parameters"], ["injected-parameters"], None]
    assert numbers == [None, 1, 2, None, 3]
    assert nb.cells[3].source == "# Parameters\nalpha = '0.5'\nn = \"it's\""
    setup = nb.cells[0].source
    assert "from lakestack import dbutils" in setup
    assert "dbutils.widgets._bind({'alpha': '0.5', 'not-an-id': 'x'" in setup
    compile(setup, "setup", "exec")


def test_prepare_without_parameters_cell_injects_first_and_replaces_old(tmp_path: Path) -> None:
    old = nbformat.v4.new_code_cell("alpha = 'old'")
    old.metadata["tags"] = ["injected-parameters"]
    nb = _notebook(old, nbformat.v4.new_code_cell("print(alpha)"))
    numbers = prepare_notebook(
        nb,
        parameters={"alpha": "new"},
        notebook_path=tmp_path / "nb.ipynb",
        exit_file=tmp_path / "exit.json",
        cwd=tmp_path,
    )
    assert [c.source for c in nb.cells[1:]] == ["# Parameters\nalpha = 'new'", "print(alpha)"]
    assert numbers == [None, None, 1]


def test_load_ipynb_translates_databricks_magics(tmp_path: Path) -> None:
    nb = _notebook(
        nbformat.v4.new_code_cell("%sql\nSELECT 1"), nbformat.v4.new_code_cell("%time 1")
    )
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, str(path))
    loaded = load_notebook(path)
    assert "_lakestack_sql_cell(" in loaded.cells[0].source
    assert loaded.cells[1].source == "%time 1"


def test_plain_python_file_is_one_cell(tmp_path: Path) -> None:
    path = tmp_path / "script.py"
    path.write_text("x = 1\n")
    assert [c.source for c in load_notebook(path).cells] == ["x = 1\n"]
