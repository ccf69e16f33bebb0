"""The monitoring report: one self-contained HTML page that a person looks at.

A monitor's results are two tables of numbers; the report draws them for one granularity: each
model-quality metric over time with one line per model id (``*`` for all models) and the
threshold of the bundle's violation check on its metric; the drift of every column per window as
a heatmap (CONSECUTIVE and BASELINE), drift declared marked, identifier columns left out and
named; vertical markers where a model version was registered (a retrain) or became the champion
(a promotion), at the registry's times, and where a model id's rows begin (it went into
service), from the table, which holds for a scenario whose days are simulated as well; a header
saying what is monitored and how fresh it is; and the latest window's profile. The page embeds
plotly.js once and needs no network to be viewed. What it shows is read by
``lakestack.monitoring.report_data``.
"""

from __future__ import annotations

import html
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lakestack.monitoring.monitor import ALL_MODELS
from lakestack.monitoring.report_data import (
    DRIFT_METRIC,
    DRIFT_TYPES,
    PROFILE_STATS,
    ModelEvent,
    MonitorReport,
    load_report,
    model_order,
)

if TYPE_CHECKING:
    from lakestack.bundle import Bundle
    from lakestack.lake import Catalog
    from lakestack.registry import ModelRegistry

__all__ = ["render_report", "write_report"]


def write_report(
    bundle: Bundle,
    catalog: Catalog,
    name: str,
    path: Path,
    *,
    registry: ModelRegistry | None = None,
) -> Path:
    """Write the report of the quality monitor ``name`` to ``path`` as one HTML page.

    The page is written to a temporary file beside ``path`` and renamed, so ``path`` is either
    the whole page or untouched.

    Args:
        bundle: The bundle target declaring the monitor.
        catalog: The catalog holding the monitor's metric tables.
        name: The monitor's bundle key or table name.
        path: The HTML file to write.
        registry: Where to find the monitored models' versions and champion changes; without
            it the charts have no retrain or promotion markers.

    Raises:
        MonitorError: No such monitor, or it has no metrics yet (never refreshed).
    """
    report = load_report(bundle, catalog, name, registry=registry)
    page = render_report(report)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a name of its own, created as any file is (the umask applies, unlike mkstemp's 0600)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with temporary.open("x", encoding="utf-8") as out:
            out.write(page)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def render_report(report: MonitorReport) -> str:
    """The report as one HTML page, plotly.js embedded once, no network needed to view it."""
    from plotly.offline import get_plotlyjs

    title = f"Monitor {report.name}"
    body = "\n".join(
        [
            _header(report),
            _quality_section(report),
            _drift_section(report),
            _profile_section(report),
            _events_section(report),
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_h(title)}</title>\n<style>{_CSS}</style>\n"
        f'<script type="text/javascript">{get_plotlyjs()}</script>\n'
        f"</head>\n<body>\n<h1>{_h(title)}</h1>\n{body}\n</body>\n</html>\n"
    )


_CONFIG = {"displaylogo": False, "responsive": True}
_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #ddd; }
dl.header { display: grid; grid-template-columns: max-content auto; gap: 0.2rem 1rem; }
dl.header dt { font-weight: 600; } dl.header dd { margin: 0; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #eee; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
#events-table th, #events-table td { text-align: left; }
p.note { color: #666; } .drifted { color: #b30000; font-weight: 600; }
"""
_MARKERS = {
    "registered": ({"color": "#7f7f7f", "dash": "dot", "width": 1}, "retrain (registry time)"),
    "champion": ({"color": "#2ca02c", "dash": "solid", "width": 2}, "promotion (registry time)"),
    "in service": (
        {"color": "#9467bd", "dash": "dashdot", "width": 2},
        "in service (first window with its rows)",
    ),
}
"""Line and legend entry of each kind of marker: the legend says where its time comes from."""
_THRESHOLD = {"color": "#d62728", "dash": "dash", "width": 2}
_EVERY_MODEL = {"color": "#222222", "width": 3}


def _h(text: Any) -> str:
    return html.escape(str(text))


def _x(moment: datetime) -> str:
    """A time as plotly.js reads it: UTC without an offset (it ignores time zones)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _when(moment: datetime | None) -> str:
    return "—" if moment is None else moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _granularity(granularity: str | None) -> str:
    return "one window per refresh (snapshot)" if granularity is None else granularity


def _number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return _h(value)


def _chart(figure: Any, div_id: str, height: int = 360) -> str:
    figure.update_layout(height=height, margin={"l": 60, "r": 30, "t": 60, "b": 50})
    chart: str = figure.to_html(
        full_html=False, include_plotlyjs=False, div_id=div_id, config=_CONFIG
    )
    return chart


def _middle(report: MonitorReport) -> datetime:
    first, last = report.windows[0][0], report.windows[-1][1]
    return first + (last - first) / 2


def _in_range(report: MonitorReport) -> list[ModelEvent]:
    first, last = report.windows[0][0], report.windows[-1][1]
    return [e for e in report.events if first <= e.at <= last]


@dataclass(frozen=True)
class _Marker:
    """A vertical line on the charts: a registry event, or a model id's first window."""

    at: datetime
    kind: str
    label: str


def _marker_groups(report: MonitorReport) -> list[list[_Marker]]:
    """The markers on the charts, those closer than 2% of the time shown labelled together.

    A model id going into service is drawn as its version's promotion when the registry's time
    of that falls in or just before the first window (``ServiceStart.promotion``), not twice.
    """
    events = _in_range(report)
    several = len({e.model for e in events}) > 1
    promoted = {s.promotion for s in report.in_service}
    markers = [
        _Marker(
            e.at,
            e.kind,
            (f"{e.model} {e.label}" if several else e.label)
            + (", in service" if e in promoted else ""),
        )
        for e in events
    ]
    drawn = set(events)
    markers += [
        _Marker(s.at, "in service", s.label) for s in report.in_service if s.promotion not in drawn
    ]
    first, last = report.windows[0][0], report.windows[-1][1]
    close = (last - first) / 50
    groups: list[list[_Marker]] = []
    for marker in sorted(markers, key=lambda m: m.at):
        if groups and marker.at - groups[-1][0].at <= close:
            groups[-1].append(marker)
        else:
            groups.append([marker])
    return groups


def _mark_events(
    figure: Any, groups: Sequence[Sequence[_Marker]], middle: datetime, *, legend: bool = False
) -> None:
    """A vertical line per marker, its kind's style, labelled at the top (left of the line past
    ``middle``, so that the label stays on the chart); with ``legend``, one legend entry per kind
    (clicking it hides or shows the kind's lines), under the title "markers"."""
    listed: set[str] = set()
    for group in groups:
        for marker in group:
            at = _x(marker.at)
            line, name = _MARKERS[marker.kind]
            figure.add_shape(
                type="line",
                xref="x",
                yref="paper",
                x0=at,
                x1=at,
                y0=0,
                y1=1,
                name=name,
                legendgroup=marker.kind,
                legendgrouptitle={"text": "" if listed else "markers"},
                showlegend=legend and marker.kind not in listed,
                line=line,
            )
            listed.add(marker.kind)
        labels = [m.label for m in group]
        figure.add_annotation(
            x=_x(group[0].at),
            xref="x",
            y=1,
            yref="paper",
            text="<br>".join(_h(label) for label in labels),
            showarrow=False,
            align="left",
            xanchor="left" if group[0].at <= middle else "right",
            yanchor="top",
            bgcolor="rgba(255, 255, 255, 0.8)",
            font={"size": 10},
        )


def _header(report: MonitorReport) -> str:
    spec = report.spec
    if spec.inference_log:
        problem = spec.inference_log.problem_type.removeprefix("PROBLEM_TYPE_").lower()
        kind = f"inference log, {problem}"
    else:
        kind = "time series" if spec.time_series else "snapshot"
    others = [_granularity(g) for g in report.granularities if g != report.granularity]
    granularity = _h(_granularity(report.granularity)) + (
        f" (also in the tables: {_h(', '.join(others))})" if others else ""
    )
    first, last = report.windows[0][0], report.windows[-1][1]
    latest = report.windows[-1][0]
    per_model = ", ".join(
        f"{_h(m)}: {n:,}"
        for m, n in sorted(report.latest_rows.items(), key=lambda i: model_order(i[0]))
        if m != ALL_MODELS
    )
    items = [
        ("Monitor", _h(report.name)),
        ("Table", _h(spec.table_name)),
        ("Profile", _h(kind)),
        ("Metric tables", f"{_h(report.profile_table)}, {_h(report.drift_table)}"),
        ("Granularity", granularity),
        ("Refreshed at", _when(report.refreshed_at)),
        ("Windows", f"{len(report.windows)}, from {_when(first)} to {_when(last)}"),
        ("Rows", f"{sum(report.rows.values()):,} in all windows"),
        (
            "Latest window",
            f"{_when(latest)}: {report.rows.get(latest, 0):,} rows"
            + (f" ({per_model})" if per_model else ""),
        ),
    ]
    rows = "\n".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in items)
    return f'<section id="header"><dl class="header">\n{rows}\n</dl></section>'


def _quality_section(report: MonitorReport) -> str:
    import plotly.graph_objects as go

    parts = ['<section id="quality"><h2>Model quality</h2>']
    if not report.quality:
        parts.append(
            '<p class="note">No model-quality metrics: the monitor has no label column, or no '
            "labels have arrived for its windows yet.</p>"
        )
    markers = _marker_groups(report)
    middle = _middle(report)
    unknown = [t for t in report.thresholds if t.metric not in report.quality]
    for t in unknown:
        parts.append(
            f'<p class="note">The check {_h(t.job)}.{_h(t.task_key)} watches {_h(t.metric)}, '
            "which the profile table does not hold.</p>"
        )
    for i, (metric, series) in enumerate(report.quality.items()):
        figure = go.Figure()
        for model_id, points in series.items():
            figure.add_trace(
                go.Scatter(
                    x=[_x(t) for t, _ in points],
                    y=[v for _, v in points],
                    mode="lines+markers",
                    name=model_id,
                    line=_EVERY_MODEL if model_id == ALL_MODELS else None,
                )
            )
        for t in report.thresholds:
            if t.metric == metric:
                figure.add_shape(
                    type="line",
                    xref="paper",
                    x0=0,
                    x1=1,
                    yref="y",
                    y0=t.value,
                    y1=t.value,
                    name=f"threshold: {t.job}.{t.task_key}",
                    line=_THRESHOLD,
                )
                figure.add_annotation(
                    xref="paper",
                    x=1,
                    yref="y",
                    y=t.value,
                    showarrow=False,
                    xanchor="right",
                    yanchor="bottom",
                    text=_h(f"threshold {t.value:g} ({t.job})"),
                    font={"color": _THRESHOLD["color"]},
                )
        _mark_events(figure, markers, middle, legend=True)
        figure.update_layout(
            title={"text": _h(metric)},
            xaxis_title="window start",
            yaxis_title=_h(metric),
            legend_title_text="model id",
        )
        parts.append(_chart(figure, f"quality-{i}"))
    parts.append("</section>")
    return "\n".join(parts)


def _drift_section(report: MonitorReport) -> str:
    import plotly.graph_objects as go

    parts = [
        '<section id="drift"><h2>Drift per column</h2>',
        f'<p class="note">Colour: {DRIFT_METRIC} of each column against the previous window '
        "(CONSECUTIVE) or the baseline (BASELINE), all models. A cross, and a red column "
        "name: drift declared. Hover a cell for every statistic.</p>",
    ]
    if not report.drift:
        parts.append(
            '<p class="note">No drift yet: drift needs two windows or a baseline table.</p>'
        )
    markers = _marker_groups(report)
    ends = dict(report.windows)
    identifiers = set(report.identifiers)

    def middle(start: datetime) -> str:
        """Where a window's cell is centred, so that it spans the window."""
        return _x(start + (ends.get(start, start) - start) / 2)

    for drift_type in DRIFT_TYPES:
        cells = [c for c in report.drift if c.drift_type == drift_type]
        hidden = sorted({c.column for c in cells} & identifiers)
        cells = [c for c in cells if c.column not in identifiers]
        note = (
            f'<p class="note">Not shown: {_h(", ".join(hidden))} (unique per row).</p>'
            if hidden
            else ""
        )
        if not cells:
            parts.append(note)
            continue
        columns = sorted({c.column for c in cells})
        starts = sorted({c.window for c in cells})
        z: list[list[float | None]] = [[None] * len(starts) for _ in columns]
        hover: list[list[str]] = [[""] * len(starts) for _ in columns]
        for c in cells:
            row, col = columns.index(c.column), starts.index(c.window)
            z[row][col] = c.value
            hover[row][col] = f"window {_when(c.window)}<br>{c.details}"
        declared = [c for c in cells if c.declared]
        drifted = {c.column for c in declared}
        figure = go.Figure(
            go.Heatmap(
                x=[middle(s) for s in starts],
                y=columns,
                z=z,
                customdata=hover,
                zmin=0,
                colorscale="YlOrRd",
                colorbar={"title": {"text": DRIFT_METRIC}},
                name=DRIFT_METRIC,
                xgap=1,
                ygap=1,
                hovertemplate="%{y}<br>"
                + DRIFT_METRIC
                + " %{z:.3g}<br>%{customdata}<extra></extra>",
            )
        )
        if declared:
            figure.add_trace(
                go.Scatter(
                    x=[middle(c.window) for c in declared],
                    y=[c.column for c in declared],
                    mode="markers",
                    name="drift declared",
                    showlegend=False,
                    marker={"symbol": "x", "size": 11, "color": "black"},
                    hovertext=[f"{c.column}: drift declared<br>{c.details}" for c in declared],
                    hoverinfo="text",
                )
            )
        figure.update_yaxes(
            autorange="reversed",
            tickvals=columns,
            ticktext=[
                f'<span style="color:#b30000"><b>{_h(c)}</b></span>' if c in drifted else _h(c)
                for c in columns
            ],
        )
        _mark_events(figure, markers, _middle(report))
        figure.update_layout(title={"text": f"{drift_type.lower()} drift"}, xaxis_title="window")
        parts.append(_chart(figure, f"drift-{drift_type.lower()}", 140 + 30 * len(columns)))
        if declared:
            listed = "; ".join(
                _h(column)
                + " ("
                + ", ".join(_when(c.window) for c in declared if c.column == column)
                + ")"
                for column in sorted(drifted)
            )
            parts.append(f'<p class="drifted">{drift_type} drift declared: {listed}</p>')
        parts.append(note)
    parts.append("</section>")
    return "\n".join(parts)


def _profile_section(report: MonitorReport) -> str:
    headers = ["column", *PROFILE_STATS.values()]
    keys = ["column_name", *PROFILE_STATS]
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{_number(row.get(k))}</td>" for k in keys) + "</tr>"
        for row in report.latest_profile
    )
    return (
        f'<section id="profile"><h2>Latest window: {_when(report.windows[-1][0])}</h2>\n'
        f'<table id="profile-table"><thead><tr>{head}</tr></thead>\n<tbody>{body}</tbody></table>'
        "</section>"
    )


def _events_section(report: MonitorReport) -> str:
    if not report.events and not report.in_service:
        return (
            '<section id="events"><h2>Retrains and promotions</h2><p class="note">None '
            "known: no registry given, or the model ids name no registered model; and no model "
            "id began to serve after the first window.</p></section>"
        )
    shown = set(_in_range(report))
    rows: list[tuple[datetime, str, str, str, str]] = [
        (
            e.at,
            f"{e.model} v{e.version}",
            "retrain: version registered" if e.kind == "registered" else "promotion: champion",
            "registry",
            "yes" if e in shown else "outside the windows",
        )
        for e in report.events
    ]
    rows += [
        (
            s.at,
            s.model_id,
            "in service: first window with its rows",
            "profile table",
            "yes" if s.promotion is None else "as the promotion",
        )
        for s in report.in_service
    ]
    body = "\n".join(
        f"<tr><td>{_when(at)}</td><td>{_h(model)}</td><td>{event}</td><td>{source}</td>"
        f"<td>{shown_as}</td></tr>"
        for at, model, event, source, shown_as in sorted(rows, key=lambda r: r[0])
    )
    note = (
        ""
        if report.events
        else '<p class="note">No registry events: no registry given, or the model ids name no '
        "registered model.</p>"
    )
    return (
        '<section id="events"><h2>Retrains and promotions</h2>\n<table id="events-table">'
        "<thead><tr><th>when</th><th>model</th><th>event</th><th>time from</th>"
        f"<th>on the charts</th></tr></thead>\n<tbody>{body}</tbody></table>{note}</section>"
    )
