"""``lakestack models``: registered models, their versions, promotion between targets, rollback."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from lakestack.cli.common import bundle_options, command, open_workspace

if TYPE_CHECKING:
    from lakestack.console import Console
    from lakestack.lifecycle.service import ApprovalResult
    from lakestack.registry.client import ModelVersionInfo

__all__ = ["models"]

# tags shown in their own columns of ``models versions``, not again under "tags"
_SHOWN_TAGS = (
    "approval",
    "lakestack.deployment_",
    "lakestack.lineage.",
    "lakestack.feature_tables",
    "lakestack.promoted_from",
)


@click.group()
def models() -> None:
    """Registered models of the target's MLflow registry."""


@models.command("list")
@click.argument("prefix", required=False)
@bundle_options
@command
def models_list(
    console: Console,
    prefix: str | None,
    target: str | None,
    variables: tuple[str, ...],
    output: str,
) -> None:
    """List the registered models (whose name starts with PREFIX, e.g. a catalog)."""
    with open_workspace(console, target, variables) as ws:
        infos = ws.models_list(prefix)
        if output == "json":
            console.result([i.to_dict() for i in infos])
            return
        rows = [
            {
                "name": i.name,
                "latest": i.latest_version,
                "aliases": ", ".join(f"{a}={v}" for a, v in sorted(i.aliases.items())),
                "description": i.description or "",
            }
            for i in infos
        ]
        console.table(rows, columns=["name", "latest", "aliases", "description"], title="Models")


@models.command("versions")
@click.argument("name")
@bundle_options
@command
def models_versions(
    console: Console, name: str, target: str | None, variables: tuple[str, ...], output: str
) -> None:
    """Show the versions of model NAME: aliases, deployment state, approval, lineage, tags."""
    with open_workspace(console, target, variables) as ws:
        versions = ws.model_versions(name)
        if output == "json":
            console.result([v.to_dict() for v in versions])
            return
        console.table(
            [_version_row(v) for v in versions],
            columns=[
                "version",
                "aliases",
                "status",
                "deployment",
                "approval",
                "created",
                "run",
                "code",
                "inputs",
                "tags",
            ],
            title=f"Versions of {name}",
        )


def _version_row(v: ModelVersionInfo) -> dict[str, Any]:
    lineage = v.lineage
    code = lineage.get("code_version")
    if code:
        code = code[:10] + (" (dirty)" if lineage.get("code_dirty") else "")
    tables = {**lineage.get("input_tables", {}), **lineage.get("feature_tables", {})}
    inputs = ", ".join(f"{t}@v{n}" for t, n in sorted(tables.items()))
    if lineage.get("promoted_from"):
        inputs = f"copy of {lineage['promoted_from']}" + (f"; {inputs}" if inputs else "")
    return {
        "version": v.version,
        "aliases": ", ".join(v.aliases),
        "status": v.status,
        "deployment": v.deployment_state or "",
        "approval": v.approval or "",
        "created": v.created_at.strftime("%Y-%m-%d %H:%M"),
        "run": (lineage.get("run_id") or "")[:12],
        "code": code or "",
        "inputs": inputs,
        "tags": ", ".join(
            f"{k}={val}" for k, val in sorted(v.tags.items()) if not k.startswith(_SHOWN_TAGS)
        ),
    }


@models.command("promote")
@click.argument("name")
@click.argument("version")
@click.option("--to-target", required=True, help="The target whose registry receives the copy.")
@click.option(
    "--to-name",
    default=None,
    help="The model to copy to (default: the same registered model in that target).",
)
@bundle_options
@command
def models_promote(
    console: Console,
    name: str,
    version: str,
    to_target: str,
    to_name: str | None,
    target: str | None,
    variables: tuple[str, ...],
    output: str,
) -> None:
    """Copy VERSION (a number or an alias) of model NAME to another target, with its lineage."""
    with open_workspace(console, target, variables) as ws:
        copy = ws.promote(name, version, to_target, to_name)
        source = copy.lineage.get("promoted_from", f"{name}/{version}")
        console.info(f"Copied {source} to {copy.name} version {copy.version} (target {to_target})")
        console.result(copy.to_dict() if output == "json" else copy.model_uri)


@models.command("rollback")
@click.argument("name")
@bundle_options
@command
def models_rollback(
    console: Console, name: str, target: str | None, variables: tuple[str, ...], output: str
) -> None:
    """Make the previous champion of model NAME the champion again."""
    with open_workspace(console, target, variables) as ws:
        result = ws.rollback(name)
        if output == "json":
            console.result(result.to_dict())
        else:
            was = "none" if result.previous is None else f"version {result.previous}"
            console.result(f"Rolled back {name}: champion is version {result.version} (was {was})")


@models.command("approve")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--comment", "-m", help="Why: kept in the audit log and on the version.")
@click.option("--no-wait", is_flag=True, help="Resume the waiting runs in the background.")
@bundle_options
@command
def models_approve(
    console: Console,
    name: str,
    version: int,
    comment: str | None,
    no_wait: bool,
    target: str | None,
    variables: tuple[str, ...],
    output: str,
) -> int:
    """Approve VERSION of model NAME and resume the deployment runs waiting for it.

    NAME is the three-level name or the registered model's key in the bundle. Exit 0 when every
    resumed run succeeded (or, with --no-wait, started).
    """
    with open_workspace(console, target, variables) as ws:
        result = ws.approve(name, version, comment=comment, wait=not no_wait)
        return _decided(console, result, output, no_wait)


@models.command("reject")
@click.argument("name")
@click.argument("version", type=int)
@click.option("--comment", "-m", help="Why: kept in the audit log and on the version.")
@bundle_options
@command
def models_reject(
    console: Console,
    name: str,
    version: int,
    comment: str | None,
    target: str | None,
    variables: tuple[str, ...],
    output: str,
) -> None:
    """Reject VERSION of model NAME: the runs waiting for it fail, its challenger alias goes."""
    with open_workspace(console, target, variables) as ws:
        _decided(console, ws.reject(name, version, comment=comment), output, True)


def _decided(console: Console, result: ApprovalResult, output: str, no_wait: bool) -> int:
    from lakestack.workspace import run_to_dict

    if output == "json":
        console.result(
            {
                "model_name": result.model_name,
                "version": result.version,
                "decision": result.decision,
                "by": result.by,
                "comment": result.comment,
                "runs": [run_to_dict(run) for run in result.runs],
            }
        )
    else:
        console.info(
            f"{result.decision} {result.model_name} version {result.version} as {result.by}"
        )
        for run in result.runs:
            line = f"Run {run.run_id} of job {run.job_key}: {run.state}"
            if run.state not in ("SUCCESS", "WAITING_FOR_APPROVAL", "QUEUED", "RUNNING"):
                line += f" ({run.state_message}); see: lakestack runs logs {run.run_id}"
            console.info(line)
    ok = all(r.state in ("SUCCESS", "WAITING_FOR_APPROVAL") for r in result.runs)
    return 0 if no_wait or ok else 1
