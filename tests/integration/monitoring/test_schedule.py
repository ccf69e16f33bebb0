"""Monitor schedules in the scheduler: a tick refreshes once, on any number of schedulers, and
``lakestack scheduler`` starts the refresh in a process of its own."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pytest

from lakestack.bundle.specs.monitors import QualityMonitorSpec
from lakestack.console import NoopConsole
from lakestack.monitoring.schedule import MonitorSchedules, check_schedule
from lakestack.state import SqlStateStore
from lakestack.workspace import Workspace

pytestmark = pytest.mark.integration

START = datetime(2024, 3, 1, 6, 59, 30, tzinfo=timezone.utc).timestamp()


def spec(cron: str, pause: str = "UNPAUSED") -> QualityMonitorSpec:
    return QualityMonitorSpec.model_validate(
        {
            "table_name": "main.ml.t",
            "output_schema_name": "main.ml",
            "snapshot": {},
            "schedule": {"quartz_cron_expression": cron, "pause_status": pause},
        }
    )


@pytest.fixture
def store(sqlite_state_url: str) -> Iterator[SqlStateStore]:
    with SqlStateStore(sqlite_state_url) as opened:
        yield opened


def test_a_tick_refreshes_once_across_schedulers(
    sqlite_state_url: str, store: SqlStateStore
) -> None:
    monitors = {
        "hourly": spec("0 0 * * * ?"),
        "paused": spec("0 0 * * * ?", "PAUSED"),
        "plain": QualityMonitorSpec.model_validate(
            {"table_name": "main.ml.t", "output_schema_name": "main.ml", "snapshot": {}}
        ),
    }
    launched: list[str] = []
    console = NoopConsole()
    first = MonitorSchedules(
        monitors, store, "dev", launched.append, console=console, started=START
    )
    assert first.lines == [
        "monitor 'hourly': schedule '0 0 * * * ?'",
        "monitor 'paused': schedule '0 0 * * * ?': paused",
    ]
    with SqlStateStore(sqlite_state_url) as other_store:
        second = MonitorSchedules(
            monitors, other_store, "dev", launched.append, console=console, started=START
        )
        assert first(START + 10) == []  # no tick yet
        [fired] = first(START + 40)  # 07:00:00 passed
        assert fired.job_key == "hourly" and fired.key == f"monitor:hourly:{int(START + 30)}"
        assert second(START + 45) == []  # claimed by the first
    assert launched == ["hourly"]
    assert first(START + 3 * 3600) != [] and launched == ["hourly", "hourly"]  # missed ticks: one


def test_a_launch_that_fails_is_reported(store: SqlStateStore) -> None:
    def fail(key: str) -> None:
        raise OSError("no such file")

    console = NoopConsole()
    source = MonitorSchedules(
        {"m": spec("0 0 * * * ?")}, store, "dev", fail, console=console, started=START
    )
    [fired] = source(START + 40)
    assert fired.run_id is None and "not started: no such file" in fired.detail
    assert (
        "error",
        "Scheduler: monitor 'm' refresh did not start: no such file",
    ) in console.messages


def test_check_schedule() -> None:
    assert check_schedule("m", spec("0 0 8 * * ?")) is None
    problem = check_schedule("m", spec("0 0 25 * * ?"))
    assert problem is not None and problem.startswith("quality monitor 'm': quartz_cron_expression")


def test_scheduler_refreshes_in_a_process_of_its_own(tmp_path: Path) -> None:
    (tmp_path / "lakestack.yml").write_text(
        textwrap.dedent(
            """
            bundle: {name: sched}
            resources:
              schemas:
                ml: {name: ml, catalog_name: main}
              quality_monitors:
                m:
                  table_name: main.ml.t
                  output_schema_name: main.ml
                  snapshot: {}
                  schedule: {quartz_cron_expression: "0 0 * * * ?"}
            """
        ),
        encoding="utf-8",
    )
    with Workspace.open(tmp_path) as ws:
        ws.catalog.create_schema("main.ml")
        ws.catalog.create_table("main.ml.t", pa.table({"x": [1.0, 2.0, 3.0]}))
        now = [START]
        engine = ws.scheduler(clock=lambda: now[0])
        assert "monitor 'm': schedule '0 0 * * * ?'" in engine.describe()
        now[0] = START + 40
        fired = engine.tick()
        assert [f.job_key for f in fired] == ["m"]
        deadline = time.monotonic() + 120
        while not ws.catalog.table_exists("main.ml.t_profile_metrics"):
            assert time.monotonic() < deadline, (
                tmp_path / ".lakestack" / "monitors" / "m.log"
            ).read_text()
            time.sleep(0.2)
        log = tmp_path / ".lakestack" / "monitors" / "m.log"
        while "Monitor refreshed" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
