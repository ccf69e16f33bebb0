"""The scheduler on a real SQLite state: cron ticks, periodic and file-arrival triggers, sources.

One fake clock drives both the scheduler and the state store's timestamps, so "an hour later"
takes no time; ``start_run`` records its calls and creates the run in the state as the CLI does.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from lakestack.bundle.presets import apply_presets
from lakestack.bundle.specs.jobs import JobSpec
from lakestack.bundle.specs.resources import ResourcesSpec
from lakestack.bundle.specs.root import PresetsSpec
from lakestack.console import NoopConsole
from lakestack.jobs.scheduler import FILE_ARRIVAL, PERIODIC, Fired, Scheduler, check_triggers
from lakestack.lake.catalog import Catalog
from lakestack.state import SqlStateStore
from lakestack.state.models import RunRecord

pytestmark = pytest.mark.integration

START = datetime(2024, 3, 1, 6, 59, 30, tzinfo=timezone.utc).timestamp()
HOUR = 3600.0


class Clock:
    """Seconds since the epoch, moved by the test."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


class Starter:
    """``start_run``: records (job, parameters, trigger type) and creates the run."""

    def __init__(self, store: SqlStateStore, fail_for: tuple[str, ...] = ()) -> None:
        self.store = store
        self.fail_for = fail_for
        self.calls: list[tuple[str, dict[str, str], str]] = []

    def __call__(self, job_key: str, parameters: Mapping[str, str], trigger_type: str) -> RunRecord:
        self.calls.append((job_key, dict(parameters), trigger_type))
        if job_key in self.fail_for:
            raise RuntimeError(f"no deployed job '{job_key}'")
        return self.store.create_run(
            target="dev", job_key=job_key, job_name=job_key, definition={}, parameters=parameters,
            trigger_type=trigger_type, created_by="scheduler",
        )  # fmt: skip


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock(START)
    monkeypatch.setattr("lakestack.state.sql_store.now_ms", lambda: int(fake.now * 1000))
    return fake


@pytest.fixture
def store(sqlite_state_url: str) -> Iterator[SqlStateStore]:
    with SqlStateStore(sqlite_state_url) as opened:
        yield opened


def job(**settings: Any) -> JobSpec:
    task = {"task_key": "main", "spark_python_task": {"python_file": "main.py"}}
    return JobSpec.model_validate({"tasks": [task], **settings})


def daily(expr: str = "0 0 7 * * ?", **extra: Any) -> JobSpec:
    return job(schedule={"quartz_cron_expression": expr, "timezone_id": "UTC", **extra})


def scheduler(
    store: SqlStateStore, clock: Clock, jobs: Mapping[str, JobSpec], starter: Starter, **kw: Any
) -> Scheduler:
    kw.setdefault("console", NoopConsole())
    return Scheduler(store, "dev", jobs, starter, clock=clock, **kw)


def errors(console: Any) -> list[str]:
    return [m for kind, m in console.messages if kind == "error"]


# cron ----------------------------------------------------------------------------------------


def test_cron_fires_once_per_tick_and_not_before(store: SqlStateStore, clock: Clock) -> None:
    starter = Starter(store)
    sched = scheduler(store, clock, {"train": daily()}, starter)
    assert sched.tick(clock.advance(20)) == []  # 06:59:50
    fired = sched.tick(clock.advance(15))  # 07:00:05
    assert [(f.job_key, f.trigger_type, f.key) for f in fired] == [
        ("train", PERIODIC, f"cron:train:{int(START + 30)}")
    ]
    assert fired[0].run_id == store.list_runs(job_key="train")[0].run_id
    assert sched.tick(clock.advance(5)) == []
    assert sched.tick(clock.advance(HOUR)) == []
    assert len(sched.tick(clock.advance(24 * HOUR))) == 1  # the next morning
    assert starter.calls == [("train", {}, PERIODIC)] * 2
    assert [r.trigger_type for r in store.list_runs(job_key="train")] == [PERIODIC, PERIODIC]


def test_ticks_missed_in_one_long_pass_start_one_run(store: SqlStateStore, clock: Clock) -> None:
    starter = Starter(store)
    sched = scheduler(store, clock, {"train": daily()}, starter)
    fired = sched.tick(clock.advance(3 * 24 * HOUR))  # three 07:00 ticks in one pass
    assert len(fired) == 1
    assert fired[0].key == f"cron:train:{int(START + 30 + 2 * 24 * HOUR)}"  # the latest
    assert len(starter.calls) == 1


def test_no_backfill_of_ticks_before_the_scheduler_started(
    store: SqlStateStore, clock: Clock
) -> None:
    clock.advance(HOUR)  # starts at 07:59:30, after today's tick
    starter = Starter(store)
    sched = scheduler(store, clock, {"train": daily()}, starter)
    assert sched.tick(clock.advance(60)) == []
    assert starter.calls == []


def test_two_schedulers_on_one_state_start_one_run(
    sqlite_state_url: str, store: SqlStateStore, clock: Clock
) -> None:
    with SqlStateStore(sqlite_state_url) as other_store:
        first = Starter(store)
        second = Starter(other_store)
        a = scheduler(store, clock, {"train": daily()}, first)
        b = scheduler(other_store, clock, {"train": daily()}, second)
        now = clock.advance(31)
        fired = a.tick(now) + b.tick(now)
    assert len(fired) == 1
    assert len(first.calls) + len(second.calls) == 1
    assert len(store.list_runs(job_key="train")) == 1


def test_a_restarted_scheduler_does_not_start_a_tick_again(
    store: SqlStateStore, clock: Clock
) -> None:
    starter = Starter(store)
    sched = scheduler(store, clock, {"train": daily()}, starter)
    sched.tick(clock.advance(31))  # 07:00:01: started
    clock.now = START + 15  # the restart's clock runs behind (06:59:45): 07:00 comes again
    again = scheduler(store, clock, {"train": daily()}, starter)
    assert again.tick(clock.advance(30)) == []
    assert len(starter.calls) == 1


def test_paused_schedules_and_development_mode_do_not_fire(
    store: SqlStateStore, clock: Clock
) -> None:
    resources = ResourcesSpec.model_validate(
        {"jobs": {"dev_job": daily().model_dump(exclude_none=True)}}
    )
    dev = apply_presets(resources, PresetsSpec(), "development", "ann").jobs["dev_job"]
    jobs = {"paused": daily(pause_status="PAUSED"), "dev_job": dev, "live": daily()}
    starter = Starter(store)
    sched = scheduler(store, clock, jobs, starter)
    fired = sched.tick(clock.advance(31))
    assert [f.job_key for f in fired] == ["live"]
    assert "job 'dev_job': schedule '0 0 7 * * ?' (UTC): paused" in sched.describe()
    assert "job 'paused': schedule '0 0 7 * * ?' (UTC): paused" in sched.describe()


def test_cron_runs_of_one_job_are_at_least_ten_seconds_apart(
    store: SqlStateStore, clock: Clock
) -> None:
    starter = Starter(store)
    sched = scheduler(store, clock, {"fast": daily("* * * * * ?")}, starter)
    started = [len(sched.tick(clock.advance(1))) for _ in range(25)]
    assert sum(started) == 3  # seconds 1, 11, 21


def test_a_bad_expression_is_reported_and_other_jobs_run(
    store: SqlStateStore, clock: Clock
) -> None:
    console = NoopConsole()
    starter = Starter(store)
    jobs = {"broken": daily("0 0 7 * *"), "train": daily()}
    sched = scheduler(store, clock, jobs, starter, console=console)
    assert errors(console) == [
        "Scheduler: job 'broken': quartz_cron_expression '0 0 7 * *' has 5 fields; Quartz needs "
        "6 or 7 (second minute hour day-of-month month day-of-week [year]), e.g. '0 0 7 * * ?' "
        "for 07:00 every day, '0 0 9 ? * MON-FRI' for 09:00 on weekdays; the schedule is not "
        "started"
    ]
    assert [f.job_key for f in sched.tick(clock.advance(31))] == ["train"]


def test_a_run_that_cannot_start_is_reported_and_other_jobs_start(
    store: SqlStateStore, clock: Clock
) -> None:
    console = NoopConsole()
    starter = Starter(store, fail_for=("gone",))
    sched = scheduler(store, clock, {"gone": daily(), "train": daily()}, starter, console=console)
    fired = {f.job_key: f for f in sched.tick(clock.advance(31))}
    assert fired["train"].run_id is not None
    assert fired["gone"].run_id is None
    assert fired["gone"].detail.endswith("not started: no deployed job 'gone'")
    assert errors(console) == [
        "Scheduler: job 'gone' could not start a PERIODIC run (schedule '0 0 7 * * ?' at "
        "2024-03-01T07:00:00+00:00): no deployed job 'gone'"
    ]


# periodic --------------------------------------------------------------------------------------


def every(interval: int, unit: str = "HOURS", **extra: Any) -> JobSpec:
    return job(trigger={"periodic": {"interval": interval, "unit": unit}, **extra})


def test_periodic_runs_every_interval_after_the_last_periodic_run(
    store: SqlStateStore, clock: Clock
) -> None:
    starter = Starter(store)
    sched = scheduler(store, clock, {"sync": every(4)}, starter)
    first = sched.tick(clock.advance(1))  # never ran on its period: now
    assert [f.detail for f in first] == ["trigger every 4 hours"]
    assert sched.tick(clock.advance(HOUR)) == []
    assert sched.tick(clock.advance(2.9 * HOUR)) == []
    assert len(sched.tick(clock.advance(0.2 * HOUR))) == 1  # 4 h after the first
    assert [c[2] for c in starter.calls] == [PERIODIC, PERIODIC]
    # a manual run in between does not count; a restart picks up the last periodic run
    store.create_run(
        target="dev", job_key="sync", job_name="sync", definition={}, parameters={},
        trigger_type="ONE_TIME", created_by="ann",
    )  # fmt: skip
    again = scheduler(store, clock, {"sync": every(4)}, starter)
    assert again.tick(clock.advance(3 * HOUR)) == []
    assert len(again.tick(clock.advance(1.1 * HOUR))) == 1
    assert len(starter.calls) == 3


def test_paused_trigger_and_bad_periodic_do_not_fire(store: SqlStateStore, clock: Clock) -> None:
    console = NoopConsole()
    starter = Starter(store)
    jobs = {"paused": every(1, pause_status="PAUSED"), "bad": every(0, "MINUTES")}
    sched = scheduler(store, clock, jobs, starter, console=console)
    assert sched.tick(clock.advance(10 * HOUR)) == []
    assert errors(console) == [
        "Scheduler: job 'bad': trigger.periodic.interval is 0; give a whole number of units, "
        "1 or more; the trigger is not started"
    ]


def test_check_triggers_for_bundle_validate() -> None:
    assert check_triggers("ok", daily()) == []
    assert check_triggers("ok", every(2, "DAYS")) == []
    assert check_triggers("bad", every(3, "MINUTES")) == [
        "job 'bad': trigger.periodic.unit is 'MINUTES'; use one of HOURS, DAYS, WEEKS"
    ]
    assert check_triggers("bad", daily("0 0 7 * * *", pause_status="PAUSED")) == [
        "job 'bad': quartz_cron_expression '0 0 7 * * *' restricts both day-of-month and "
        "day-of-week; Quartz needs '?' in one of them (e.g. '0 0 7 * * ?' for 07:00 every day, "
        "'0 0 9 ? * MON-FRI' for 09:00 on weekdays)"
    ]


# file arrival ----------------------------------------------------------------------------------


def arrival(url: str | Path, **extra: Any) -> JobSpec:
    return job(trigger={"file_arrival": {"url": str(url), **extra}})


def put(folder: Path, name: str, text: str = "x", mtime: float | None = None) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def test_a_new_file_fires_once(store: SqlStateStore, clock: Clock, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    put(landing, "old.csv")  # there before the trigger was ever watched: not a new file
    starter = Starter(store)
    sched = scheduler(store, clock, {"ingest": arrival(landing)}, starter)
    assert sched.tick(clock.advance(1)) == []
    put(landing, ".part-0.tmp")
    put(landing, "_checkpoint/offsets/0")
    assert sched.tick(clock.advance(1)) == []
    put(landing, "2024/03/a.csv")
    fired = sched.tick(clock.advance(1))
    assert [(f.job_key, f.trigger_type, f.run_id is not None) for f in fired] == [
        ("ingest", FILE_ARRIVAL, True)
    ]
    assert fired[0].detail == f"1 new file(s) under {landing}: 2024/03/a.csv"
    assert sched.tick(clock.advance(1)) == []
    put(landing, "2024/03/a.csv", "rewritten")  # same name: not a new file (as on Databricks)
    assert sched.tick(clock.advance(1)) == []
    assert starter.calls == [("ingest", {}, FILE_ARRIVAL)]


def test_waits_until_no_change_for_wait_after_last_change(
    store: SqlStateStore, clock: Clock, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    starter = Starter(store)
    job_spec = arrival(landing, wait_after_last_change_seconds=60)
    sched = scheduler(store, clock, {"ingest": job_spec}, starter)
    sched.tick(clock.advance(1))
    put(landing, "a.csv")
    assert sched.tick(clock.advance(1)) == []
    assert sched.tick(clock.advance(30)) == []
    put(landing, "b.csv")  # still arriving: the wait starts again
    assert sched.tick(clock.advance(1)) == []
    assert sched.tick(clock.advance(50)) == []
    fired = sched.tick(clock.advance(10))
    assert len(fired) == 1
    assert fired[0].detail.endswith("2 new file(s) under " + str(landing) + ": a.csv, b.csv")


def test_min_time_between_triggers(store: SqlStateStore, clock: Clock, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    starter = Starter(store)
    sched = scheduler(
        store, clock, {"ingest": arrival(landing, min_time_between_triggers_seconds=120)}, starter
    )
    sched.tick(clock.advance(1))
    put(landing, "a.csv")
    assert len(sched.tick(clock.advance(1))) == 1
    put(landing, "b.csv")
    assert sched.tick(clock.advance(60)) == []
    assert len(sched.tick(clock.advance(61))) == 1


def test_a_restart_does_not_fire_for_files_already_seen(
    store: SqlStateStore, clock: Clock, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    starter = Starter(store)
    jobs = {"ingest": arrival(landing)}
    sched = scheduler(store, clock, jobs, starter)
    sched.tick(clock.advance(1))
    put(landing, "a.csv")
    assert len(sched.tick(clock.advance(1))) == 1
    put(landing, "a.csv", "rewritten", mtime=START + 500)  # changed, but no new file
    assert sched.tick(clock.advance(1)) == []

    restarted = scheduler(store, clock, jobs, starter)
    assert restarted.tick(clock.advance(1)) == []
    assert restarted.tick(clock.advance(1)) == []
    put(landing, "c.csv")  # arrives while no scheduler runs
    after_downtime = scheduler(store, clock, jobs, starter)
    fired = after_downtime.tick(clock.advance(1))
    assert len(fired) == 1
    assert [c[2] for c in starter.calls] == [FILE_ARRIVAL, FILE_ARRIVAL]


def test_a_file_consumed_and_dropped_again_under_the_same_name_fires_again(
    store: SqlStateStore, clock: Clock, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    starter = Starter(store)
    sched = scheduler(store, clock, {"ingest": arrival(landing)}, starter)
    sched.tick(clock.advance(1))
    put(landing, "daily.csv", mtime=START)
    assert len(sched.tick(clock.advance(1))) == 1
    (landing / "daily.csv").unlink()  # the job moved it away
    assert sched.tick(clock.advance(1)) == []
    put(landing, "daily.csv", mtime=START + 86_400)
    assert len(sched.tick(clock.advance(1))) == 1


def test_two_schedulers_watching_one_folder_start_one_run(
    sqlite_state_url: str, store: SqlStateStore, clock: Clock, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    with SqlStateStore(sqlite_state_url) as other_store:
        first, second = Starter(store), Starter(other_store)
        a = scheduler(store, clock, {"ingest": arrival(landing)}, first)
        b = scheduler(other_store, clock, {"ingest": arrival(landing)}, second)
        now = clock.advance(1)
        a.tick(now), b.tick(now)
        put(landing, "a.csv")
        now = clock.advance(1)
        fired = a.tick(now) + b.tick(now)
    assert len(fired) == 1
    assert len(first.calls) + len(second.calls) == 1


def test_a_volume_url_and_a_folder_that_appears_later(
    store: SqlStateStore, clock: Clock, tmp_path: Path
) -> None:
    catalog = Catalog(tmp_path / "warehouse")
    catalog.create_catalog("main")
    catalog.create_schema("main.raw")
    volume = Path(catalog.create_volume("main.raw.files"))
    console = NoopConsole()
    starter = Starter(store)
    url = "/Volumes/main/raw/files/landing"
    sched = scheduler(
        store, clock, {"ingest": arrival(url)}, starter, console=console, catalog=catalog
    )
    assert sched.tick(clock.advance(1)) == []
    assert sched.tick(clock.advance(1)) == []
    warnings = [m for kind, m in console.messages if kind == "warning"]
    assert len(warnings) == 1
    assert "'/Volumes/main/raw/files/landing' does not exist" in warnings[0]
    put(volume / "landing", "a.json")
    fired = sched.tick(clock.advance(1))
    assert len(fired) == 1
    assert fired[0].detail == f"1 new file(s) under {url}: a.json"


def test_a_relative_folder_is_under_base_dir(
    store: SqlStateStore, clock: Clock, tmp_path: Path
) -> None:
    starter = Starter(store)
    sched = scheduler(store, clock, {"ingest": arrival("data/landing")}, starter, base_dir=tmp_path)
    sched.tick(clock.advance(1))
    put(tmp_path / "data" / "landing", "a.csv")
    assert len(sched.tick(clock.advance(1))) == 1


def test_a_failing_trigger_is_reported_once_and_other_jobs_run(
    store: SqlStateStore, clock: Clock
) -> None:
    console = NoopConsole()
    starter = Starter(store)
    jobs = {"ingest": arrival("/Volumes/main/raw/files/landing"), "train": daily()}
    sched = scheduler(store, clock, jobs, starter, console=console)  # no catalog for /Volumes
    assert [f.job_key for f in sched.tick(clock.advance(31))] == ["train"]
    sched.tick(clock.advance(1))
    assert errors(console) == [
        "Scheduler: job 'ingest' trigger.file_arrival: trigger.file_arrival url "
        "'/Volumes/main/raw/files/landing' is a volume path, and this scheduler has no catalog "
        "to find volumes in"
    ]


# sources and the loop ----------------------------------------------------------------------------


def test_a_failing_source_does_not_stop_the_others(store: SqlStateStore, clock: Clock) -> None:
    console = NoopConsole()
    seen: list[float] = []

    def broken(now: float) -> list[Fired]:
        raise RuntimeError("registry unreachable\nwith a traceback-ish second line")

    def registry(now: float) -> list[Fired]:
        seen.append(now)
        return [Fired("deploy", "MODEL", f"model:v{len(seen)}", len(seen), "version 1")]

    starter = Starter(store)
    sched = scheduler(
        store, clock, {"train": daily()}, starter, console=console, sources=[broken, registry]
    )
    fired = sched.tick(clock.advance(31))
    assert [f.job_key for f in fired] == ["train", "deploy"]
    assert len(sched.tick(clock.advance(1))) == 1
    assert seen == [START + 31, START + 32]
    assert errors(console) == ["Scheduler: source broken: registry unreachable"]  # once


def test_run_ticks_until_stopped(store: SqlStateStore) -> None:
    stop = threading.Event()
    calls: list[float] = []

    def counting(now: float) -> list[Fired]:
        calls.append(now)
        if len(calls) == 3:
            stop.set()
        return []

    sched = Scheduler(store, "dev", {}, Starter(store), console=NoopConsole(), sources=[counting])
    worker = threading.Thread(target=sched.run, args=(0.01, stop))
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert len(calls) == 3
