"""The terminal console: run progress for a run and the child runs it starts."""

from __future__ import annotations

import io

from rich.console import Console as RichConsole

from lakestack.console import TerminalConsole


def test_plain_output_shows_parent_and_child_tasks() -> None:
    out = io.StringIO()
    console = TerminalConsole(out=out, err=io.StringIO())
    console.run_started(7, "nightly", ["refresh", "report"])
    console.task_state(7, "refresh", "RUNNING")
    console.run_started(8, "daily_pipeline", ["ingest"])
    console.task_state(8, "ingest", "SUCCESS")
    console.run_finished(8, "SUCCESS")
    console.task_state(7, "refresh", "SUCCESS")
    console.task_state(7, "report", "FAILED", "[bold] is not markup here")
    console.task_state(99, "other", "RUNNING")
    console.run_finished(7, "FAILED", "1 of 2 tasks failed")
    lines = [line.rstrip() for line in out.getvalue().splitlines()]
    assert lines[0] == "Run 7 of job nightly started"
    assert "  child run 8 of job daily_pipeline started" in lines
    assert any(line.startswith("    daily_pipeline.ingest") and "SUCCESS" in line for line in lines)
    assert "  child run 8 SUCCESS" in lines
    assert any("report" in line and "FAILED  [bold] is not markup here" in line for line in lines)
    assert not any("other" in line for line in lines)
    assert lines[-1] == "Run 7 FAILED: 1 of 2 tasks failed"


def test_live_table_nests_child_runs_under_their_job() -> None:
    console = TerminalConsole(out=io.StringIO(), err=io.StringIO())
    console.run_started(1, "nightly", ["refresh"])
    console.task_state(1, "refresh", "RUNNING")
    console.run_started(2, "daily_pipeline", ["ingest", "train"])
    console.task_state(2, "ingest", "SUCCESS", "[red]literal[/red]")
    screen = RichConsole(file=io.StringIO(), width=100, color_system=None)
    with screen.capture() as captured:
        screen.print(console._render())
    rows = [line.rstrip() for line in captured.get().splitlines()]
    assert rows[0].split() == ["refresh", "RUNNING"]
    assert rows[1].split() == ["daily_pipeline", "run", "2", "RUNNING"]
    assert rows[2].split() == ["ingest", "SUCCESS", "[red]literal[/red]"]
    assert rows[2].startswith("  ")
    assert rows[3].split() == ["train", "PENDING"]
