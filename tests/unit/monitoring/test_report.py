"""What the monitoring report reads and draws, without tables or a browser: metric paths,
declared drift, the bundle's check thresholds, model events, where model ids went into service,
identifier columns, and the page's markup."""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from plotly.offline import get_plotlyjs

from lakestack.bundle import load_bundle
from lakestack.bundle.specs.monitors import QualityMonitorSpec
from lakestack.errors import ModelNotFoundError
from lakestack.monitoring import DriftRule, column_drift
from lakestack.monitoring.monitor import find_monitor
from lakestack.monitoring.report import render_report
from lakestack.monitoring.report_data import (
    DriftCell,
    ModelEvent,
    MonitorReport,
    ServiceStart,
    Threshold,
    check_thresholds,
    drift_declared,
    identifier_columns,
    metric_value,
    model_events,
    model_order,
    service_starts,
)

DAY = datetime(2026, 11, 20, tzinfo=timezone.utc)
SPEC = QualityMonitorSpec.model_validate(
    {
        "table_name": "main.mon.preds",
        "output_schema_name": "main.mon",
        "inference_log": {
            "problem_type": "PROBLEM_TYPE_CLASSIFICATION",
            "prediction_col": "prediction",
            "label_col": "churn",
            "timestamp_col": "timestamp",
            "model_id_col": "model_id",
            "granularities": ["1 day"],
        },
    }
)


def test_metric_value_reads_columns_and_struct_fields() -> None:
    row = {"accuracy_score": 0.9, "f1_score": {"macro": 0.8, "weighted": None}, "n": 3}
    assert metric_value(row, "accuracy_score") == 0.9
    assert metric_value(row, "f1_score.macro") == 0.8
    assert metric_value(row, "n") == 3.0
    for missing in ("f1_score.weighted", "f1_score.micro", "recall.macro", "f1_score"):
        assert metric_value(row, missing) is None
    assert metric_value({"x": float("nan"), "b": True, "s": "0.5"}, "x") is None
    assert metric_value({"b": True}, "b") is None and metric_value({"s": "0.5"}, "s") is None


def drift_row(
    reference: np.ndarray, current: np.ndarray, **extra: object
) -> tuple[dict, int, bool]:
    """A drift-table row of two samples as the refresh writes it, the window's count, and what
    ``column_drift`` decided."""
    drift = column_drift(pa.array(reference), pa.array(current))
    row = {**drift.metrics(), "count_delta": float(drift.count - drift.count_cmp), **extra}
    return row, drift.count, drift.drift_detected


@pytest.mark.parametrize(
    ("reference", "current"),
    [
        (["a"] * 500 + ["b"] * 500, ["a"] * 800 + ["b"] * 200),  # drifted
        (["a"] * 500 + ["b"] * 500, ["a"] * 520 + ["b"] * 480),  # not
        (["a"] * 50_000 + ["b"] * 50_000, ["a"] * 51_500 + ["b"] * 48_500),  # tiny p, V < 0.1
        (["a"] * 300 + ["b"] * 100, ["a"] * 100 + ["b"] * 500 + ["c"] * 50),  # unequal sizes
    ],
)
def test_categorical_drift_is_declared_as_column_drift_declares_it(
    reference: list[str], current: list[str]
) -> None:
    row, count, expected = drift_row(np.array(reference), np.array(current))
    assert drift_declared(row, count, DriftRule()) is expected


def test_numeric_drift_follows_the_ks_rule_and_a_stored_verdict_wins() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, 2000)
    for shift, expected in ((1.0, True), (0.0, False)):
        row, count, decided = drift_row(base, rng.normal(shift, 1, 2000))
        assert drift_declared(row, count, DriftRule()) is decided is expected
    small = {"ks_test": {"statistic": 0.05, "pvalue": 1e-9}}  # significant, negligible
    assert not drift_declared(small, 10**6, DriftRule())
    assert drift_declared({**small, "drift_detected": True}, None, DriftRule())
    assert not drift_declared({"ks_test": None, "chi_squared_test": None}, 10, DriftRule())
    chi = {"chi_squared_test": {"statistic": 500.0, "pvalue": 1e-9}, "count_delta": 0.0}
    assert not drift_declared(chi, None, DriftRule())  # no count: Cramér's V unknown


BUNDLE = """
bundle: {name: churn}
targets:
  dev: {default: true}
resources:
  quality_monitors:
    churn_monitor:
      table_name: main.mon.preds
      output_schema_name: main.mon
      inference_log: {problem_type: PROBLEM_TYPE_REGRESSION, prediction_col: prediction,
                      timestamp_col: timestamp, model_id_col: model_id, granularities: [1 day]}
  jobs:
    retraining:
      parameters: [{name: metric, default: root_mean_squared_error}, {name: limit, default: "12.5"}]
      tasks:
        - task_key: check
          python_wheel_task:
            package_name: lakestack
            entry_point: monitor_check
            named_parameters:
              table_name_under_monitor: main.mon.preds
              metric_to_monitor: "{{job.parameters.metric}}"
              metric_violation_threshold: "{{job.parameters.limit}}"
        - task_key: by_key
          python_wheel_task:
            package_name: lakestack
            entry_point: monitor_check
            parameters: [--table_name_under_monitor, churn_monitor, --metric_to_monitor=r2_score,
                         --metric_violation_threshold, "0.5", --greater_is_better, "true"]
        - task_key: elsewhere
          python_wheel_task:
            package_name: lakestack
            entry_point: monitor_check
            named_parameters: {table_name_under_monitor: main.mon.other, metric_to_monitor: mae,
                               metric_violation_threshold: "1"}
        - task_key: at_run_time
          python_wheel_task:
            package_name: lakestack
            entry_point: monitor_check
            named_parameters: {table_name_under_monitor: main.mon.preds, metric_to_monitor: mae,
                               metric_violation_threshold: "{{job.start_time.day}}"}
        - task_key: not_a_number
          python_wheel_task:
            package_name: lakestack
            entry_point: monitor_check
            named_parameters: {table_name_under_monitor: main.mon.preds, metric_to_monitor: mae,
                               metric_violation_threshold: high}
        - task_key: other_package
          python_wheel_task:
            package_name: mine
            entry_point: monitor_check
            named_parameters: {table_name_under_monitor: main.mon.preds, metric_to_monitor: mae,
                               metric_violation_threshold: "1"}
"""


def test_thresholds_come_from_the_bundles_check_tasks_on_the_monitors_table(
    tmp_path: Path,
) -> None:
    (tmp_path / "lakestack.yml").write_text(textwrap.dedent(BUNDLE), encoding="utf-8")
    bundle = load_bundle(tmp_path, environ={}, user="me")
    monitor = find_monitor(bundle.resources.quality_monitors, "churn_monitor")
    assert check_thresholds(bundle, monitor) == [
        Threshold("root_mean_squared_error", 12.5, "retraining", "check"),
        Threshold("r2_score", 0.5, "retraining", "by_key"),
    ]


@dataclass
class Version:
    version: int
    created_at: datetime
    champion_since: datetime | None = None


@dataclass
class FakeRegistry:
    models: dict[str, list[Version]] = field(default_factory=dict)

    def versions(self, name: str) -> list[Version]:
        if name not in self.models:
            raise ModelNotFoundError(f"model {name} does not exist")
        return self.models[name]


def test_model_events_are_the_versions_and_champion_changes_of_the_monitored_models() -> None:
    registry = FakeRegistry(
        {
            "main.a.m": [
                Version(1, DAY, DAY + timedelta(hours=1)),
                Version(2, DAY + timedelta(days=2), DAY + timedelta(days=3)),
                Version(3, DAY + timedelta(days=4)),
            ],
            "main.a.other": [Version(1, DAY)],
        }
    )
    ids = ["*", "main.a.m/1", "models:/main.a.m/2", "main.a.gone/4", "runs:/abc/model", "7"]
    events = model_events(registry, ids)  # type: ignore[arg-type]
    assert [(e.label, e.at - DAY) for e in events] == [
        ("v1 registered", timedelta(0)),
        ("v1 champion", timedelta(hours=1)),
        ("v2 registered", timedelta(days=2)),
        ("v2 champion", timedelta(days=3)),
        ("v3 registered", timedelta(days=4)),
    ]
    assert {e.model for e in events} == {"main.a.m"}


def test_model_ids_sort_all_models_first_then_by_version_number() -> None:
    ids = ["m/10", "m/2", "*", "a/1"]
    assert sorted(ids, key=model_order) == ["*", "a/1", "m/2", "m/10"]


def report(**changes: object) -> MonitorReport:
    windows = [(DAY + timedelta(days=i), DAY + timedelta(days=i + 1)) for i in range(3)]
    values = {
        "name": "churn_monitor",
        "spec": SPEC,
        "profile_table": "main.mon.preds_profile_metrics",
        "drift_table": "main.mon.preds_drift_metrics",
        "granularity": "1 day",
        "granularities": ["1 day", "1 week"],
        "refreshed_at": DAY + timedelta(days=3),
        "windows": windows,
        "rows": {start: 100 for start, _ in windows},
        "latest_rows": {"*": 100, "m/1": 100},
        "quality": {"accuracy_score": {"*": [(s, 0.9) for s, _ in windows]}},
        "drift": [
            DriftCell(windows[1][0], "<b>plan</b>", "CONSECUTIVE", 0.4, True, "KS D 0.5"),
            DriftCell(windows[2][0], "<b>plan</b>", "CONSECUTIVE", 0.1, False, "KS D 0.1"),
        ],
        "thresholds": [Threshold("accuracy_score", 0.8, "retraining", "check")],
        "events": [ModelEvent(DAY + timedelta(days=1, hours=2), "champion", "main.a.m", 2)],
        "latest_profile": [{"column_name": "<b>plan</b>", "data_type": "string", "count": 100}],
    }
    values.update(changes)
    return MonitorReport(**values)  # type: ignore[arg-type]


def test_the_page_embeds_plotly_once_and_nothing_from_the_network() -> None:
    page = render_report(report())
    assert page.count("plotly.js v") == 1  # the library's banner
    assert len(re.findall(r"<script\b", page)) == 3  # plotly.js and one per chart (two)
    markup = page.replace(get_plotlyjs(), "")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", markup)
    assert 'id="quality-0"' in page and 'id="drift-consecutive"' in page
    assert 'id="drift-baseline"' not in page  # no baseline rows: no chart
    assert "threshold: retraining.check" in page and "promotion (registry time)" in page
    assert "also in the tables: 1 week" in page


def test_names_from_the_tables_are_escaped_in_the_markup() -> None:
    page = render_report(report())
    body = re.sub(r"<script\b.*?</script>", "", page[page.index("<body>") :], flags=re.S)
    assert "<b>plan</b>" not in body
    assert "<td>&lt;b&gt;plan&lt;/b&gt;</td>" in body
    assert "CONSECUTIVE drift declared: &lt;b&gt;plan&lt;/b&gt; (2026-11-21 00:00 UTC)" in body


def test_a_report_without_labels_drift_or_registry_says_what_is_missing() -> None:
    page = render_report(
        report(
            quality={}, drift=[], events=[], thresholds=[], granularity=None, granularities=[None]
        )
    )
    assert "No model-quality metrics" in page
    assert "No drift yet" in page
    assert "None known: no registry given" in page
    assert 'id="events-table"' not in page
    assert "one window per refresh (snapshot)" in page
    assert "quality-0" not in page and "drift-consecutive" not in page


def test_a_threshold_on_a_metric_the_table_lacks_is_said_not_drawn() -> None:
    page = render_report(report(thresholds=[Threshold("mae", 1.0, "retraining", "check")]))
    assert "The check retraining.check watches mae, which the profile table does not hold." in page
    assert "threshold: retraining.check" not in page


WINDOWS = [(DAY + timedelta(days=i), DAY + timedelta(days=i + 1)) for i in range(4)]


def test_a_model_id_goes_into_service_in_its_first_window_after_the_first_models() -> None:
    at = [start for start, _ in WINDOWS]
    served = [("*", t) for t in at] + [("m/1", t) for t in at[:3]] + [("m/2", t) for t in at[2:]]
    served += [("runs:/abc/model", at[3]), ("other/1", at[0])]
    assert service_starts(served, WINDOWS) == [
        ServiceStart(at[2], "m/2"),
        ServiceStart(at[3], "runs:/abc/model"),
    ]
    assert service_starts([("*", at[0]), ("m/1", at[1])], WINDOWS) == []  # the first model
    assert service_starts([("*", at[0])], WINDOWS) == []


@pytest.mark.parametrize(
    ("promoted", "same"),
    [
        (timedelta(days=2, hours=14), True),  # during the first window it served
        (timedelta(days=1, hours=23), True),  # late in the window before
        (timedelta(days=0, hours=23), False),  # two windows before: another event
        (timedelta(days=3), False),  # after it began to serve
    ],
)
def test_a_promotion_in_or_just_before_the_first_window_is_the_same_event(
    promoted: timedelta, same: bool
) -> None:
    champion = ModelEvent(DAY + promoted, "champion", "main.a.m", 2)
    events = [
        ModelEvent(DAY + promoted, "registered", "main.a.m", 2),
        ModelEvent(DAY + promoted, "champion", "main.a.m", 3),
        champion,
    ]
    served = [("main.a.m/1", DAY), ("models:/main.a.m/2", DAY + timedelta(days=2))]
    (start,) = service_starts(served, WINDOWS, events)
    assert start.promotion == (champion if same else None)
    assert start.label == "models:/main.a.m/2 in service"


def column(
    name: str, count: int | None, distinct: int | None, kind: str = "string"
) -> dict[str, Any]:
    return {"column_name": name, "data_type": kind, "count": count, "distinct_count": distinct}


def test_identifiers_are_string_columns_unique_in_every_window_of_30_values_or_more() -> None:
    rows = [
        *(column("customerID", 2000, 2000) for _ in range(3)),
        column("customerID", 10, 4),  # a window too small to say
        column("request_id", 500, 496),  # 99.2%
        column("request_id", 20, 20),
        column("plan", 2000, 1990),
        column("plan", 2000, 1500),  # repeats in one window: not an id
        column("charges", 2000, 2000, "double"),  # a measurement, unique too
        column("tiny", 29, 29),  # never enough values
        column("unknown", 2000, None),
        column("empty", None, None),
    ]
    assert identifier_columns(rows) == ["customerID", "request_id"]


def plot(page: str, div_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The traces and the layout of the chart ``div_id`` as the page hands them to plotly."""
    decoder = json.JSONDecoder()
    at = page.index(f'"{div_id}",', page.index("Plotly.newPlot(", page.index(f'id="{div_id}"')))
    text = page[at + len(div_id) + 3 :].lstrip()
    data, end = decoder.raw_decode(text)
    layout, _ = decoder.raw_decode(text[end:].lstrip(" ,\n"))
    return data, layout


def lines(layout: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The vertical lines of a chart: (legend entry, x, listed in the legend)."""
    return [
        (s["name"], s["x0"], s.get("showlegend", False))
        for s in layout.get("shapes", [])
        if s.get("xref") == "x"
    ]


def test_a_model_id_in_service_is_marked_on_every_chart_and_listed() -> None:
    at = report().windows[2][0]
    page = render_report(
        report(
            quality={
                "accuracy_score": {"*": [(at, 0.9)]},
                "log_loss": {"*": [(at, 0.4)]},
            },
            events=[],
            in_service=[ServiceStart(at, "main.a.m/2")],
        )
    )
    x = at.strftime("%Y-%m-%d %H:%M:%S")
    for chart in ("quality-0", "quality-1", "drift-consecutive"):
        _, layout = plot(page, chart)
        listed = chart.startswith("quality")
        assert lines(layout) == [("in service (first window with its rows)", x, listed)]
        labels = [a["text"] for a in layout["annotations"] if a.get("xref") == "x"]
        assert labels == ["main.a.m/2 in service"]
    events = page[page.index('id="events-table"') :]
    assert "<td>main.a.m/2</td><td>in service: first window with its rows</td>" in events
    assert "No registry events: no registry given" in events


def test_a_promotion_and_the_versions_first_window_are_drawn_once_as_the_promotion() -> None:
    start = report().windows[1][0]
    promotion = ModelEvent(start + timedelta(hours=2), "champion", "main.a.m", 2)
    retrain = ModelEvent(start - timedelta(hours=20), "registered", "main.a.m", 2)
    old = ModelEvent(DAY - timedelta(days=30), "champion", "main.a.m", 1)
    page = render_report(
        report(
            events=[old, retrain, promotion],
            in_service=[ServiceStart(start, "main.a.m/2", promotion)],
        )
    )
    _, layout = plot(page, "quality-0")
    assert lines(layout) == [
        ("retrain (registry time)", "2026-11-20 04:00:00", True),
        ("promotion (registry time)", "2026-11-21 02:00:00", True),
    ]
    labels = [a["text"] for a in layout["annotations"] if a.get("xref") == "x"]
    assert labels == ["v2 registered", "v2 champion, in service"]
    table = page[page.index('id="events-table"') :]
    rows = re.findall(
        r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td>", table
    )
    assert rows == [
        (
            "2026-10-21 00:00 UTC",
            "main.a.m v1",
            "promotion: champion",
            "registry",
            "outside the windows",
        ),
        ("2026-11-20 04:00 UTC", "main.a.m v2", "retrain: version registered", "registry", "yes"),
        (
            "2026-11-21 00:00 UTC",
            "main.a.m/2",
            "in service: first window with its rows",
            "profile table",
            "as the promotion",
        ),
        ("2026-11-21 02:00 UTC", "main.a.m v2", "promotion: champion", "registry", "yes"),
    ]
    assert "No registry events" not in table


def test_identifier_columns_are_left_out_of_the_heatmaps_and_named_under_them() -> None:
    windows = report().windows
    drift = [
        DriftCell(start, name, kind, value, declared, "")
        for kind in ("CONSECUTIVE", "BASELINE")
        for start, _ in windows[1:]
        for name, value, declared in (("customerID", 1.0, True), ("plan", 0.2, False))
    ]
    page = render_report(report(drift=drift, identifiers=["customerID"]))
    for chart in ("drift-consecutive", "drift-baseline"):
        data, _ = plot(page, chart)
        assert data[0]["y"] == ["plan"] and len(data) == 1  # no declared drift left to mark
    notes = re.findall(r'<p class="note">Not shown: (.*?)</p>', page)
    assert notes == ["customerID (unique per row)."] * 2
    assert "drift declared: customerID" not in page

    only_ids = render_report(report(drift=drift[::2], identifiers=["customerID"]))
    assert "drift-consecutive" not in only_ids and "drift-baseline" not in only_ids
    assert only_ids.count("Not shown: customerID (unique per row).") == 2
