"""One exception tree for lakestack, with what to do next in every message.

Every error a user can cause is a ``LakestackError``. The CLI turns it into one line,
``Error: <message>``, and exit code 1; ``--debug`` shows the traceback. Third-party errors are
translated at the layer that owns the library, with ``raise ... from exc``.

Retry semantics live in the type, never in message text: the orchestrator retries a
``TransientError`` and never retries a ``TerminalError``.

    LakestackError
    ├── ConfigError              a bundle that cannot be loaded (file, line, key)
    │   ├── YamlSyntaxError      malformed YAML
    │   ├── UnknownKeyError      a key the schema does not know (with the nearest valid key)
    │   ├── ReferenceError_      a ${...} or {{...}} reference that cannot be resolved
    │   └── CycleError           a cycle in depends_on (the cycle is printed)
    ├── TargetError              no such target, or several default targets
    ├── StateError               the workspace state cannot be read or written
    │   └── StateConflictError   (transient) a concurrent writer got there first
    ├── JobError                 no such job, bad parameters
    ├── RunError                 no such run, a run that cannot be repaired or canceled
    ├── TaskError                a task's own code failed (raised inside task processes)
    ├── LakeError                a catalog, schema, table or volume operation that cannot be done
    │   ├── NotFoundError        no such catalog, schema, table or volume (named in the message)
    │   ├── AlreadyExistsError   creating what exists
    │   ├── SchemaMismatchError  data whose columns or types do not fit the table
    │   ├── ConstraintError      a write that breaks a primary key or NOT NULL constraint
    │   └── CommitConflictError  (transient) a concurrent writer committed first
    ├── FeatureError             a feature table, lookup or training set that cannot be built
    ├── RegistryError            an MLflow tracking or registry operation failed
    │   ├── ModelNotFoundError   no such registered model, version or alias (named)
    │   └── ApprovalError        an approval that cannot be given: not waiting, not an approver
    ├── EvaluationError          a model evaluation that cannot be done (bad metric, no label)
    ├── InferenceError           a batch inference that cannot be done (bad input or output)
    ├── MonitorError             a profile or drift that cannot be computed (bad column, type)
    └── UsageError               wrong options given to a command (exit 2 in the CLI)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "AlreadyExistsError",
    "ApprovalError",
    "CommitConflictError",
    "ConfigError",
    "ConstraintError",
    "CycleError",
    "EvaluationError",
    "FeatureError",
    "InferenceError",
    "JobError",
    "LakeError",
    "LakestackError",
    "Location",
    "ModelNotFoundError",
    "MonitorError",
    "NotFoundError",
    "ReferenceError_",
    "RegistryError",
    "RunError",
    "SchemaMismatchError",
    "StateConflictError",
    "StateError",
    "TargetError",
    "TaskError",
    "TerminalError",
    "TransientError",
    "UnknownKeyError",
    "UsageError",
    "YamlSyntaxError",
    "did_you_mean",
]


class TransientError:
    """Mixin: the operation may succeed if retried (a lock, a conflicting commit)."""


class TerminalError:
    """Mixin: retrying cannot help (bad input, a missing object)."""


@dataclass(frozen=True)
class Location:
    """Where in the bundle a value came from."""

    file: str
    line: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.key}" if self.key else where


class LakestackError(Exception):
    """Root of every error lakestack raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[type[LakestackError], tuple[str]]:
        # keep errors picklable across task processes whatever their constructor looks like
        return (LakestackError, (self.message,))


class ConfigError(LakestackError, TerminalError):
    """A bundle that cannot be loaded or validated."""

    def __init__(self, message: str, *, location: Location | None = None) -> None:
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)
        self.detail = message


class YamlSyntaxError(ConfigError):
    """Malformed YAML."""


class UnknownKeyError(ConfigError):
    """A key that the bundle schema does not define."""

    def __init__(
        self, key: str, *, location: Location | None, valid: Iterable[str], where: str = ""
    ) -> None:
        self.key = key
        self.suggestion = did_you_mean(key, valid)
        hint = f"did you mean '{self.suggestion}'?" if self.suggestion else "remove it"
        place = f" in {where}" if where else ""
        super().__init__(f"unknown key '{key}'{place}; {hint}", location=location)


class ReferenceError_(ConfigError):  # noqa: N801, N818 - ReferenceError is a builtin
    """A reference that cannot be resolved."""


class CycleError(ConfigError):
    """A cycle in a dependency graph."""

    def __init__(self, cycle: list[str], *, what: str, location: Location | None = None) -> None:
        self.cycle = cycle
        path = " -> ".join([*cycle, cycle[0]])
        super().__init__(
            f"{what} has a cycle: {path}; remove one of these depends_on entries",
            location=location,
        )


class TargetError(LakestackError, TerminalError):
    """An unknown target or an ambiguous default."""


class StateError(LakestackError):
    """The workspace state could not be read or written."""


class StateConflictError(StateError, TransientError):
    """A concurrent writer changed the state first; retrying is safe."""


class JobError(LakestackError, TerminalError):
    """An unknown job or bad job parameters."""


class RunError(LakestackError, TerminalError):
    """An unknown run, or an operation the run's state does not allow."""


class TaskError(LakestackError):
    """A task's own code failed."""


class LakeError(LakestackError):
    """A catalog, schema, table or volume operation that cannot be done."""


class NotFoundError(LakeError, TerminalError):
    """No such catalog, schema, table or volume."""


class AlreadyExistsError(LakeError, TerminalError):
    """The catalog, schema, table or volume to create exists already."""


class SchemaMismatchError(LakeError, TerminalError):
    """Data whose columns or types do not fit the table it is written to."""


class ConstraintError(LakeError, TerminalError):
    """A write that would break a primary key or NOT NULL constraint; nothing was committed."""


class CommitConflictError(LakeError, TransientError):
    """A concurrent writer committed to the table first; retrying the write is safe."""


class FeatureError(LakestackError, TerminalError):
    """A feature table, feature lookup or training set that cannot be built."""


class RegistryError(LakestackError):
    """An MLflow tracking or registry operation failed."""


class ModelNotFoundError(RegistryError, TerminalError):
    """No such registered model, model version or alias."""


class ApprovalError(RegistryError, TerminalError):
    """An approval or rejection that cannot be recorded (nothing waits, or not an approver)."""


class EvaluationError(LakestackError, TerminalError):
    """A model evaluation that cannot be done: an unknown metric, a missing label column."""


class InferenceError(LakestackError, TerminalError):
    """A batch inference that cannot be done: a missing input column, a bad output table."""


class MonitorError(LakestackError, TerminalError):
    """A monitor, profile or drift that cannot be computed: a missing column, mismatched types."""


class UsageError(LakestackError, TerminalError):
    """Wrong options or arguments for a command."""


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """Return the candidate closest to ``word``, if any is close enough to be a typo."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None
