"""Request counters and latency histograms in the Prometheus text format, without locks.

Every update happens on the server's event loop, so plain integers suffice: no lock, no
``prometheus_client`` registry on the request path. Each worker process counts its own requests;
``/metrics`` shows the worker that answered (its ``pid`` is a label).
"""

from __future__ import annotations

import os
from bisect import bisect_left
from dataclasses import dataclass, field

__all__ = ["BUCKETS", "Metrics"]

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class _Series:
    statuses: dict[int, int] = field(default_factory=dict)
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total_seconds: float = 0.0
    count: int = 0
    rows: int = 0


class Metrics:
    """Requests, errors, rows and latency per endpoint and served entity."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str], _Series] = {}
        self.batches = 0

    def observe(self, endpoint: str, entity: str, status: int, seconds: float, rows: int) -> None:
        """Count one answered request."""
        series = self._series.get((endpoint, entity))
        if series is None:
            series = self._series[(endpoint, entity)] = _Series()
        series.statuses[status] = series.statuses.get(status, 0) + 1
        series.buckets[bisect_left(BUCKETS, seconds)] += 1
        series.total_seconds += seconds
        series.count += 1
        series.rows += rows

    def render(self) -> str:
        """The Prometheus text exposition (version 0.0.4)."""
        pid = os.getpid()
        lines = [
            "# HELP lakestack_serving_requests_total Requests answered, by status.",
            "# TYPE lakestack_serving_requests_total counter",
        ]
        for (endpoint, entity), s in sorted(self._series.items()):
            for status, n in sorted(s.statuses.items()):
                lines.append(
                    f"lakestack_serving_requests_total{{{_labels(endpoint, entity, pid)},"
                    f'status="{status}"}} {n}'
                )
        lines += [
            "# HELP lakestack_serving_errors_total Requests answered with an error status.",
            "# TYPE lakestack_serving_errors_total counter",
        ]
        for (endpoint, entity), s in sorted(self._series.items()):
            errors = sum(n for status, n in s.statuses.items() if status >= 400)
            lines.append(
                f"lakestack_serving_errors_total{{{_labels(endpoint, entity, pid)}}} {errors}"
            )
        lines += [
            "# HELP lakestack_serving_rows_total Rows scored.",
            "# TYPE lakestack_serving_rows_total counter",
        ]
        for (endpoint, entity), s in sorted(self._series.items()):
            lines.append(
                f"lakestack_serving_rows_total{{{_labels(endpoint, entity, pid)}}} {s.rows}"
            )
        lines += [
            "# HELP lakestack_serving_request_seconds Request latency in seconds.",
            "# TYPE lakestack_serving_request_seconds histogram",
        ]
        for (endpoint, entity), s in sorted(self._series.items()):
            labels = _labels(endpoint, entity, pid)
            cumulative = 0
            for bound, n in zip((*BUCKETS, float("inf")), s.buckets, strict=False):
                cumulative += n
                le = "+Inf" if bound == float("inf") else f"{bound:g}"
                lines.append(
                    f'lakestack_serving_request_seconds_bucket{{{labels},le="{le}"}} {cumulative}'
                )
            lines.append(f"lakestack_serving_request_seconds_sum{{{labels}}} {s.total_seconds}")
            lines.append(f"lakestack_serving_request_seconds_count{{{labels}}} {s.count}")
        lines += [
            "# HELP lakestack_serving_batches_total predict calls made for batched requests.",
            "# TYPE lakestack_serving_batches_total counter",
            f'lakestack_serving_batches_total{{pid="{pid}"}} {self.batches}',
        ]
        return "\n".join(lines) + "\n"


def _labels(endpoint: str, entity: str, pid: int) -> str:
    return f'endpoint="{_escape(endpoint)}",served_entity="{_escape(entity)}",pid="{pid}"'


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
