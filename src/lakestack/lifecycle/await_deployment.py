"""The *await_deployment* task: wait for a model version's deployment run to end.

A registered model's deployment job starts on its own for every new version, so a job that
trains and then scores (an end-to-end job) needs to wait for that run before it uses the
champion. The task follows the version's ``lakestack.deployment_state`` tag: it succeeds when the
deployment run ended (``deployed`` tells whether the version became champion: a worse challenger
that failed evaluation is not an error of the job that trained it), and when the deployment
waits for a person's approval it waits too, the same way, without a process: approving the
version resumes both runs.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from lakestack.errors import TaskError
from lakestack.jobs.context import publish_task_values, request_approval
from lakestack.registry.client import CHAMPION, ModelRegistry

__all__ = ["await_deployment", "main"]

POLL_SECONDS = 0.5
ENDED = ("SUCCEEDED", "FAILED")


def await_deployment(
    registry: ModelRegistry,
    name: str,
    version: int,
    *,
    timeout_seconds: float = 3600.0,
    grace_seconds: float = 30.0,
) -> str:
    """Wait until the version's deployment state is final or APPROVAL; return it.

    Raises:
        TaskError: The version never got a deployment run (no deployment job is linked to the
            model), or the run did not end within ``timeout_seconds``.
    """
    from lakestack.lifecycle.approval import decision_of

    started = time.monotonic()
    while True:
        found = registry.get_version(name, version)
        state = found.deployment_state
        waited = time.monotonic() - started
        if state in ENDED:
            return state
        # approved already: the deployment run resumes, wait for it rather than pause
        if state == "APPROVAL" and decision_of(found.tags) is None:
            return state
        if state is None and waited > grace_seconds:
            raise TaskError(
                f"model {name} version {version} has no deployment run after {grace_seconds:g} s; "
                "link a job with registered_models.<key>.deployment_job in the bundle"
            )
        if waited > timeout_seconds:
            raise TaskError(
                f"the deployment run of model {name} version {version} is still {state} after "
                f"{timeout_seconds:g} s"
            )
        time.sleep(POLL_SECONDS)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point ``await_deployment``."""
    parser = argparse.ArgumentParser(prog="await_deployment", description=__doc__)
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--model_version", required=True, type=int)
    parser.add_argument("--timeout_seconds", type=float, default=3600.0)
    args = parser.parse_args(argv)
    registry = ModelRegistry.default()
    state = await_deployment(
        registry, args.model_name, args.model_version, timeout_seconds=args.timeout_seconds
    )
    if state == "APPROVAL":
        waiting = {"model_name": args.model_name, "model_version": args.model_version}
        if request_approval(waiting):
            return
        raise TaskError(
            f"model {args.model_name} version {args.model_version} waits for approval: "
            f"lakestack models approve {args.model_name} {args.model_version}"
        )
    champion = registry.alias_version(args.model_name, CHAMPION)
    publish_task_values(
        {
            "deployment_state": state,
            "deployed": champion == args.model_version,
            "champion_version": champion,
        }
    )
