"""The built-in *promote* task: copy a model version into another registry or model name.

For teams that promote models rather than code (staging -> prod): the version's artifacts and
lineage tags are copied, and the copy says where it came from (``lakestack.promoted_from``); its
approval and deployment state are not copied, so it goes through the destination's own
deployment job. Run it as a job task (``python_wheel_task: {package_name: lakestack,
entry_point: promote, named_parameters: {model_name, model_version, to_name,
to_tracking_uri}}``) or call :func:`promote_version`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from lakestack.jobs.context import publish_task_values
from lakestack.registry.client import ModelRegistry, ModelVersionInfo
from lakestack.registry.config import Tracking

__all__ = ["main", "promote_version"]


def promote_version(
    registry: ModelRegistry,
    name: str,
    version: int | str,
    to_name: str,
    *,
    to: ModelRegistry | None = None,
) -> ModelVersionInfo:
    """Copy ``version`` (a number or an alias) of ``name`` to a new version of ``to_name``, in
    ``registry`` or in ``to``.

    Raises:
        ModelNotFoundError: No such model, version or alias; nothing was copied.
        RegistryError: A copy onto the same model in the same registry.
    """
    return registry.copy_version(name, version, to_name, to=to)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point ``promote``: ``--model_name --model_version --to_name [--to_tracking_uri
    [--to_registry_uri]]``.

    Publishes the task values ``model_name`` and ``model_version`` of the copy, and
    ``promoted_from`` (``<name>/<version>``).
    """
    parser = argparse.ArgumentParser(
        prog="promote", description="Copy a model version to another model or registry."
    )
    parser.add_argument("--model_name", required=True, help="catalog.schema.model")
    parser.add_argument("--model_version", required=True, help="a version number or an alias")
    parser.add_argument("--to_name", required=True, help="the model to copy to")
    parser.add_argument("--to_tracking_uri", help="the destination's MLflow tracking URI")
    parser.add_argument("--to_registry_uri", help="its registry URI (default: tracking URI)")
    args = parser.parse_args(argv)
    to = None
    if args.to_tracking_uri:
        to = ModelRegistry(Tracking(args.to_tracking_uri, args.to_registry_uri or None))
    copy = promote_version(
        ModelRegistry.default(), args.model_name, args.model_version, args.to_name, to=to
    )
    publish_task_values(
        {
            "model_name": copy.name,
            "model_version": copy.version,
            "promoted_from": copy.lineage.get("promoted_from"),
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
