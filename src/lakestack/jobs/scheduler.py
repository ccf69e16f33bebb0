"""The scheduler's engine: start deployed jobs on their cron schedules and triggers.

``lakestack scheduler`` is a long-running process that calls ``Scheduler.tick`` in a loop. A
tick looks at every job's Quartz ``schedule``, ``trigger.periodic`` and
``trigger.file_arrival``, starts the runs that are due, then calls the extra ``sources`` (the
registry's deployment and approval polling plugs in there). It knows nothing of the registry.

Every firing is claimed in the workspace state first (``StateStore.claim_trigger``) under a key
that any scheduler computes the same way, so two schedulers on one state start each run once,
and a restarted scheduler does not start again what it already started:

- a cron tick: ``cron:<job>:<fire epoch>``; only ticks after the scheduler started fire (no
  backfill), and several ticks missed during one long pass start one run, as on Databricks;
- a periodic trigger: due one interval after the job's last ``PERIODIC`` run in the state;
- a file arrival: a hash of the files under the URL, claimed when a run starts and whenever the
  folder changes without new files, so files seen before a restart do not trigger again.

A failure in one job's trigger or in one source is reported through the console (once until it
changes) and the other triggers carry on.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakestack.bundle.specs.jobs import FileArrivalSpec, JobSpec
from lakestack.console import Console
from lakestack.errors import ConfigError, JobError, NotFoundError
from lakestack.jobs.cron import CronSchedule
from lakestack.state.base import StateStore

if TYPE_CHECKING:
    from lakestack.lake.catalog import Catalog
    from lakestack.lake.ingest_source import Location

__all__ = [
    "FILE_ARRIVAL",
    "MIN_CRON_GAP_SECONDS",
    "PERIODIC",
    "Fired",
    "Scheduler",
    "Source",
    "StartRun",
    "check_triggers",
    "periodic_seconds",
]

PERIODIC = "PERIODIC"
"""Trigger type of runs started by a cron schedule or a periodic trigger (Databricks' name)."""
FILE_ARRIVAL = "FILE_ARRIVAL"
"""Trigger type of runs started by a file arrival trigger."""
MIN_CRON_GAP_SECONDS = 10
"""Databricks starts schedule runs of one job at least 10 seconds apart, whatever the cron."""
PERIOD_UNITS = {"HOURS": 3600, "DAYS": 86_400, "WEEKS": 604_800}
RUN_LOOKBACK = 200
"""Runs of a job read to find its last periodic or file-arrival run."""


@dataclass(frozen=True)
class Fired:
    """A trigger this scheduler fired: the run it started (None if the run could not start)."""

    job_key: str
    trigger_type: str
    key: str
    run_id: int | None
    detail: str


Source = Callable[[float], list[Fired]]
"""An extra trigger source: called with the time of the tick, returns what it fired."""
StartRun = Callable[[str, Mapping[str, str], str], Any]
"""Start a run: ``(job_key, parameters, trigger_type)``; returns the run, its id, or None."""


def periodic_seconds(job_key: str, periodic: Any) -> int:
    """The interval of ``trigger.periodic`` (``{interval: 4, unit: HOURS}``) in seconds.

    Raises:
        ConfigError: not a mapping with a positive whole ``interval`` and a known ``unit``.
    """
    if not isinstance(periodic, Mapping):
        raise ConfigError(
            f"job '{job_key}': trigger.periodic must be a mapping like {{interval: 4, unit: HOURS}}"
        )
    interval, unit = periodic.get("interval"), str(periodic.get("unit", "")).upper()
    unknown = sorted(set(periodic) - {"interval", "unit"})
    if unknown:
        raise ConfigError(
            f"job '{job_key}': trigger.periodic has unknown key '{unknown[0]}'; "
            "it takes interval and unit"
        )
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        raise ConfigError(
            f"job '{job_key}': trigger.periodic.interval is {interval!r}; give a whole number "
            "of units, 1 or more"
        )
    if unit not in PERIOD_UNITS:
        raise ConfigError(
            f"job '{job_key}': trigger.periodic.unit is {periodic.get('unit')!r}; "
            f"use one of {', '.join(PERIOD_UNITS)}"
        )
    return interval * PERIOD_UNITS[unit]


def check_triggers(job_key: str, spec: JobSpec) -> list[str]:
    """Problems with a job's schedule and triggers, one sentence each; for ``bundle validate``.

    Paused schedules and triggers are checked too: unpausing them must not reveal an error.
    """
    from lakestack.jobs.cron import check_cron

    problems: list[str] = []
    if spec.schedule is not None:
        problem = check_cron(spec.schedule.quartz_cron_expression, spec.schedule.timezone_id)
        if problem is not None:
            problems.append(f"job '{job_key}': {problem}")
    trigger = spec.trigger
    if trigger is not None and trigger.periodic is not None:
        try:
            periodic_seconds(job_key, trigger.periodic)
        except ConfigError as exc:
            problems.append(str(exc))
    arrival = trigger.file_arrival if trigger is not None else None
    if arrival is not None and not arrival.url.strip():
        problems.append(f"job '{job_key}': trigger.file_arrival.url is empty; name a folder")
    return problems


class Scheduler:
    """Starts the runs of ``jobs`` (one target) that their schedules and triggers make due."""

    def __init__(
        self,
        state: StateStore,
        target: str,
        jobs: Mapping[str, JobSpec],
        start_run: StartRun,
        *,
        console: Console,
        sources: Iterable[Source] = (),
        clock: Callable[[], float] = time.time,
        catalog: Catalog | None = None,
        base_dir: Path | None = None,
    ) -> None:
        """Read the jobs' triggers; a trigger that cannot work is reported and left out.

        Args:
            state: The workspace state: trigger claims and the runs of each job.
            target: The bundle target whose jobs these are.
            jobs: The deployed jobs by key, with presets applied (paused in development mode).
            start_run: Starts a run (``JobService.submit`` plus a driver, in the CLI).
            console: Where fired runs and failures are reported, one line each.
            sources: Extra trigger sources, called on every tick after the built-in triggers.
            clock: Seconds since the epoch (a fake one in tests); the scheduler's start time is
                read from it here, and cron ticks before it are not run.
            catalog: Resolves ``/Volumes/...`` file-arrival URLs (and gives storage options).
            base_dir: What relative file-arrival paths are relative to (the working directory
                when None).
        """
        self.state = state
        self.target = target
        self.console = console
        self.start_run = start_run
        self.sources = list(sources)
        self.clock = clock
        self.catalog = catalog
        self.base_dir = base_dir
        self.started = clock()
        self._errors: dict[str, str] = {}
        self._watches: list[_Watch] = []
        self._lines: list[str] = []
        for key, spec in jobs.items():
            self._add(key, spec)

    def describe(self) -> list[str]:
        """One line per schedule and trigger: what is watched, and what is paused (a source
        with a ``lines`` attribute, such as the monitors' schedules, adds its own)."""
        extra = [line for source in self.sources for line in getattr(source, "lines", [])]
        return [*self._lines, *extra]

    def tick(self, now: float | None = None) -> list[Fired]:
        """One pass: start what is due at ``now`` (the clock by default); return what fired."""
        now = self.clock() if now is None else now
        fired: list[Fired] = []
        for watch in self._watches:
            try:
                fired.extend(watch.poll(now))
            except Exception as exc:
                self._report(watch.name, exc)
            else:
                self._errors.pop(watch.name, None)
        for index, source in enumerate(self.sources):
            name = f"source {getattr(source, '__name__', index)}"
            try:
                fired.extend(source(now))
            except Exception as exc:
                self._report(name, exc)
            else:
                self._errors.pop(name, None)
        return fired

    def run(self, interval: float, stop: threading.Event) -> None:
        """Tick every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            began = time.monotonic()
            self.tick()
            stop.wait(max(0.0, interval - (time.monotonic() - began)))

    # firing ----------------------------------------------------------------------------------

    def fire(self, job_key: str, trigger_type: str, key: str, detail: str) -> Fired | None:
        """Claim ``key`` and start a run of ``job_key``; None if another process claimed it.

        A run that cannot start after the claim is reported and not retried for this key.
        """
        if not self.state.claim_trigger(self.target, key):
            return None
        try:
            result = self.start_run(job_key, {}, trigger_type)
        except Exception as exc:
            self.console.error(
                f"Scheduler: job '{job_key}' could not start a {trigger_type} run ({detail}): {exc}"
            )
            return Fired(job_key, trigger_type, key, None, f"{detail}; not started: {exc}")
        run_id = _run_id(result)
        if run_id is not None:
            self.state.set_trigger_run(self.target, key, run_id)
        started = f"run {run_id}" if run_id is not None else "a run"
        self.console.info(f"Scheduler: started {started} of job '{job_key}' ({detail})")
        return Fired(job_key, trigger_type, key, run_id, detail)

    def last_run_ms(self, job_key: str, trigger_type: str) -> int | None:
        """When the latest top-level run of ``job_key`` with ``trigger_type`` was created."""
        for run in self.state.list_runs(target=self.target, job_key=job_key, limit=RUN_LOOKBACK):
            if run.trigger_type == trigger_type and run.parent_run_id is None:
                return run.created_at
        return None

    def _report(self, name: str, exc: Exception) -> None:
        message = f"Scheduler: {name}: {exc}".splitlines()[0]
        if self._errors.get(name) != message:  # once until it changes, not on every tick
            self._errors[name] = message
            self.console.error(message)

    def _add(self, key: str, spec: JobSpec) -> None:
        schedule = spec.schedule
        if schedule is not None:
            cron_text = f"'{schedule.quartz_cron_expression}' ({schedule.timezone_id})"
            what = f"job '{key}': schedule {cron_text}"
            try:
                cron = CronSchedule(schedule.quartz_cron_expression, schedule.timezone_id, job=key)
            except ConfigError as exc:
                self.console.error(f"Scheduler: {exc}; the schedule is not started")
                self._lines.append(f"{what}: invalid")
            else:
                if schedule.pause_status == "PAUSED":
                    self._lines.append(f"{what}: paused")
                else:
                    self._watches.append(_CronWatch(self, key, cron))
                    self._lines.append(what)
        trigger = spec.trigger
        if trigger is None:
            return
        paused = trigger.pause_status == "PAUSED"
        if trigger.periodic is not None:
            what = f"job '{key}': trigger.periodic {trigger.periodic}"
            try:
                seconds = periodic_seconds(key, trigger.periodic)
            except ConfigError as exc:
                self.console.error(f"Scheduler: {exc}; the trigger is not started")
                self._lines.append(f"{what}: invalid")
            else:
                self._lines.append(f"{what}: paused" if paused else what)
                if not paused:
                    every = f"every {trigger.periodic['interval']} {trigger.periodic['unit']}"
                    self._watches.append(_PeriodicWatch(self, key, seconds, every.lower()))
        if trigger.file_arrival is not None:
            what = f"job '{key}': trigger.file_arrival '{trigger.file_arrival.url}'"
            self._lines.append(f"{what}: paused" if paused else what)
            if not paused:
                self._watches.append(_FileWatch(self, key, trigger.file_arrival))
        for name in ("table_update", "model"):
            if getattr(trigger, name) is not None:
                self.console.warning(
                    f"Scheduler: job '{key}': trigger.{name} is not supported by lakestack's "
                    "scheduler; the job runs only when started otherwise"
                )
                self._lines.append(f"job '{key}': trigger.{name}: not supported")


def _run_id(result: Any) -> int | None:
    if isinstance(result, bool):
        return None
    if isinstance(result, int):
        return result
    run_id = getattr(result, "run_id", None)
    return run_id if isinstance(run_id, int) else None


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:40]


class _Watch:
    """One trigger of one job, polled on every tick."""

    name: str

    def poll(self, now: float) -> list[Fired]:
        raise NotImplementedError


class _CronWatch(_Watch):
    """A Quartz schedule: the latest tick since the last pass, if any, starts one run."""

    def __init__(self, scheduler: Scheduler, job_key: str, cron: CronSchedule) -> None:
        self.scheduler = scheduler
        self.job_key = job_key
        self.cron = cron
        self.name = f"job '{job_key}' schedule"
        self.since = scheduler.started
        self.last_fire: float | None = None

    def poll(self, now: float) -> list[Fired]:
        if now <= self.since:
            return []
        tick = self.cron.last_between(_utc(self.since), _utc(now))
        fired = None
        if tick is not None:
            at = tick.timestamp()
            if self.last_fire is None or at - self.last_fire >= MIN_CRON_GAP_SECONDS:
                self.last_fire = at
                detail = f"schedule '{self.cron.expression}' at {tick.isoformat()}"
                key = f"cron:{self.job_key}:{int(at)}"
                fired = self.scheduler.fire(self.job_key, PERIODIC, key, detail)
        self.since = now  # after the claim: a state error retries the same ticks next pass
        return [fired] if fired else []


class _PeriodicWatch(_Watch):
    """``trigger.periodic``: one run every interval after the job's last periodic run.

    A job that never ran on its period runs at once (Databricks picks the first time when the
    trigger is set). Keys carry the interval slot since the due time, so a run that could not
    start is tried again one interval later rather than never.
    """

    def __init__(self, scheduler: Scheduler, job_key: str, seconds: int, every: str) -> None:
        self.scheduler = scheduler
        self.job_key = job_key
        self.seconds = seconds
        self.every = every
        self.name = f"job '{job_key}' trigger.periodic"
        self.due: float | None = None

    def poll(self, now: float) -> list[Fired]:
        if self.due is not None and now < self.due:
            return []
        last = self.scheduler.last_run_ms(self.job_key, PERIODIC)
        due = 0.0 if last is None else last / 1000 + self.seconds
        if now < due:
            self.due = due
            return []
        self.due = None  # read the state again next pass: it holds the run just started
        slot = int((now - due) // self.seconds) if last is not None else int(now // self.seconds)
        key = f"periodic:{self.job_key}:{int(due)}:{slot}"
        detail = f"trigger {self.every}" + (
            "" if last is None else f", due {_utc(due).isoformat()}"
        )
        fired = self.scheduler.fire(self.job_key, PERIODIC, key, detail)
        return [fired] if fired else []


class _FileWatch(_Watch):
    """``trigger.file_arrival``: a run when new files appear under the URL.

    As on Databricks, only new files trigger: a file rewritten under the same name does not.
    Files and folders whose names start with ``.`` or ``_`` are ignored. The first scheduler
    ever to watch a URL for a job takes the files already there as seen.
    """

    def __init__(self, scheduler: Scheduler, job_key: str, spec: FileArrivalSpec) -> None:
        self.scheduler = scheduler
        self.job_key = job_key
        self.spec = spec
        self.name = f"job '{job_key}' trigger.file_arrival"
        self.location: Location | None = None
        self.listing: str | None = None
        self.changed_at = 0.0
        self.seen: frozenset[str] | None = None  # paths accounted for; None: not known yet
        self.seen_key: str | None = None  # the claim key of the listing accounted for
        self.started = False
        self.missing_reported = False

    def poll(self, now: float) -> list[Fired]:
        files = self._list()
        listing = _digest(self.spec.url, *(f"{p}\t{s}\t{m}" for p, (s, m) in sorted(files.items())))
        key = f"files:{self.job_key}:{listing}"
        if listing != self.listing:
            self.listing, self.changed_at = listing, now
        paths = frozenset(files)
        if not self.started:
            self.started = True
            enabled = f"files:{self.job_key}:{_digest(self.spec.url)}:watched"
            if self.scheduler.state.claim_trigger(self.scheduler.target, enabled):
                self.scheduler.state.claim_trigger(self.scheduler.target, key)
                self.seen, self.seen_key = paths, key
                return []
        new = paths - self.seen if self.seen is not None else paths
        if not new:
            if key != self.seen_key:  # files removed or rewritten: seen, nothing to run
                self.scheduler.state.claim_trigger(self.scheduler.target, key)
                self.seen, self.seen_key = paths, key
            return []
        if now - self.changed_at < self.spec.wait_after_last_change_seconds:
            return []
        gap = self.spec.min_time_between_triggers_seconds
        if gap:
            last = self.scheduler.last_run_ms(self.job_key, FILE_ARRIVAL)
            if last is not None and now - last / 1000 < gap:
                return []
        names = sorted(new)
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        detail = f"{len(names)} new file(s) under {self.spec.url}: {shown}"
        fired = self.scheduler.fire(self.job_key, FILE_ARRIVAL, key, detail)
        self.seen, self.seen_key = paths, key  # claimed here, elsewhere or before a restart
        return [fired] if fired else []

    def _list(self) -> dict[str, tuple[int, int]]:
        """``{relative path: (size, mtime_ns)}`` under the URL; empty while it is missing."""
        from lakestack.lake.ingest_source import list_files

        location = self._locate()
        if location is None:
            return {}
        try:
            return {e.rel: (e.size, e.mtime_ns) for e in list_files(location, None)}
        except FileNotFoundError:  # removed since it was found: wait for it again
            self.location = None
            return {}

    def _locate(self) -> Location | None:
        if self.location is not None:
            return self.location
        import pyarrow.fs as pafs

        from lakestack.lake.ingest_source import open_location, resolve_source
        from lakestack.lake.volumes import is_volume_path

        url, catalog = self.spec.url, self.scheduler.catalog
        options = catalog.storage_options if catalog is not None else None
        try:
            if is_volume_path(url):
                if catalog is None:
                    raise JobError(
                        f"trigger.file_arrival url '{url}' is a volume path, and this scheduler "
                        "has no catalog to find volumes in"
                    )
                location = resolve_source(catalog, url, options)
            else:
                base = self.scheduler.base_dir
                local = "://" not in url and not url.startswith("file:")
                path = str(base / url) if local and base is not None else url
                location = open_location(path, options, display=url)
                if location.fs.get_file_info(location.path).type == pafs.FileType.NotFound:
                    raise NotFoundError(f"folder '{url}' does not exist")
        except NotFoundError as exc:
            if not self.missing_reported:
                self.missing_reported = True
                self.scheduler.console.warning(
                    f"Scheduler: job '{self.job_key}': {exc}; waiting for it to appear"
                )
            return None
        self.location = location
        return location
