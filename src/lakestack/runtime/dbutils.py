"""The ``dbutils`` object that Databricks code expects, backed by lakestack.

``from lakestack import dbutils`` gives it (and notebooks run by lakestack have it predefined).
Each utility lives in its own module; this one only puts them together under the Databricks
names. ``spark`` is not provided: lakestack has no Spark.
"""

from __future__ import annotations

from lakestack.runtime.fs import FsUtils
from lakestack.runtime.notebook import NotebookExit, NotebookUtils
from lakestack.runtime.secrets import SecretsUtils
from lakestack.runtime.task_values import TaskValuesUtils
from lakestack.runtime.widgets import WidgetsUtils

__all__ = ["DBUtils", "JobsUtils", "LibraryUtils", "NotebookExit", "dbutils"]


class JobsUtils:
    """The ``dbutils.jobs`` API."""

    def __init__(self) -> None:
        self.taskValues = TaskValuesUtils()


class LibraryUtils:
    """The ``dbutils.library`` API."""

    def restartPython(self) -> None:  # noqa: N802
        """Does nothing: packages come from the environment, which needs no restart."""


class DBUtils:
    """``dbutils``: widgets, jobs.taskValues, notebook, fs, secrets, library."""

    def __init__(self) -> None:
        self.widgets = WidgetsUtils()
        self.jobs = JobsUtils()
        self.notebook = NotebookUtils()
        self.fs = FsUtils()
        self.secrets = SecretsUtils()
        self.library = LibraryUtils()

    def __repr__(self) -> str:
        return "<lakestack dbutils: widgets, jobs.taskValues, notebook, fs, secrets, library>"


dbutils = DBUtils()
