"""The checkpoint reconciled with the table's app transaction version, the source of truth."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lakestack.errors import LakeError
from lakestack.lake.ingest_checkpoint import COMPACT_EVERY, Checkpoint, PlannedFile
from lakestack.lake.ingest_source import open_location


def files(*names: str) -> list[PlannedFile]:
    return [PlannedFile(name, 10, 1_000) for name in names]


@pytest.fixture
def ckpt(tmp_path: Path) -> Checkpoint:
    return Checkpoint(open_location(str(tmp_path / "ckpt"), None))


def test_a_new_checkpoint_has_nothing_and_a_stable_stream_id(ckpt: Checkpoint) -> None:
    assert ckpt.is_new()
    state = ckpt.load(None, False, "main.s.t")
    assert state.ingested == set() and state.last_batch == 0 and state.pending is None
    first = ckpt.stream_id({"source": "/src"})
    assert not ckpt.is_new()
    assert ckpt.stream_id({"source": "/elsewhere"}) == first


def test_batches_up_to_the_table_version_are_done(ckpt: Checkpoint) -> None:
    ckpt.write_plan(1, files("a", "b"))
    ckpt.write_commit(1, {"rows": 2})
    ckpt.write_plan(2, files("c"))
    ckpt.write_commit(2, {"rows": 1})
    state = ckpt.load(2, False, "main.s.t")
    assert state.ingested == {"a", "b", "c"}
    assert state.last_batch == 2 and state.pending is None and state.recovered == []


def test_a_plan_above_the_table_version_is_redone_with_the_same_files(ckpt: Checkpoint) -> None:
    ckpt.write_plan(1, files("a"))
    ckpt.write_commit(1, {})
    ckpt.write_plan(2, files("b", "c"))  # the run died before committing batch 2
    state = ckpt.load(1, False, "main.s.t")
    assert state.ingested == {"a"}
    assert state.pending == files("b", "c")


def test_a_batch_committed_without_its_record_is_recovered(
    ckpt: Checkpoint, tmp_path: Path
) -> None:
    ckpt.write_plan(1, files("a"))  # the run died after the commit, before the record
    state = ckpt.load(1, False, "main.s.t")
    assert state.ingested == {"a"} and state.recovered == [1] and state.pending is None
    assert (tmp_path / "ckpt" / "commits" / "1.json").exists()
    assert ckpt.load(1, False, "main.s.t").recovered == []


def test_a_table_behind_the_checkpoint_is_refused(ckpt: Checkpoint) -> None:
    ckpt.write_plan(1, files("a"))
    ckpt.write_commit(1, {})
    with pytest.raises(
        LakeError,
        match=r"records batch 1 in table main\.s\.t, but the table holds batches up to 0 only: the table was recreated or restored",
    ):
        ckpt.load(None, False, "main.s.t")


def test_a_table_ahead_of_the_checkpoint_is_refused(ckpt: Checkpoint) -> None:
    with pytest.raises(
        LakeError,
        match=r"table main\.s\.t holds batch 3 of this stream but checkpoint .* has no plan for it",
    ):
        ckpt.load(3, False, "main.s.t")


def test_with_overwrites_allowed_a_changed_file_is_a_new_file(ckpt: Checkpoint) -> None:
    ckpt.write_plan(1, [PlannedFile("a", 10, 1)])
    ckpt.write_commit(1, {})
    by_path = ckpt.load(1, False, "t").ingested
    by_version = ckpt.load(1, True, "t").ingested
    assert PlannedFile("a", 11, 2).key(False) in by_path
    assert PlannedFile("a", 11, 2).key(True) not in by_version
    assert PlannedFile("a", 10, 1).key(True) in by_version


def test_compaction_keeps_loads_short_and_complete(ckpt: Checkpoint, tmp_path: Path) -> None:
    everything: list[PlannedFile] = []
    for number in range(1, COMPACT_EVERY + 3):
        batch = files(f"f{number}")
        ckpt.write_plan(number, batch)
        ckpt.write_commit(number, {})
        everything += batch
        ckpt.maybe_compact(number, everything)
    assert [p.name for p in (tmp_path / "ckpt" / "compact").iterdir()] == [f"{COMPACT_EVERY}.json"]
    # plans folded into the compact file are no longer read
    (tmp_path / "ckpt" / "offsets" / "1.json").write_text(json.dumps({"files": []}))
    state = ckpt.load(COMPACT_EVERY + 2, False, "t")
    assert state.ingested == {f.rel for f in everything}


def test_the_baseline_is_batch_zero_and_never_in_the_table(ckpt: Checkpoint) -> None:
    ckpt.write_baseline(files("old1", "old2"))
    state = ckpt.load(None, False, "t")
    assert state.ingested == {"old1", "old2"} and state.last_batch == 0 and state.recovered == []


def test_writes_leave_no_temporary_files(ckpt: Checkpoint, tmp_path: Path) -> None:
    ckpt.write_plan(1, files("a"))
    ckpt.write_commit(1, {})
    left = [p.name for p in (tmp_path / "ckpt").rglob("*") if p.name.endswith(".tmp")]
    assert left == []


def test_a_plan_is_never_replaced(ckpt: Checkpoint) -> None:
    assert ckpt.write_plan(1, files("a"))
    assert not ckpt.write_plan(1, files("b"))  # a concurrent run's plan stays as it was
    assert ckpt.load(0, False, "t").pending == files("a")
