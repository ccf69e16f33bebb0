"""The *monitor_refresh* task: refresh a monitor's profile and drift tables inside a job.

Run it as a job task::

    - task_key: refresh_monitor
      python_wheel_task:
        package_name: lakestack
        entry_point: monitor_refresh
        named_parameters:
          monitor: churn_monitor          # a quality_monitors key, or the table it monitors
          full: "false"                   # optional: recompute every window

The monitor is read from the bundle of the task's working directory (the bundle root) for the
run's target (``LAKESTACK_TARGET``); the tables are in the workspace's catalog. The result is
published as task values (``profile_table``, ``drift_table``, ``source_version``,
``windows_refreshed``, ...) for the tasks after it, e.g. a violation check.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from lakestack.errors import LakestackError
from lakestack.jobs.context import parameter_flag, publish_task_values
from lakestack.monitoring.refresh import RefreshResult

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor_refresh", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument(
        "--monitor", required=True, help="a quality_monitors key, or the monitored table"
    )
    parser.add_argument(
        "--full", type=parameter_flag, default=False, help="recompute every window (true/false)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``monitor_refresh`` entry point: refresh, report in the log, publish task values.

    Raises:
        LakestackError: No such monitor, or a table without the columns it names (one line
            saying what to fix); nothing is written.
    """
    from lakestack.bundle import load_bundle
    from lakestack.lake import Catalog
    from lakestack.monitoring.monitor import find_monitor
    from lakestack.monitoring.refresh import refresh_monitor

    args = _parser().parse_args(argv)
    bundle = load_bundle(target=os.environ.get("LAKESTACK_TARGET") or None)
    config = find_monitor(bundle.resources.quality_monitors, args.monitor)
    catalog = Catalog(bundle.warehouse, bundle.settings.storage_options)
    result = refresh_monitor(config, catalog, full=args.full)
    publish_task_values(result.to_dict())
    _report(result)
    return 0


def _report(result: RefreshResult) -> None:
    """One line in the task's log."""
    sys.stdout.write(
        f"refreshed monitor {result.monitor} ({result.reason}): {result.windows_refreshed} "
        f"window(s) of {result.table_name} version {result.source_version} into "
        f"{result.profile_table} and {result.drift_table} in {result.seconds:.1f} s\n"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LakestackError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        sys.exit(1)
