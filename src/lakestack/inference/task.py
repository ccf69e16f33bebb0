"""The *batch_inference* task: score a table with the champion (or a given version) into an
inference table.

Run it as a job task::

    - task_key: batch_inference
      python_wheel_task:
        package_name: lakestack
        entry_point: batch_inference
        named_parameters:
          model_name: ${var.catalog}.${var.schema}.iris_model
          input_table: ${var.catalog}.${var.schema}.iris_new
          output_table: ${var.catalog}.${var.schema}.iris_inferences

The model is ``--model_uri``, or ``--model_name`` with ``--model_version`` or ``--alias``
(``champion`` when neither is given). The tables are in the workspace's catalog and the model
in its MLflow store (``MLFLOW_TRACKING_URI``, which the orchestrator sets for task processes).
The result is published as task values (``rows``, ``output_table``, ``output_version``,
``model_version``, ``model_id``, ``model_uri``, ``timestamp``) for the tasks after it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lakestack.errors import LakestackError, UsageError
from lakestack.inference.batch import MODES, BatchResult, score_table
from lakestack.jobs.context import parameter_flag, publish_task_values
from lakestack.registry import CHAMPION

__all__ = ["main", "model_uri_of"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batch_inference", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--model_uri", default=None, help="models:/name@alias, models:/name/3...")
    parser.add_argument("--model_name", default=None, help="the registered model (three levels)")
    parser.add_argument("--model_version", default=None, help="a version number")
    parser.add_argument("--alias", default=None, help=f"an alias (default {CHAMPION})")
    parser.add_argument("--input_table", required=True, help="the table to score")
    parser.add_argument("--output_table", required=True, help="the inference table")
    parser.add_argument("--mode", default="append", choices=MODES)
    parser.add_argument("--result_type", default="double", help="the type of prediction")
    parser.add_argument("--batch_rows", type=int, default=None, help="rows predicted at once")
    parser.add_argument(
        "--probabilities",
        type=parameter_flag,
        default=False,
        help="add class probabilities (true/false)",
    )
    return parser


def model_uri_of(
    model_uri: str | None, model_name: str | None, version: str | None, alias: str | None
) -> str:
    """The model URI the task's parameters name.

    Raises:
        UsageError: Neither a URI nor a name, both, or a version and an alias at once.
    """
    if model_uri:
        if model_name or version or alias:
            raise UsageError(
                "pass --model_uri, or --model_name with --model_version or --alias, not both"
            )
        return model_uri
    if not model_name:
        raise UsageError("pass --model_name (with --model_version or --alias) or --model_uri")
    if version and alias:
        raise UsageError(
            f"pass --model_version or --alias for model {model_name}, not both "
            f"(got version {version} and alias {alias})"
        )
    if version:
        return f"models:/{model_name}/{version}"
    return f"models:/{model_name}@{alias or CHAMPION}"


def main(argv: Sequence[str] | None = None) -> int:
    """The ``batch_inference`` entry point: score, report in the log, publish task values.

    Raises:
        LakestackError: Bad parameters, an unknown model, a bad input or output table (one
            line saying what to fix); nothing is written.
    """
    args = _parser().parse_args(argv)
    uri = model_uri_of(args.model_uri, args.model_name, args.model_version, args.alias)
    result = score_table(
        uri,
        args.input_table,
        args.output_table,
        mode=args.mode,
        result_type=args.result_type,
        batch_rows=args.batch_rows,
        probabilities=args.probabilities,
    )
    publish_task_values(result.to_dict())
    _report(args.input_table, result)
    return 0


def _report(input_table: str, result: BatchResult) -> None:
    """One line in the task's log."""
    sys.stdout.write(
        f"scored {result.rows} rows of {input_table} with {result.model_id} into "
        f"{result.output_table} "
        f"(version {result.output_version}) in {result.seconds:.1f} s\n"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LakestackError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        sys.exit(1)
