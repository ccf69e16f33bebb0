"""Drift between two samples of one column: the statistics of a ``_drift_metrics`` row.

A monitor compares each window with the previous one (CONSECUTIVE) and with the baseline
(BASELINE). This module holds the arithmetic of one such comparison, column by column, with the
Databricks column names (``ks_test``, ``chi_squared_test``, ``js_distance``,
``wasserstein_distance``, ``population_stability_index``, ``tv_distance``,
``l_infinity_distance``) so the refresh can write them as they are. The formula choices (bins,
log base, normalisation) are fixed here as constants and stated in ``docs/monitoring.md``.

Drift is declared by a ``DriftRule``: a test's p-value below ``alpha`` *and* an effect size at
least a threshold, and never when either side has fewer than ``min_count`` values. A tiny window
therefore raises nothing, and a huge one does not flag a negligible shift just because its
p-value is small.
"""

from __future__ import annotations

import math
import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from lakestack.errors import MonitorError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "JS_BASE",
    "KS_EXACT_MAX_N",
    "MAX_THREADS",
    "PARALLEL_MIN_ROWS",
    "PSI_BINS",
    "PSI_EPSILON",
    "WASSERSTEIN_STD_FLOOR",
    "ColumnDrift",
    "DriftRule",
    "Kind",
    "StatisticalTest",
    "column_drift",
    "column_kind",
    "table_drift",
]

Kind = Literal["numeric", "categorical"]
KINDS: tuple[Kind, ...] = ("numeric", "categorical")

PSI_BINS = 10
"""Numeric columns are binned at the reference's deciles (right-closed, open-ended bins)."""
PSI_EPSILON = 1e-4
"""An empty bin's share is replaced by this in PSI only (ln 0 is undefined); no renormalising."""
JS_BASE = 2
"""Jensen-Shannon distance in base 2, so it lies in [0, 1]."""
WASSERSTEIN_STD_FLOOR = 1e-3
"""``wasserstein_normed`` divides by max(std(reference), this), as Evidently does."""
PARALLEL_MIN_ROWS = 100_000
"""``table_drift`` compares columns on several threads (one per usable CPU, at most
``MAX_THREADS``) from this many rows (both sides together); below it the threads cost more than
they save."""
MAX_THREADS = 4
"""At most this many columns at once: each holds several float64 copies of its two sides."""
_WARNINGS_LOCK = threading.Lock()
KS_EXACT_MAX_N = 10_000
"""Samples up to this size get scipy's exact KS p-value, larger ones the asymptotic one (scipy's
``ks_2samp`` rule for ``method="auto"``)."""


@dataclass(frozen=True)
class StatisticalTest:
    """A test result as the drift table stores it: ``struct<statistic: double, pvalue: double>``."""

    statistic: float
    pvalue: float

    def as_dict(self) -> dict[str, float]:
        """The struct value of the drift table column."""
        return {"statistic": self.statistic, "pvalue": self.pvalue}


@dataclass(frozen=True)
class DriftRule:
    """When a difference counts as drift, at any sample size.

    Attributes:
        min_count: Fewest non-missing values on each side below which nothing is computed or
            declared (the statistics are NULL): a window of five rows says nothing.
        alpha: Significance level of the KS and chi-squared tests.
        min_ks_statistic: Smallest KS statistic D (the largest gap between the two CDFs) that
            counts as drift for a numeric column.
        min_cramers_v: Smallest Cramér's V that counts as drift for a categorical column.
    """

    min_count: int = 30
    alpha: float = 0.05
    min_ks_statistic: float = 0.1
    min_cramers_v: float = 0.1

    def __post_init__(self) -> None:
        if self.min_count < 1:
            raise MonitorError(
                f"min_count {self.min_count} is not allowed: give a count of at least 1"
            )
        if not 0.0 < self.alpha < 1.0:
            raise MonitorError(f"alpha {self.alpha} is not allowed: give a level in (0, 1)")
        for name in ("min_ks_statistic", "min_cramers_v"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise MonitorError(f"{name} {value} is not allowed: give an effect size in [0, 1]")


@dataclass(frozen=True)
class ColumnDrift:
    """The drift of one column between a reference (``_cmp``) and a current sample.

    The metric fields carry the Databricks drift-table names. A metric that does not apply to the
    column's kind, or that is not computed because a side has fewer than ``min_count`` values, is
    ``None`` (NULL in the table). ``wasserstein_normed`` and ``cramers_v`` are lakestack's effect
    sizes beside the raw distance and the p-value.
    """

    column_name: str | None
    kind: Kind
    count: int
    count_cmp: int
    num_missing: int
    num_missing_cmp: int
    ks_test: StatisticalTest | None = None
    chi_squared_test: StatisticalTest | None = None
    js_distance: float | None = None
    wasserstein_distance: float | None = None
    wasserstein_normed: float | None = None
    population_stability_index: float | None = None
    tv_distance: float | None = None
    l_infinity_distance: float | None = None
    cramers_v: float | None = None
    drift_detected: bool = False
    reason: str = ""

    def metrics(self) -> dict[str, Any]:
        """The drift-table metric columns of this column, tests as ``{statistic, pvalue}``."""
        return {
            "ks_test": self.ks_test.as_dict() if self.ks_test else None,
            "chi_squared_test": self.chi_squared_test.as_dict() if self.chi_squared_test else None,
            "js_distance": self.js_distance,
            "wasserstein_distance": self.wasserstein_distance,
            "population_stability_index": self.population_stability_index,
            "tv_distance": self.tv_distance,
            "l_infinity_distance": self.l_infinity_distance,
        }


def column_kind(data_type: pa.DataType) -> Kind | None:
    """``numeric`` for integers, floats and decimals; ``categorical`` for strings and booleans.

    Other types (timestamps, dates, nested) get ``None``: their windows differ by construction or
    have no order worth testing, so a monitor does not compute their drift.
    """
    if pa.types.is_dictionary(data_type):
        return column_kind(data_type.value_type)
    if pa.types.is_integer(data_type) or pa.types.is_floating(data_type):
        return "numeric"
    if pa.types.is_decimal(data_type):
        return "numeric"
    if (
        pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
        or pa.types.is_boolean(data_type)
    ):
        return "categorical"
    if hasattr(pa.types, "is_string_view") and pa.types.is_string_view(data_type):
        return "categorical"
    return None


def column_drift(
    reference: Any,
    current: Any,
    *,
    column_name: str | None = None,
    kind: Kind | None = None,
    rule: DriftRule | None = None,
) -> ColumnDrift:
    """Compare ``current`` with ``reference`` and say whether the column drifted.

    Args:
        reference: The comparison sample (previous window or baseline): a numpy array, an Arrow
            array or chunked array. Nulls (and NaN in float columns) are excluded and counted.
        current: The window's sample, in the same forms.
        column_name: Named in error messages and carried into the result.
        kind: ``numeric`` or ``categorical``; by default taken from the Arrow type.
        rule: When drift is declared; ``DriftRule()`` by default.

    Raises:
        MonitorError: An unknown kind, a type with no drift (timestamps, nested), or sides whose
            kinds differ (a number against a string).
    """
    rule = rule or DriftRule()
    label = f"column {column_name!r}" if column_name else "the column"
    ref, cur = _as_arrow(reference, label), _as_arrow(current, label)
    kind = _resolve_kind(ref, cur, kind, label)
    if kind == "numeric":
        ref_values, ref_missing = _numeric_values(ref)
        cur_values, cur_missing = _numeric_values(cur)
        count, count_cmp = len(cur_values), len(ref_values)
    else:
        ref_counts, ref_missing = _category_counts(ref)
        cur_counts, cur_missing = _category_counts(cur)
        count, count_cmp = sum(cur_counts.values()), sum(ref_counts.values())
    base = ColumnDrift(column_name, kind, count, count_cmp, cur_missing, ref_missing)
    short = _too_few(count, count_cmp, rule.min_count)
    if short:
        return _replace(base, reason=short)
    if kind == "numeric":
        return _numeric_drift(base, ref_values, cur_values, rule)
    return _categorical_drift(base, ref_counts, cur_counts, rule)


def table_drift(
    reference: pa.Table,
    current: pa.Table,
    columns: Sequence[str] | None = None,
    *,
    rule: DriftRule | None = None,
) -> list[ColumnDrift]:
    """``column_drift`` for each column of two tables, in the order of ``columns``.

    Large tables (``PARALLEL_MIN_ROWS``) are compared a column per usable CPU at once.

    Args:
        reference: The comparison window or baseline.
        current: The window.
        columns: Columns to compare; by default every column of ``current`` whose type has a
            drift kind (``column_kind``) and that ``reference`` also has.
        rule: When drift is declared.

    Raises:
        MonitorError: A named column missing from either table, or of a type with no drift.
    """
    if columns is None:
        columns = [
            f.name
            for f in current.schema
            if column_kind(f.type) and f.name in reference.schema.names
        ]
    for name in columns:
        for side, table in (("reference", reference), ("current", current)):
            if name not in table.schema.names:
                raise MonitorError(
                    f"column {name!r} is not in the {side} table: "
                    f"its columns are {', '.join(table.schema.names)}"
                )

    def one(name: str) -> ColumnDrift:
        return column_drift(reference[name], current[name], column_name=name, rule=rule)

    workers = min(len(columns), _drift_threads())
    if workers < 2 or reference.num_rows + current.num_rows < PARALLEL_MIN_ROWS:
        return [one(name) for name in columns]
    # numpy's sorts and array arithmetic release the GIL, so columns run side by side
    with ThreadPoolExecutor(workers, thread_name_prefix="lakestack-drift") as pool:
        return list(pool.map(one, columns))


def _drift_threads() -> int:
    """The usable CPUs, at most ``MAX_THREADS`` (a thread holds a few copies of its column)."""
    try:
        usable = len(os.sched_getaffinity(0))  # the CPUs this process may run on
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    return max(1, min(MAX_THREADS, usable))


def _as_arrow(values: Any, label: str) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    import numpy as np

    array = np.asarray(values)
    if array.ndim != 1:
        raise MonitorError(
            f"{label} has shape {array.shape}: give a one-dimensional array of values"
        )
    # from_pandas turns None and float NaN into nulls, the same for every numpy dtype
    return pa.array(array, from_pandas=True)


def _resolve_kind(ref: pa.Array, cur: pa.Array, kind: Kind | None, label: str) -> Kind:
    if kind is not None:
        if kind not in KINDS:
            raise MonitorError(f"kind {kind!r} is not known: give one of {', '.join(KINDS)}")
        return kind
    kinds: list[Kind] = []
    for array in (ref, cur):
        if pa.types.is_null(array.type):
            continue  # an all-null side says nothing about the kind
        found = column_kind(array.type)
        if found is None:
            raise MonitorError(
                f"{label} has type {array.type}: drift is computed for numbers, strings and "
                "booleans; leave the column out or cast it"
            )
        kinds.append(found)
    if len(set(kinds)) > 1:
        raise MonitorError(
            f"{label} is {ref.type} in the reference and {cur.type} in the current window: "
            "cast both sides to one type"
        )
    return kinds[0] if kinds else "categorical"


def _numeric_values(array: pa.Array) -> tuple[npt.NDArray[np.float64], int]:
    """The column's numbers as float64, **sorted**, without nulls and NaN; and how many were left
    out. Every numeric statistic works on this one sorted copy."""
    import numpy as np

    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    present = pc.drop_null(array)
    if pa.types.is_null(present.type) or len(present) == 0:
        return np.empty(0, dtype=np.float64), len(array)
    values = np.sort(np.asarray(present.cast(pa.float64()).to_numpy(zero_copy_only=False)))
    kept = values[: np.searchsorted(values, np.nan)]  # numpy sorts NaN after everything else
    return kept, len(array) - len(kept)


def _category_counts(array: pa.Array) -> tuple[dict[Any, int], int]:
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    present = pc.drop_null(array)
    if pa.types.is_null(present.type) or len(present) == 0:
        return {}, len(array)
    if pa.types.is_floating(present.type):
        present = pc.filter(present, pc.invert(pc.is_nan(present)))
    counted = pc.value_counts(present)
    values = counted.field("values").to_pylist()
    counts = counted.field("counts").to_pylist()
    return dict(zip(values, counts, strict=True)), len(array) - len(present)


def _too_few(count: int, count_cmp: int, min_count: int) -> str:
    if count_cmp < min_count:
        return f"too few values: the reference has {count_cmp}, fewer than min_count {min_count}"
    if count < min_count:
        return f"too few values: the window has {count}, fewer than min_count {min_count}"
    return ""


def _replace(drift: ColumnDrift, **changes: Any) -> ColumnDrift:
    from dataclasses import replace

    return replace(drift, **changes)


def _numeric_drift(
    base: ColumnDrift,
    ref: npt.NDArray[np.float64],
    cur: npt.NDArray[np.float64],
    rule: DriftRule,
) -> ColumnDrift:
    """The numeric metrics of two **sorted** samples."""
    import numpy as np

    # an infinite value makes W, the std and some edges inf or NaN, as in scipy and numpy
    with np.errstate(invalid="ignore"):
        ks_test, wasserstein = _ks_and_wasserstein(ref, cur)
        normed = wasserstein / max(float(np.std(ref)), WASSERSTEIN_STD_FLOOR)
        p, q = _binned_shares(ref, cur)
    drifted = ks_test.pvalue < rule.alpha and ks_test.statistic >= rule.min_ks_statistic
    reason = _reason(
        drifted, "KS", ks_test, "D", ks_test.statistic, rule.alpha, rule.min_ks_statistic
    )
    return _replace(
        base,
        ks_test=ks_test,
        wasserstein_distance=wasserstein,
        wasserstein_normed=normed,
        population_stability_index=_psi(p, q),
        js_distance=_js_distance(p, q),
        tv_distance=_tv_distance(p, q),
        l_infinity_distance=_l_infinity_distance(p, q),
        drift_detected=drifted,
        reason=reason,
    )


def _ks_and_wasserstein(
    ref: npt.NDArray[np.float64], cur: npt.NDArray[np.float64]
) -> tuple[StatisticalTest, float]:
    """KS and Wasserstein-1 of two sorted samples from one merge of the two.

    Both compare the empirical CDFs F_R and F_C on the pooled values, as
    ``scipy.stats.ks_2samp`` and ``scipy.stats.wasserstein_distance`` do, with the same
    arithmetic, so the results are theirs (bit for bit in practice) without their sorts:
    D = max |F_R - F_C| and W = sum of |F_R - F_C| * (x_{k+1} - x_k).
    """
    import numpy as np

    n_ref, n_cur = len(ref), len(cur)
    pooled = np.concatenate((ref, cur))
    order = np.argsort(pooled, kind="stable")  # two sorted runs: a linear merge
    merged = pooled[order]
    # counts of each side at or before each position, as floats (exact below 2**53)
    cur_seen = np.cumsum(order >= n_ref, dtype=np.float64)
    gap = np.arange(1.0, len(merged) + 1.0)
    gap -= cur_seen
    gap /= n_ref
    cur_seen /= n_cur
    gap -= cur_seen
    np.abs(gap, out=gap)  # |F_R - F_C| at each position
    # between equal values the step is 0, so where the gap is read inside a tie does not matter
    steps = np.diff(merged)
    steps *= gap[:-1]
    wasserstein = float(np.sum(steps))
    # the CDFs are right-continuous: read them at the last of equal values
    last = np.empty(len(merged), dtype=bool)
    np.not_equal(merged[1:], merged[:-1], out=last[:-1])
    last[-1] = True
    statistic = float(np.max(gap) if last.all() else np.max(gap[last]))
    return _ks_test(ref, cur, statistic), wasserstein


def _ks_test(
    ref: npt.NDArray[np.float64], cur: npt.NDArray[np.float64], statistic: float
) -> StatisticalTest:
    """The two-sided KS test as ``scipy.stats.ks_2samp(ref, cur)`` (method ``auto``) gives it.

    scipy computes the exact p-value when neither sample has more than ``KS_EXACT_MAX_N``
    values; those samples are small, so scipy itself does it. Above that, scipy's asymptotic
    p-value: the Kolmogorov distribution's survival function at D for n = round(m·n / (m + n)).
    """
    import numpy as np
    from scipy import stats

    n_ref, n_cur = len(ref), len(cur)
    if max(n_ref, n_cur) <= KS_EXACT_MAX_N:
        # scipy falls back from the exact to the asymptotic p-value on its own and says so;
        # catch_warnings swaps a process-wide filter list, so columns compared on several
        # threads take turns (the exact path only runs up to KS_EXACT_MAX_N values: cheap)
        with _WARNINGS_LOCK, warnings.catch_warnings():
            warnings.filterwarnings("ignore", "ks_2samp: Exact calculation", RuntimeWarning)
            exact = stats.ks_2samp(ref, cur)
        return StatisticalTest(float(exact.statistic), float(exact.pvalue))
    larger, smaller = float(max(n_ref, n_cur)), float(min(n_ref, n_cur))
    effective_n = np.round(larger * smaller / (larger + smaller))
    pvalue = float(np.clip(stats.distributions.kstwo.sf(statistic, effective_n), 0.0, 1.0))
    return StatisticalTest(statistic, pvalue)


def _categorical_drift(
    base: ColumnDrift,
    ref_counts: Mapping[Any, int],
    cur_counts: Mapping[Any, int],
    rule: DriftRule,
) -> ColumnDrift:
    import numpy as np

    categories = sorted(set(ref_counts) | set(cur_counts), key=lambda v: (type(v).__name__, v))
    ref = np.array([ref_counts.get(c, 0) for c in categories], dtype=np.float64)
    cur = np.array([cur_counts.get(c, 0) for c in categories], dtype=np.float64)
    chi2 = _chi_squared(ref, cur)
    cramers_v = math.sqrt(chi2.statistic / (ref.sum() + cur.sum()))
    p, q = ref / ref.sum(), cur / cur.sum()
    drifted = chi2.pvalue < rule.alpha and cramers_v >= rule.min_cramers_v
    reason = _reason(
        drifted, "chi-squared", chi2, "Cramér's V", cramers_v, rule.alpha, rule.min_cramers_v
    )
    return _replace(
        base,
        chi_squared_test=chi2,
        cramers_v=cramers_v,
        js_distance=_js_distance(p, q),
        tv_distance=_tv_distance(p, q),
        l_infinity_distance=_l_infinity_distance(p, q),
        drift_detected=drifted,
        reason=reason,
    )


def _reason(
    drifted: bool,
    test_name: str,
    test: StatisticalTest,
    effect_name: str,
    effect: float,
    alpha: float,
    min_effect: float,
) -> str:
    p_side = "<" if test.pvalue < alpha else ">="
    e_side = ">=" if effect >= min_effect else "<"
    verdict = "drift" if drifted else "no drift"
    return (
        f"{verdict}: {test_name} p-value {test.pvalue:.3g} {p_side} alpha {alpha:g}, "
        f"{effect_name} {effect:.3g} {e_side} {min_effect:g}"
    )


def _binned_shares(
    ref: npt.NDArray[np.float64], cur: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Shares of two **sorted** samples in bins cut at the reference's deciles.

    Interior edges are the reference's quantiles at 1/10 … 9/10 with duplicates removed (a
    column with few distinct values gets fewer bins); bins are right-closed and the outer two
    are open-ended, so every current value falls in a bin. On sorted samples the counts are
    differences of the positions of the edges.
    """
    import numpy as np

    # arange / PSI_BINS gives 0.3 exactly where linspace gives 0.30000000000000004: on a run
    # of ties that ulp moves the interpolated edge just off the tied value, and every tie
    # into the next bin
    edges = np.unique(np.quantile(ref, np.arange(1, PSI_BINS) / PSI_BINS))

    def shares(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        at_or_below = np.searchsorted(values, edges, side="right")
        counts = np.diff(at_or_below, prepend=0, append=len(values))
        return counts / len(values)

    return shares(ref), shares(cur)


def _chi_squared(ref: npt.NDArray[np.float64], cur: npt.NDArray[np.float64]) -> StatisticalTest:
    """Pearson's test of homogeneity on the 2-by-k table of counts, without Yates' correction."""
    from scipy import stats

    if len(ref) < 2:
        return StatisticalTest(0.0, 1.0)  # one category on both sides: nothing can differ
    result = stats.chi2_contingency([ref, cur], correction=False)
    return StatisticalTest(float(result.statistic), float(result.pvalue))


def _psi(p: npt.NDArray[np.float64], q: npt.NDArray[np.float64]) -> float:
    import numpy as np

    p = np.where(p == 0, PSI_EPSILON, p)
    q = np.where(q == 0, PSI_EPSILON, q)
    return float(np.sum((q - p) * np.log(q / p)))


def _js_distance(p: npt.NDArray[np.float64], q: npt.NDArray[np.float64]) -> float:
    """√(½ KL(P‖M) + ½ KL(Q‖M)) in base 2; 0 · log 0 = 0, and never NaN for equal inputs."""
    import numpy as np

    m = (p + q) / 2

    def kl(a: npt.NDArray[np.float64]) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log(a[nz] / m[nz]))) / math.log(JS_BASE)

    return math.sqrt(max(0.5 * kl(p) + 0.5 * kl(q), 0.0))


def _tv_distance(p: npt.NDArray[np.float64], q: npt.NDArray[np.float64]) -> float:
    import numpy as np

    return float(0.5 * np.sum(np.abs(p - q)))


def _l_infinity_distance(p: npt.NDArray[np.float64], q: npt.NDArray[np.float64]) -> float:
    import numpy as np

    return float(np.max(np.abs(p - q)))
