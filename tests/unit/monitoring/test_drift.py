"""Every drift metric against a scipy or numpy reference, the edge cases and the sample rule."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial import distance

from lakestack.errors import MonitorError
from lakestack.monitoring import (
    ColumnDrift,
    DriftRule,
    StatisticalTest,
    column_drift,
    table_drift,
)
from lakestack.monitoring import drift as drift_module
from lakestack.monitoring.drift import PSI_EPSILON

RNG = np.random.default_rng(7)
REF = RNG.normal(10.0, 2.0, 2_000)
CUR = RNG.normal(10.6, 2.5, 1_500)


def decile_shares(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The documented binning, written independently with np.histogram on closed edges."""
    edges = np.unique(np.quantile(ref, np.arange(1, 10) / 10))
    lo, hi = min(ref.min(), cur.min()) - 1, max(ref.max(), cur.max()) + 1
    # np.histogram bins are left-closed; negate to get right-closed bins (e_{i-1}, e_i]
    full = np.concatenate([[lo], edges, [hi]])
    p = np.histogram(-ref, bins=-full[::-1])[0][::-1] / len(ref)
    q = np.histogram(-cur, bins=-full[::-1])[0][::-1] / len(cur)
    return p, q


def test_numeric_metrics_match_scipy() -> None:
    drift = column_drift(REF, CUR, column_name="x")
    ks = stats.ks_2samp(REF, CUR)
    assert drift.kind == "numeric"
    assert drift.ks_test is not None
    assert drift.ks_test.statistic == pytest.approx(ks.statistic)
    assert drift.ks_test.pvalue == pytest.approx(ks.pvalue)
    assert drift.wasserstein_distance == pytest.approx(stats.wasserstein_distance(REF, CUR))
    assert drift.wasserstein_normed == pytest.approx(
        stats.wasserstein_distance(REF, CUR) / np.std(REF)
    )
    p, q = decile_shares(REF, CUR)
    assert drift.js_distance == pytest.approx(distance.jensenshannon(p, q, base=2))
    assert drift.tv_distance == pytest.approx(0.5 * np.abs(p - q).sum())
    assert drift.l_infinity_distance == pytest.approx(np.abs(p - q).max())
    pe, qe = np.where(p == 0, PSI_EPSILON, p), np.where(q == 0, PSI_EPSILON, q)
    assert drift.population_stability_index == pytest.approx(np.sum((qe - pe) * np.log(qe / pe)))
    assert drift.chi_squared_test is None and drift.cramers_v is None
    assert drift.drift_detected


def test_categorical_metrics_match_scipy() -> None:
    ref = np.array(["a"] * 500 + ["b"] * 300 + ["c"] * 200, dtype=object)
    cur = np.array(["a"] * 350 + ["b"] * 350 + ["c"] * 250 + ["d"] * 50, dtype=object)
    drift = column_drift(ref, cur)
    table = np.array([[500, 300, 200, 0], [350, 350, 250, 50]])
    chi2 = stats.chi2_contingency(table, correction=False)
    p, q = table[0] / 1000, table[1] / 1000
    assert drift.kind == "categorical"
    assert drift.chi_squared_test is not None
    assert drift.chi_squared_test.statistic == pytest.approx(chi2.statistic)
    assert drift.chi_squared_test.pvalue == pytest.approx(chi2.pvalue)
    assert drift.cramers_v == pytest.approx(math.sqrt(chi2.statistic / 2000))
    assert drift.js_distance == pytest.approx(distance.jensenshannon(p, q, base=2))
    assert drift.tv_distance == pytest.approx(0.15)
    assert drift.tv_distance == pytest.approx(0.5 * np.abs(p - q).sum())
    assert drift.l_infinity_distance == pytest.approx(0.15)
    assert drift.ks_test is None and drift.wasserstein_distance is None
    assert drift.population_stability_index is None
    assert drift.drift_detected


def test_equal_samples_show_no_drift() -> None:
    drift = column_drift(REF, REF.copy())
    assert drift.ks_test is not None and drift.ks_test.statistic == 0.0
    assert drift.ks_test.pvalue == pytest.approx(1.0)
    assert drift.js_distance == 0.0
    assert drift.population_stability_index == 0.0
    assert drift.wasserstein_distance == 0.0
    assert not drift.drift_detected
    assert drift.reason.startswith("no drift: KS p-value 1 >= alpha 0.05")


def test_arrow_inputs_exclude_and_count_nulls_and_nan() -> None:
    ref = pa.chunked_array([[1.0, None, 2.0], [float("nan"), 3.0]])
    cur = pa.array([1.0, 2.0, None, None])
    drift = column_drift(ref, cur, rule=DriftRule(min_count=1))
    assert (drift.count_cmp, drift.num_missing_cmp) == (3, 2)
    assert (drift.count, drift.num_missing) == (2, 2)
    assert drift.ks_test is not None
    assert drift.ks_test.statistic == pytest.approx(stats.ks_2samp([1, 2, 3], [1, 2]).statistic)


def test_numpy_object_nulls_are_excluded() -> None:
    drift = column_drift(
        np.array(["a", None, "b"], dtype=object),
        np.array(["a", "a", None], dtype=object),
        rule=DriftRule(min_count=1),
    )
    assert (drift.count_cmp, drift.num_missing_cmp, drift.count, drift.num_missing) == (2, 1, 2, 1)


def test_empty_window_declares_nothing() -> None:
    drift = column_drift(REF, np.array([], dtype=np.float64), column_name="x")
    assert drift.count == 0
    assert drift.metrics() == {
        "ks_test": None,
        "chi_squared_test": None,
        "js_distance": None,
        "wasserstein_distance": None,
        "population_stability_index": None,
        "tv_distance": None,
        "l_infinity_distance": None,
    }
    assert not drift.drift_detected
    assert drift.reason == "too few values: the window has 0, fewer than min_count 30"


def test_all_nulls_on_both_sides() -> None:
    drift = column_drift(pa.nulls(40), pa.nulls(50))
    assert (drift.count, drift.count_cmp, drift.num_missing, drift.num_missing_cmp) == (
        0,
        0,
        50,
        40,
    )
    assert drift.reason == "too few values: the reference has 0, fewer than min_count 30"


def test_all_nulls_on_one_side_takes_the_kind_of_the_other() -> None:
    drift = column_drift(pa.array([None] * 40, pa.float64()), REF)
    assert drift.kind == "numeric" and drift.count_cmp == 0 and drift.ks_test is None


def test_constant_columns() -> None:
    same = column_drift(np.full(100, 3.0), np.full(100, 3.0))
    assert same.ks_test is not None and same.ks_test.statistic == 0.0
    assert same.wasserstein_normed == 0.0 and same.tv_distance == 0.0
    assert not same.drift_detected
    moved = column_drift(np.full(100, 3.0), np.full(100, 5.0))
    assert moved.ks_test is not None and moved.ks_test.statistic == 1.0
    assert moved.wasserstein_distance == pytest.approx(2.0)
    assert moved.wasserstein_normed == pytest.approx(2.0 / 1e-3)
    assert moved.tv_distance == 1.0 and moved.l_infinity_distance == 1.0
    assert moved.js_distance == pytest.approx(1.0)
    eps = PSI_EPSILON
    assert moved.population_stability_index == pytest.approx(2 * (1 - eps) * math.log(1 / eps))
    assert moved.drift_detected


def test_single_category_on_both_sides() -> None:
    drift = column_drift(pa.array(["a"] * 50), pa.array(["a"] * 60))
    assert drift.chi_squared_test is not None
    assert drift.chi_squared_test.as_dict() == {"statistic": 0.0, "pvalue": 1.0}
    assert drift.cramers_v == 0.0 and not drift.drift_detected


def test_categories_only_on_one_side() -> None:
    drift = column_drift(pa.array(["a"] * 50), pa.array(["b"] * 50))
    assert drift.tv_distance == 1.0 and drift.l_infinity_distance == 1.0
    assert drift.js_distance == pytest.approx(1.0)
    assert drift.cramers_v == pytest.approx(1.0)
    assert drift.drift_detected


def test_booleans_and_dictionaries_are_categorical() -> None:
    booleans = column_drift(np.array([True, False] * 50), np.array([True] * 100))
    assert booleans.kind == "categorical" and booleans.tv_distance == pytest.approx(0.5)
    dictionary = pa.array(["x", "y"] * 50).dictionary_encode()
    assert column_drift(dictionary, dictionary).tv_distance == 0.0


def test_minimum_sample_rule() -> None:
    small_ref, small_cur = np.zeros(10), np.ones(10)
    assert not column_drift(small_ref, small_cur).drift_detected
    drift = column_drift(small_ref, small_cur, rule=DriftRule(min_count=10))
    assert drift.drift_detected
    assert drift.ks_test is not None and drift.ks_test.statistic == 1.0


def test_a_huge_sample_does_not_flag_a_negligible_shift() -> None:
    rng = np.random.default_rng(1)
    ref, cur = rng.normal(0, 1, 200_000), rng.normal(0.02, 1, 200_000)
    drift = column_drift(ref, cur)
    assert drift.ks_test is not None and drift.ks_test.pvalue < 0.05
    assert drift.ks_test.statistic < 0.1
    assert not drift.drift_detected
    assert "D 0.00" in drift.reason and "< 0.1" in drift.reason


def test_a_large_categorical_sample_needs_an_effect_size() -> None:
    ref = np.array(["a"] * 50_000 + ["b"] * 50_000, dtype=object)
    cur = np.array(["a"] * 51_000 + ["b"] * 49_000, dtype=object)
    drift = column_drift(ref, cur)
    assert drift.chi_squared_test is not None and drift.chi_squared_test.pvalue < 0.05
    assert drift.cramers_v is not None and drift.cramers_v < 0.1
    assert not drift.drift_detected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_count": 0}, "min_count 0 is not allowed: give a count of at least 1"),
        ({"alpha": 1.5}, "alpha 1.5 is not allowed: give a level in (0, 1)"),
        ({"min_cramers_v": -1}, "min_cramers_v -1 is not allowed: give an effect size in [0, 1]"),
    ],
)
def test_bad_rules_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(MonitorError) as err:
        DriftRule(**kwargs)  # type: ignore[arg-type]
    assert str(err.value) == message


def test_mismatched_kinds_are_refused() -> None:
    with pytest.raises(MonitorError) as err:
        column_drift(pa.array([1, 2]), pa.array(["a", "b"]), column_name="age")
    assert str(err.value) == (
        "column 'age' is int64 in the reference and string in the current window: "
        "cast both sides to one type"
    )


def test_unsupported_types_and_kinds_are_refused() -> None:
    stamps = pa.array([0, 1], pa.timestamp("us"))
    with pytest.raises(MonitorError, match="column 'ts' has type timestamp\\[us\\]: drift is"):
        column_drift(stamps, stamps, column_name="ts")
    with pytest.raises(MonitorError, match="kind 'ordinal' is not known: give one of numeric"):
        column_drift(REF, CUR, kind="ordinal")  # type: ignore[arg-type]
    with pytest.raises(MonitorError, match=r"has shape \(2, 2\): give a one-dimensional array"):
        column_drift(np.zeros((2, 2)), REF)


def test_numbers_can_be_compared_as_categories() -> None:
    drift = column_drift(np.array([1, 2] * 20), np.array([1, 3] * 20), kind="categorical")
    assert drift.kind == "categorical" and drift.l_infinity_distance == pytest.approx(0.5)


def test_table_drift_picks_the_columns_with_a_kind() -> None:
    ref = pa.table(
        {"x": REF[:100], "s": ["a"] * 100, "ts": pa.array(range(100), pa.timestamp("s"))}
    )
    cur = pa.table(
        {"x": CUR[:100], "s": ["b"] * 100, "ts": pa.array(range(100), pa.timestamp("s"))}
    )
    drifts = table_drift(ref, cur)
    assert [(d.column_name, d.kind) for d in drifts] == [("x", "numeric"), ("s", "categorical")]
    assert all(isinstance(d, ColumnDrift) for d in drifts)
    with pytest.raises(MonitorError) as err:
        table_drift(ref, cur.drop_columns(["s"]), ["s"])
    assert str(err.value) == "column 's' is not in the current table: its columns are x, ts"


def test_metrics_use_the_databricks_names() -> None:
    metrics = column_drift(REF, CUR).metrics()
    assert list(metrics) == [
        "ks_test",
        "chi_squared_test",
        "js_distance",
        "wasserstein_distance",
        "population_stability_index",
        "tv_distance",
        "l_infinity_distance",
    ]
    assert set(metrics["ks_test"]) == {"statistic", "pvalue"}


finite = st.floats(-1e6, 1e6, allow_nan=False, width=32)


@settings(max_examples=40, deadline=None)
@given(st.lists(finite, min_size=1, max_size=60), st.lists(finite, min_size=1, max_size=60))
def test_numeric_properties(ref: list[float], cur: list[float]) -> None:
    a, b = np.array(ref), np.array(cur)
    drift = column_drift(a, b, rule=DriftRule(min_count=1))
    back = column_drift(b, a, rule=DriftRule(min_count=1))
    assert drift.ks_test is not None and back.ks_test is not None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation", RuntimeWarning)
        assert drift.ks_test.statistic == pytest.approx(stats.ks_2samp(a, b).statistic)
    assert drift.wasserstein_distance == pytest.approx(stats.wasserstein_distance(a, b))
    assert drift.ks_test.statistic == pytest.approx(back.ks_test.statistic)
    for value in (drift.js_distance, drift.tv_distance, drift.l_infinity_distance):
        assert value is not None and 0.0 <= value <= 1.0 + 1e-12
    assert drift.l_infinity_distance <= drift.tv_distance + 1e-12  # type: ignore[operator]
    assert drift.population_stability_index is not None
    assert drift.population_stability_index >= -1e-12


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.sampled_from("abcde"), min_size=1, max_size=80),
    st.lists(st.sampled_from("abcdef"), min_size=1, max_size=80),
)
def test_categorical_properties(ref: list[str], cur: list[str]) -> None:
    drift = column_drift(pa.array(ref), pa.array(cur), rule=DriftRule(min_count=1))
    cats = sorted(set(ref) | set(cur))
    p = np.array([ref.count(c) for c in cats]) / len(ref)
    q = np.array([cur.count(c) for c in cats]) / len(cur)
    assert drift.js_distance == pytest.approx(distance.jensenshannon(p, q, base=2), abs=1e-9)
    assert drift.tv_distance == pytest.approx(0.5 * np.abs(p - q).sum())
    assert drift.l_infinity_distance == pytest.approx(np.abs(p - q).max())
    assert drift.cramers_v is not None and 0.0 <= drift.cramers_v <= 1.0 + 1e-9


# the fast numeric path (one sort a side, one merge) against scipy ------------------------------

present = st.one_of(st.sampled_from([-2.0, 0.0, 0.5, 3.0]), finite)  # few values: ties
maybe_missing = st.one_of(present, present, present, st.just(math.nan), st.none())


def scipy_reference(values: list[float | None]) -> np.ndarray:
    return np.array([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)


def assert_matches_scipy(drift: ColumnDrift, a: np.ndarray, b: np.ndarray) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation", RuntimeWarning)
        ks = stats.ks_2samp(a, b)
    assert drift.ks_test is not None
    assert drift.ks_test.statistic == pytest.approx(ks.statistic, rel=1e-12, abs=1e-15)
    assert drift.ks_test.pvalue == pytest.approx(ks.pvalue, rel=1e-9, abs=1e-300)
    wasserstein = stats.wasserstein_distance(a, b)
    assert drift.wasserstein_distance == pytest.approx(wasserstein, rel=1e-12, abs=1e-12)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(maybe_missing, min_size=1, max_size=60),
    st.lists(maybe_missing, min_size=1, max_size=60),
)
def test_fast_path_equals_scipy_with_ties_nan_and_nulls(
    ref: list[float | None], cur: list[float | None]
) -> None:
    a, b = scipy_reference(ref), scipy_reference(cur)
    drift = column_drift(
        pa.array(ref, pa.float64()), pa.array(cur, pa.float64()), rule=DriftRule(min_count=1)
    )
    assert (drift.count_cmp, drift.num_missing_cmp) == (len(a), len(ref) - len(a))
    assert (drift.count, drift.num_missing) == (len(b), len(cur) - len(b))
    if len(a) == 0 or len(b) == 0:
        assert drift.ks_test is None and drift.reason.startswith("too few values")
        return
    assert_matches_scipy(drift, a, b)
    p, q = decile_shares(a, b)
    assert drift.tv_distance == pytest.approx(0.5 * np.abs(p - q).sum())


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_ref=st.integers(10_001, 14_000),
    n_cur=st.integers(200, 14_000),
    shift=st.floats(0.0, 0.3),
    decimals=st.sampled_from([None, 1, 2]),
)
def test_asymptotic_ks_pvalue_equals_scipy(
    seed: int, n_ref: int, n_cur: int, shift: float, decimals: int | None
) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0.0, 1.0, n_ref), rng.normal(shift, 1.0, n_cur)
    if decimals is not None:  # many ties
        a, b = np.round(a, decimals), np.round(b, decimals)
    drift = column_drift(a, b)
    assert_matches_scipy(drift, a, b)


@pytest.mark.parametrize(
    ("n_ref", "n_cur"), [(10_000, 10_000), (10_000, 37), (10_001, 10_000), (37, 10_001)]
)
def test_exact_and_asymptotic_ks_switch_where_scipy_switches(n_ref: int, n_cur: int) -> None:
    rng = np.random.default_rng(n_ref + n_cur)
    a, b = rng.normal(0.0, 1.0, n_ref), rng.normal(0.05, 1.0, n_cur)
    assert_matches_scipy(column_drift(a, b), a, b)


def test_nan_and_infinities_in_numpy_input() -> None:
    a = np.array([np.nan, -np.inf, 1.0, 2.0, np.nan, 3.0])
    b = np.array([1.0, np.inf, 2.5, np.nan])
    drift = column_drift(a, b, rule=DriftRule(min_count=1))
    assert (drift.count_cmp, drift.num_missing_cmp, drift.count, drift.num_missing) == (4, 2, 3, 1)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    ks = stats.ks_2samp(a, b)
    assert drift.ks_test == StatisticalTest(float(ks.statistic), float(ks.pvalue))
    with np.errstate(invalid="ignore"):
        assert drift.wasserstein_distance == stats.wasserstein_distance(a, b) == math.inf


def test_table_drift_on_threads_equals_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    ref = pa.table({f"c{i}": rng.normal(0, 1, 300) for i in range(5)} | {"s": ["a", "b"] * 150})
    cur = pa.table({f"c{i}": rng.normal(i / 10, 1, 200) for i in range(5)} | {"s": ["a"] * 200})
    serial = table_drift(ref, cur)
    monkeypatch.setattr(drift_module, "PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr(drift_module, "_drift_threads", lambda: 3)
    assert table_drift(ref, cur) == serial
    assert [d.column_name for d in serial] == ["c0", "c1", "c2", "c3", "c4", "s"]


def test_decile_edges_on_ties_are_the_documented_quantiles() -> None:
    # linspace's 0.30000000000000004 and 0.7000000000000001 put edges one ulp off the tied
    # values here, moving ties into the next bin: TV 0.4 instead of 0.25
    ref = np.array([-2.0, -2.0, 0.0, 0.0, 0.0, 0.5, 3.0, 3.0, 3.0, 3.0])
    cur = np.array([-2.0, 1.5, 0.0, 0.0])
    drift = column_drift(ref, cur, rule=DriftRule(min_count=1))
    p, q = decile_shares(ref, cur)
    assert drift.tv_distance == pytest.approx(0.25)
    assert drift.tv_distance == pytest.approx(0.5 * np.abs(p - q).sum())
    assert drift.l_infinity_distance == pytest.approx(np.abs(p - q).max())
