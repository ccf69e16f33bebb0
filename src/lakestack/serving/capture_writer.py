"""The capture writer process: writes the spools of a serving endpoint into its inference table.

``lakestack serve`` starts one per endpoint with an inference table (``start_writer``), in its
own session so that a Ctrl-C or a signal to the server's process group reaches only the server.
The server's processes (one, or each ``--workers`` worker) only append to their spools
(``capture.Spooler``); all Arrow and Delta work happens here, where it cannot hold the server's
GIL. The writer:

* holds ``.writer.lock`` in the spool folder, so one writer writes a folder at a time (a
  writer left by a killed server finishes before the next one starts writing);
* every ``flush_seconds``, or sooner once ``flush_bytes`` are waiting, writes the new complete
  lines of every live spool marked for it, each batch with its app transaction (exactly once,
  see ``capture``);
* finishes and deletes every spool nobody holds (closed, rotated, or left by a dead process);
* every ``compact_every`` commits to a table (100 by default), compacts it: an inference table
  gets a Parquet file per commit, about one a second, and its readers open every file. The
  compaction is a commit of its own that changes no row and no app transaction, so
  exactly-once holds across it; the spools wait meanwhile (about a second);
* on SIGTERM (the server stopping) or when its parent is gone (the server was killed), writes
  everything there is, compacts what it wrote since the last compaction (on SIGTERM) and exits.

It runs on the CPUs the server is not pinned to (``writer_cpus``): a server pinned to some
CPUs (``taskset``, a cpuset) keeps them for requests; an unpinned server's writer is unpinned
too. ``LAKESTACK_CAPTURE_WRITER_CPUS`` overrides the choice (a CPU list such as ``2,3`` or
``4-7``, or ``inherit`` for the server's own CPUs).

It runs at idle priority (Linux ``SCHED_IDLE``, every thread): it gets a CPU only when nothing
else wants it, and a request's process (or the load generator beside it) waking up takes the CPU
back at once, where a ``nice``-d writer keeps it for the rest of its slice. Should the writer
fall more than ``max_lag`` seconds behind (the CPUs saturated for that long), it returns to
normal priority (``nice 5``) until it has caught up; a process without the right to leave
``SCHED_IDLE`` (``CAP_SYS_NICE``) exits with ``EXIT_BEHIND`` instead, and ``WriterProcess``
starts the next writer at normal priority. ``LAKESTACK_CAPTURE_WRITER_PRIORITY=normal`` keeps
it at ``nice 5`` throughout.

Run it by hand as ``python -m lakestack.serving.capture_writer --warehouse W --spool-dir D``
(``--parent-pid``, ``--flush-seconds``, ``--compact-every``, ``--cpus``, ``--priority``,
``--max-lag``, ``--behind``; the catalog's storage options as JSON in
``LAKESTACK_CAPTURE_STORAGE_OPTIONS``, never on the command line).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lakestack.errors import LakestackError, UsageError
from lakestack.lake import Catalog
from lakestack.serving.capture import (
    _RETRY_SECONDS,
    _SPOOL_PREFIX,
    COMPACT_TARGET_BYTES,
    SPOOL_SUFFIX,
    _Spool,
    _Writer,
)

__all__ = [
    "COMPACT_EVERY",
    "CPUS_ENV",
    "EXIT_BEHIND",
    "MAX_LAG_SECONDS",
    "PRIORITY_ENV",
    "STORAGE_ENV",
    "CaptureWriter",
    "WriterProcess",
    "main",
    "start_writer",
    "writer_cpus",
    "writer_priority",
]

log = logging.getLogger(__name__)

STORAGE_ENV = "LAKESTACK_CAPTURE_STORAGE_OPTIONS"
CPUS_ENV = "LAKESTACK_CAPTURE_WRITER_CPUS"
PRIORITY_ENV = "LAKESTACK_CAPTURE_WRITER_PRIORITY"
EXIT_BEHIND = 3  # the writer fell behind at idle priority and may not leave it: restart it
MAX_LAG_SECONDS = 30.0
_NICE = 5
_WRITER_LOCK = ".writer.lock"
_POLL_SECONDS = 0.1  # how often pending bytes are looked at between timed writes
_FINAL_ATTEMPTS = 3
COMPACT_EVERY = 100


@dataclass
class _Tail:
    """A live spool the writer follows: a read-only handle and how far it is written."""

    spool: _Spool
    writer: _Writer | None  # None: not ours to write while its owner lives (a ``Capture``'s)
    offset: int | None = None  # None: ask the table (at first, and after a failed write)


class _Priority:
    """The writer's CPU priority: idle while it keeps up, normal while it is behind.

    Args:
        idle: Run at idle priority whenever caught up (False: always normal).
        max_lag: Return to normal priority once the rows have waited this many seconds.
        behind: Start at normal priority (the previous writer fell behind).
    """

    def __init__(self, *, idle: bool, max_lag: float = MAX_LAG_SECONDS, behind: bool = False):
        self.wanted_idle = idle
        self.max_lag = max_lag
        self.idle = False
        self.stuck = threading.Event()  # behind at idle priority, not allowed to leave it
        if idle and not behind:
            self.caught_up()

    def caught_up(self) -> None:
        """The writer has written what was waiting: back to idle priority, if wanted."""
        if self.wanted_idle and not self.idle:
            self.idle = _set_priority(idle=True)

    def lagging(self, lag: float) -> None:
        """The oldest unwritten row may have waited ``lag`` seconds: past ``max_lag``, return
        to normal priority, or mark the writer ``stuck`` when that is not permitted."""
        if not self.idle or lag <= self.max_lag:
            return
        if _set_priority(idle=False):
            self.idle = False
            log.warning(
                "behind by %.0f s at idle priority: at normal priority until caught up (give "
                "the writer CPUs of its own with %s)",
                lag,
                CPUS_ENV,
            )
        elif not self.stuck.is_set():
            log.warning(
                "behind by %.0f s at idle priority and not permitted to leave it: exiting for a "
                "writer at normal priority",
                lag,
            )
            self.stuck.set()


def _set_priority(*, idle: bool) -> bool:
    """Put every thread of this process at idle (``SCHED_IDLE``) or normal (``SCHED_OTHER``)
    priority. False when not done: not permitted (leaving ``SCHED_IDLE`` takes
    ``CAP_SYS_NICE``), or no ``SCHED_IDLE`` on this platform."""
    if not hasattr(os, "SCHED_IDLE"):
        return not idle
    policy = os.SCHED_IDLE if idle else os.SCHED_OTHER
    done: set[int] = set()
    try:
        while True:  # a thread may start another meanwhile (it inherits the policy of the time)
            threads = {int(tid) for tid in os.listdir("/proc/self/task")}.difference(done)
            if not threads:
                return True
            for tid in threads:
                with contextlib.suppress(ProcessLookupError):  # the thread has ended
                    os.sched_setscheduler(tid, policy, os.sched_param(0))
                done.add(tid)
    except PermissionError:
        return False


class CaptureWriter:
    """Writes every spool of one folder into the tables their headers name.

    Args:
        catalog: The catalog of the inference tables.
        spool_dir: The endpoint's spool folder (``<workspace root>/serving/spool/<endpoint>``).
        compact_every: Compact a table after this many commits of rows (0: never).
        compact_target: The size of the compacted files, in bytes.
    """

    def __init__(
        self,
        catalog: Catalog,
        spool_dir: Path,
        *,
        compact_every: int = COMPACT_EVERY,
        compact_target: int = COMPACT_TARGET_BYTES,
    ) -> None:
        self.catalog = catalog
        self.spool_dir = Path(spool_dir)
        self.compact_every = compact_every
        self.compact_target = compact_target
        self.rows_written = 0
        self.interrupt = threading.Event()  # set: stop the pass after the current commit
        self._writers: dict[str, _Writer] = {}
        self._tails: dict[Path, _Tail] = {}

    def pending_bytes(self) -> int:
        """Bytes of the followed spools not yet written (a cheap ``fstat`` per spool)."""
        return sum(
            t.spool.size() - t.offset
            for t in self._tails.values()
            if t.writer is not None and t.offset is not None
        )

    def write_once(self) -> bool:
        """Write every spool of the folder up to its last complete line.

        Returns:
            True when every spool was written; False when a write failed (logged; the rows
            stay in their spool for the next pass).
        """
        ok = True
        paths = sorted(self.spool_dir.glob(f"{_SPOOL_PREFIX}*{SPOOL_SUFFIX}"))
        for gone in set(self._tails).difference(paths):
            self._forget(gone)
        for path in paths:
            try:
                self._write_spool(path)
            except Exception as exc:
                ok = False
                tail = self._tails.get(path)
                if tail is not None:
                    tail.offset = None  # the commit may have landed before the failure
                log.warning("inference table spool %s: a write failed (%s); retrying", path, exc)
        return ok

    def compact(self, *, every: int | None = None) -> None:
        """Compact each table with at least ``every`` commits of rows since its last compaction
        (default ``compact_every``; 1: every table written since). A failure is logged; the
        table is compacted at a later turn."""
        every = self.compact_every if every is None else every
        if every < 1:
            return
        for writer in self._writers.values():
            if writer.commits < every:
                continue
            started = time.monotonic()
            try:
                metrics = writer.compact(self.compact_target)
            except LakestackError as exc:
                writer.commits = 0  # not at every pass: at the next turn
                log.warning("inference table %s: compaction failed (%s)", writer.table_name, exc)
                continue
            log.info(
                "inference table %s: compacted %s files into %s in %.1f s",
                writer.table_name,
                metrics.get("numFilesRemoved"),
                metrics.get("numFilesAdded"),
                time.monotonic() - started,
            )

    def close(self) -> None:
        """Release the followed spools' handles."""
        for path in list(self._tails):
            self._forget(path)

    def _write_spool(self, path: Path) -> None:
        claimed = _Spool.claim(path)
        if claimed is not None:  # closed, rotated or its process died: finish it
            self._forget(path)
            try:
                table_name = claimed.table_name()
                reason = claimed.unreadable()
                if table_name is None or reason is not None:
                    log.warning("inference table spool %s is left in place: %s", path, reason)
                    claimed.close(delete=False)
                    return
                writer = self._writer(table_name)
                offset = writer.drain(claimed)
            except BaseException:
                claimed.close(delete=False)
                raise
            claimed.finish(offset)
            return
        tail = self._tails.get(path)
        if tail is None:
            tail = self._follow(path)
            if tail is None:
                return
        if tail.writer is None:
            return
        start = tail.writer.committed_offset(tail.spool) if tail.offset is None else tail.offset
        # Up to what the spool held when the pass began: following it to its very end would
        # never stop under load, committing back to back a few hundred rows each time (a
        # commit costs about the same for 100 rows as for 10,000).
        target = tail.spool.size()
        while start < target and not self.interrupt.is_set():
            end, rows = tail.writer.flush(tail.spool, start)
            self.rows_written += rows
            if end == start:
                break
            start = tail.offset = end

    def _follow(self, path: Path) -> _Tail | None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        spool = _Spool(path, fd)
        table_name = spool.table_name()
        writer = self._writer(table_name) if spool.tailed() and table_name else None
        tail = self._tails[path] = _Tail(spool, writer)
        return tail

    def _forget(self, path: Path) -> None:
        tail = self._tails.pop(path, None)
        if tail is not None:
            os.close(tail.spool.fd)

    def _writer(self, table_name: str) -> _Writer:
        writer = self._writers.get(table_name)
        if writer is None:
            writer = self._writers[table_name] = _Writer(self.catalog, table_name)
        return writer

    def run(
        self,
        stopping: threading.Event,
        *,
        flush_seconds: float = 1.0,
        flush_bytes: int = 4 * 2**20,
        parent_pid: int | None = None,
        priority: _Priority | None = None,
    ) -> bool:
        """Write until ``stopping`` is set or the parent process is gone, then write the rest.

        Holds ``.writer.lock`` while it runs (waits for a previous writer to finish first).
        With a ``priority``, drops to idle priority whenever caught up and rises when behind;
        when it may not rise (``priority.stuck``), stops after the current commit and leaves
        the rest to the next writer.

        Returns:
            True when everything was written at the end.
        """
        if priority is not None:
            self.interrupt = priority.stuck
        written_to = time.monotonic()  # every row spooled before then is in the table

        def done() -> bool:
            return (
                stopping.is_set()
                or self.interrupt.is_set()
                or (parent_pid is not None and os.getppid() != parent_pid)
            )

        def watch_lag() -> None:  # a thread of its own: the pass itself may be what is slow
            assert priority is not None
            while not stopping.wait(1.0) and not priority.stuck.is_set():
                priority.lagging(time.monotonic() - written_to)

        self.spool_dir.mkdir(parents=True, exist_ok=True)
        lock = os.open(self.spool_dir / _WRITER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if done():  # another writer still has the folder; it writes the rest
                        return True
                    stopping.wait(_POLL_SECONDS)
            if priority is not None and priority.wanted_idle:
                threading.Thread(target=watch_lag, name="lag", daemon=True).start()
            failures = 0
            last = -math.inf  # the first pass at once: a stopped server may have left rows
            while not done():
                now = time.monotonic()
                pending = self.pending_bytes()
                if pending == 0:
                    written_to = now
                if now - last >= flush_seconds or (failures == 0 and pending >= flush_bytes):
                    last = now
                    if self.write_once() and not self.interrupt.is_set():
                        written_to = last
                        if priority is not None and self.pending_bytes() < flush_bytes:
                            priority.caught_up()
                        failures = 0
                        self.compact()
                    elif not self.interrupt.is_set():
                        last += _RETRY_SECONDS[min(failures, len(_RETRY_SECONDS) - 1)]
                        failures += 1
                stopping.wait(_POLL_SECONDS)
            if self.interrupt.is_set():
                return False
            for attempt in range(_FINAL_ATTEMPTS):
                if self.write_once():
                    if stopping.is_set():  # a graceful stop; a killed server's writer hurries
                        self.compact(every=1)
                    return True
                time.sleep(_RETRY_SECONDS[min(attempt, len(_RETRY_SECONDS) - 1)])
            return False
        finally:
            self.close()
            os.close(lock)


class WriterProcess:
    """A capture writer process started by ``start_writer``, restarted if it dies."""

    def __init__(self, command: list[str], env: Mapping[str, str], spool_dir: Path) -> None:
        self.spool_dir = spool_dir
        self._command = command
        self._env = dict(env)
        self._stopping = threading.Event()
        self.process = self._start()
        self._watch = threading.Thread(
            target=self._watchdog, name=f"lakestack-capture-watch-{spool_dir.name}", daemon=True
        )
        self._watch.start()

    def _start(self, *, behind: bool = False) -> subprocess.Popen[bytes]:
        command = [*self._command, "--behind"] if behind else self._command
        return subprocess.Popen(
            command, env=self._env, stdin=subprocess.DEVNULL, start_new_session=True
        )

    def _watchdog(self) -> None:
        """Start a new writer if this one exited on its own (nothing is lost meanwhile: the
        rows wait in the spools)."""
        while not self._stopping.wait(1.0):
            code = self.process.poll()
            if code is None or self._stopping.is_set():
                continue
            if code == EXIT_BEHIND:
                log.info(
                    "the capture writer of %s fell behind; the next one starts at normal priority",
                    self.spool_dir,
                )
                self.process = self._start(behind=True)
            else:
                log.warning(
                    "the capture writer of %s exited with %s; starting a new one",
                    self.spool_dir,
                    code,
                )
                self.process = self._start()

    def stop(self, timeout: float = 60.0) -> int | None:
        """Ask the writer to write everything and exit; wait up to ``timeout`` seconds.

        Returns:
            The writer's exit code (0: everything written), or None when it had to be killed
            (its spools are finished by the next writer of the folder).
        """
        self._stopping.set()
        self._watch.join()
        process = self.process
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning(
                "the capture writer of %s did not finish within %.0f s; its spools are written "
                "at the next start",
                self.spool_dir,
                timeout,
            )
            process.kill()
            process.wait()
            return None


def start_writer(
    warehouse: str | Path,
    spool_dir: Path,
    *,
    storage_options: Mapping[str, str] | None = None,
    flush_seconds: float = 1.0,
    compact_every: int = COMPACT_EVERY,
) -> WriterProcess:
    """Start the capture writer process of ``spool_dir``, a child of this process."""
    command = [
        sys.executable,
        "-m",
        "lakestack.serving.capture_writer",
        "--warehouse",
        str(warehouse),
        "--spool-dir",
        str(spool_dir),
        "--parent-pid",
        str(os.getpid()),
        "--flush-seconds",
        str(flush_seconds),
        "--compact-every",
        str(compact_every),
    ]
    cpus = writer_cpus()
    if cpus is not None:
        command += ["--cpus", _cpu_list(cpus)]
    command += ["--priority", writer_priority()]
    env = dict(os.environ)
    env[STORAGE_ENV] = json.dumps(dict(storage_options or {}))
    return WriterProcess(command, env, Path(spool_dir))


def writer_cpus() -> set[int] | None:
    """The CPUs a writer started by this process runs on; None: the same as this process.

    A process pinned to some of the machine's CPUs leaves its writer the others, so that the
    writer's Arrow and Delta work never competes with the requests on the CPUs the operator
    reserved for them (a child inherits its parent's pinning). An unpinned process, or one
    pinned to every CPU, keeps its writer beside it (at idle priority, ``writer_priority``).
    ``LAKESTACK_CAPTURE_WRITER_CPUS`` decides instead when set: a CPU list (``2,3``, ``4-7``)
    or ``inherit``.

    Raises:
        UsageError: ``LAKESTACK_CAPTURE_WRITER_CPUS`` is neither a CPU list nor ``inherit``.
    """
    chosen = os.environ.get(CPUS_ENV, "").strip()
    if chosen == "inherit":
        return None
    if chosen:
        return _parse_cpus(chosen, CPUS_ENV)
    if not hasattr(os, "sched_getaffinity"):
        return None
    others = set(range(os.cpu_count() or 1)).difference(os.sched_getaffinity(0))
    return others or None


def writer_priority() -> str:
    """The priority of a writer started by this process: ``idle`` (the default: idle whenever
    caught up) or ``normal`` (``nice 5`` throughout), from ``LAKESTACK_CAPTURE_WRITER_PRIORITY``.

    Raises:
        UsageError: ``LAKESTACK_CAPTURE_WRITER_PRIORITY`` is neither ``idle`` nor ``normal``.
    """
    chosen = os.environ.get(PRIORITY_ENV, "").strip() or "idle"
    if chosen not in ("idle", "normal"):
        raise UsageError(f"{PRIORITY_ENV} must be idle or normal, not '{chosen}'; fix or unset it")
    return chosen


def _parse_cpus(text: str, where: str) -> set[int]:
    cpus: set[int] = set()
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            cpus.update(range(int(first), int(last or first) + 1))
    except ValueError:
        cpus.clear()
    if not cpus or min(cpus) < 0:
        raise UsageError(
            f"{where} must be a CPU list such as 0,2 or 4-7, or inherit, not '{text}'; "
            "fix or unset it"
        )
    return cpus


def _cpu_list(cpus: set[int]) -> str:
    return ",".join(str(cpu) for cpu in sorted(cpus))


def _run_on(cpus: set[int]) -> None:
    """Move this process to ``cpus``; stay where it is when none of them is allowed here (a
    cpuset without them) or the platform cannot pin."""
    try:
        os.sched_setaffinity(0, cpus)
    except (OSError, AttributeError) as exc:
        log.warning("cannot run on CPUs %s (%s); staying on the server's", _cpu_list(cpus), exc)


def main(argv: Sequence[str] | None = None) -> int:
    """The writer process: exit code 0 when everything was written at the end, 1 if not."""
    parser = argparse.ArgumentParser(prog="python -m lakestack.serving.capture_writer")
    parser.add_argument("--warehouse", required=True)
    parser.add_argument("--spool-dir", required=True, type=Path)
    parser.add_argument("--parent-pid", type=int, default=None)
    parser.add_argument("--flush-seconds", type=float, default=1.0)
    parser.add_argument(
        "--compact-every", type=int, default=COMPACT_EVERY, help="commits per compaction (0: off)"
    )
    parser.add_argument("--cpus", default=None, help="a CPU list to run on, such as 2,3 or 4-7")
    parser.add_argument(
        "--priority",
        choices=("idle", "normal"),
        default="idle",
        help="idle: SCHED_IDLE whenever caught up; normal: nice 5 throughout",
    )
    parser.add_argument(
        "--max-lag",
        type=float,
        default=MAX_LAG_SECONDS,
        help="seconds rows may wait before an idle writer returns to normal priority",
    )
    parser.add_argument(
        "--behind", action="store_true", help="start at normal priority (the last writer lagged)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="capture writer: %(message)s")
    if args.cpus:
        _run_on(_parse_cpus(args.cpus, "--cpus"))
    stopping = threading.Event()
    handler: Callable[[int, Any], None] = lambda _signum, _frame: stopping.set()  # noqa: E731
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    with contextlib.suppress(OSError):
        os.nice(_NICE)  # the request path comes first; the spool absorbs the delay
    priority = _Priority(idle=args.priority == "idle", max_lag=args.max_lag, behind=args.behind)
    options = json.loads(os.environ.get(STORAGE_ENV) or "{}")
    catalog = Catalog(args.warehouse, options or None)
    writer = CaptureWriter(catalog, args.spool_dir, compact_every=args.compact_every)
    complete = writer.run(
        stopping, flush_seconds=args.flush_seconds, parent_pid=args.parent_pid, priority=priority
    )
    if priority.stuck.is_set():
        return EXIT_BEHIND
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
