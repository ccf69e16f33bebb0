"""Online serving: ``lakestack serve`` vs ``mlflow models serve`` on the same iris models.

One run trains a LogisticRegression and a RandomForest (100 trees) on iris, registers them in a
temp bundle's MLflow store, then for each model starts each side's server pinned to CPU 0 and
drives it from CPU 1 with ``wrk`` (a Lua script POSTs a one-record ``dataframe_split`` body and
prints requests and latency percentiles) at each concurrency. Sides:

* ``lakestack``: ``lakestack serve -t dev --endpoint iris-<model>`` (the inference table off);
* ``capture``: the same with the endpoint's ``auto_capture_config`` on (LogisticRegression);
* ``mlflow``: ``mlflow models serve -m models:/<name>/1 --env-manager local -w N``;
* ``floor``: a server that answers every request with the same bytes, without parsing the
  body or predicting (uvloop and httptools, as ``lakestack serve``): what this host's loopback
  and scheduler cost a Python server per request, measured once, not per model. The latency
  goals are read against it: a p99 below the floor's is out of any server's reach here.

Every side must answer the sample flowers with the classes scikit-learn predicts (``ok``), and
the capture side's table must hold one row per answered request after a graceful stop. Beside
the requests/s, each run reads the CPU time of the server's processes (and of the capture writer
process) from ``/proc``: CPU per request and the writer's CPU per 1,000 rows are steadier than
requests/s on a shared machine.
``benchmarks/README.md`` (section ``serving``) has the parameters and columns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from _common import ForeignCpu, bench_env, foreign_warning, ratio, spread, tail

__all__ = ["run"]

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
MODELS = {"lr": "main.bench.iris_lr", "rf": "main.bench.iris_rf"}
SIDES = ("lakestack", "capture", "mlflow", "floor")
WRK_INSTALL = "apt-get install -y wrk"
_SETTLE_SECONDS = 1.5  # after a capture run: its writer's last commit lands before the next run

# The floor side: an HTTP/1.1 server that answers every request with the same small JSON
# body, on uvloop with httptools' parser, as ``lakestack serve`` runs. argv: the port.
FLOOR = r"""
import asyncio, sys
import httptools, uvloop

ANSWER = b'{"predictions": [0]}'
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
KEEP = HEAD % len(ANSWER) + b"\r\n" + ANSWER
CLOSE = HEAD % len(ANSWER) + b"connection: close\r\n\r\n" + ANSWER


class Floor(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)

    def data_received(self, data):
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_complete(self):
        if self.parser.should_keep_alive():
            self.transport.write(KEEP)
        else:
            self.transport.write(CLOSE)
            self.transport.close()


async def main(port):
    server = await asyncio.get_running_loop().create_server(Floor, "127.0.0.1", port)
    await server.serve_forever()


uvloop.run(main(int(sys.argv[1])))
"""

SETUP = r"""
import json, sys
from pathlib import Path
import mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from lakestack.registry import log_model, tracking_uri_for, Tracking

root, wanted = Path(sys.argv[1]), sys.argv[2].split(",")
features = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
x, y = load_iris(return_X_y=True, as_frame=True)
x.columns = features
Tracking(tracking_uri_for(root / ".lakestack")).activate()
models = {
    "lr": ("main.bench.iris_lr", LogisticRegression(max_iter=1000)),
    "rf": ("main.bench.iris_rf", RandomForestClassifier(n_estimators=100, random_state=0)),
}
sample = x.iloc[::15]
out = {"sample": sample.values.tolist(), "expected": {},
       "tracking_uri": tracking_uri_for(root / ".lakestack")}
for key in wanted:
    name, model = models[key]
    model.fit(x, y)
    log_model(model, flavor=mlflow.sklearn, name="model", registered_model_name=name,
              signature=infer_signature(x, model.predict(x)), pip_requirements=["scikit-learn"])
    out["expected"][key] = [int(v) for v in model.predict(sample)]
print(json.dumps(out))
"""

BUNDLE = """\
bundle:
  name: bench_serving
targets:
  dev:
    default: true
resources:
  schemas:
    bench:
      catalog_name: main
      name: bench
  model_serving_endpoints:
{endpoints}
"""

ENDPOINT = """\
    {key}:
      name: {key}
      config:
        served_entities:
          - entity_name: {model}
            entity_version: "1"
{capture}"""

CAPTURE = """\
        auto_capture_config:
          catalog_name: main
          schema_name: bench
          table_name_prefix: {prefix}
"""

LUA = r"""
wrk.method = "POST"
wrk.body = [==[%BODY%]==]
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"errors":%d,"non2xx":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


def run(args: Any) -> dict[str, Any]:
    """Run the serving benchmark (see the module docstring)."""
    p = args.params
    smoke = args.smoke
    models = _list(p.get("models"), ["lr"] if smoke else ["lr", "rf"])
    sides = _list(p.get("sides"), ["lakestack", "capture", "floor"] if smoke else list(SIDES))
    concurrency = [
        int(c) for c in _list(p.get("concurrency"), ["1", "8"] if smoke else ["1", "8", "64"])
    ]
    duration = float(p.get("duration", 1 if smoke else 10))
    workers = int(p.get("workers", 1))
    loadgen = p.get("loadgen") or ("wrk" if shutil.which("wrk") else "python")
    summary: list[str] = []
    if loadgen == "python" and not shutil.which("wrk"):
        summary.append(
            f"wrk is not installed ({WRK_INSTALL}): the load came from the Python asyncio "
            "generator, which saturates far below wrk; its numbers are marked loadgen=python"
        )
    bad = [s for s in sides if s not in SIDES] + [m for m in models if m not in MODELS]
    if bad:
        raise SystemExit(f"unknown side or model {bad[0]} (sides: {SIDES}, models: {list(MODELS)})")

    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    try:
        setup = _setup(work, models, args.timeout)
        table: list[dict[str, Any]] = []
        samples: dict[str, Any] = {}
        if "floor" in sides:  # once: it answers the same whatever the model
            (floor,) = _measure(
                work, setup, "-", ["floor"], concurrency, duration, workers, loadgen, args
            )
            table.extend(floor.rows)
            samples["floor"] = floor.raw
        for model in models:
            # lakestack with and without its inference table interleaved, MLflow on its own
            ours = [s for s in sides if s == "lakestack" or (s == "capture" and model == "lr")]
            groups = [ours] if ours else []
            groups += [["mlflow"]] if "mlflow" in sides else []
            for group in groups:
                measured = _measure(
                    work, setup, model, group, concurrency, duration, workers, loadgen, args
                )
                for side in measured:
                    table.extend(side.rows)
                    samples[f"{model}/{side.side}"] = side.raw
        summary += _goals(table, models, sides, concurrency)
        summary += foreign_warning(s for raw in samples.values() for s in raw["runs"])
        env = {"loadgen": loadgen, "wrk": _wrk_version() if loadgen == "wrk" else None}
        return {
            "table": table,
            "summary": summary,
            "env": env,
            "params": {
                "models": models,
                "sides": sides,
                "concurrency": concurrency,
                "duration_s": duration,
                "workers": workers,
                "pinned": _pinned(),
            },
            "samples": samples,
        }
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"  kept {work}")


def _list(value: str | None, default: list[str]) -> list[str]:
    return [v for v in value.split(",") if v] if value else default


def _pinned() -> bool:
    return bool(shutil.which("taskset")) and (os.cpu_count() or 1) >= 2


def _cpu(cpu: int) -> list[str]:
    """The ``taskset`` prefix that pins a command to one CPU (none on a 1-CPU machine)."""
    return ["taskset", "-c", str(cpu)] if _pinned() else []


def _setup(work: Path, models: list[str], timeout: float) -> dict[str, Any]:
    """Write the bundle, deploy it, train and register the models; the sample and answers."""
    endpoints = []
    for key in models:
        endpoints.append(ENDPOINT.format(key=f"iris-{key}", model=MODELS[key], capture=""))
        capture = CAPTURE.format(prefix=f"iris_{key}")
        endpoints.append(
            ENDPOINT.format(key=f"iris-{key}-capture", model=MODELS[key], capture=capture)
        )
    (work / "lakestack.yml").write_text(BUNDLE.format(endpoints="".join(endpoints)))
    env = bench_env()
    cli = str(Path(sys.executable).parent / "lakestack")
    done = subprocess.run(
        [cli, "bundle", "deploy"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"lakestack bundle deploy failed:\n{tail(done.stdout + done.stderr)}")
    done = subprocess.run(
        [sys.executable, "-c", SETUP, str(work), ",".join(models)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"training the iris models failed:\n{tail(done.stderr)}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _server_command(
    work: Path, setup: dict[str, Any], model: str, side: str, port: int, workers: int
) -> tuple[list[str], str, dict[str, str]]:
    env = bench_env()
    if side == "floor":
        return [*_cpu(0), sys.executable, "-c", FLOOR, str(port)], "/invocations", env
    if side == "mlflow":
        env["MLFLOW_TRACKING_URI"] = setup["tracking_uri"]
        # mlflow starts ``uvicorn`` by name: the venv's bin must be on PATH
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        mlflow = str(Path(sys.executable).parent / "mlflow")
        cmd = [
            mlflow,
            "models",
            "serve",
            "-m",
            f"models:/{MODELS[model]}/1",
            "--env-manager",
            "local",
            "-w",
            str(workers),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ]
        return [*_cpu(0), *cmd], "/invocations", env
    endpoint = f"iris-{model}" + ("-capture" if side == "capture" else "")
    cli = str(Path(sys.executable).parent / "lakestack")
    cmd = [
        cli,
        "serve",
        "-t",
        "dev",
        "--endpoint",
        endpoint,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return [*_cpu(0), *cmd], f"/serving-endpoints/{endpoint}/invocations", env


class _Server:
    """A server process in its own session, stopped gracefully (SIGTERM), SIGKILL if stuck."""

    def __init__(self, cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("w")
        self.proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, url: str, timeout: float) -> float:
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the server exited with {self.proc.returncode}:\n{tail(self.log.read_text())}"
                )
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(
            f"the server was not ready after {timeout:.0f}s:\n{tail(self.log.read_text())}"
        )

    def stop(self) -> int:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # uvicorn workers left behind
        self._out.close()
        return int(self.proc.returncode)


def _post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _payload(row: list[float]) -> dict[str, Any]:
    return {"dataframe_split": {"columns": FEATURES, "data": [row]}}


def _predictions(answer: Any) -> list[int]:
    values = answer["predictions"] if isinstance(answer, dict) else answer
    out = []
    for value in values:
        if isinstance(value, dict):  # a {"column": value} record
            value = next(iter(value.values()))
        out.append(int(value))
    return out


class _Side:
    """One side's server for one model: started, loaded run by run, summarized, stopped."""

    def __init__(
        self,
        work: Path,
        setup: dict[str, Any],
        model: str,
        side: str,
        workers: int,
        loadgen: str,
        args: Any,
    ) -> None:
        self.work, self.setup, self.model, self.side = work, setup, model, side
        self.loadgen, self.args = loadgen, args
        port = _free_port()
        cmd, path, env = _server_command(work, setup, model, side, port, workers)
        self.url = f"http://127.0.0.1:{port}{path}"
        self.name = f"{side}" if side != "capture" else "lakestack + inference table"
        print(f"  {model} {self.name}: starting {' '.join(cmd[-12:])}", flush=True)
        self.server = _Server(cmd, work, env, work / f"server-{model}-{side}.log")
        self.raw: dict[str, Any] = {"runs": [], "command": cmd}
        self.rows: list[dict[str, Any]] = []
        self.requests = 0
        self.ok = False
        self.body = json.dumps(_payload(setup["sample"][0]))
        try:
            timeout = 30 if args.smoke else 180
            self.raw["startup_s"] = round(
                self.server.wait_ready(f"http://127.0.0.1:{port}/ping", timeout), 2
            )
            answers = [_predictions(_post(self.url, _payload(r))) for r in setup["sample"]]
        except BaseException:
            self.server.stop()
            raise
        # the floor answers without a model: it only has to answer
        self.ok = side == "floor" or [a[0] for a in answers] == setup["expected"][model]
        self.raw["answers"] = answers
        self.requests = len(answers)

    def load(self, conc: int, duration: float, measured: bool) -> dict[str, Any]:
        """One load run at ``conc`` (kept when ``measured``)."""
        sample = _load(
            self.url, self.body, conc, duration, self.loadgen, self.work, self.server.proc.pid
        )
        self.requests += sample["requests"]
        if measured:
            self.raw["runs"].append({"concurrency": conc, **sample})
        if self.side == "capture":
            time.sleep(_SETTLE_SECONDS)  # its writer commits the last second before the next run
        return sample

    def summarize(self, conc: int, runs: list[dict[str, Any]]) -> None:
        """The table row of the measured runs at ``conc``, printed."""
        rps = spread([s["rps"] for s in runs])
        row = {
            "model": self.model,
            "side": self.name,
            "c": conc,
            "req_s": rps["median"],
            "req_s_min": rps["min"],
            "req_s_max": rps["max"],
            "p50_ms": spread([s["p50_ms"] for s in runs])["median"],
            "p99_ms": spread([s["p99_ms"] for s in runs])["median"],
            "server_us_req": spread([s["server_us_req"] for s in runs])["median"],
            "errors": sum(s["errors"] + s["non2xx"] for s in runs),
            "loadgen": self.loadgen,
            "ok": self.ok and all(s["errors"] + s["non2xx"] == 0 for s in runs),
        }
        writer = ""
        if self.side == "capture":
            row["writer_ms_1k"] = spread([s["writer_ms_1k"] for s in runs])["median"]
            writer = f", writer {row['writer_ms_1k']:.1f} ms/1k rows"
        self.rows.append(row)
        print(
            f"    {self.model} {self.name} c={conc}: {row['req_s']:.0f} req/s, "
            f"p50 {row['p50_ms']:.2f} ms, p99 {row['p99_ms']:.2f} ms, "
            f"server {row['server_us_req']:.0f} us CPU/req{writer}{_busy(runs)}",
            flush=True,
        )

    def stop(self) -> None:
        """Stop the server gracefully; the capture side's table must then hold every request."""
        self.raw["requests_sent"] = self.requests
        self.raw["exit_code"] = self.server.stop()
        if self.side != "capture":
            return
        captured = _captured_rows(self.work, self.model)
        self.raw["captured_rows"] = captured
        complete = captured >= self.requests > 0
        for row in self.rows:
            row["captured"] = captured
            row["ok"] = row["ok"] and complete
        if not complete:
            print(
                f"    inference table has {captured} rows for {self.requests} answered requests",
                flush=True,
            )


def _measure(
    work: Path,
    setup: dict[str, Any],
    model: str,
    sides: list[str],
    concurrency: list[int],
    duration: float,
    workers: int,
    loadgen: str,
    args: Any,
) -> list[_Side]:
    """Measure ``sides`` of one model with their servers up together, the runs interleaved:
    each repetition loads every side once, in turn (the order reversed every other time), so
    the machine's drift is shared by the sides instead of charged to whichever ran last."""
    started: list[_Side] = []
    try:
        for side in sides:
            started.append(_Side(work, setup, model, side, workers, loadgen, args))
        for conc in concurrency:
            runs: dict[str, list[dict[str, Any]]] = {s.side: [] for s in started}
            for i in range(args.warmup + args.repeat):
                measured = i >= args.warmup
                seconds = duration if measured else min(duration, 2.0)
                for side in started if i % 2 == 0 else started[::-1]:
                    sample = side.load(conc, seconds, measured)
                    if measured:
                        runs[side.side].append(sample)
            for side in started:
                side.summarize(conc, runs[side.side])
    finally:
        for side in started:
            side.stop()
    return started


def _busy(runs: list[dict[str, Any]]) -> str:
    share = max((r.get("foreign_cpu_share", 0.0) for r in runs), default=0.0)
    return f" (other processes used {share:.0%} of the CPUs)" if share > 0.1 else ""


def _captured_rows(work: Path, model: str) -> int:
    code = (
        "import sys; from lakestack.workspace import Workspace\n"
        "ws = Workspace.open(sys.argv[1], target='dev')\n"
        "name = f'main.bench.iris_{sys.argv[2]}_payload'\n"
        "exists = ws.catalog.table_exists(name)\n"
        "print(ws.catalog.table(name).read(['request_id']).num_rows if exists else 0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(work), model],
        capture_output=True,
        text=True,
        env=bench_env(),
    )
    return int(done.stdout.strip() or 0) if done.returncode == 0 else -1


def _load(
    url: str, body: str, conc: int, duration: float, loadgen: str, work: Path, server: int
) -> dict[str, Any]:
    """One measured load run: requests/s, p50/p99 (ms), errors, foreign CPU share.

    ``server`` is the server's session (its workers share it); it and the harness's own session
    (wrk) are not foreign load.
    """
    foreign = ForeignCpu()
    foreign.ours.update({os.getsid(0), server})
    foreign.start()
    before = _tree_cpu(server)
    started = time.perf_counter()
    if loadgen == "wrk":
        result = _wrk(url, body, conc, duration, work)
    else:
        result = asyncio.run(_python_load(url, body, conc, duration))
    wall = time.perf_counter() - started
    after = _tree_cpu(server)
    result["foreign_cpu_share"] = round(foreign.stop(wall), 3)
    requests = max(1, result["requests"])
    result["server_cpu_s"] = round(after[0] - before[0], 3)
    result["writer_cpu_s"] = round(after[1] - before[1], 3)
    result["server_us_req"] = round((after[0] - before[0]) / requests * 1e6, 1)
    # one row per request; the writer trails the spool by about a second, a small skew
    result["writer_ms_1k"] = round((after[1] - before[1]) / requests * 1e6, 2)
    return result


def _tree_cpu(root: int) -> tuple[float, float]:
    """CPU seconds (user + system) used so far by ``root`` and its descendants: the server's
    processes, and the capture writer processes among them (a child in its own session)."""
    procs: dict[int, tuple[int, int, bool]] = {}  # pid: (parent, ticks, is a capture writer)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                writer = b"lakestack.serving.capture_writer" in f.read()
        except OSError:
            continue
        procs[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]), writer)
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in procs.items():
        children.setdefault(parent, []).append(pid)
    server = writer = 0
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid not in procs:
            continue
        _, ticks, is_writer = procs[pid]
        if is_writer:
            writer += ticks
        else:
            server += ticks
        todo.extend(children.get(pid, ()))
    tick = os.sysconf("SC_CLK_TCK")
    return server / tick, writer / tick


def _wrk(url: str, body: str, conc: int, duration: float, work: Path) -> dict[str, Any]:
    script = work / "post.lua"
    script.write_text(LUA.replace("%BODY%", body))
    cmd = [
        *_cpu(1),
        "wrk",
        "-t1",
        f"-c{conc}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(
            f"wrk printed no result (exit {done.returncode}):\n{tail(done.stdout + done.stderr)}"
        )
    data = json.loads(line.removeprefix("RESULT "))
    seconds = data["duration_us"] / 1e6
    return {
        "requests": data["requests"],
        "rps": round(data["requests"] / seconds, 1),
        "p50_ms": data["p50_us"] / 1000,
        "p99_ms": data["p99_us"] / 1000,
        "errors": data["errors"],
        "non2xx": data["non2xx"],
    }


async def _python_load(url: str, body: str, conc: int, duration: float) -> dict[str, Any]:
    """The fallback generator: ``conc`` keep-alive HTTP/1.1 connections in one event loop."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    request = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body.encode())}\r\n\r\n{body}"
    ).encode()
    latencies: list[float] = []
    errors = non2xx = 0
    deadline = time.perf_counter() + duration

    async def connection() -> None:
        nonlocal errors, non2xx
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                writer.write(request)
                status = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                if b" 200 " not in status:
                    non2xx += 1
        except (OSError, asyncio.IncompleteReadError):
            errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(conc)))
    wall = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0.0
        )

    return {
        "requests": len(latencies),
        "rps": round(len(latencies) / wall, 1),
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "errors": errors,
        "non2xx": non2xx,
    }


def _wrk_version() -> str | None:
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0] if text else None


def _goals(
    table: list[dict[str, Any]], models: list[str], sides: list[str], concurrency: list[int]
) -> list[str]:
    """The issue's goals, one line each, with the measured ratios."""
    by = {(r["model"], r["side"], r["c"]): r for r in table}
    lines: list[str] = []
    for model, label in (("lr", "LogisticRegression"), ("rf", "RandomForest")):
        if model not in models or "lakestack" not in sides or "mlflow" not in sides:
            continue
        for c in concurrency:
            ours, peer = by.get((model, "lakestack", c)), by.get((model, "mlflow", c))
            if not ours or not peer:
                continue
            rps = ratio(ours["req_s"], peer["req_s"])
            p99 = ratio(ours["p99_ms"], peer["p99_ms"])
            if model == "lr":
                met = rps is not None and p99 is not None and rps >= 10 and p99 <= 0.1
                goal = "goal >= 10x req/s and p99 <= 0.1x"
            else:
                met = rps is not None and rps >= 3 if c == 64 else None
                goal = "goal >= 3x req/s at c=64" if c == 64 else "no goal"
            verdict = "" if met is None else (" MET" if met else " NOT MET")
            floor = by.get(("-", "floor", c))
            if model == "lr" and floor:
                reach = floor["p99_ms"] / peer["p99_ms"]
                shown = f"{reach:.2f}x" if reach >= 0.01 else "< 0.01x"
                verdict += f"; the floor's p99 {floor['p99_ms']:.2f} ms is {shown} MLflow's"
                if reach > 0.1:
                    verdict += " (the p99 goal is below this host's floor)"
            lines.append(
                f"{label} c={c}: lakestack/mlflow req/s {rps}x, p99 {p99}x ({goal}){verdict}"
            )
    if "capture" in sides and "lakestack" in sides and "lr" in models:
        shares = []
        for c in concurrency:
            on, off = (
                by.get(("lr", "lakestack + inference table", c)),
                by.get(("lr", "lakestack", c)),
            )
            if on and off:
                shares.append((c, ratio(on["req_s"], off["req_s"])))
        if shares:
            worst = min((s for _, s in shares if s is not None), default=None)
            shown = ", ".join(f"c={c} {s}" for c, s in shares)
            verdict = "" if worst is None else (" MET" if worst >= 0.9 else " NOT MET")
            lines.append(f"inference table on/off req/s: {shown} (goal >= 0.9){verdict}")
        costs = []
        for c in concurrency:
            on, off = (
                by.get(("lr", "lakestack + inference table", c)),
                by.get(("lr", "lakestack", c)),
            )
            if on and off:
                costs.append(
                    f"c={c} {off['server_us_req']:.0f} -> {on['server_us_req']:.0f} us"
                    f" ({ratio(off['server_us_req'], on['server_us_req'])}),"
                    f" writer {on['writer_ms_1k']:.1f} ms per 1,000 rows"
                )
        if costs:
            lines.append(
                "inference table off -> on, server CPU per request (off/on): " + "; ".join(costs)
            )
    failed = [f"{r['model']} {r['side']} c={r['c']}" for r in table if not r["ok"]]
    if failed:
        lines.append(
            "FAILED correctness (wrong answers, errors or missing inference rows): "
            + ", ".join(failed)
        )
    return lines
