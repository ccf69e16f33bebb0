"""The monitoring report on real Delta metric tables and a real MLflow registry, opened in
headless Chromium: what a person sees is what the tests check.

The metric tables are built the way a refresh builds them (``profile_table`` and
``column_drift`` on synthetic churn predictions): six daily windows, two model versions and
``*``, a drifted window (a price rise shifts ``monthly_charges`` and the contract mix), and a
``customer_id`` unique per row, which the heatmaps leave out.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from lakestack.bundle import Bundle, load_bundle
from lakestack.errors import MonitorError
from lakestack.lake import Catalog
from lakestack.monitoring import TABLE_COLUMN, column_drift, profile_table
from lakestack.monitoring.monitor import find_monitor
from lakestack.monitoring.refresh import refresh_monitor
from lakestack.monitoring.report import write_report
from lakestack.monitoring.report_data import Threshold, load_report
from lakestack.registry import ModelRegistry, Tracking, tracking_uri_for

pytestmark = pytest.mark.integration

MODEL = "main.mon.churn"
V1, V2 = f"{MODEL}/1", f"{MODEL}/2"
FEATURES = ["monthly_charges", "tenure", "contract", "customer_id"]
WINDOWS = 6
DRIFTED = 4  # the window of the price rise
DAY0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

BUNDLE = """
bundle: {name: churn}
targets:
  dev: {default: true}
resources:
  quality_monitors:
    churn_monitor:
      table_name: main.mon.predictions
      output_schema_name: main.mon
      inference_log:
        problem_type: PROBLEM_TYPE_CLASSIFICATION
        prediction_col: prediction
        label_col: churn
        timestamp_col: timestamp
        model_id_col: model_id
        granularities: ["1 day"]
  jobs:
    retraining:
      parameters:
        - {name: threshold, default: "0.7"}
      tasks:
        - task_key: check
          python_wheel_task:
            package_name: lakestack
            entry_point: monitor_check
            named_parameters:
              table_name_under_monitor: main.mon.predictions
              metric_to_monitor: accuracy_score
              metric_violation_threshold: "{{job.parameters.threshold}}"
              num_evaluation_windows: "5"
              num_violation_windows: "2"
"""

F1 = pa.struct(
    [
        pa.field("one_vs_all", pa.map_(pa.string(), pa.float64())),
        pa.field("macro", pa.float64()),
        pa.field("weighted", pa.float64()),
    ]
)
WINDOW = pa.struct(
    [pa.field("start", pa.timestamp("us", "UTC")), pa.field("end", pa.timestamp("us", "UTC"))]
)
TEST = pa.struct([pa.field("statistic", pa.float64()), pa.field("pvalue", pa.float64())])
KEYS = [
    pa.field("window", WINDOW),
    pa.field("granularity", pa.string()),
    pa.field("model_id", pa.string()),
    pa.field("slice_key", pa.string()),
    pa.field("slice_value", pa.string()),
    pa.field("column_name", pa.string()),
    pa.field("data_type", pa.string()),
    pa.field("monitor_version", pa.int64()),
]
PROFILE = pa.schema(
    [
        *KEYS,
        pa.field("log_type", pa.string()),
        pa.field("logging_table_commit_version", pa.int64()),
        pa.field("count", pa.int64()),
        pa.field("num_nulls", pa.int64()),
        pa.field("avg", pa.float64()),
        pa.field("min", pa.float64()),
        pa.field("max", pa.float64()),
        pa.field("stddev", pa.float64()),
        pa.field("median", pa.float64()),
        pa.field("distinct_count", pa.int64()),
        pa.field("percent_null", pa.float64()),
        pa.field("avg_length", pa.float64()),
        pa.field("accuracy_score", pa.float64()),
        pa.field("precision", F1),
        pa.field("recall", F1),
        pa.field("f1_score", F1),
        pa.field("log_loss", pa.float64()),
    ]
)
DRIFT = pa.schema(
    [
        *KEYS,
        pa.field("window_cmp", WINDOW),
        pa.field("drift_type", pa.string()),
        pa.field("count_delta", pa.float64()),
        pa.field("avg_delta", pa.float64()),
        pa.field("ks_test", TEST),
        pa.field("chi_squared_test", TEST),
        pa.field("js_distance", pa.float64()),
        pa.field("wasserstein_distance", pa.float64()),
        pa.field("population_stability_index", pa.float64()),
        pa.field("tv_distance", pa.float64()),
        pa.field("l_infinity_distance", pa.float64()),
    ]
)


def predictions(rng: np.random.Generator, n: int, drifted: bool) -> pa.Table:
    """Churn predictions of one model in one window; the price rise shifts charges and mix."""
    charges = rng.normal(95.0 if drifted else 70.0, 12.0, n)
    contract = rng.choice(
        ["month", "year", "two_year"], n, p=[0.8, 0.1, 0.1] if drifted else [0.5, 0.3, 0.2]
    )
    churn = (rng.random(n) < (0.5 if drifted else 0.25)).astype(np.int64)
    right = rng.random(n) < (0.6 if drifted else 0.88)
    return pa.table(
        {
            "customer_id": [f"c{i:012d}" for i in rng.choice(10**12, n, replace=False)],
            "monthly_charges": charges,
            "tenure": rng.integers(1, 72, n),
            "contract": contract,
            "churn": churn,
            "prediction": np.where(right, churn, 1 - churn),
        }
    )


def per_class(label: np.ndarray, prediction: np.ndarray) -> dict[str, dict[str, Any]]:
    """precision, recall and f1_score as the profile table's structs."""
    scores: dict[str, dict[str, float]] = {"precision": {}, "recall": {}, "f1_score": {}}
    for c in (0, 1):
        tp = float(np.sum((prediction == c) & (label == c)))
        p = tp / max(float(np.sum(prediction == c)), 1.0)
        r = tp / max(float(np.sum(label == c)), 1.0)
        scores["precision"][str(c)], scores["recall"][str(c)] = p, r
        scores["f1_score"][str(c)] = 2 * p * r / (p + r) if p + r else 0.0
    shares = {str(c): float(np.mean(label == c)) for c in (0, 1)}
    return {
        name: {
            "one_vs_all": list(v.items()),
            "macro": float(np.mean(list(v.values()))),
            "weighted": sum(v[c] * shares[c] for c in v),
        }
        for name, v in scores.items()
    }


def window_bounds(day: datetime) -> dict[str, datetime]:
    return {"start": day, "end": day + timedelta(days=1)}


def key(day: datetime, model_id: str, column: str, data_type: str | None) -> dict[str, Any]:
    return {
        "window": window_bounds(day),
        "granularity": "1 day",
        "model_id": model_id,
        "slice_key": None,
        "slice_value": None,
        "column_name": column,
        "data_type": data_type,
        "monitor_version": 1,
    }


def profile_rows(day: datetime, model_id: str, data: pa.Table) -> list[dict[str, Any]]:
    rows = []
    for p in profile_table(data.select(FEATURES)):
        row = {k: v for k, v in p.as_row().items() if k in PROFILE.names}
        row.update(key(day, model_id, p.column_name, p.data_type), log_type="INPUT")
        if p.column_name == TABLE_COLUMN:
            label, prediction = data["churn"].to_numpy(), data["prediction"].to_numpy()
            row.update(
                per_class(label, prediction), accuracy_score=float(np.mean(label == prediction))
            )
            row["log_loss"] = 0.3 + (1.0 - row["accuracy_score"])
        rows.append(row)
    return rows


def drift_rows(
    day: datetime, model_id: str, data: pa.Table, reference: pa.Table, cmp_day: datetime | None
) -> list[dict[str, Any]]:
    rows = []
    for name in FEATURES:
        drift = column_drift(reference[name], data[name], column_name=name)
        rows.append(
            {
                **key(day, model_id, name, None),
                "window_cmp": window_bounds(cmp_day) if cmp_day else None,
                "drift_type": "CONSECUTIVE" if cmp_day else "BASELINE",
                "count_delta": float(drift.count - drift.count_cmp),
                **drift.metrics(),
            }
        )
    return rows


def write_metric_tables(catalog: Catalog, first_day: datetime) -> None:
    """``main.mon.predictions_profile_metrics`` and ``_drift_metrics`` over ``WINDOWS`` days.

    Version 1 serves every window, version 2 (the retrain) from window 3 on; ``*`` is both.
    """
    rng = np.random.default_rng(7)
    baseline = predictions(rng, 1500, drifted=False)
    profiles: list[dict[str, Any]] = []
    drifts: list[dict[str, Any]] = []
    previous: dict[str, pa.Table] = {}
    for w in range(WINDOWS):
        day = first_day + timedelta(days=w)
        models = {V1: predictions(rng, 1000, w == DRIFTED)}
        if w >= 3:
            models[V2] = predictions(rng, 1000, w == DRIFTED)
        models["*"] = pa.concat_tables(models.values())
        for model_id, data in models.items():
            profiles += profile_rows(day, model_id, data)
            drifts += drift_rows(day, model_id, data, baseline, None)
            if model_id in previous:
                drifts += drift_rows(
                    day, model_id, data, previous[model_id], day - timedelta(days=1)
                )
        previous = models
    catalog.create_table(
        "main.mon.predictions_profile_metrics", pa.Table.from_pylist(profiles, PROFILE)
    )
    catalog.create_table("main.mon.predictions_drift_metrics", pa.Table.from_pylist(drifts, DRIFT))


@dataclass
class Project:
    bundle: Bundle
    catalog: Catalog
    registry: ModelRegistry
    first_day: datetime


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The churn bundle, its metric tables and ``main.mon.churn`` v1 and v2, v2 the champion.

    The windows end today, so the versions registered and promoted now fall in the last one.
    """
    root = tmp_path_factory.mktemp("report")
    (root / "lakestack.yml").write_text(textwrap.dedent(BUNDLE), encoding="utf-8")
    bundle = load_bundle(root)
    catalog = Catalog(bundle.warehouse)
    catalog.create_schema("main.mon")
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    first_day = today - timedelta(days=WINDOWS - 1)
    write_metric_tables(catalog, first_day)
    registry = ModelRegistry(Tracking(tracking_uri_for(root / ".lakestack")))
    registry.create_model(MODEL)
    for _ in range(2):
        registry.client.create_model_version(MODEL, source=root.as_uri())
    registry.deploy(MODEL, 1)
    registry.deploy(MODEL, 2)
    return Project(bundle, catalog, registry, first_day)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """The system Chromium, headless, with nothing that calls home."""
    executable = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class Opened:
    page: Page
    errors: list[str]
    requests: list[str]

    def charts(self) -> dict[str, dict[str, Any]]:
        """Every chart by div id: title, traces, shapes and whether plotly drew its SVG."""
        result: dict[str, dict[str, Any]] = self.page.evaluate(
            """() => Object.fromEntries([...document.querySelectorAll('.js-plotly-plot')].map(gd => [
                gd.id,
                {
                    title: gd.layout.title.text,
                    traces: gd.data.map(t => ({name: t.name, type: t.type, x: t.x, y: t.y})),
                    shapes: (gd.layout.shapes || []).map(s => ({name: s.name, y0: s.y0, x0: s.x0})),
                    legend: [...gd.querySelectorAll('.legend .legendtext')].map(t => t.textContent),
                    annotations: (gd.layout.annotations || []).map(a => a.text),
                    svg: gd.querySelectorAll('.main-svg').length,
                    drawnShapes: gd.querySelectorAll('.shapelayer path').length,
                    ticks: [...gd.querySelectorAll('.ytick text')].map(t => t.textContent),
                },
            ]))"""
        )
        return result


def open_page(browser: Browser, path: Path) -> Opened:
    """Open the report offline: any request that is not for a file fails the test."""
    page = browser.new_page()
    opened = Opened(page, [], [])

    def route(route: Route) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            opened.requests.append(route.request.url)
            route.abort()

    page.route("**/*", route)
    page.on("console", lambda m: opened.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: opened.errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot')].every("
        "gd => gd.querySelector('.main-svg'))"
    )
    return opened


@pytest.fixture(scope="module")
def report(project: Project, browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Opened:
    """The report of ``churn_monitor``, written once and opened in Chromium."""
    out = tmp_path_factory.mktemp("out") / "html" / "report.html"
    path = write_report(
        project.bundle, project.catalog, "churn_monitor", out, registry=project.registry
    )
    assert path == out
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temporary left
    return open_page(browser, path)


def test_the_page_draws_every_chart_offline_without_errors(report: Opened) -> None:
    charts = report.charts()
    assert list(charts) == [
        *(f"quality-{i}" for i in range(5)),
        "drift-consecutive",
        "drift-baseline",
    ]
    assert all(c["svg"] > 0 for c in charts.values())
    assert report.errors == [] and report.requests == []


def test_quality_metrics_have_a_line_per_model_id_the_threshold_and_model_events(
    report: Opened,
) -> None:
    charts = report.charts()
    quality = {c["title"]: c for c in charts.values() if c["traces"][0]["type"] == "scatter"}
    assert list(quality) == [
        "accuracy_score",
        "f1_score.macro",
        "precision.macro",
        "recall.macro",
        "log_loss",
    ]
    for chart in quality.values():
        assert [t["name"] for t in chart["traces"]] == ["*", V1, V2]
        v1, v2 = chart["traces"][1], chart["traces"][2]
        assert (len(v1["x"]), len(v2["x"])) == (WINDOWS, WINDOWS - 3)
    accuracy = quality["accuracy_score"]
    everyone = accuracy["traces"][0]["y"]
    assert everyone[DRIFTED] < min(everyone[:DRIFTED]) - 0.1  # the price rise hurt

    threshold = [s for s in accuracy["shapes"] if s["name"] == "threshold: retraining.check"]
    assert [s["y0"] for s in threshold] == [0.7]  # the job parameter's default
    assert "threshold 0.7 (retraining)" in accuracy["annotations"]
    assert not any(s["name"].startswith("threshold") for s in quality["log_loss"]["shapes"])
    assert accuracy["drawnShapes"] == 6  # the threshold, V2 in service, four registry events
    labels = "v1 registered<br>v2 registered<br>v1 champion<br>v2 champion"
    assert labels in accuracy["annotations"]  # at one time: one label


def test_a_version_is_marked_in_service_where_its_rows_begin_and_the_legend_says_which_is_which(
    report: Opened, project: Project
) -> None:
    """V2 serves from window 3, days before the registry's events of today: both are drawn, the
    first window from the table, the others at the registry's times."""
    today = (project.first_day + timedelta(days=WINDOWS - 1)).strftime("%Y-%m-%d")
    served = (project.first_day + timedelta(days=3)).strftime("%Y-%m-%d 00:00:00")
    charts = report.charts()
    for div_id, chart in charts.items():
        markers = [
            (s["name"], s["x0"])
            for s in chart["shapes"]
            if s["name"] != "threshold: retraining.check"
        ]
        assert markers[0] == ("in service (first window with its rows)", served), div_id
        assert [(name, x[:10]) for name, x in markers[1:]] == [
            ("retrain (registry time)", today),
            ("retrain (registry time)", today),
            ("promotion (registry time)", today),
            ("promotion (registry time)", today),
        ], div_id
        assert f"{V2} in service" in chart["annotations"], div_id
    accuracy = charts["quality-0"]
    assert accuracy["legend"] == [
        "*",
        V1,
        V2,
        "markers",  # the title of the markers' entries
        "in service (first window with its rows)",
        "retrain (registry time)",
        "promotion (registry time)",
    ]
    # a click on a kind's legend entry hides every line of that kind; a second shows them again
    toggle = report.page.locator("#quality-0 .legend .traces", has_text="retrain")
    lines = report.page.locator("#quality-0 .shapelayer path")
    hidden = (
        "n => document.getElementById('quality-0').layout.shapes"
        ".filter(s => s.visible === 'legendonly' && s.legendgroup === 'registered').length === n"
    )
    toggle.locator(".legendtoggle").click(timeout=5000)
    report.page.wait_for_function(hidden, arg=2, timeout=5000)  # after the double-click delay
    assert lines.count() == 4  # the threshold, in service, two promotions
    toggle.locator(".legendtoggle").click(timeout=5000)
    report.page.wait_for_function(hidden, arg=0, timeout=5000)
    assert lines.count() == 6
    events = report.page.eval_on_selector_all(
        "#events-table tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    assert events[0] == [
        f"{served[:16]} UTC",
        V2,
        "in service: first window with its rows",
        "profile table",
        "yes",
    ]


def test_drift_is_a_column_by_window_heatmap_with_declared_drift_marked(
    report: Opened, project: Project
) -> None:
    charts = report.charts()
    consecutive, baseline = charts["drift-consecutive"], charts["drift-baseline"]
    for chart, windows in ((consecutive, WINDOWS - 1), (baseline, WINDOWS)):
        heatmap, declared = chart["traces"]
        assert (heatmap["type"], heatmap["name"]) == ("heatmap", "js_distance")
        assert heatmap["y"] == ["contract", "monthly_charges", "tenure"]  # not customer_id
        assert len(heatmap["x"]) == windows
        assert declared["name"] == "drift declared"
        assert set(declared["y"]) == {"contract", "monthly_charges"}
        assert len(chart["shapes"]) == 5  # V2 in service and the four registry events
    day = lambda w: (project.first_day + timedelta(days=w)).strftime("%Y-%m-%d")  # noqa: E731
    assert {x[:10] for x in baseline["traces"][1]["x"]} == {day(DRIFTED)}
    # the price rise drifts against the window before it, and back in the window after
    assert {x[:10] for x in consecutive["traces"][1]["x"]} == {day(DRIFTED), day(DRIFTED + 1)}
    assert consecutive["ticks"] == ["contract", "monthly_charges", "tenure"]
    assert report.page.eval_on_selector_all(
        "#drift-baseline .ytick text",
        "ticks => ticks.map(t => t.querySelector('tspan[style*=bold]') !== null)",
    ) == [True, True, False]
    text = report.page.inner_text("#drift")
    assert f"BASELINE drift declared: contract ({day(DRIFTED)} 00:00 UTC)" in text
    assert text.count("Not shown: customer_id (unique per row).") == 2


def test_the_header_the_latest_profile_and_the_events_are_listed(report: Opened) -> None:
    header = report.page.inner_text("#header")
    for shown in (
        "churn_monitor",
        "main.mon.predictions",
        "inference log, classification",
        "1 day",
        "Refreshed at",
        f"{WINDOWS}, from ",
        f"{3 * 1000 + 3 * 2000:,} in all windows",
        f"{V1}: 1,000, {V2}: 1,000",
    ):
        assert shown in header
    latest = report.page.eval_on_selector_all(
        "#profile-table tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    assert [row[:3] for row in latest] == [
        ["contract", "string", "2000"],
        ["customer_id", "string", "2000"],
        ["monthly_charges", "double", "2000"],
        ["tenure", "bigint", "2000"],
    ]
    events = report.page.eval_on_selector_all(
        "#events-table tbody tr", "rows => rows.map(r => r.cells[2].textContent)"
    )
    assert sorted(events) == [
        "in service: first window with its rows",
        *["promotion: champion"] * 2,
        *["retrain: version registered"] * 2,
    ]


def test_a_monitor_never_refreshed_says_so_and_writes_nothing(
    project: Project, tmp_path: Path
) -> None:
    text = BUNDLE.replace("main.mon.predictions", "main.mon.fresh")
    (tmp_path / "lakestack.yml").write_text(textwrap.dedent(text), encoding="utf-8")
    bundle = load_bundle(tmp_path)
    out = tmp_path / "report.html"
    with pytest.raises(MonitorError) as info:
        write_report(bundle, project.catalog, "churn_monitor", out)
    assert str(info.value) == (
        "monitor churn_monitor has no metrics yet; run `lakestack monitors refresh churn_monitor`"
    )
    project.catalog.create_table("main.mon.fresh_profile_metrics", schema=PROFILE)  # empty
    with pytest.raises(MonitorError, match="has no metrics yet"):
        write_report(bundle, project.catalog, "main.mon.fresh", out)
    assert list(tmp_path.iterdir()) == [tmp_path / "lakestack.yml"]
    with pytest.raises(MonitorError, match="'churn_monitr' is not in the bundle"):
        write_report(bundle, project.catalog, "churn_monitr", out)


def test_the_report_reads_what_a_refresh_writes(tmp_path: Path) -> None:
    """A real refresh of a small inference table, then the report's data: the two tables agree."""
    text = BUNDLE.replace("main.mon.predictions", "main.mon.scored")
    (tmp_path / "lakestack.yml").write_text(textwrap.dedent(text), encoding="utf-8")
    bundle = load_bundle(tmp_path)
    catalog = Catalog(bundle.warehouse)
    catalog.create_schema("main.mon")
    rng = np.random.default_rng(5)
    parts = []
    for w in range(4):
        for model_id in (V1, V2) if w >= 2 else (V1,):
            data = predictions(rng, 300, drifted=w == 3)
            when = DAY0 + timedelta(days=w, hours=12)
            parts.append(
                data.append_column("model_id", pa.array([model_id] * data.num_rows)).append_column(
                    "timestamp", pa.array([when] * data.num_rows, pa.timestamp("us", "UTC"))
                )
            )
    catalog.create_table("main.mon.scored", pa.concat_tables(parts))
    refresh_monitor(find_monitor(bundle.resources.quality_monitors, "churn_monitor"), catalog)

    report = load_report(bundle, catalog, "churn_monitor")
    assert report.granularity == "1 day" and len(report.windows) == 4
    assert report.rows == {DAY0 + timedelta(days=w): 300 * (1 + (w >= 2)) for w in range(4)}
    assert report.latest_rows == {"*": 600, V1: 300, V2: 300}
    assert list(report.quality) == [
        "accuracy_score",
        "f1_score.macro",
        "precision.macro",
        "recall.macro",
    ]
    assert {m: len(s) for m, s in report.quality["accuracy_score"].items()} == {
        "*": 4,
        V1: 4,
        V2: 2,
    }
    assert report.thresholds == [Threshold("accuracy_score", 0.7, "retraining", "check")]
    declared = {(c.drift_type, c.column, c.window) for c in report.drift if c.declared}
    assert ("CONSECUTIVE", "monthly_charges", DAY0 + timedelta(days=3)) in declared
    assert all(c.window == DAY0 + timedelta(days=3) for c in report.drift if c.declared)
    assert [r["column_name"] for r in report.latest_profile][:2] == ["churn", "contract"]
    assert report.identifiers == ["customer_id"]
    assert [(s.at, s.model_id, s.promotion) for s in report.in_service] == [
        (DAY0 + timedelta(days=2), V2, None)
    ]
    assert write_report(bundle, catalog, "churn_monitor", tmp_path / "r.html").stat().st_size > 0
