"""``lakestack scheduler``: the long-running process that starts runs when they are due."""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Any

import click

from lakestack.cli.common import bundle_options, command, open_workspace

if TYPE_CHECKING:
    from lakestack.console import Console

__all__ = ["scheduler"]


@click.command("scheduler")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="Seconds between two passes (each lists file-arrival folders and the registry).",
)
@click.option("--once", is_flag=True, help="Make one pass and exit (for cron or CI).")
@bundle_options
@command
def scheduler(
    console: Console,
    interval: float,
    once: bool,
    target: str | None,
    variables: tuple[str, ...],
    output: str,
) -> None:
    """Start the target's runs when they are due, until stopped (Ctrl-C or SIGTERM).

    Cron schedules, periodic and file-arrival triggers of the deployed jobs; a deployment run
    for every new version of a registered model with a deployment_job, also when the version
    was registered by a plain MLflow client; and runs paused for approval, resumed once the
    version's approval tag is set, also through MLflow. Several schedulers may run at once:
    each trigger fires once.
    """
    with open_workspace(console, target, variables) as ws:
        engine = ws.scheduler()
        if once:
            fired = engine.tick()
            console.result(
                [f.__dict__ for f in fired]
                if output == "json"
                else f"{len(fired)} run(s) started or resumed"
            )
            return
        for line in engine.describe():
            console.info(line)
        console.info(f"Scheduler for target {ws.bundle.target}: a pass every {interval:g} s")
        stop = threading.Event()

        def on_signal(_signum: int, _frame: Any) -> None:
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, on_signal)
        engine.run(interval, stop)
        console.info("Scheduler stopped")
