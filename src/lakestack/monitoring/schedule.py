"""Monitor refreshes on their ``schedule``: a trigger source for ``lakestack scheduler``.

A monitor's ``schedule.quartz_cron_expression`` fires a refresh as a job's schedule fires a run:
only ticks after the scheduler started, several missed ticks fire once, and each tick is
claimed in the workspace state first (``monitor:<key>:<fire epoch>``), so two schedulers on one
state refresh once. The refresh itself runs in a process of its own (``launch``), so a long
refresh does not hold up the scheduler's other triggers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone

from lakestack.bundle.specs.monitors import QualityMonitorSpec
from lakestack.console import Console
from lakestack.errors import ConfigError
from lakestack.jobs.cron import CronSchedule
from lakestack.jobs.scheduler import PERIODIC, Fired
from lakestack.state.base import StateStore

__all__ = ["MonitorSchedules", "check_schedule"]

Launch = Callable[[str], object]
"""Start a refresh of the monitor with this key, in the background."""


def check_schedule(key: str, spec: QualityMonitorSpec) -> str | None:
    """What is wrong with a monitor's schedule, as one sentence, or None (``bundle validate``)."""
    from lakestack.jobs.cron import check_cron

    if spec.schedule is None:
        return None
    problem = check_cron(spec.schedule.quartz_cron_expression, spec.schedule.timezone_id)
    return None if problem is None else f"quality monitor '{key}': {problem}"


class MonitorSchedules:
    """The scheduled monitors of one target; call it on every scheduler tick."""

    __name__ = "monitor_schedules"

    def __init__(
        self,
        monitors: Mapping[str, QualityMonitorSpec],
        state: StateStore,
        target: str,
        launch: Launch,
        *,
        console: Console,
        started: float,
    ) -> None:
        """Read the monitors' schedules; an invalid one is reported and left out.

        Args:
            monitors: The bundle's ``quality_monitors`` by key.
            state: Where each tick is claimed.
            target: The bundle target (claims are per target).
            launch: Starts a refresh of one monitor in the background.
            console: Where fired refreshes and problems are reported.
            started: The scheduler's start (seconds since the epoch): earlier ticks do not fire.
        """
        self.state = state
        self.target = target
        self.launch = launch
        self.console = console
        self.since: dict[str, float] = {}
        self.crons: dict[str, CronSchedule] = {}
        self.lines: list[str] = []
        for key, spec in monitors.items():
            schedule = spec.schedule
            if schedule is None:
                continue
            what = f"monitor '{key}': schedule '{schedule.quartz_cron_expression}'"
            if schedule.pause_status == "PAUSED":
                self.lines.append(f"{what}: paused")
                continue
            try:
                self.crons[key] = CronSchedule(
                    schedule.quartz_cron_expression, schedule.timezone_id, job=f"monitor {key}"
                )
            except ConfigError as exc:
                console.error(f"Scheduler: {exc}; the monitor's schedule is not started")
                self.lines.append(f"{what}: invalid")
                continue
            self.since[key] = started
            self.lines.append(what)

    def __call__(self, now: float) -> list[Fired]:
        """Start a refresh of every monitor whose schedule ticked since the last call."""
        fired: list[Fired] = []
        for key, cron in self.crons.items():
            since = self.since[key]
            if now <= since:
                continue
            tick = cron.last_between(_utc(since), _utc(now))
            self.since[key] = now
            if tick is None:
                continue
            claim = f"monitor:{key}:{int(tick.timestamp())}"
            if not self.state.claim_trigger(self.target, claim):
                continue
            detail = f"schedule '{cron.expression}' at {tick.isoformat()}"
            try:
                self.launch(key)
            except Exception as exc:
                self.console.error(f"Scheduler: monitor '{key}' refresh did not start: {exc}")
                fired.append(Fired(key, PERIODIC, claim, None, f"{detail}; not started: {exc}"))
                continue
            self.console.info(f"Scheduler: started a refresh of monitor '{key}' ({detail})")
            fired.append(Fired(key, PERIODIC, claim, None, f"monitor refresh, {detail}"))
        return fired


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)
