"""``python -m bench.collectors``: the Riemann collector, against a Riemann-protocol
receiver running in a process of its own (``tests.services.riemann``, so it does not
share the GIL with the sender).

* **throughput** — ``--events`` demo fleet events appended to a fresh ledger, then the
  time ``RiemannCollector`` takes to deliver all of them (read from the ledger, turned
  into Riemann events, sent in ``riemann_batch`` messages, each waiting for the ok, the
  position confirmed after each). Next to it, in the same run and to the same receiver,
  the **raw** rate of riemann-client itself: ``Client(TCPTransport).send_events`` of the
  same events, pre-built, in batches of the same size. Best of ``--rounds``, alternated.
* **latency** — a writer process appends demo events at ``--rate`` events/s (ten every
  10 ms) for ``--seconds``; the collector follows with a ``--poll`` interval and gauges
  every 10 s (the default); the receiver timestamps each message's arrival. Added
  latency = arrival - the moment the writer's append returned, per event; p50 and p99
  (the first second left out).

SQLite and, unless ``--skip-postgres``, PostgreSQL (``pgserver``, or
``LEDGER_BENCH_POSTGRES_URL``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.machine import describe
from bench.postgres import create_schema, ledger_url, postgres_server, server_settings
from collectors.follower import Follower
from collectors.riemann import RiemannCollector, to_riemann
from collectors.run import run
from collectors.settings import CollectSettings
from ledger.application import Ledger, append_in_batches, batched, numbered_batches
from ledger.demo import demo_fleet
from ledger.events import Envelope
from ledger.store import locate
from tests.services.riemann import RiemannReceiver

SPAWN = multiprocessing.get_context("spawn")
NO_GAUGES = 10.0**9


def demo_events(count: int, offset: int = 0) -> Iterator[Envelope]:
    """``count`` demo fleet events: fleets of seeds ``offset``, ``offset`` + 1, … each
    in environments of its own, as ``bench.events`` makes them."""
    fleets = (
        e if seed == 0 else e.model_copy(update={"env": f"{e.env}-{seed}"})
        for seed in itertools.count(offset)
        for e in demo_fleet(300, 30, seed=seed)
    )
    return itertools.islice(fleets, count)


# --- the receiver, in a process of its own --------------------------------------------


def event_id(event: Any) -> str:
    for attribute in event.attributes:
        if attribute.key == "event_id":
            return str(attribute.value)
    return ""


def serve(conn: Connection, record: Callable[[Any], Any] | None) -> None:
    receiver = RiemannReceiver(record=record, count_only=record is None).start()
    conn.send(receiver.port)
    while (command := conn.recv()) != "stop":
        if command == "count":
            conn.send(receiver.count())
        elif command == "arrivals":
            conn.send([(a.at, a.event) for a in receiver.arrivals()])
        elif command == "clear":
            receiver.clear()
            conn.send(0)
    receiver.stop()


class RemoteReceiver:
    def __init__(self, conn: Connection, port: int) -> None:
        self.conn, self.port = conn, port

    def ask(self, command: str) -> Any:
        self.conn.send(command)
        return self.conn.recv()

    def wait_for(self, count: int, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while (got := self.ask("count")) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the receiver got {got} of {count} events")
            time.sleep(0.01)


@contextmanager
def receiver_process(record: Callable[[Any], Any] | None) -> Iterator[RemoteReceiver]:
    """A receiver in a process of its own: counting events when ``record`` is
    ``None``, otherwise decoding each and keeping ``record(event)``."""
    ours, theirs = SPAWN.Pipe()
    process = SPAWN.Process(target=serve, args=(theirs, record), daemon=True)
    process.start()
    try:
        yield RemoteReceiver(ours, ours.recv())
    finally:
        ours.send("stop")
        process.join(10)


def collector_named(name: str) -> type[RiemannCollector]:
    """A collector with a tracking position of its own (one per measured round)."""
    return type(f"Collector_{name}", (RiemannCollector,), {"name": name})


# --- throughput ------------------------------------------------------------------------


def prebuilt(ledger: Ledger, batch: int) -> list[Any]:
    """Every fact of the ledger as a Riemann event, as the collector builds them."""
    follower, position, versions = Follower(ledger, "bench-prebuilt", batch=5000), 0, {}
    events = []
    while facts := follower.read(position):
        for fact in facts:
            if fact.kind == "build_recorded":
                versions[fact.event["build_id"]] = fact.event["version"]
            events.append(to_riemann(fact, versions))
        position = facts[-1].notification_id
    follower.close()
    return events


def raw_rate(port: int, events: list[Any], batch: int) -> float:
    from riemann_client.client import Client  # type: ignore[import-untyped]
    from riemann_client.transport import TCPTransport  # type: ignore[import-untyped]

    started = time.perf_counter()
    with Client(TCPTransport("127.0.0.1", port, timeout=60)) as client:
        for chunk in batched(events, batch):
            client.send_events(chunk)
    return len(events) / (time.perf_counter() - started)


def collector_rate(ledger: Ledger, port: int, batch: int, name: str, count: int) -> float:
    settings = CollectSettings(
        riemann=f"127.0.0.1:{port}", riemann_batch=batch, gauge_interval=NO_GAUGES
    )
    collector = collector_named(name)(ledger, settings)
    started = time.perf_counter()
    while collector.step():
        pass
    elapsed = time.perf_counter() - started
    collector.close()
    return count / elapsed


def throughput(url: str, count: int, batch: int, rounds: int) -> dict[str, Any]:
    ledger = Ledger(locate(url), create=True)
    started = time.perf_counter()
    append_in_batches(ledger, numbered_batches(demo_events(count)), source="demo")
    setup = time.perf_counter() - started
    events = prebuilt(ledger, batch)
    size = sum(e.ByteSize() for e in events)
    raw, ours = [], []
    with receiver_process(None) as receiver:
        for round_ in range(rounds):
            receiver.ask("clear")
            raw.append(raw_rate(receiver.port, events, batch))
            receiver.wait_for(count)
            receiver.ask("clear")
            ours.append(collector_rate(ledger, receiver.port, batch, f"bench-{round_}", count))
            receiver.wait_for(count)
    ledger.close()
    return {
        "events": count,
        "batch": batch,
        "setup_seconds": round(setup, 1),
        "riemann_bytes_per_event": round(size / count),
        "raw_events_per_s": round(max(raw)),
        "collector_events_per_s": round(max(ours)),
        "ratio": round(max(ours) / max(raw), 2),
        "raw_rounds": [round(r) for r in raw],
        "collector_rounds": [round(r) for r in ours],
    }


# --- latency ---------------------------------------------------------------------------


def write(conn: Connection, url: str, rate: int, seconds: float, per_append: int) -> None:
    """Append demo events at ``rate`` per second; send back when each append returned."""
    ledger = Ledger(locate(url))
    events = list(demo_events(int(rate * seconds)))
    conn.send("ready")
    conn.recv()
    appended: list[tuple[str, float]] = []
    interval = per_append / rate
    started = time.time()
    for index, chunk in enumerate(batched(events, per_append)):
        wait = started + index * interval - time.time()
        if wait > 0:
            time.sleep(wait)
        ledger.append(chunk, source="demo")
        done = time.time()
        appended += [(str(e.event_id), done) for e in chunk]
    conn.send((appended, time.time() - started))
    ledger.close()


def latency(
    url: str, rate: int, seconds: float, poll: float, views_url: str | None = None
) -> dict[str, Any]:
    Ledger(locate(url), create=True).close()
    ledger = Ledger(locate(url))
    views: str | None = f"in another SQLite file ({views_url})" if views_url else None
    runner: subprocess.Popen[bytes] | None = None
    if ledger.location.backend == "postgres":
        # Views in PostgreSQL are kept by the projection runner, as deployed.
        views = "ledger project --follow --interval 1, in a process of its own"
        runner = subprocess.Popen(
            [sys.executable, "-c", "from cli.main import main; main()", "--ledger", url,
             "project", "--follow", "--interval", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    ours, theirs = SPAWN.Pipe()
    writer = SPAWN.Process(target=write, args=(theirs, url, rate, seconds, 10), daemon=True)
    writer.start()
    assert ours.recv() == "ready"
    with receiver_process(event_id) as receiver:
        settings = CollectSettings(riemann=f"127.0.0.1:{receiver.port}", poll_interval=poll)
        collector = RiemannCollector(
            ledger, settings, views_location=locate(views_url) if views_url else None
        )
        stop = threading.Event()
        loop = threading.Thread(
            target=run, args=([collector],), kwargs={"poll_interval": poll, "stop": stop}
        )
        loop.start()
        ours.send("go")
        appended, took = ours.recv()
        writer.join()
        wanted, deadline = {eid for eid, _ in appended}, time.monotonic() + 300
        arrivals = receiver.ask("arrivals")
        while not wanted <= {eid for _, eid in arrivals}:
            if time.monotonic() > deadline:
                raise RuntimeError("not every event reached the receiver")
            time.sleep(0.2)
            arrivals = receiver.ask("arrivals")
        stop.set()
        loop.join()
        collector.close()
    if runner is not None:
        runner.terminate()
        runner.wait()
    ledger.close()
    events = [(at, eid) for at, eid in arrivals if eid]  # gauges carry no event id
    arrived = {eid: at for at, eid in events}
    first = min(at for _, at in appended)
    delays = [arrived[eid] - at for eid, at in appended if at >= first + 1.0]
    cuts = statistics.quantiles(delays, n=100, method="inclusive")
    return {
        "events": len(appended),
        "achieved_rate": round(len(appended) / took),
        "poll_interval_s": poll,
        "gauge_interval_s": settings.gauge_interval,
        "p50_ms": round(cuts[49] * 1000, 1),
        "p99_ms": round(cuts[98] * 1000, 1),
        "max_ms": round(max(delays) * 1000, 1),
        "duplicates": len(events) - len(arrived),
        "gauges": len(arrivals) - len(events),
        "views": views or "embedded: caught up by the collector",
    }


# --- the run ---------------------------------------------------------------------------


def measure(
    url: str, latency_url: str, args: argparse.Namespace, views_url: str | None = None
) -> dict[str, dict[str, Any]]:
    results = {
        "throughput": throughput(url, args.events, args.batch, args.rounds),
        "latency": latency(latency_url, args.rate, args.seconds, args.poll),
    }
    if views_url is not None:
        results["latency_views_apart"] = latency(
            latency_url + ".2", args.rate, args.seconds, args.poll, views_url
        )
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.collectors", description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500, help="riemann_batch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=int, default=1000, help="events/s appended")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--poll", type=float, default=0.02, help="collector poll interval")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-collectors-") as tmp:
        work = Path(tmp)
        results["sqlite"] = measure(
            str(work / "ledger.db"), str(work / "latency.db"), args, str(work / "views.db")
        )
        if not args.skip_postgres:
            with postgres_server(work) as server:
                results["postgres_settings"] = server_settings(server)
                results["postgres"] = measure(
                    ledger_url(server, create_schema(server, "collectors")),
                    ledger_url(server, create_schema(server, "collectors_latency")),
                    args,
                )
    results["machine"] = asdict(describe(os.getloadavg(), results.get("postgres_settings", {})))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"machine: {results['machine']}")
    for backend in ("sqlite", "postgres"):
        if backend not in results:
            continue
        t = results[backend]["throughput"]
        print(
            f"{backend}: {t['events']:,} events in messages of {t['batch']} "
            f"(~{t['riemann_bytes_per_event']} bytes each; setup {t['setup_seconds']} s)\n"
            f"  collector {t['collector_events_per_s']:,} events/s, raw riemann-client "
            f"{t['raw_events_per_s']:,} events/s: {t['ratio']:.0%} of raw (target 70 %)\n"
            f"  rounds: collector {t['collector_rounds']}, raw {t['raw_rounds']}"
        )
        for key in ("latency", "latency_views_apart"):
            if (lat := results[backend].get(key)) is None:
                continue
            print(
                f"  latency at {lat['achieved_rate']} events/s appended ({lat['events']:,} "
                f"events, poll {lat['poll_interval_s']} s, gauges every "
                f"{lat['gauge_interval_s']} s, views {lat['views']}): p50 {lat['p50_ms']} ms, "
                f"p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms; {lat['duplicates']} "
                f"duplicates, {lat['gauges']} gauges"
            )


if __name__ == "__main__":
    main()
