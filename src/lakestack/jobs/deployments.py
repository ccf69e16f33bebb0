"""Deployment jobs: every new version of a registered model starts one run of its linked job.

A bundle links a job to a registered model with ``registered_models.<key>.deployment_job``. Each
new version of the model starts one run of that job with the parameters ``model_name`` (the
three-level name) and ``model_version``, as MLflow 3 deployment jobs do on Databricks. Which
versions already had their run is kept in the state's trigger table, so however many processes
notice a version (the registering process, any number of ``lakestack scheduler``), one run
starts. Versions that existed when the link was first deployed start nothing.

The run's progress shows on the version as the ``lakestack.deployment_state`` tag: PENDING
(submitted), RUNNING, APPROVAL (paused for a person), SUCCEEDED or FAILED; and
``lakestack.deployment_run_id`` names the run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from lakestack.console import Console
from lakestack.errors import LakestackError
from lakestack.jobs.states import RunState
from lakestack.registry.client import DEPLOYMENT_RUN_TAG, DEPLOYMENT_STATE_TAG, ModelRegistry
from lakestack.state.base import StateStore
from lakestack.state.models import RunRecord

__all__ = [
    "DEPLOYMENT_TRIGGER",
    "DeploymentLink",
    "Deployments",
    "deployment_state_of",
    "trigger_key",
]

DEPLOYMENT_TRIGGER = "MODEL_VERSION_CREATED"
"""The trigger type of a run started by a new model version."""

SubmitAndStart = Callable[[str, Mapping[str, str], str], RunRecord]
"""Submit a run of a job (key, parameters, trigger type) and start driving it."""


@dataclass(frozen=True)
class DeploymentLink:
    """A registered model (three-level name) and the job that deploys its new versions."""

    model_name: str
    job_key: str


def trigger_key(model_name: str, version: int | str) -> str:
    """The trigger key of a version's deployment run (model names are case-insensitive)."""
    return f"model-version:{model_name.lower()}/{version}"


def deployment_state_of(run_state: str) -> str:
    """The deployment state a version shows for its run's state."""
    if run_state in (RunState.QUEUED.value,):
        return "PENDING"
    if run_state == RunState.WAITING_FOR_APPROVAL.value:
        return "APPROVAL"
    if run_state == RunState.SUCCESS.value:
        return "SUCCEEDED"
    if RunState(run_state).is_final:
        return "FAILED"
    return "RUNNING"


class Deployments:
    """The deployment links of one target, and the runs their new versions start."""

    def __init__(
        self,
        state: StateStore,
        target: str,
        links: Sequence[DeploymentLink],
        registry: Callable[[], ModelRegistry],
        console: Console,
    ) -> None:
        self.state = state
        self.target = target
        self.links = list(links)
        self._registry_factory = registry
        self._registry: ModelRegistry | None = None
        self.console = console

    @property
    def registry(self) -> ModelRegistry:
        """The target's model registry (opened on first use)."""
        if self._registry is None:
            self._registry = self._registry_factory()
        return self._registry

    def link_for(self, model_name: str) -> DeploymentLink | None:
        """The link of a model, by its name in any case."""
        wanted = model_name.lower()
        return next((link for link in self.links if link.model_name.lower() == wanted), None)

    def job_links(self) -> dict[str, str]:
        """Job key -> model name, for the jobs that deploy a model."""
        return {link.job_key: link.model_name for link in self.links}

    def baseline(self) -> list[DeploymentLink]:
        """For links deployed for the first time: mark the versions that exist now as handled,
        so that only later versions start runs. Returns the new links."""
        new = []
        for link in self.links:
            first = f"link:{link.model_name.lower()}:{link.job_key}"
            if not self.state.claim_trigger(self.target, first):
                continue
            new.append(link)
            for version in self._versions(link.model_name):
                self.state.claim_trigger(self.target, trigger_key(link.model_name, version))
        return new

    def trigger(
        self,
        submit_and_start: SubmitAndStart,
        *,
        model_name: str | None = None,
        version: int | None = None,
    ) -> list[RunRecord]:
        """Start one deployment run for each version that has none yet.

        Args:
            submit_and_start: Submits and starts a run.
            model_name: Only this model (any case); None means every linked model.
            version: Only this version of ``model_name``.
        """
        self.baseline()  # a link never deployed: the versions it has now start nothing
        started: list[RunRecord] = []
        for link in self.links:
            if model_name is not None and link.model_name.lower() != model_name.lower():
                continue
            versions = [version] if version is not None else self._versions(link.model_name)
            for number in sorted(versions):
                key = trigger_key(link.model_name, number)
                if not self.state.claim_trigger(self.target, key):
                    continue
                parameters = {"model_name": link.model_name, "model_version": str(number)}
                try:
                    run = submit_and_start(link.job_key, parameters, DEPLOYMENT_TRIGGER)
                except LakestackError as exc:
                    self.state.release_trigger(self.target, key)  # the next look tries again
                    self.console.warning(
                        f"model {link.model_name} version {number}: its deployment run could "
                        f"not start: {exc}"
                    )
                    continue
                self.state.set_trigger_run(self.target, key, run.run_id)
                self.record(run)
                started.append(run)
        return started

    def record(self, run: RunRecord) -> None:
        """Show a deployment run's state on its model version (a no-op for other runs)."""
        link = next((lk for lk in self.links if lk.job_key == run.job_key), None)
        version = run.parameters.get("model_version")
        if link is None or not version or not str(version).isdigit():
            return
        name = run.parameters.get("model_name") or link.model_name
        tags = {
            DEPLOYMENT_STATE_TAG: deployment_state_of(run.state),
            DEPLOYMENT_RUN_TAG: str(run.run_id),
        }
        try:
            self.registry.set_version_tags(name, int(version), tags)
        except LakestackError as exc:  # the version may be gone; the run goes on regardless
            self.console.warning(f"could not tag model {name} version {version}: {exc}")

    def _versions(self, model_name: str) -> list[int]:
        try:
            return [v.version for v in self.registry.versions(model_name)]
        except LakestackError:
            return []  # not registered yet: every version to come is new
