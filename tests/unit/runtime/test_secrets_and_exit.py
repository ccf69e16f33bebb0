from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lakestack.jobs.context import RESULT_FILE
from lakestack.runtime.dbutils import DBUtils, NotebookExit
from lakestack.runtime.secrets import SecretNotFoundError, secret_env_var

from .conftest import MakeContext


def test_secret_from_environment(dbutils: DBUtils, monkeypatch: pytest.MonkeyPatch) -> None:
    assert secret_env_var("ml-prod", "api.key") == "LAKESTACK_SECRET_ML_PROD_API_KEY"
    monkeypatch.setenv("LAKESTACK_SECRET_ML_PROD_API_KEY", "s3cret")
    assert dbutils.secrets.get("ml-prod", "api.key") == "s3cret"
    assert dbutils.secrets.getBytes("ml-prod", "api.key") == b"s3cret"


def test_missing_secret_names_the_variable(dbutils: DBUtils) -> None:
    with pytest.raises(
        SecretNotFoundError,
        match="secret 'token' of scope 'ci' is not set; "
        "set the environment variable LAKESTACK_SECRET_CI_TOKEN",
    ):
        dbutils.secrets.get("ci", "token")


def test_exit_writes_the_result_and_exits_zero(dbutils: DBUtils, in_job: MakeContext) -> None:
    ctx = in_job()
    with pytest.raises(NotebookExit) as caught:
        dbutils.notebook.exit(42)
    assert isinstance(caught.value, SystemExit)
    assert caught.value.code == 0
    assert str(caught.value) == "42"
    result = json.loads((Path(ctx.output_dir) / RESULT_FILE).read_text())
    assert result == {"exit_value": "42"}


def test_exit_ends_a_plain_script_successfully(tmp_path: Path) -> None:
    script = tmp_path / "task.py"
    script.write_text(
        "from lakestack import dbutils\n"
        "dbutils.library.restartPython()\n"
        "dbutils.notebook.exit('done')\n"
        "raise RuntimeError('not reached')\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_import_lakestack_is_lazy() -> None:
    code = (
        "import sys, lakestack\n"
        "assert 'lakestack.runtime' not in sys.modules\n"
        "from lakestack import dbutils\n"
        "heavy = {'nbclient', 'duckdb', 'IPython', 'nbformat', 'sqlalchemy'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
        "assert 'dbutils' in lakestack.__all__ and 'dbutils' in dir(lakestack)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
