import os
import sys

import pytest

pytest_plugins = ["tests.postgres_plugin", "tests.s3_plugin"]

_EXIT = {"status": 0}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT["status"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # delta-rs can abort the interpreter at shutdown after the suite passed (delta-rs#2184);
    # end with pytest's own status instead (see lakestack.utils.process)
    if "deltalake" in sys.modules and not hasattr(config, "workerinput"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT["status"])
