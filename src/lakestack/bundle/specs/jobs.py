"""Typed specs for ``resources.jobs``, with the Databricks Jobs API field names.

Paths in task specs (``python_file``, ``notebook_path``, ``sql_task.file.path``) are written
relative to the YAML file that defines them; the loader rewrites them to absolute paths.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from lakestack.bundle.specs.base import Spec, Str, ignored

__all__ = [
    "TASK_KINDS",
    "ConditionOp",
    "ConditionTaskSpec",
    "DependencySpec",
    "EmailNotificationsSpec",
    "FileArrivalSpec",
    "ForEachTaskSpec",
    "JobParameterSpec",
    "JobSpec",
    "NotebookTaskSpec",
    "NotificationSettingsSpec",
    "PythonFileTaskSpec",
    "PythonWheelTaskSpec",
    "QueueSpec",
    "RunIf",
    "RunJobTaskSpec",
    "ScheduleSpec",
    "SqlFileSpec",
    "SqlTaskSpec",
    "TaskSpec",
    "TriggerSpec",
    "WebhookSpec",
    "WebhookNotificationsSpec",
]


class RunIf(str, Enum):
    """When a task runs, given the outcome of its dependencies."""

    ALL_SUCCESS = "ALL_SUCCESS"
    AT_LEAST_ONE_SUCCESS = "AT_LEAST_ONE_SUCCESS"
    NONE_FAILED = "NONE_FAILED"
    ALL_DONE = "ALL_DONE"
    AT_LEAST_ONE_FAILED = "AT_LEAST_ONE_FAILED"
    ALL_FAILED = "ALL_FAILED"


class ConditionOp(str, Enum):
    """Operators of ``condition_task``."""

    EQUAL_TO = "EQUAL_TO"
    NOT_EQUAL = "NOT_EQUAL"
    GREATER_THAN = "GREATER_THAN"
    GREATER_THAN_OR_EQUAL = "GREATER_THAN_OR_EQUAL"
    LESS_THAN = "LESS_THAN"
    LESS_THAN_OR_EQUAL = "LESS_THAN_OR_EQUAL"


class DependencySpec(Spec):
    """One entry of ``depends_on``; ``outcome`` selects a branch of a condition task."""

    task_key: str
    outcome: Literal["true", "false"] | None = None

    @field_validator("outcome", mode="before")
    @classmethod
    def _bool_outcome(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return "true" if value else "false"
        return value


class NotebookTaskSpec(Spec):
    """A Jupyter notebook (``.ipynb``) or Databricks notebook source (``.py``)."""

    notebook_path: str
    base_parameters: dict[str, Str] = Field(default_factory=dict)
    source: Literal["WORKSPACE", "GIT"] | None = None
    warehouse_id: Str | None = ignored("SQL warehouse: notebooks run on this machine")


class PythonFileTaskSpec(Spec):
    """``spark_python_task`` (or ``python_file_task``): a Python file run with arguments."""

    python_file: str
    parameters: list[Str] = Field(default_factory=list)
    source: Literal["WORKSPACE", "GIT"] | None = None


class PythonWheelTaskSpec(Spec):
    """An entry point of an installed Python package."""

    package_name: str
    entry_point: str
    parameters: list[Str] = Field(default_factory=list)
    named_parameters: dict[str, Str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_style(self) -> PythonWheelTaskSpec:
        if self.parameters and self.named_parameters:
            raise ValueError("give either parameters or named_parameters, not both")
        return self


class SqlFileSpec(Spec):
    """A SQL file for ``sql_task``."""

    path: str
    source: Literal["WORKSPACE", "GIT"] | None = None


class SqlQueryRefSpec(Spec):
    """A saved Databricks SQL query; not available here (use ``file`` or ``query_text``)."""

    query_id: str


class SqlTaskSpec(Spec):
    """SQL run by DuckDB: a file, or inline text (``query_text``, a lakestack addition)."""

    file: SqlFileSpec | None = None
    query: SqlQueryRefSpec | None = None
    query_text: str | None = None
    parameters: dict[str, Str] = Field(default_factory=dict)
    warehouse_id: Str | None = ignored("SQL warehouse: SQL runs in DuckDB on this machine")
    alert: Any = ignored("SQL alerts")
    dashboard: Any = ignored("SQL dashboards")

    @model_validator(mode="after")
    def _one_source(self) -> SqlTaskSpec:
        given = [n for n in ("file", "query", "query_text") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError("sql_task needs exactly one of file, query_text")
        if self.query is not None:
            raise ValueError(
                "sql_task.query refers to a saved Databricks SQL query, which does not exist "
                "here; put the SQL in a file and use sql_task.file.path"
            )
        return self


class ConditionTaskSpec(Spec):
    """``left op right``; == and != compare strings, the others compare numbers."""

    op: ConditionOp
    left: Str
    right: Str


class RunJobTaskSpec(Spec):
    """Run another job of the bundle (by key, ``${resources.jobs.<key>.id}``) and wait."""

    job_id: Str
    job_parameters: dict[str, Str] = Field(default_factory=dict)


class ForEachTaskSpec(Spec):
    """Run ``task`` once per input, up to ``concurrency`` at a time."""

    inputs: Any
    concurrency: int = Field(default=1, ge=1, le=100)
    task: TaskSpec

    @field_validator("inputs")
    @classmethod
    def _inputs(cls, value: Any) -> Any:
        if isinstance(value, (list, str)):
            return value
        raise ValueError("inputs must be a JSON list, a YAML list or a {{...}} reference")


class WebhookSpec(Spec):
    """A webhook destination: a named destination (``id``) or a URL."""

    id: str | None = None
    url: str | None = None

    @model_validator(mode="after")
    def _one(self) -> WebhookSpec:
        if (self.id is None) == (self.url is None):
            raise ValueError("a webhook needs exactly one of id (a named destination) or url")
        return self


class EmailNotificationsSpec(Spec):
    """Addresses to email on run events."""

    on_start: list[str] = Field(default_factory=list)
    on_success: list[str] = Field(default_factory=list)
    on_failure: list[str] = Field(default_factory=list)
    on_duration_warning_threshold_exceeded: list[str] = Field(default_factory=list)
    on_streaming_backlog_exceeded: Any = ignored("streaming backlog alerts")
    no_alert_for_skipped_runs: bool = False


class WebhookNotificationsSpec(Spec):
    """Webhooks to POST on run events."""

    on_start: list[WebhookSpec] = Field(default_factory=list)
    on_success: list[WebhookSpec] = Field(default_factory=list)
    on_failure: list[WebhookSpec] = Field(default_factory=list)
    on_duration_warning_threshold_exceeded: list[WebhookSpec] = Field(default_factory=list)
    on_streaming_backlog_exceeded: Any = ignored("streaming backlog alerts")


class NotificationSettingsSpec(Spec):
    """Which notifications to leave out."""

    no_alert_for_skipped_runs: bool = False
    no_alert_for_canceled_runs: bool = False
    alert_on_last_attempt: bool = False


class HealthRuleSpec(Spec):
    """One health rule: ``RUN_DURATION_SECONDS GREATER_THAN <seconds>``."""

    metric: Literal["RUN_DURATION_SECONDS"]
    op: Literal["GREATER_THAN"] = "GREATER_THAN"
    value: float


class HealthSpec(Spec):
    """Rules whose breach sends ``on_duration_warning_threshold_exceeded``."""

    rules: list[HealthRuleSpec] = Field(default_factory=list)

    @property
    def duration_threshold(self) -> float | None:
        """The smallest run-duration threshold, in seconds, or None."""
        values = [r.value for r in self.rules if r.metric == "RUN_DURATION_SECONDS"]
        return min(values) if values else None


class TaskSpec(Spec):
    """One task of a job: exactly one task kind plus dependencies, retries and timeouts."""

    task_key: str
    description: str | None = None
    depends_on: list[DependencySpec] = Field(default_factory=list)
    run_if: RunIf = RunIf.ALL_SUCCESS

    notebook_task: NotebookTaskSpec | None = None
    spark_python_task: PythonFileTaskSpec | None = None
    python_file_task: PythonFileTaskSpec | None = None
    python_wheel_task: PythonWheelTaskSpec | None = None
    sql_task: SqlTaskSpec | None = None
    condition_task: ConditionTaskSpec | None = None
    run_job_task: RunJobTaskSpec | None = None
    for_each_task: ForEachTaskSpec | None = None

    max_retries: int = Field(default=0, ge=-1)
    min_retry_interval_millis: int = Field(default=0, ge=0)
    retry_on_timeout: bool = False
    timeout_seconds: int = Field(default=0, ge=0)
    email_notifications: EmailNotificationsSpec | None = None
    webhook_notifications: WebhookNotificationsSpec | None = None
    notification_settings: NotificationSettingsSpec | None = None
    health: HealthSpec | None = None

    job_cluster_key: str | None = ignored("compute: tasks run as local processes")
    existing_cluster_id: str | None = ignored("compute: tasks run as local processes")
    new_cluster: Any = ignored("compute: tasks run as local processes")
    environment_key: str | None = ignored("compute: tasks use the current Python environment")
    compute_key: str | None = ignored("compute: tasks run as local processes")
    libraries: Any = ignored("libraries: install them into the current Python environment")
    disable_auto_optimization: bool | None = ignored("Databricks task optimization")

    @property
    def kind(self) -> str:
        """The name of the task kind this task uses."""
        for name in TASK_KINDS:
            if getattr(self, name) is not None:
                return name
        raise AssertionError("validated task without a kind")

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> TaskSpec:
        given = [name for name in TASK_KINDS if getattr(self, name) is not None]
        if not given:
            raise ValueError(
                f"task '{self.task_key}' has no task kind; add one of: {', '.join(TASK_KINDS)}"
            )
        if len(given) > 1:
            raise ValueError(
                f"task '{self.task_key}' has several task kinds ({', '.join(given)}); keep one"
            )
        return self


TASK_KINDS = (
    "notebook_task",
    "spark_python_task",
    "python_file_task",
    "python_wheel_task",
    "sql_task",
    "condition_task",
    "run_job_task",
    "for_each_task",
)


class JobParameterSpec(Spec):
    """A job parameter with its default, overridable per run (``--params name=value``)."""

    name: str
    default: Str = ""


class QueueSpec(Spec):
    """Queue runs instead of skipping them when ``max_concurrent_runs`` is reached."""

    enabled: bool = False


class ScheduleSpec(Spec):
    """A Quartz cron schedule (started by ``lakestack scheduler``)."""

    quartz_cron_expression: str
    timezone_id: str = "UTC"
    pause_status: Literal["PAUSED", "UNPAUSED"] = "UNPAUSED"


class FileArrivalSpec(Spec):
    """Start a run when new files arrive under ``url``."""

    url: str
    min_time_between_triggers_seconds: int = 0
    wait_after_last_change_seconds: int = 0


class TriggerSpec(Spec):
    """Event triggers (started by ``lakestack scheduler``)."""

    pause_status: Literal["PAUSED", "UNPAUSED"] = "UNPAUSED"
    file_arrival: FileArrivalSpec | None = None
    periodic: Any = None
    table_update: Any = None
    model: Any = None


class JobSpec(Spec):
    """A job: tasks with dependencies, parameters, schedule, limits and notifications."""

    name: str | None = None
    description: str | None = None
    tags: dict[str, Str] = Field(default_factory=dict)
    parameters: list[JobParameterSpec] = Field(default_factory=list)
    tasks: list[TaskSpec] = Field(default_factory=list)
    timeout_seconds: int = Field(default=0, ge=0)
    max_concurrent_runs: int = Field(default=1, ge=1)
    queue: QueueSpec | None = None
    schedule: ScheduleSpec | None = None
    trigger: TriggerSpec | None = None
    continuous: Any = None
    email_notifications: EmailNotificationsSpec | None = None
    webhook_notifications: WebhookNotificationsSpec | None = None
    notification_settings: NotificationSettingsSpec | None = None
    health: HealthSpec | None = None
    permissions: list[dict[str, Any]] = Field(default_factory=list)

    job_clusters: Any = ignored("compute: tasks run as local processes")
    environments: Any = ignored("compute: tasks use the current Python environment")
    run_as: Any = ignored("run_as: tasks run as the current user")
    git_source: Any = ignored("git_source: tasks run from the bundle's files")
    format: Any = ignored("job format")
    edit_mode: Any = ignored("UI edit mode")
    budget_policy_id: Any = ignored("budget policies")
    performance_target: Any = ignored("serverless performance target")
    deployment: Any = ignored("deployment metadata")

    @model_validator(mode="after")
    def _unique(self) -> JobSpec:
        seen: set[str] = set()
        for task in self.tasks:
            if task.task_key in seen:
                raise ValueError(
                    f"task_key '{task.task_key}' is defined twice; keys must be unique"
                )
            seen.add(task.task_key)
        names: set[str] = set()
        for param in self.parameters:
            if param.name in names:
                raise ValueError(f"job parameter '{param.name}' is defined twice")
            names.add(param.name)
        return self


ForEachTaskSpec.model_rebuild()
