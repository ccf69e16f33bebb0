"""Approvals and deployment runs of one bundle target: what ``models approve|reject`` and the
scheduler call.

An approval is recorded on the model version (the ``approval`` tag with who, when and why) and in
the workspace's audit log; then the runs paused for that version resume. Only the people listed
in the registered model's ``approvers`` may decide (anyone, when the bundle lists none); anyone
else is refused before anything changes. A decision made outside lakestack (the tag set by a
plain MLflow client) is found by :meth:`ModelLifecycle.resume_decided`, which the scheduler calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lakestack.bundle import Bundle
from lakestack.bundle.specs.models import RegisteredModelSpec
from lakestack.console import Console
from lakestack.errors import ApprovalError, ModelNotFoundError, RunError
from lakestack.jobs.deployments import DeploymentLink, Deployments
from lakestack.jobs.service import JobService
from lakestack.jobs.states import RunState
from lakestack.lifecycle.approval import APPROVED, REJECTED, decision_of, record_decision
from lakestack.registry.client import APPROVAL_TAG, CHALLENGER, ModelRegistry
from lakestack.registry.resources import APPROVERS_TAG
from lakestack.state.base import StateStore
from lakestack.state.models import RunRecord

__all__ = [
    "ApprovalResult",
    "ModelLifecycle",
    "deployment_links",
    "model_full_name",
    "model_resources",
]


@dataclass
class ApprovalResult:
    """What an approval or rejection did."""

    model_name: str
    version: int
    decision: str
    by: str
    comment: str | None
    runs: list[RunRecord] = field(default_factory=list)


def model_resources(bundle: Bundle) -> dict[str, RegisteredModelSpec]:
    """The bundle's registered models by three-level name."""
    return {spec.full_name: spec for spec in bundle.resources.registered_models.values()}


def model_full_name(bundle: Bundle, name: str) -> str:
    """A model's three-level name from itself or its key in the bundle's registered_models."""
    models = bundle.resources.registered_models
    return models[name].full_name if name in models else name


def deployment_links(bundle: Bundle) -> list[DeploymentLink]:
    """The registered models of the bundle that name a deployment job."""
    links = []
    for spec in bundle.resources.registered_models.values():
        if spec.deployment_job:  # ${resources.jobs.<key>.id} resolves to the job key
            links.append(DeploymentLink(spec.full_name, spec.deployment_job))
    return links


class ModelLifecycle:
    """Approvals, rejections and deployment runs of one target."""

    def __init__(
        self,
        bundle: Bundle,
        state: StateStore,
        jobs: JobService,
        registry: Callable[[], ModelRegistry],
        console: Console,
        *,
        start_background: Callable[[RunRecord], RunRecord],
    ) -> None:
        """
        Args:
            bundle: The loaded bundle target.
            state: The workspace state.
            jobs: The target's job service: it shows deployment states on model versions and,
                after each task, starts the deployment runs of versions the task registered.
            registry: Opens the target's model registry.
            console: Where notes go.
            start_background: Drives a QUEUED run in a process of its own.
        """
        self.bundle = bundle
        self.state = state
        self.jobs = jobs
        self.console = console
        self._background = start_background
        self.deployments = Deployments(
            state, bundle.target, deployment_links(bundle), registry, console
        )
        jobs.deployments = self.deployments
        if self.deployments.links:
            jobs.after_task = self._trigger_all

    @property
    def registry(self) -> ModelRegistry:
        """The target's model registry."""
        return self.deployments.registry

    def resolve_name(self, name: str) -> str:
        """A model's three-level name from itself or its resource key in the bundle."""
        return model_full_name(self.bundle, name)

    # deployment runs ----------------------------------------------------------------------

    def trigger(self, model_name: str | None = None, version: int | None = None) -> list[RunRecord]:
        """Start the deployment runs of new model versions (one per version, ever)."""

        def submit_and_start(job_key: str, params: Mapping[str, str], trigger: str) -> RunRecord:
            run = self.jobs.submit(job_key, params, trigger_type=trigger)
            started = self._background(run)
            self.console.info(
                f"Run {run.run_id} of deployment job {job_key} started for model "
                f"{params['model_name']} version {params['model_version']}"
            )
            return started

        name = self.resolve_name(model_name) if model_name else None
        return self.deployments.trigger(submit_and_start, model_name=name, version=version)

    def _trigger_all(self) -> None:
        self.trigger()

    # approvals ----------------------------------------------------------------------------

    def approve(
        self, name: str, version: int, *, user: str, comment: str | None, wait: bool = True
    ) -> ApprovalResult:
        """Approve a version that a run waits for, then resume those runs (driving them here
        when ``wait``, else in the background).

        Raises:
            ApprovalError: ``user`` is not an approver, or no run waits for this version.
            ModelNotFoundError: No such model or version.
        """
        model, runs = self._check_decision(name, version, user, "approve")
        record_decision(self.registry, model, version, APPROVED, user=user, comment=comment)
        done = self._apply(model, version, APPROVED, user, comment, runs, wait=wait)
        return ApprovalResult(model, version, APPROVED, user, comment, done)

    def reject(self, name: str, version: int, *, user: str, comment: str | None) -> ApprovalResult:
        """Reject a version that a run waits for: its deployment runs fail, the challenger alias
        goes, and other runs waiting on it (``await_deployment``) go on without it.

        Raises:
            ApprovalError: ``user`` is not an approver, or no run waits for this version.
            ModelNotFoundError: No such model or version.
        """
        model, runs = self._check_decision(name, version, user, "reject")
        record_decision(self.registry, model, version, REJECTED, user=user, comment=comment)
        done = self._apply(model, version, REJECTED, user, comment, runs, wait=True)
        return ApprovalResult(model, version, REJECTED, user, comment, done)

    def resume_decided(self) -> list[RunRecord]:
        """Resume (approved) or end (rejected) the paused runs whose version has a decision,
        however it was recorded: the scheduler's poll for decisions made through MLflow."""
        waiting: dict[tuple[str, int], list[RunRecord]] = {}
        tags: dict[tuple[str, int], str] = {}
        for run, details in self.jobs.paused():
            name, version = details.get("model_name"), details.get("model_version")
            if name and str(version).isdigit():
                key = (str(name), int(str(version)))
                waiting.setdefault(key, []).append(run)
                tags[key] = str(details.get("tag") or APPROVAL_TAG)
        done: list[RunRecord] = []
        for (name, version), runs in waiting.items():
            try:
                found = self.registry.get_version(name, version)
            except ModelNotFoundError:
                continue
            decision = decision_of(found.tags, tags[(name, version)])
            if decision is None:
                continue
            user = decision.by or "an MLflow client (approval tag)"
            ordered = self._deployments_first(runs)
            done += self._apply(
                name, version, decision.state, user, decision.comment, ordered, wait=False
            )
        return done

    def _apply(
        self,
        model: str,
        version: int,
        decision: str,
        user: str,
        comment: str | None,
        runs: list[RunRecord],
        *,
        wait: bool,
    ) -> list[RunRecord]:
        """What a decision does, however it was recorded: audit, aliases, the waiting runs."""
        action = "model.approve" if decision == APPROVED else "model.reject"
        self._audit(action, model, version, user, comment)
        if decision == APPROVED:
            return [self._resume(run, wait=wait) for run in runs]
        if self.registry.alias_version(model, CHALLENGER) == version:
            self.registry.delete_alias(model, CHALLENGER)
        why = f": {comment}" if comment else ""
        message = f"model {model} version {version} was rejected by {user}{why}"
        deploying = set(self.deployments.job_links())
        return [
            self._end(run, message) if run.job_key in deploying else self._resume(run, wait=wait)
            for run in runs
        ]

    def _check_decision(
        self, name: str, version: int, user: str, verb: str
    ) -> tuple[str, list[RunRecord]]:
        model = self.resolve_name(name)
        self.registry.get_version(model, version)  # ModelNotFoundError names what exists
        approvers = self._approvers(model)
        if approvers and user not in approvers:
            raise ApprovalError(
                f"{user} may not {verb} versions of model {model}; its approvers are "
                f"{', '.join(approvers)} (registered_models.approvers in the bundle)"
            )
        runs = self._deployments_first(self.jobs.waiting_runs(model, version))
        if not runs:
            raise ApprovalError(
                f"no run waits for approval of model {model} version {version}; see the "
                f"deployment state with: lakestack models versions {model}"
            )
        return model, runs

    def _approvers(self, model: str) -> list[str]:
        """Who may decide: as deployed (the model's tag), not as a local bundle file says."""
        deployed = self.registry.get_model(model).tags.get(APPROVERS_TAG)
        if deployed is not None:
            return [str(u) for u in json.loads(deployed)]
        spec = model_resources(self.bundle).get(model)
        return list(spec.approvers) if spec is not None else []

    def _deployments_first(self, runs: list[RunRecord]) -> list[RunRecord]:
        """Deployment runs first: runs that wait on them (await_deployment) find them going."""
        deploying = set(self.deployments.job_links())
        return sorted(runs, key=lambda run: (run.job_key not in deploying, run.run_id))

    def _resume(self, run: RunRecord, *, wait: bool) -> RunRecord:
        try:
            queued = self.jobs.repair(run.run_id)
        except RunError:  # another process resumed it first
            return self.state.get_run(run.run_id) or run
        if wait:
            return self.jobs.execute(queued.run_id)
        return self._background(queued)

    def _end(self, run: RunRecord, message: str) -> RunRecord:
        try:
            return self.jobs.end_paused(run.run_id, RunState.FAILED, message)
        except RunError:  # it is not paused any more: another process decided first
            return self.state.get_run(run.run_id) or run

    def _audit(self, action: str, model: str, version: int, user: str, comment: Any) -> None:
        self.state.audit(
            actor=user,
            action=action,
            object_type="model_version",
            object_id=f"{model}/{version}",
            target=self.bundle.target,
            details={"comment": comment},
        )
