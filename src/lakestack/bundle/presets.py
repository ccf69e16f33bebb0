"""Target mode and ``presets``: what Databricks changes in every resource of a target.

``mode: development`` prefixes job names with ``[dev <short_name>] `` and pauses schedules and
triggers (the jobs' and the quality monitors' refresh schedules), as the Databricks CLI does;
``presets`` set the prefix, pause status, tags and concurrency explicitly (and win over the
mode's defaults).
"""

from __future__ import annotations

from typing import Any

from lakestack.bundle.specs.resources import ResourcesSpec
from lakestack.bundle.specs.root import PresetsSpec

__all__ = ["apply_presets"]


def apply_presets(
    resources: ResourcesSpec, presets: PresetsSpec, mode: str | None, short_name: str
) -> ResourcesSpec:
    """``resources`` with the mode and presets applied (a new object; the input is kept)."""
    dev = mode == "development"
    prefix = presets.name_prefix
    if prefix is None and dev:
        prefix = f"[dev {short_name}] "
    pause = presets.trigger_pause_status or ("PAUSED" if dev else None)
    if not (prefix or pause or presets.tags or presets.jobs_max_concurrent_runs):
        return resources
    jobs = {}
    for key, job in resources.jobs.items():
        update: dict[str, Any] = {}
        if prefix:
            update["name"] = f"{prefix}{job.name or key}"
        if pause and job.schedule is not None:
            update["schedule"] = job.schedule.model_copy(update={"pause_status": pause})
        if pause and job.trigger is not None:
            update["trigger"] = job.trigger.model_copy(update={"pause_status": pause})
        if presets.tags:
            update["tags"] = {**presets.tags, **job.tags}
        if presets.jobs_max_concurrent_runs and "max_concurrent_runs" not in job.model_fields_set:
            update["max_concurrent_runs"] = presets.jobs_max_concurrent_runs
        jobs[key] = job.model_copy(update=update)
    monitors = {
        key: monitor.model_copy(
            update={"schedule": monitor.schedule.model_copy(update={"pause_status": pause})}
        )
        if pause and monitor.schedule is not None
        else monitor
        for key, monitor in resources.quality_monitors.items()
    }
    return resources.model_copy(update={"jobs": jobs, "quality_monitors": monitors})
