"""The built-in *deploy* task of deployment jobs: make a model version the champion.

The ``champion`` alias moves to the version; the champion it replaces is kept in the model's
champion history, so ``lakestack models rollback NAME`` restores it; the ``challenger`` alias is
removed when it pointed at this version (as MLOps Stacks' deploy step does). Run it as a job task
(``python_wheel_task: {package_name: lakestack, entry_point: deploy, named_parameters:
{model_name: ..., model_version: ...}}``) or call :func:`deploy_version`.

Serving endpoints: endpoints that serve the model by alias follow the alias on their own, at
their next poll; :func:`deploy_version` also asks every running ``lakestack serve`` of the
workspace that serves the model to re-read its aliases at once (``POST /-/reload``), so the
new champion answers as soon as the task ends.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from lakestack.jobs.context import publish_task_values
from lakestack.registry.client import DeployResult, ModelRegistry

__all__ = ["deploy_version", "main"]


def deploy_version(
    registry: ModelRegistry,
    name: str,
    version: int | str,
    *,
    workspace_root: Path | None = None,
) -> DeployResult:
    """Make ``version`` (a number or an alias) of model ``name`` the champion.

    Args:
        registry: The registry of the model.
        name: The registered model.
        version: A version number or an alias.
        workspace_root: The workspace whose running servers are told to re-read their aliases
            (``LAKESTACK_WORKSPACE_ROOT`` when None; no workspace, no servers: nothing to do).

    Raises:
        ModelNotFoundError: No such model, version or alias; no alias changed.
    """
    result = registry.deploy(name, version)
    root = workspace_root or os.environ.get("LAKESTACK_WORKSPACE_ROOT")
    if root and result.changed:
        from lakestack.serving.discovery import reload_servers

        reload_servers(Path(root), result.name)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point ``deploy``: ``--model_name NAME --model_version VERSION``.

    Publishes the task values ``model_name``, ``model_version`` (the new champion) and
    ``previous_version`` (the champion before, null if none).
    """
    parser = argparse.ArgumentParser(
        prog="deploy", description="Make a model version the champion (alias champion)."
    )
    parser.add_argument("--model_name", required=True, help="catalog.schema.model")
    parser.add_argument("--model_version", required=True, help="a version number or an alias")
    args = parser.parse_args(argv)
    result = deploy_version(ModelRegistry.default(), args.model_name, args.model_version)
    was = "none" if result.previous is None else f"version {result.previous}"
    sys.stdout.write(f"{result.name}: champion is version {result.version} (was {was})\n")
    publish_task_values(
        {
            "model_name": result.name,
            "model_version": result.version,
            "previous_version": result.previous,
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
