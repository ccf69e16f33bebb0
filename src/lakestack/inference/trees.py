"""Faster predictions for scikit-learn's HistGradientBoosting models, bit for bit the same.

A HistGradientBoosting model walks each tree row by row in Cython: a data-dependent branch per
node, so about 30 ns a tree a row, and 2M rows x 100 trees take 13 CPU-seconds. Two faster
copies of the model give the same predictions:

* **Leaf masks** (the QuickScorer idea): a node on feature ``f`` sends a value left when it is
  ``<= threshold``. Per feature, the thresholds its nodes use, sorted, cut the values into
  intervals (NaN is one more); per tree and interval, a bit mask says which of the tree's leaves
  the value still allows (the bits of every leaf under a branch not taken are cleared). ANDing
  one mask per feature leaves exactly one bit, the leaf the walk would reach. That is a few
  array gathers and bit operations per tree, without a branch: about 3x faster than the walk.
  The leaf values are added in the model's order (baseline, then tree by tree), so the sums are
  the model's to the last bit. Taken when every tree has at most 64 leaves and the tables are
  small (``MASK_TABLE_BYTES``).
* **Binned**: each node's threshold is one of the bin edges it learnt, so mapping the features
  to their bins once (``_bin_mapper.transform``: one byte per value) and walking the trees on
  the bins (``predict_binned``) takes the same branches in about half the time. scikit-learn
  takes this path itself while fitting (``_in_fit``).

Both rely on scikit-learn internals (``_preprocess_X``, ``_bin_mapper``, ``_predictors``,
``_predict_iterations``, the node records), so a copy is taken only when all of them are there,
for models without categorical features, and only after it predicted exactly what the model does
on a sample of the data; otherwise the model's own ``predict`` is used.
"""

from __future__ import annotations

import copy
import logging
import types
from typing import Any

__all__ = ["MASK_TABLE_BYTES", "binned_copy", "masked_copy", "verified"]

_log = logging.getLogger(__name__)
_NEEDED = ("_preprocess_X", "_bin_mapper", "_predictors", "_predict_iterations", "_raw_predict")
CHECK_ROWS = 2_000
MASK_TABLE_BYTES = 64 * 2**20  # the leaf-mask tables of a model, at most (else: binned)
# trees x rows of one step of the masked walk: its buffers (~6 MiB) stay in the CPU's cache
# (2**18 took 2.8 CPU-s for 2M rows x 100 trees, 2**20 3.3 s, 2**21 4.8 s)
_MASK_CELLS = 2**18


def _hist_gradient_boosting(model: Any) -> bool:
    """Whether ``model`` is a fitted HistGradientBoosting model these copies can take."""
    try:
        from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import (
            BaseHistGradientBoosting,
        )
    except ImportError:  # pragma: no cover - another scikit-learn layout
        return False
    if not isinstance(model, BaseHistGradientBoosting):
        return False
    if any(not hasattr(model, name) for name in _NEEDED):
        return False
    categorical = getattr(model, "is_categorical_", None)
    # unknown categories take another path in the raw-feature trees
    return categorical is None or not bool(categorical.any())


def masked_copy(model: Any) -> Any | None:
    """A shallow copy of ``model`` that predicts through leaf masks; None if it cannot.

    The copy shares the fitted trees; its ``predict``, ``predict_proba`` and
    ``decision_function`` are scikit-learn's own, over the raw predictions of the masks.
    """
    if not _hist_gradient_boosting(model):
        return None
    try:
        forests = _Masks.of(model)
    except Exception:  # node records of another shape: no copy
        _log.debug("no leaf masks for %s", type(model).__name__, exc_info=True)
        return None
    if forests is None:
        return None

    def raw_predict(self: Any, x: Any, n_threads: int | None = None) -> Any:
        return forests.raw_predict(self._preprocess_X(x, reset=False))

    fast = copy.copy(model)
    fast._raw_predict = types.MethodType(raw_predict, fast)
    return fast


class _Masks:
    """A model's trees as leaf-mask tables, one set per output (class)."""

    def __init__(
        self,
        features: list[tuple[int, Any]],
        tables: list[list[Any]],
        values: list[Any],
        offsets: list[Any],
        baseline: Any,
    ) -> None:
        self.features = features  # (column, sorted thresholds) of the features split on
        self.tables = tables  # [output][feature]: (trees, intervals + NaN) masks
        self.values = values  # [output]: leaf values, (trees * slots,) flat
        self.offsets = offsets  # [output]: (trees, 1), the first slot of each tree
        self.baseline = baseline  # (outputs,)

    @classmethod
    def of(cls, model: Any) -> _Masks | None:
        """The tables of ``model``; None when a tree has over 64 leaves or they are too big."""
        import numpy as np

        outputs = int(model.n_trees_per_iteration_)
        trees = [[it[k] for it in model._predictors] for k in range(outputs)]
        leaves = max(int(t.nodes["is_leaf"].sum()) for per in trees for t in per)
        if leaves > 64:
            return None
        dtype, slots = (np.uint32, 32) if leaves <= 32 else (np.uint64, 64)
        split = [t.nodes[t.nodes["is_leaf"] == 0] for per in trees for t in per]
        columns = sorted({int(f) for s in split for f in s["feature_idx"]})
        cuts = {
            f: np.unique(np.concatenate([s["num_threshold"][s["feature_idx"] == f] for s in split]))
            for f in columns
        }
        size = sum(len(c) + 2 for c in cuts.values()) * sum(map(len, trees))
        if size * np.dtype(dtype).itemsize > MASK_TABLE_BYTES:
            return None
        tables, values, offsets = [], [], []
        for per in trees:
            masks = {f: np.full((len(per), len(cuts[f]) + 2), ~dtype(0), dtype) for f in columns}
            value = np.zeros((len(per), slots))
            for i, tree in enumerate(per):
                order = _fill(tree.nodes, i, masks, cuts, dtype)
                value[i, : len(order)] = tree.nodes["value"][order]
            tables.append([masks[f] for f in columns])
            values.append(value.ravel())
            offsets.append((np.arange(len(per), dtype=np.intp) * slots)[:, None])
        features = [(f, cuts[f]) for f in columns]
        baseline = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(-1)
        return cls(features, tables, values, offsets, baseline)

    def raw_predict(self, x: Any) -> Any:
        """``_raw_predict``'s ``(rows, outputs)`` array for the preprocessed features ``x``."""
        import numpy as np

        rows = x.shape[0]
        codes = []
        for column, cuts in self.features:  # the interval of each value; NaN the last one
            values = x[:, column]
            code = np.searchsorted(cuts, values, side="left")
            missing = np.isnan(values)
            if missing.any():
                code[missing] = len(cuts) + 1
            codes.append(code)
        raw = np.empty((rows, len(self.tables)), dtype=np.float64, order="F")
        for k, tables in enumerate(self.tables):
            trees = len(self.offsets[k])
            step = min(rows, max(256, min(65_536, _MASK_CELLS // max(trees, 1))))
            buffers = _Buffers(trees, step, tables[0].dtype if tables else np.uint32)
            for start in range(0, rows, step):
                stop = min(rows, start + step)
                part = [c[start:stop] for c in codes]
                raw[start:stop, k] = self._walk(k, tables, part, buffers.of(stop - start))
        return raw

    def _walk(self, k: int, tables: list[Any], codes: list[Any], buffers: _Buffers) -> Any:
        """The raw predictions of output ``k`` for one step of rows (their interval codes)."""
        import numpy as np

        alive, other, leaf, added = buffers.alive, buffers.other, buffers.leaf, buffers.added
        if not tables:  # no tree splits: every row gets the first leaf of every tree
            leaf[:] = 0
        else:  # mode="clip": no bounds check (the codes are in range), and no buffered copy
            np.take(tables[0], codes[0], axis=1, out=alive, mode="clip")
            for table, code in zip(tables[1:], codes[1:], strict=True):
                np.take(table, code, axis=1, out=other, mode="clip")
                np.bitwise_and(alive, other, out=alive)
            alive -= 1  # one bit set: the bits below it count the leaf
            np.bitwise_count(alive, out=buffers.count)
            np.copyto(leaf, buffers.count)
        leaf += self.offsets[k]
        added[0] = self.baseline[k]
        np.take(self.values[k], leaf, out=added[1:], mode="clip")
        # along the first axis numpy adds row after row: the model's order, the model's sums
        return np.add.reduce(added, axis=0)


class _Buffers:
    """The arrays of one step of the masked walk, allocated once per call (not per step)."""

    def __init__(self, trees: int, rows: int, dtype: Any) -> None:
        import numpy as np

        self._full: tuple[Any, ...] = (
            np.empty((trees, rows), dtype=dtype),
            np.empty((trees, rows), dtype=dtype),
            np.empty((trees, rows), dtype=np.uint8),
            np.empty((trees, rows), dtype=np.intp),
            np.empty((trees + 1, rows), dtype=np.float64),
        )
        self.rows = rows
        self.of(rows)

    def of(self, rows: int) -> _Buffers:
        """The buffers for ``rows`` rows (fewer than ``rows`` only in the last step)."""
        import numpy as np

        if rows != self.rows:  # a fresh contiguous set, so the sums keep their order
            self._full = tuple(np.empty((a.shape[0], rows), dtype=a.dtype) for a in self._full)
            self.rows = rows
        self.alive, self.other, self.count, self.leaf, self.added = self._full
        return self


def _fill(nodes: Any, tree: int, masks: dict[int, Any], cuts: dict[int, Any], dtype: Any) -> Any:
    """Clear, in ``tree``'s column of the masks, the leaves each value interval rules out.

    Returns the tree's leaves (node indices) from left to right: leaf ``j`` is bit ``j``.
    """
    import numpy as np

    order: list[int] = []
    under: dict[int, int] = {}  # node -> the bits of the leaves under it

    def visit(node: int) -> int:
        if nodes["is_leaf"][node]:
            order.append(node)
            under[node] = 1 << (len(order) - 1)
        else:
            under[node] = visit(int(nodes["left"][node])) | visit(int(nodes["right"][node]))
        return under[node]

    visit(0)
    full = int(np.iinfo(dtype).max)
    for node in np.flatnonzero(nodes["is_leaf"] == 0):
        feature = int(nodes["feature_idx"][node])
        edges = cuts[feature]
        at = int(np.searchsorted(edges, nodes["num_threshold"][node]))
        keep_left = dtype(~under[int(nodes["right"][node])] & full)  # the value went left
        keep_right = dtype(~under[int(nodes["left"][node])] & full)
        column = masks[feature][tree]
        column[: at + 1] &= keep_left  # value <= threshold
        column[at + 1 : len(edges) + 1] &= keep_right
        column[len(edges) + 1] &= keep_left if nodes["missing_go_to_left"][node] else keep_right
    first = next(iter(masks.values()), None)
    if first is not None:  # bits above the last leaf stay clear
        first[tree] &= dtype(under[0])
    return np.asarray(order, dtype=np.intp)


def binned_copy(model: Any) -> Any | None:
    """A shallow copy of ``model`` whose predictions walk binned features; None if it cannot.

    The copy shares the fitted trees; its ``predict``, ``predict_proba`` and
    ``decision_function`` are scikit-learn's own, over the binned raw predictions.
    """
    if not _hist_gradient_boosting(model):
        return None
    fast = copy.copy(model)
    fast._raw_predict = types.MethodType(_binned_raw_predict, fast)
    return fast


def _binned_raw_predict(self: Any, x: Any, n_threads: int | None = None) -> Any:
    """``_raw_predict`` of scikit-learn's HistGradientBoosting, on the features' bins."""
    import numpy as np
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    x = self._preprocess_X(x, reset=False)
    binned = self._bin_mapper.transform(x)
    raw = np.zeros(
        shape=(x.shape[0], self.n_trees_per_iteration_),
        dtype=self._baseline_prediction.dtype,
        order="F",
    )
    raw += self._baseline_prediction
    threads = _openmp_effective_n_threads(n_threads)
    self._predict_iterations(binned, self._predictors, raw, True, threads)
    return raw


def verified(model: Any, sample: Any, methods: tuple[str, ...] = ("predict",)) -> Any:
    """The fastest copy of ``model`` that predicts exactly what ``model`` does on ``sample``.

    The leaf-mask copy first, then the binned one.

    Args:
        model: A fitted scikit-learn estimator.
        sample: Rows to compare on (the first rows of the data to score).
        methods: The methods that will be used (``predict``, ``predict_proba``).

    Returns:
        A fast copy, or ``model`` itself when there is none or they disagree.
    """
    rows = sample.iloc[:CHECK_ROWS] if hasattr(sample, "iloc") else sample[:CHECK_ROWS]
    for make in (masked_copy, binned_copy):
        fast = make(model)
        if fast is not None and _agrees(fast, model, rows, methods, make.__name__):
            return fast
    return model


def _agrees(fast: Any, model: Any, rows: Any, methods: tuple[str, ...], kind: str) -> bool:
    import numpy as np

    try:
        same = all(np.array_equal(getattr(fast, m)(rows), getattr(model, m)(rows)) for m in methods)
    except Exception:  # an internal that changed shape: use the model as it is
        _log.debug("%s predictions failed for %s", kind, type(model).__name__, exc_info=True)
        return False
    if not same:
        _log.warning(
            "%s predictions of %s differ from its own; not predicting with them",
            kind,
            type(model).__name__,
        )
    return same
