"""The feature spec packaged with a model: how to rebuild its inputs from keys.

``log_model`` writes it as ``feature_spec.yaml`` into the model's artifact folder; ``score_batch``
reads it back. It records the lookups (tables, keys, timestamp keys, features, renames,
defaults, lookback windows), the columns of the training DataFrame, the label, the excluded
columns, the columns the model takes, and the Delta version of every feature table at training
time, the lineage that the model version's ``lakestack.feature_tables`` tag repeats::

    format_version: 1
    input_columns: [customer_id, ts, churn]
    label: [churn]
    exclude_columns: [ts]
    model_input_columns: [customer_id, tenure, monthly_charges]
    feature_tables: [{table: main.fs.customers, version: 3}]
    lookups:
    - table_name: main.fs.customers
      table_version: 3
      lookup_key: [customer_id]
      timestamp_lookup_key: ts
      feature_names: [tenure, charges]
      rename_outputs: {charges: monthly_charges}
      lookback_window_seconds: 2592000.0
      default_values: {tenure: 0}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from lakestack.errors import FeatureError
from lakestack.features.lookup import BoundLookup, FeatureLookup

__all__ = ["FEATURE_SPEC_FILE", "FeatureSpec", "LookupSpec"]

FEATURE_SPEC_FILE = "feature_spec.yaml"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class LookupSpec:
    """One lookup as trained: what to look up, and the table version it was read at."""

    table_name: str
    table_version: int
    lookup_key: list[str]
    timestamp_lookup_key: str | None
    feature_names: list[str]
    rename_outputs: dict[str, str] = field(default_factory=dict)
    lookback_window_seconds: float | None = None
    default_values: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, bound: BoundLookup) -> LookupSpec:
        """The spec of a checked lookup."""
        window = bound.lookback_window
        return cls(
            table_name=bound.table_name,
            table_version=bound.version,
            lookup_key=list(bound.lookup_key),
            timestamp_lookup_key=bound.timestamp_lookup_key,
            feature_names=list(bound.feature_names),
            rename_outputs={
                f: o for f, o in zip(bound.feature_names, bound.output_names, strict=True) if f != o
            },
            lookback_window_seconds=window.total_seconds() if window is not None else None,
            default_values=dict(bound.default_values),
        )

    def to_lookup(self) -> FeatureLookup:
        """The ``FeatureLookup`` to bind again at scoring time (against the latest table)."""
        window = self.lookback_window_seconds
        return FeatureLookup(
            table_name=self.table_name,
            lookup_key=self.lookup_key,
            feature_names=self.feature_names,
            rename_outputs=self.rename_outputs or None,
            timestamp_lookup_key=self.timestamp_lookup_key,
            lookback_window=timedelta(seconds=window) if window is not None else None,
            default_values=self.default_values or None,
        )

    @property
    def output_names(self) -> list[str]:
        """The feature columns this lookup adds."""
        return [self.rename_outputs.get(f, f) for f in self.feature_names]


@dataclass(frozen=True)
class FeatureSpec:
    """Everything needed to rebuild a model's inputs from the columns of a scoring DataFrame."""

    lookups: list[LookupSpec]
    input_columns: list[str]
    label: list[str]
    exclude_columns: list[str]
    model_input_columns: list[str] | None = None

    @property
    def feature_tables(self) -> list[dict[str, Any]]:
        """``[{table, version}]``: each feature table once, with its version at training time."""
        seen: dict[str, int] = {}
        for lookup in self.lookups:
            seen.setdefault(lookup.table_name, lookup.table_version)
        return [{"table": t, "version": v} for t, v in seen.items()]

    @property
    def output_names(self) -> list[str]:
        """Every looked-up column, in lookup order."""
        return [name for lookup in self.lookups for name in lookup.output_names]

    def to_dict(self) -> dict[str, Any]:
        """The YAML document's content."""
        return {
            "format_version": FORMAT_VERSION,
            "input_columns": list(self.input_columns),
            "label": list(self.label),
            "exclude_columns": list(self.exclude_columns),
            "model_input_columns": self.model_input_columns,
            "feature_tables": self.feature_tables,
            "lookups": [
                {
                    "table_name": lk.table_name,
                    "table_version": lk.table_version,
                    "lookup_key": lk.lookup_key,
                    "timestamp_lookup_key": lk.timestamp_lookup_key,
                    "feature_names": lk.feature_names,
                    "rename_outputs": lk.rename_outputs,
                    "lookback_window_seconds": lk.lookback_window_seconds,
                    "default_values": lk.default_values,
                }
                for lk in self.lookups
            ],
        }

    def to_yaml(self) -> str:
        """The spec as YAML text."""
        import yaml

        return str(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_yaml(cls, text: str, *, source: str = FEATURE_SPEC_FILE) -> FeatureSpec:
        """Read a spec written by ``to_yaml``.

        Raises:
            FeatureError: The text is not a feature spec lakestack can read.
        """
        import yaml

        try:
            data = yaml.safe_load(text) or {}
            if data.get("format_version") != FORMAT_VERSION:
                raise FeatureError(
                    f"{source} has format_version {data.get('format_version')!r}; this "
                    f"lakestack reads version {FORMAT_VERSION}"
                )
            lookups = [
                LookupSpec(
                    table_name=str(lk["table_name"]),
                    table_version=int(lk["table_version"]),
                    lookup_key=[str(k) for k in lk["lookup_key"]],
                    timestamp_lookup_key=lk.get("timestamp_lookup_key"),
                    feature_names=[str(f) for f in lk["feature_names"]],
                    rename_outputs=dict(lk.get("rename_outputs") or {}),
                    lookback_window_seconds=lk.get("lookback_window_seconds"),
                    default_values=dict(lk.get("default_values") or {}),
                )
                for lk in data.get("lookups") or []
            ]
            model_inputs = data.get("model_input_columns")
            return cls(
                lookups=lookups,
                input_columns=[str(c) for c in data.get("input_columns") or []],
                label=[str(c) for c in data.get("label") or []],
                exclude_columns=[str(c) for c in data.get("exclude_columns") or []],
                model_input_columns=[str(c) for c in model_inputs] if model_inputs else None,
            )
        except (yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise FeatureError(f"{source} is not a valid feature spec: {exc}") from None
