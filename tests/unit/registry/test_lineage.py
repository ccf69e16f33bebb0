"""Lineage tags read back, the code version outside a repository, the process's read log."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lakestack.lake.reads import clear_reads, record_read, tables_read
from lakestack.registry.lineage import code_version, lineage_tags, parse_lineage


def test_parse_lineage_reads_every_tag() -> None:
    tags = {
        "lakestack.lineage.run_id": "r1",
        "lakestack.lineage.code_version": "abc",
        "lakestack.lineage.code_dirty": "True",
        "lakestack.lineage.input_tables": '{"main.s.a": 3, "main.s.b": "4"}',
        "lakestack.feature_tables": '[{"table": "main.f.t", "version": 2}]',
        "lakestack.promoted_from": "dev.s.m/7",
        "other": "x",
    }
    assert parse_lineage(tags, run_id="ignored") == {
        "run_id": "r1",
        "code_version": "abc",
        "code_dirty": True,
        "input_tables": {"main.s.a": 3, "main.s.b": 4},
        "feature_tables": {"main.f.t": 2},
        "promoted_from": "dev.s.m/7",
    }


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({}, {}),
        ({"lakestack.lineage.input_tables": "not json"}, {"input_tables": {}}),
        ({"lakestack.lineage.input_tables": "[1, 2]"}, {"input_tables": {}}),
        ({"lakestack.lineage.input_tables": '{"a": true, "b": 1}'}, {"input_tables": {"b": 1}}),
        ({"lakestack.lineage.code_dirty": "false"}, {"code_dirty": False}),
    ],
)
def test_parse_lineage_tolerates_what_others_wrote(
    tags: dict[str, str], expected: dict[str, object]
) -> None:
    assert parse_lineage(tags) == expected


def test_the_version_run_is_the_lineage_run_when_no_tag_says() -> None:
    assert parse_lineage({}, run_id="r2") == {"run_id": "r2"}


def test_outside_a_repository_there_is_no_code_version(tmp_path: Path) -> None:
    assert code_version(tmp_path) == (None, None)
    clear_reads()
    tags = lineage_tags("r3", path=tmp_path)
    assert tags == {"lakestack.lineage.run_id": "r3", "lakestack.lineage.input_tables": "{}"}


def test_the_read_log_keeps_the_last_version_read_per_table() -> None:
    clear_reads()
    record_read("main.s.b", 1)
    record_read("main.s.a", 2)
    record_read("main.s.b", 5)
    assert tables_read() == {"main.s.a": 2, "main.s.b": 5}
    assert list(tables_read()) == ["main.s.a", "main.s.b"]
    clear_reads()
    assert tables_read() == {}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_process_starts_with_an_empty_log() -> None:
    record_read("main.s.a", 1)
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if its log is empty
        os._exit(0 if tables_read() == {} else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert tables_read() == {"main.s.a": 1}
    clear_reads()
