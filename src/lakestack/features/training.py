"""Training sets: a labelled DataFrame plus the features its lookups bring, point-in-time.

``create_training_set`` checks everything it can before any feature data is read (the lookup
columns exist in the DataFrame, the label exists, no two output columns share a name) and pins
each feature table's Delta version, so ``load_df`` returns the same rows however often it is
called, and the model logged with this training set records exactly what it was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from lakestack.errors import FeatureError
from lakestack.features.frames import from_arrow
from lakestack.features.lookup import BoundLookup
from lakestack.features.pit import MATCH_ROWS, DatasetFor, join_features
from lakestack.features.spec import FeatureSpec, LookupSpec

__all__ = ["TrainingSet", "check_lookups"]


def check_lookups(
    columns: Sequence[str], lookups: Sequence[BoundLookup], *, what: str = "the DataFrame"
) -> None:
    """Every lookup's input columns are in ``columns``; no output column collides.

    Raises:
        FeatureError: A missing lookup column (named with its table), or an output column that
            is also an input column or another lookup's output (both named).
    """
    present = set(columns)
    for lookup in lookups:
        for column in lookup.input_columns:
            if column not in present:
                role = (
                    "timestamp_lookup_key"
                    if column == lookup.timestamp_lookup_key
                    else "lookup_key"
                )
                raise FeatureError(
                    f"{what} has no column '{column}', the {role} of the lookup of feature table "
                    f"{lookup.table_name} (columns: {', '.join(columns)})"
                )
    owner: dict[str, str] = dict.fromkeys(columns, what)
    for lookup in lookups:
        for feature, output in zip(lookup.feature_names, lookup.output_names, strict=True):
            if output in owner:
                raise FeatureError(
                    f"feature '{feature}' of {lookup.table_name} would be output as '{output}', "
                    f"which {owner[output]} already has; rename it with "
                    "FeatureLookup(rename_outputs={...})"
                    if owner[output] == what
                    else f"feature '{feature}' of {lookup.table_name} and a feature of "
                    f"{owner[output]} are both output as '{output}'; rename one with "
                    "FeatureLookup(rename_outputs={...})"
                )
            owner[output] = lookup.table_name


class TrainingSet:
    """A DataFrame and its feature lookups, pinned to the feature tables' versions.

    Get one from ``FeatureEngineeringClient.create_training_set``; call ``load_df`` to join.
    """

    def __init__(
        self,
        df: pa.Table,
        lookups: Sequence[BoundLookup],
        label: Sequence[str],
        exclude_columns: Sequence[str],
        dataset_for: DatasetFor,
        *,
        chunk_rows: int = MATCH_ROWS,
    ) -> None:
        self._df = df
        self._lookups = list(lookups)
        self._label = list(label)
        self._exclude = list(exclude_columns)
        self._dataset_for = dataset_for
        self._chunk_rows = chunk_rows
        check_lookups(df.column_names, self._lookups)
        for column in self._label:
            if column not in df.column_names:
                raise FeatureError(
                    f"label column '{column}' is not in the DataFrame (columns: "
                    f"{', '.join(df.column_names)})"
                )
        known = [*df.column_names, *(o for lk in self._lookups for o in lk.output_names)]
        for column in self._exclude:
            if column not in known:
                raise FeatureError(
                    f"exclude_columns names '{column}', which is neither a DataFrame column nor "
                    f"a looked-up feature (columns: {', '.join(known)})"
                )
            if column in self._label:
                raise FeatureError(f"column '{column}' is the label; it cannot be excluded")

    @property
    def feature_lookups(self) -> list[BoundLookup]:
        """The checked lookups, with the table versions they read."""
        return list(self._lookups)

    @property
    def label(self) -> list[str]:
        """The label column(s)."""
        return list(self._label)

    @property
    def feature_spec(self) -> FeatureSpec:
        """The spec that ``log_model`` packages with a model trained on this set."""
        return FeatureSpec(
            lookups=[LookupSpec.of(lk) for lk in self._lookups],
            input_columns=list(self._df.column_names),
            label=self._label,
            exclude_columns=self._exclude,
        )

    @property
    def columns(self) -> list[str]:
        """The columns ``load_df`` returns, in order."""
        names = [*self._df.column_names, *(o for lk in self._lookups for o in lk.output_names)]
        return [c for c in names if c not in self._exclude]

    def load_arrow(self) -> pa.Table:
        """The joined training data as an Arrow table."""
        joined = join_features(
            self._df, self._lookups, self._dataset_for, chunk_rows=self._chunk_rows
        )
        return joined.drop_columns(self._exclude) if self._exclude else joined

    def load_df(self, format: str = "pandas") -> Any:
        """The DataFrame's rows (same order and count) with their features, label included.

        Args:
            format: ``pandas`` (the default), ``arrow`` or ``polars``.
        """
        return from_arrow(self.load_arrow(), format)
