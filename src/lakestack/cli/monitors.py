"""``lakestack monitors``: the bundle's quality monitors, their refresh and their report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from lakestack.cli.common import bundle_options, command, open_workspace

if TYPE_CHECKING:
    from lakestack.console import Console

__all__ = ["monitors"]


@click.group()
def monitors() -> None:
    """Quality monitors (Lakehouse Monitoring): profile and drift tables of a table."""


@monitors.command("list")
@bundle_options
@command
def monitors_list(
    console: Console, target: str | None, variables: tuple[str, ...], output: str
) -> None:
    """List the bundle's quality monitors and their output tables."""
    with open_workspace(console, target, variables) as ws:
        rows = ws.monitors()
        if output == "json":
            console.result(rows)
            return
        shown = [
            {
                **row,
                "granularities": ", ".join(row["granularities"]) or "-",
                "refreshed": "yes" if row["refreshed"] else "no",
                "schedule": row["schedule"] or "-",
            }
            for row in rows
        ]
        columns = ["monitor", "table_name", "profile_type", "granularities", "refreshed"]
        console.table(shown, columns=[*columns, "schedule"], title="Quality monitors")


@monitors.command("refresh")
@click.argument("name")
@click.option("--full", is_flag=True, help="Recompute every window, not only the changed ones.")
@bundle_options
@command
def monitors_refresh(
    console: Console,
    name: str,
    full: bool,
    target: str | None,
    variables: tuple[str, ...],
    output: str,
) -> None:
    """Refresh monitor NAME (a quality_monitors key or the monitored table).

    Writes <table>_profile_metrics and <table>_drift_metrics in the monitor's output schema;
    only windows whose rows changed since the last refresh are recomputed unless --full.
    """
    with open_workspace(console, target, variables) as ws:
        console.info(f"Refreshing monitor {name}" + (" (full)" if full else ""))
        result = ws.refresh_monitor(name, full=full)
        data = result.to_dict()
        if output == "json":
            console.result(data)
            return
        console.result(
            {
                "Monitor": result.monitor,
                "Table": f"{result.table_name} (version {result.source_version})",
                "Refresh": result.reason,
                "Windows": result.windows_refreshed,
                "Rows written": f"{result.profile_rows} profile, {result.drift_rows} drift",
                "Profile table": result.profile_table,
                "Drift table": result.drift_table,
                "Seconds": f"{result.seconds:.1f}",
            },
            title="Monitor refreshed",
        )


@monitors.command("report")
@click.argument("name")
@click.option(
    "-f",
    "--file",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the HTML page (default: <monitor>_report.html).",
)
@bundle_options
@command
def monitors_report(
    console: Console,
    name: str,
    path: Path | None,
    target: str | None,
    variables: tuple[str, ...],
    output: str,
) -> None:
    """Write the HTML report of monitor NAME: quality over time, drift, thresholds, retrains."""
    from lakestack.monitoring.report import write_report

    with open_workspace(console, target, variables) as ws:
        written = write_report(
            ws.bundle, ws.catalog, name, path or Path(f"{name}_report.html"), registry=ws.registry
        )
        if output == "json":
            console.result({"monitor": name, "report": str(written)})
        else:
            console.result(f"Wrote the report of monitor {name} to {written}")
