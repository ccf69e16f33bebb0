"""``dbutils.widgets``: notebook and task parameters, as Databricks hands them to code.

A value passed to the task (``base_parameters``, job parameters pushed down, or the arguments of
``dbutils.notebook.run``) wins over the default of a widget the code created. A widget that was
neither passed nor created is an error that says both ways to fix it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lakestack.errors import LakestackError, TerminalError
from lakestack.jobs.context import current_context

__all__ = ["InputWidgetNotDefined", "WidgetError", "WidgetsUtils"]


class WidgetError(LakestackError, TerminalError):
    """A widget used in a way Databricks rejects (bad choice, bad default)."""


class InputWidgetNotDefined(WidgetError):  # noqa: N818 - the Databricks name
    """A widget read before it was passed or created."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"widget '{name}' is not defined; pass it as a task parameter (base_parameters) "
            f"or create it with dbutils.widgets.text('{name}', default)"
        )


@dataclass(frozen=True)
class _Widget:
    kind: str
    default: str
    choices: tuple[str, ...] | None
    label: str | None


class WidgetsUtils:
    """The ``dbutils.widgets`` API."""

    def __init__(self) -> None:
        self._widgets: dict[str, _Widget] = {}
        self._bound: dict[str, str] | None = None

    def _bind(self, parameters: Mapping[str, str]) -> None:
        """Use these parameters instead of the task context's (set by the notebook runner)."""
        self._bound = {str(k): str(v) for k, v in parameters.items()}

    def _passed(self) -> dict[str, str]:
        if self._bound is not None:
            return dict(self._bound)
        ctx = current_context()
        if ctx is None:
            return {}
        return {**ctx.job_parameters, **ctx.parameters}

    def text(self, name: str, defaultValue: str, label: str | None = None) -> None:  # noqa: N803
        """Create a text widget with a default value."""
        self._create(name, "text", defaultValue, None, label)

    def dropdown(
        self,
        name: str,
        defaultValue: str,  # noqa: N803
        choices: Sequence[str],
        label: str | None = None,
    ) -> None:
        """Create a dropdown widget; its value must be one of ``choices``."""
        self._create(name, "dropdown", defaultValue, choices, label)

    def combobox(
        self,
        name: str,
        defaultValue: str,  # noqa: N803
        choices: Sequence[str],
        label: str | None = None,
    ) -> None:
        """Create a combobox widget; ``choices`` are suggestions, any value is accepted."""
        self._create(name, "combobox", defaultValue, choices, label)

    def multiselect(
        self,
        name: str,
        defaultValue: str,  # noqa: N803
        choices: Sequence[str],
        label: str | None = None,
    ) -> None:
        """Create a multiselect widget; its value is a comma-separated subset of ``choices``."""
        self._create(name, "multiselect", defaultValue, choices, label)

    def get(self, name: str) -> str:
        """The value passed to the task for ``name``, else the widget's default.

        Raises:
            InputWidgetNotDefined: neither passed nor created.
            WidgetError: a passed value that is not one of a dropdown's choices.
        """
        passed = self._passed()
        widget = self._widgets.get(name)
        if name in passed:
            value = passed[name]
            if widget is not None:
                _check_choice(name, widget, value)
            return value
        if widget is not None:
            return widget.default
        raise InputWidgetNotDefined(name)

    def getAll(self) -> dict[str, str]:  # noqa: N802
        """Every widget and passed parameter with its current value."""
        values = {name: widget.default for name, widget in self._widgets.items()}
        values.update(self._passed())
        return values

    def getArgument(self, name: str, defaultValue: str | None = None) -> str | None:  # noqa: N802, N803
        """Deprecated alias of ``get`` that returns ``defaultValue`` for an unknown widget."""
        try:
            return self.get(name)
        except InputWidgetNotDefined:
            return defaultValue

    def remove(self, name: str) -> None:
        """Remove a widget created with ``text``, ``dropdown``, ...

        Raises:
            InputWidgetNotDefined: no widget of that name was created.
        """
        if self._widgets.pop(name, None) is None:
            raise InputWidgetNotDefined(name)

    def removeAll(self) -> None:  # noqa: N802
        """Remove every created widget (passed parameters stay)."""
        self._widgets.clear()

    def _create(
        self,
        name: str,
        kind: str,
        default: str,
        choices: Sequence[str] | None,
        label: str | None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise WidgetError(f"a widget name must be a non-empty string, got {name!r}")
        widget = _Widget(
            kind,
            str(default),
            tuple(str(c) for c in choices) if choices is not None else None,
            label,
        )
        _check_choice(name, widget, widget.default, what="default value")
        self._widgets[name] = widget


def _check_choice(name: str, widget: _Widget, value: str, what: str = "value") -> None:
    if widget.choices is None or widget.kind == "combobox":
        return
    chosen = value.split(",") if widget.kind == "multiselect" and value else [value]
    bad = [item for item in chosen if item not in widget.choices]
    if bad:
        valid = ", ".join(f"'{c}'" for c in widget.choices)
        raise WidgetError(
            f"{what} '{value}' of {widget.kind} widget '{name}' is not one of its choices: {valid}"
        )
