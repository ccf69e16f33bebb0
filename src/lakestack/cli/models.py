"""``lakestack models``: registered models, their versions, promotion between targets, rollback."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from lakestack.cli.common import bundle_options, command, open_workspace

if TYPE_CHECKING:
    from lakestack.console import Console
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


# ``models approve`` and ``models reject`` (the approval step of deployment jobs) go below.
