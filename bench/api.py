"""``python -m bench.api``: read throughput of ``GET /api/where?name=openssl`` on the
10,000-host fleet of ``bench.fleet`` (the one ``bench.views`` generates), over HTTP under
load and in process, against ``GET /api/status`` on the same server in the same run.

For each backend (SQLite, the generated ledger file; PostgreSQL, a copy of it, unless
``--skip-postgres``), with the views brought up to date first (outside every timing):

* **in process** — the same answer without HTTP, serially in this process for
  ``--seconds`` after a short warm-up: the route's own endpoint function (taken from
  ``api.app.create_app``, so it does whatever the endpoint does: the query, the summary,
  the first page of 100 placements) called with the request the server would see, then
  FastAPI's response path: validating the answer against ``api.models.WhereAnswer``
  and dumping it to JSON bytes through the same ``ModelField`` calls. Queries/s and
  latency percentiles.
* **HTTP** — ``ledger serve`` in a subprocess (a reader token from ``ledger token
  create``), loaded by ``wrk`` (Debian's package) from another process: a warm-up of
  ``--warm-up`` seconds, not counted, then ``--connections`` clients on ``--threads``
  wrk threads for ``--seconds``, then 1 client on 1 thread for ``--seconds`` (the
  single-request latency). Each of the two runs is made on ``/api/where`` and then on
  ``/api/status`` (the ledger's head, the views' position, the envs: two small queries,
  never cached), the same server, clients and duration; where/status is the target
  figure (issue 16: at least 0.5 with the clients). The server keeps answers per views
  position (``api.answers``), and nothing moves the views during the runs, so after
  the first request ``where`` is answered from memory: the figure is what repeated
  reads cost (dashboards, many clients asking the same thing). A Lua script sets the
  bearer token and prints the figures wrk gathered; any non-2xx answer or socket error
  fails the benchmark. The answer over HTTP is checked against the in-process one first.

Also printed: CPU seconds the server used per request (from ``/proc``), wrk's own CPU,
and how busy the machine's cores were during each run, since wrk, the server and (for
PostgreSQL) the database share the machine's cores.

The commit, and which files of ``api``, ``projections``, ``ledger`` and ``cli`` differ from it,
are printed with the figures.

``--keep DIR`` keeps the generated SQLite ledger there (``DIR/fleet.db``, as
``bench.views``) and reuses it on the next run; the runs use a copy of it in a scratch
folder (bringing the views up to date and creating a token write to the ledger), so the
kept file is never changed. ``--hosts 1000 --min-events 50000`` makes a quick small run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request

from api.app import ServerSettings, create_app
from api.tokens import Token
from bench.machine import Machine, describe
from bench.memory import ROOT
from bench.postgres import create_schema, ledger_url, postgres_server, server_settings
from bench.views import copy_ledger, generate
from ledger.application import Ledger
from ledger.store import locate
from projections.runner import Views

NAME = "openssl"
PATH = f"/api/where?name={NAME}"
STATUS = "/api/status"
TARGET = 0.5  # where/status with the clients (issue 16)
LIMIT = 100  # the endpoint's default page size, which the runs use
READER = Token("bench", "reader", 0.0, "bench.api")  # what the reader dependency gives
WRK_TIMEOUT = "120s"  # far above any answer: a timed-out request would drop out of the figures
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

LUA = """
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer {token}"

local refused = 0
response = function(status, headers, body)
  if status >= 300 and refused < 5 then
    refused = refused + 1
    io.write(string.format("bench-api-refused %d %s\\n", status, body:sub(1, 200)))
  end
end

done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  local lines = {{
    {{"requests", summary.requests}},
    {{"duration_s", seconds}},
    {{"bytes", summary.bytes}},
    {{"requests_per_s", summary.requests / seconds}},
    {{"p50_us", latency:percentile(50)}},
    {{"p95_us", latency:percentile(95)}},
    {{"p99_us", latency:percentile(99)}},
    {{"max_us", latency.max}},
    {{"mean_us", latency.mean}},
    {{"errors_connect", e.connect}},
    {{"errors_read", e.read}},
    {{"errors_write", e.write}},
    {{"errors_timeout", e.timeout}},
    {{"errors_status", e.status}},
  }}
  for _, line in ipairs(lines) do
    io.write(string.format("bench-api %s %.6f\\n", line[1], line[2]))
  end
end
"""


@dataclass(frozen=True)
class InProcess:
    queries: int
    seconds: float
    queries_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    placements: int  # rows in the answer (the page holds the first 100)
    answer_bytes: int


@dataclass(frozen=True)
class Load:
    """One wrk run, with the CPU the server and wrk used meanwhile."""

    connections: int
    threads: int
    requests: int
    seconds: float
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    bytes_per_request: float
    server_cpu_s: float
    wrk_cpu_s: float
    machine_busy_cores: float  # all processes, from /proc/stat

    @property
    def server_cpu_ms_per_request(self) -> float:
        return self.server_cpu_s / self.requests * 1e3 if self.requests else float("nan")


@dataclass(frozen=True)
class Backend:
    backend: str
    events: int
    catch_up_seconds: float
    in_process: InProcess
    concurrent: Load
    single: Load
    status_concurrent: Load
    status_single: Load

    @property
    def ratio(self) -> float:
        """HTTP requests/s under load over in-process queries/s."""
        return self.concurrent.requests_per_s / self.in_process.queries_per_s

    @property
    def where_over_status(self) -> float:
        """The target figure: ``where`` requests/s under load over ``status`` ones."""
        return self.concurrent.requests_per_s / self.status_concurrent.requests_per_s


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__)
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--min-events", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="keep (and reuse) the SQLite ledger here")
    parser.add_argument("--seconds", type=int, default=20, help="of each measured run")
    parser.add_argument("--warm-up", type=int, default=5, help="seconds, not counted")
    parser.add_argument("--connections", type=int, default=20, help="concurrent clients")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument(
        "--json", nargs="?", const="-", metavar="FILE",
        help="print the figures as JSON instead of the summary, or with FILE write them there",
    )  # fmt: skip
    return parser.parse_args(argv)


def percentile_ms(timings: list[float], cut: int) -> float:
    if len(timings) < 2:
        return timings[0] * 1e3 if timings else float("nan")
    return statistics.quantiles(timings, n=100, method="inclusive")[cut - 1] * 1e3


# --- in process ------------------------------------------------------------------------


class Where:
    """``GET /api/where?name=openssl`` without HTTP: the route's own endpoint function
    (from ``api.app.create_app``, so it does whatever the endpoint does), called with the
    request the server would see, then what FastAPI does with its answer: validate it
    against the response model (``api.models.WhereAnswer``) and dump it to JSON bytes
    through the same ``ModelField`` calls (its ``dump_json`` path)."""

    def __init__(self, views: Views, port: int) -> None:
        app = create_app(views, ServerSettings(project=False))  # its lifespan never runs
        routes = [r for r in app.routes if isinstance(r, APIRoute) and r.path == "/api/where"]
        if len(routes) != 1 or routes[0].response_field is None:
            raise RuntimeError("api.app has no GET /api/where with a response model")
        # The endpoint under its cache (``api.answers``): what a miss costs, every time.
        self.endpoint: Callable[..., Any] = getattr(
            routes[0].endpoint, "__wrapped__", routes[0].endpoint
        )
        self.field: Any = routes[0].response_field
        self.request = Request(
            {"type": "http", "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": "/api/where", "raw_path": b"/api/where", "root_path": "",
             "query_string": PATH.partition("?")[2].encode(),
             "headers": [(b"host", f"127.0.0.1:{port}".encode())],
             "server": ("127.0.0.1", port), "client": ("127.0.0.1", 0)}
        )  # fmt: skip

    def __call__(self) -> bytes:
        content = self.endpoint(request=self.request, _=READER, name=NAME)
        value, errors = self.field.validate(content, {}, loc=("response",))
        if errors:
            raise RuntimeError(f"the answer does not fit the response model: {errors[:3]}")
        return bytes(self.field.serialize_json(value, by_alias=True))


def in_process(url: str, port: int, seconds: float, warm_up: float) -> InProcess:
    views = Views(Ledger(locate(url)))
    try:
        where = Where(views, port)
        deadline = time.perf_counter() + warm_up
        while time.perf_counter() < deadline:
            where()
        timings: list[float] = []
        body = b""
        started = time.perf_counter()
        while (now := time.perf_counter()) - started < seconds:
            body = where()
            timings.append(time.perf_counter() - now)
        elapsed = time.perf_counter() - started
    finally:
        views.ledger.close()
    return InProcess(
        queries=len(timings), seconds=elapsed, queries_per_s=len(timings) / elapsed,
        p50_ms=percentile_ms(timings, 50), p95_ms=percentile_ms(timings, 95),
        p99_ms=percentile_ms(timings, 99), placements=int(json.loads(body)["placements"]["total"]),
        answer_bytes=len(body),
    )  # fmt: skip


def answer_once(url: str, port: int) -> bytes:
    views = Views(Ledger(locate(url)))
    try:
        return Where(views, port)()
    finally:
        views.ledger.close()


# --- the server ------------------------------------------------------------------------


def ledger_command(url: str, *args: str) -> list[str]:
    return [sys.executable, "-c", "from cli.main import main; main()", "--ledger", url, *args]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reader_token(url: str) -> str:
    name = f"bench-api-{os.getpid()}-{time.time_ns()}"  # names are unique; --keep reuses
    done = subprocess.run(
        ledger_command(url, "token", "create", name, "--role", "reader", "--json"),
        cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    token = str(json.loads(done.stdout)["token"])
    if not re.fullmatch(r"[A-Za-z0-9_.~+/=-]+", token):
        raise RuntimeError("unexpected characters in the token")  # it goes into Lua source
    return token


def get(url: str, token: str, timeout: float = 120) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@contextmanager
def server(
    url: str,
    port: int,
    token: str,
    log: Path,
    *options: str,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """``ledger serve`` on ``port`` (with ``options``, in ``env``), answering
    ``/api/status`` with 200; SIGTERM at the end."""
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            ledger_command(url, "serve", "--port", str(port), *options),
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"ledger serve exited ({process.returncode}):\n{log.read_text()}"
                )
            try:
                status, _ = get(f"http://127.0.0.1:{port}/api/status", token, timeout=5)
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"ledger serve did not answer:\n{log.read_text()}")
            time.sleep(0.2)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Refused(RuntimeError):
    """wrk saw a socket error or an answer other than 2xx."""


def settle(pid: int, limit: float = 300) -> float:
    """Wait until the server is idle (under a tenth of a core for a second): wrk stops
    with requests in flight, which the server still answers after wrk has gone. Returns
    the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        before = cpu_seconds(pid)
        time.sleep(1.0)
        if cpu_seconds(pid) - before < 0.1:
            break
    return time.monotonic() - started


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy() -> tuple[float, float]:
    """Seconds of busy and of total CPU time over all cores since boot (``/proc/stat``)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    total = sum(values[:8])  # up to steal; guest time is already in user
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wrk(
    url: str, script: Path, connections: int, threads: int, seconds: int, server_pid: int
) -> Load:
    """One wrk run; refuses any socket error or non-2xx answer."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
               "--timeout", WRK_TIMEOUT, "-s", str(script), url]  # fmt: skip
    server_before, wrk_before, busy_before = cpu_seconds(server_pid), children_cpu(), machine_busy()
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    server_after, wrk_after, busy_after = cpu_seconds(server_pid), children_cpu(), machine_busy()
    figures = {
        key: float(value)
        for key, value in re.findall(r"^bench-api (\w+) (\S+)$", done.stdout, re.MULTILINE)
    }
    errors = {k: int(v) for k, v in figures.items() if k.startswith("errors_") and v}
    if errors or "requests" not in figures:
        raise Refused(f"wrk -c{connections}: {errors or 'no figures'}\n{done.stdout}")
    requests = int(figures["requests"])
    return Load(
        connections=connections, threads=threads, requests=requests,
        seconds=figures["duration_s"], requests_per_s=figures["requests_per_s"],
        p50_ms=figures["p50_us"] / 1e3, p95_ms=figures["p95_us"] / 1e3,
        p99_ms=figures["p99_us"] / 1e3, max_ms=figures["max_us"] / 1e3,
        bytes_per_request=figures["bytes"] / requests if requests else 0.0,
        server_cpu_s=server_after - server_before, wrk_cpu_s=wrk_after - wrk_before,
        machine_busy_cores=(busy_after[0] - busy_before[0]) / (busy_after[1] - busy_before[1])
        * (os.cpu_count() or 1),
    )  # fmt: skip


# --- one backend -----------------------------------------------------------------------


def catch_up(url: str) -> tuple[int, float]:
    """Bring the views up to date; (the ledger's head, seconds it took)."""
    views = Views(Ledger(locate(url)))
    try:
        started = time.perf_counter()
        views.catch_up()
        elapsed = time.perf_counter() - started
        head, _ = views.ledger.head()
    finally:
        views.ledger.close()
    return head, elapsed


def measure(backend: str, url: str, args: argparse.Namespace, workdir: Path) -> Backend:
    say(f"{backend}: bringing the views up to date")
    events, caught_up = catch_up(url)
    say(f"  {events:,} events, {caught_up:,.1f} s")
    port = free_port()
    target = f"http://127.0.0.1:{port}{PATH}"
    say(f"{backend}: in process, {args.warm_up} s warm-up then {args.seconds} s")
    local = in_process(url, port, args.seconds, args.warm_up)
    say(f"  {local.queries_per_s:.2f} queries/s, p95 {local.p95_ms:,.0f} ms")
    token = reader_token(url)
    script = workdir / f"where-{backend}.lua"
    script.write_text(LUA.format(token=token))
    log = workdir / f"serve-{backend}.log"
    baseline = f"http://127.0.0.1:{port}{STATUS}"
    with server(url, port, token, log) as process:
        status, body = get(target, token)
        expected = answer_once(url, port)
        if status != 200 or json.loads(body) != json.loads(expected):
            raise RuntimeError(f"the HTTP answer ({status}) differs from the in-process one")
        runs: dict[tuple[str, int], Load] = {}
        try:
            say(f"{backend}: wrk warm-up, {args.warm_up} s on each path")
            for path in (target, baseline):
                wrk(path, script, args.connections, args.threads, args.warm_up, process.pid)
            for connections, threads in ((args.connections, args.threads), (1, 1)):
                for name, path in ((PATH, target), (STATUS, baseline)):
                    say(f"  the server settled in {settle(process.pid):.0f} s")
                    say(f"{backend}: {name}, wrk -t{threads} -c{connections} -d{args.seconds}s")
                    load = wrk(path, script, connections, threads, args.seconds, process.pid)
                    runs[name, connections] = load
                    say(f"  {load.requests_per_s:.2f} requests/s, p95 {load.p95_ms:,.1f} ms")
        except Refused as error:
            lines = log.read_text(errors="replace").splitlines()
            raise Refused(f"{error}\nthe server's log ends:\n" + "\n".join(lines[-15:])) from None
    many = args.connections
    return Backend(
        backend, events, caught_up, local, runs[PATH, many], runs[PATH, 1],
        runs[STATUS, many], runs[STATUS, 1],
    )  # fmt: skip


# --- the run ---------------------------------------------------------------------------


def summary(
    results: list[Backend], machine: Machine, loads: dict[str, Any], code: dict[str, Any]
) -> str:
    lines = [
        f"machine: {asdict(machine)}",
        f"CPU         {machine.cpu}, {machine.cores} cores, {machine.ram_gib:.1f} GiB RAM",
        "Load        {:.2f} {:.2f} {:.2f} at start, {:.2f} {:.2f} {:.2f} at end "
        "(1/5/15 min)".format(*loads["start"], *loads["end"]),
        f"Software    Python {machine.python}, SQLite {machine.sqlite}, "
        f"PostgreSQL {machine.postgres.get('server_version', '-')}",
        f"Code        commit {code['commit']}"
        + (f", changed: {', '.join(code['changed'])}" if code["changed"] else ""),
        "",
    ]
    for r in results:
        local, many, one = r.in_process, r.concurrent, r.single
        lines += [
            f"{r.backend}: GET {PATH} ({r.events:,} events; {local.placements:,} placements "
            f"in the answer, {LIMIT} on the page; {local.answer_bytes:,} bytes of JSON)",
            f"  {'':<32}{'per s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'count':>8}"
            f"{'server CPU ms/req':>19}{'busy cores':>12}",
            f"  {'where, in process, serial':<32}{local.queries_per_s:>9.2f}"
            f"{local.p50_ms:>9,.1f}{local.p95_ms:>9,.1f}{local.p99_ms:>9,.1f}{local.queries:>8}",
        ]
        runs = (
            (f"where, HTTP, {many.connections} clients", many),
            (f"status, HTTP, {many.connections} clients", r.status_concurrent),
            ("where, HTTP, 1 client", one),
            ("status, HTTP, 1 client", r.status_single),
        )
        for label, x in runs:
            lines.append(
                f"  {label:<32}{x.requests_per_s:>9.2f}{x.p50_ms:>9,.1f}{x.p95_ms:>9,.1f}"
                f"{x.p99_ms:>9,.1f}{x.requests:>8}{x.server_cpu_ms_per_request:>19,.2f}"
                f"{x.machine_busy_cores:>12.2f}"
            )
        met = "met" if r.where_over_status >= TARGET else "NOT met"
        lines += [
            f"  where / status ({many.connections} clients): {r.where_over_status:.2f} "
            f"(target >= {TARGET}: {met}); 1 client: "
            f"{one.requests_per_s / r.status_single.requests_per_s:.2f}",
            f"  HTTP ({many.connections} clients) / in process: {r.ratio:.2f}; "
            f"1 client / in process: {one.requests_per_s / local.queries_per_s:.2f}; "
            f"wrk CPU {many.wrk_cpu_s:.2f} s / {one.wrk_cpu_s:.2f} s",
            "",
        ]
    return "\n".join(lines)


def code_state() -> dict[str, Any]:
    """The commit, and the files of the code measured that differ from it."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], check=False, cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        return done.stdout.rstrip() if done.returncode == 0 else "?"

    changed = git("status", "--porcelain", "--", "api", "projections", "ledger", "cli")
    return {"commit": git("rev-parse", "--short", "HEAD"),
            "changed": [line[3:] for line in changed.splitlines() if line[3:]]}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    loads: dict[str, Any] = {"start": os.getloadavg()}
    code = code_state()
    started = time.perf_counter()
    results: list[Backend] = []
    settings: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="ledger-bench-api-") as folder:
        scratch = Path(folder)
        workdir = args.keep or scratch
        workdir.mkdir(parents=True, exist_ok=True)
        sqlite_path = workdir / "fleet.db"
        generate(sqlite_path, args.hosts, args.min_events)
        if args.keep:  # the runs write to the ledger (views, a token): never to the kept one
            say(f"copying {sqlite_path} to {scratch}")
            for suffix in ("", "-wal"):
                kept = sqlite_path.with_name(sqlite_path.name + suffix)
                if kept.exists():
                    shutil.copyfile(kept, scratch / kept.name)
            sqlite_path = scratch / sqlite_path.name
        results.append(measure("sqlite", str(sqlite_path), args, scratch))
        if not args.skip_postgres:
            with postgres_server(scratch) as server_url:
                url = ledger_url(server_url, create_schema(server_url, "api"))
                copy_ledger(str(sqlite_path), url)
                results.append(measure("postgres", url, args, scratch))
                settings = server_settings(server_url)
    loads["end"] = os.getloadavg()
    machine = describe(loads["start"], settings)
    say(f"ran {time.perf_counter() - started:,.0f} s")
    figures = {
        "machine": asdict(machine),
        "load_average": loads,
        "code": code,
        "query": PATH,
        "seconds": args.seconds,
        "results": [
            asdict(r)
            | {
                "ratio": r.ratio,
                "where_over_status": r.where_over_status,
                "target_met": r.where_over_status >= TARGET,
                "server_cpu_ms_per_request": {
                    "concurrent": r.concurrent.server_cpu_ms_per_request,
                    "single": r.single.server_cpu_ms_per_request,
                },
            }
            for r in results
        ],
    }
    if args.json == "-":
        print(json.dumps(figures, indent=2))
        return
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    print(summary(results, machine, loads, code))


if __name__ == "__main__":
    main()
