"""Kafka ingest against a real Tansu broker: valid, duplicate, poison and out-of-order
records; two workers in one group; the database stopped mid-ingest and started again;
the agent's producer. Nothing lost, nothing stored twice, poison on the dead-letter
topic with the error and where it came from."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result
from eventsourcing.persistence import OperationalError
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from cli.main import root
from collectors.ingest import IngestSettings, IngestWorker, run_ingest
from ledger.application import Ledger
from ledger.store import locate
from projections.drift import latest_reports
from projections.runner import Views
from tests.services.kafka import (  # noqa: F401 (fixture `kafka`)
    KafkaBroker,
    create_topic,
    kafka_broker,
)
from tests.services.postgres import OwnPostgres, own_postgres_server  # noqa: F401 (fixture)

TOPIC = "ledger.ingest"
DEAD = "ledger.ingest.dead-letter"
GROUP = "test-ingest"
DEADLINE = 120.0
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
# Short group timeouts: the broker then completes joins in a few seconds.
FAST_GROUP = ["--session-timeout", "6", "--max-poll-interval", "10"]


def event(host: str, n: int, *, at: datetime | None = None, **fields: Any) -> dict[str, Any]:
    """A health report of ``host``, the ``n``-th of its sequence (in ``metric``)."""
    return {
        "kind": "health_reported", "event_id": str(uuid.uuid4()), "env": "production",
        "occurred_at": (at or T0 + timedelta(seconds=n)).isoformat(), "actor": "agent",
        "host": host, "state": "ok", "metric": float(n), **fields,
    }  # fmt: skip


def report(host: str, at: datetime, service: str) -> dict[str, Any]:
    return {
        "kind": "host_reported", "event_id": str(uuid.uuid4()), "env": "production",
        "occurred_at": at.isoformat(), "actor": "agent", "host": host,
        "manifest": [{"host": host, "service": service, "build_id": "b" * 32}],
    }  # fmt: skip


def topics(bootstrap: str, partitions: int = 3) -> None:
    create_topic(bootstrap, TOPIC, partitions)
    create_topic(bootstrap, DEAD)


def produce(bootstrap: str, values: list[tuple[bytes, bytes | None]]) -> list[Any]:
    """(key, value) records to the ingest topic; their metadata (partition, offset)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        futures = [producer.send(TOPIC, key=key, value=value) for key, value in values]
        producer.flush()
        return [f.get(timeout=10) for f in futures]
    finally:
        producer.close()


def keyed(events: list[dict[str, Any]]) -> list[tuple[bytes, bytes | None]]:
    return [(e["host"].encode(), orjson.dumps(e)) for e in events]


def read_topic(bootstrap: str, topic: str, *, wait: float = 3.0) -> list[Any]:
    """Every record of ``topic`` from the start, read until ``wait`` s bring nothing."""
    consumer = KafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        group_id=None, enable_auto_commit=False, consumer_timeout_ms=int(wait * 1000),
    )  # fmt: skip
    try:
        return list(consumer)
    finally:
        consumer.close()


def stored_events(url: str) -> list[dict[str, Any]]:
    ledger = Ledger(locate(url))
    try:
        return [fact.event for fact in ledger.facts()]
    finally:
        ledger.close()


def settings(bootstrap: str, **overrides: Any) -> IngestSettings:
    fields: dict[str, Any] = {"batch": 50, **overrides}
    return IngestSettings(
        bootstrap=bootstrap, topic=TOPIC, group=GROUP, timeout=10,
        max_poll_interval=10, session_timeout=6, **fields,
    )  # fmt: skip


def ingest_once(ledger: Ledger, bootstrap: str, **overrides: Any) -> IngestWorker:
    worker = IngestWorker(ledger, settings(bootstrap, **overrides))
    try:
        run_ingest(worker, threading.Event(), once=True)
    finally:
        worker.close()
    return worker


def committed(bootstrap: str) -> dict[int, int]:
    """The group's committed offset of each partition of the ingest topic."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=GROUP)
    try:
        partitions = consumer.partitions_for_topic(TOPIC) or set()
        return {p: consumer.committed(TopicPartition(TOPIC, p)) for p in sorted(partitions)}
    finally:
        consumer.close()


# --- one worker, in process -----------------------------------------------------------


def test_valid_duplicate_and_poison_records(ledger: Ledger, kafka: KafkaBroker) -> None:
    topics(kafka.bootstrap)
    valid = [event(f"web-{i % 4:03}", i) for i in range(20)]
    clash = {**valid[3], "state": "critical"}  # a stored event_id with other content
    poison: list[tuple[bytes, bytes | None]] = [
        (b"web-000", b'{"kind": "health_reported", '),
        (b"web-001", orjson.dumps({**event("web-001", 99), "state": "on fire"})),
        (b"web-002", orjson.dumps({k: v for k, v in event("web-002", 98).items() if k != "env"})),
        (b"web-003", b"\xff\xfe not UTF-8"),
        (b"web-000", None),
        (b"web-003", orjson.dumps(clash)),
    ]
    produce(kafka.bootstrap, keyed(valid))
    rest = produce(kafka.bootstrap, keyed(valid[:5]) + poison)

    worker = ingest_once(ledger, kafka.bootstrap)

    stored = stored_events(ledger.location.url)
    assert len(stored) == 20
    assert {e["event_id"] for e in stored} == {e["event_id"] for e in valid}
    assert all(e["source"] == "kafka" for e in stored)
    totals = worker.totals
    counts = (totals.records, totals.stored, totals.duplicates, totals.dead_lettered)
    assert counts == (31, 20, 5, 6)

    # Each dead letter: the original key and value, the error, where it came from.
    dead = {}
    for record in read_topic(kafka.bootstrap, DEAD):
        headers = {k: v.decode() for k, v in record.headers}
        assert headers["original_topic"] == TOPIC
        dead[int(headers["original_partition"]), int(headers["original_offset"])] = (
            record.key,
            record.value,
            headers["error"],
        )
    assert len(dead) == 6
    errors = []
    for meta, (key, value) in zip(rest[5:], poison, strict=True):
        dead_key, dead_value, error = dead[meta.partition, meta.offset]
        assert (dead_key, dead_value) == (key, value)
        errors.append(error)
    assert errors[0].startswith("not valid JSON")
    assert errors[1] == "field state: Input should be 'ok', 'warning' or 'critical'"
    assert errors[2] == "field env: Field required"
    assert errors[3] == "not valid UTF-8 (byte at offset 0)"
    assert errors[4] == "the record has no value (a tombstone)"
    assert errors[5].startswith(f"event_id {clash['event_id']} is already stored at position")

    # Every offset is committed: a second worker of the group finds nothing to do.
    assert sum(offset or 0 for offset in committed(kafka.bootstrap).values()) == 31
    again = ingest_once(ledger, kafka.bootstrap)
    assert again.totals.records == 0


def test_per_key_order_and_out_of_order_facts(ledger: Ledger, kafka: KafkaBroker) -> None:
    topics(kafka.bootstrap, partitions=3)
    hosts = [f"db-{i:02}" for i in range(6)]
    # Each host's sequence goes back in time half way (a clock fix on the host, late
    # delivery): facts are stored in the order they were sent, whatever occurred_at says.
    sequences = {h: [event(h, n, at=T0 + timedelta(seconds=(n * 7) % 23)) for n in range(40)]
                 for h in hosts}  # fmt: skip
    interleaved = [sequences[h][n] for n in range(40) for h in hosts]
    # A newer report sent before an older one of the same host.
    newer, older = (
        report("db-00", T0 + timedelta(hours=2), "new"),
        report("db-00", T0 + timedelta(hours=1), "old"),
    )
    produce(kafka.bootstrap, keyed([*interleaved, newer, older]))

    ingest_once(ledger, kafka.bootstrap)

    stored = stored_events(ledger.location.url)
    assert len(stored) == 40 * 6 + 2
    for host in hosts:
        mine = [e["metric"] for e in stored if e["host"] == host and "metric" in e]
        assert mine == [float(n) for n in range(40)], host
    views = Views(ledger)
    views.catch_up()
    with views.read() as tx:
        _, entries = latest_reports(tx, "production", "db-00")
    assert [service for _, service in entries] == ["new"]


def test_the_next_batch_is_polled_while_one_is_appended(
    ledger: Ledger, kafka: KafkaBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first append waits (up to a deadline) for the worker to poll again: it only
    can when polling and appending overlap. Offsets of a batch are committed only after
    its append, and every record is stored once, in order."""
    topics(kafka.bootstrap, partitions=1)
    events = [event("web-001", n) for n in range(30)]
    produce(kafka.bootstrap, keyed(events))
    worker = IngestWorker(ledger, settings(kafka.bootstrap, batch=10))
    polls: list[int] = []
    overlapped: list[bool] = []
    real_poll, real_append = worker.consumer.poll, ledger.append

    def poll(**kwargs: Any) -> Any:
        polled = real_poll(**kwargs)
        polls.append(sum(len(batch) for batch in polled.values()))
        return polled

    def append(*args: Any, **kwargs: Any) -> Any:
        if not overlapped:  # the first batch: has the next one been polled meanwhile?
            started = len([n for n in polls if n])
            deadline = time.monotonic() + 20
            while len([n for n in polls if n]) == started and time.monotonic() < deadline:
                time.sleep(0.01)
            overlapped.append(len([n for n in polls if n]) > started)
            assert committed(kafka.bootstrap) == {0: None}  # nothing before the append
        return real_append(*args, **kwargs)

    monkeypatch.setattr(worker.consumer, "poll", poll)
    monkeypatch.setattr(ledger, "append", append)
    try:
        run_ingest(worker, threading.Event(), once=True)
    finally:
        worker.close()
    assert overlapped == [True]
    stored = stored_events(ledger.location.url)
    assert [e["metric"] for e in stored] == [float(n) for n in range(30)]
    assert committed(kafka.bootstrap) == {0: 30}


def test_a_failed_append_rewinds_it_and_the_batch_polled_meanwhile(
    ledger: Ledger, kafka: KafkaBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second append fails as an outage would, after the third batch was polled:
    the worker goes back to the second batch's first record, and every record is
    stored once, in order, none dead-lettered."""
    topics(kafka.bootstrap, partitions=2)
    hosts = ["mq-01", "mq-02", "mq-03"]
    events = [event(h, n) for n in range(40) for h in hosts]
    produce(kafka.bootstrap, keyed(events))
    worker = IngestWorker(ledger, settings(kafka.bootstrap, batch=15))
    appends: list[int] = []
    real_append = ledger.append

    def append(*args: Any, **kwargs: Any) -> Any:
        appends.append(len(args[0]))
        if len(appends) == 2:
            time.sleep(0.5)  # let the worker poll the next batch meanwhile
            raise OperationalError("the database went away")
        return real_append(*args, **kwargs)

    monkeypatch.setattr(ledger, "append", append)
    try:
        run_ingest(worker, threading.Event(), once=True)
    finally:
        worker.close()
    stored = stored_events(ledger.location.url)
    assert sorted(e["event_id"] for e in stored) == sorted(e["event_id"] for e in events)
    for host in hosts:
        assert [e["metric"] for e in stored if e["host"] == host] == [float(n) for n in range(40)]
    assert (worker.totals.stored, worker.totals.dead_lettered) == (len(events), 0)
    assert sum(offset or 0 for offset in committed(kafka.bootstrap).values()) == len(events)


def test_a_generation_number_that_is_taken_goes_to_the_dead_letters(
    ledger: Ledger, kafka: KafkaBroker
) -> None:
    topics(kafka.bootstrap, partitions=1)

    def planned(number: int) -> dict[str, Any]:
        return {
            "kind": "generation_planned", "event_id": str(uuid.uuid4()), "env": "staging",
            "occurred_at": T0.isoformat(), "actor": "ci", "number": number, "manifest": [],
        }  # fmt: skip

    produce(kafka.bootstrap, [(b"staging", orjson.dumps(planned(n))) for n in (1, 3, 2)])
    worker = ingest_once(ledger, kafka.bootstrap)
    assert [e.get("number") for e in stored_events(ledger.location.url)] == [1, 2]
    assert worker.totals.dead_lettered == 1
    [dead] = read_topic(kafka.bootstrap, DEAD)
    assert "generation 3 of env 'staging' cannot be planned" in dict(dead.headers)["error"].decode()


def test_records_that_cannot_be_stored_are_dead_lettered_and_block_nothing(
    ledger: Ledger, kafka: KafkaBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A timestamp out of range once converted to UTC (whatever validation raises for
    it: OverflowError, or a refusal), and a record whose storing fails for a reason that
    is not an outage: both dead-lettered with the error, never retried, the records
    behind them stored."""
    topics(kafka.bootstrap, partitions=1)
    events = [event("web-001", n) for n in range(7)]
    poison = {**event("web-001", 99), "occurred_at": "9999-12-31T23:59:59-14:00"}
    unstorable = events[4]["event_id"]
    original = ledger.append

    def append(batch: Any, **kwargs: Any) -> Any:
        if any(str(e.event_id) == unstorable for e in batch):
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return original(batch, **kwargs)

    monkeypatch.setattr(ledger, "append", append)
    meta = produce(kafka.bootstrap, keyed([*events[:2], poison, *events[2:]]))

    done = threading.Event()
    worker = IngestWorker(ledger, settings(kafka.bootstrap))

    def ingest() -> None:
        run_ingest(worker, done, once=True)
        done.set()

    runner = threading.Thread(target=ingest)
    runner.start()
    try:
        assert done.wait(DEADLINE), "the partition is blocked"
    finally:
        done.set()
        runner.join()
        worker.close()

    stored = [e["event_id"] for e in stored_events(ledger.location.url)]
    assert stored == [e["event_id"] for e in events if e["event_id"] != unstorable]
    assert worker.totals.dead_lettered == 2
    dead = {}
    for record in read_topic(kafka.bootstrap, DEAD):
        headers = {k: v.decode() for k, v in record.headers}
        dead[int(headers["original_offset"])] = (orjson.loads(record.value), headers["error"])
    assert sorted(dead) == [meta[2].offset, meta[5].offset]
    value, error = dead[meta[2].offset]
    assert value == poison
    assert "occurred_at" in error or "out of range" in error
    value, error = dead[meta[5].offset]
    assert value["event_id"] == unstorable
    assert (
        error
        == "cannot be stored: OverflowError: Python int too large to convert to SQLite INTEGER"
    )
    assert committed(kafka.bootstrap) == {0: len(meta)}


def test_missing_dead_letter_topic_is_refused_before_reading(
    sqlite_url: str, kafka: KafkaBroker
) -> None:
    create_topic(kafka.bootstrap, TOPIC)
    produce(kafka.bootstrap, keyed([event("web-001", 1)]))
    Ledger(locate(sqlite_url), create=True).close()
    result = cli(sqlite_url, "ingest", "--kafka", kafka.bootstrap, "--once", *FAST_GROUP)
    assert result.exit_code == 2
    assert f"there is no topic '{DEAD}'" in result.output
    assert stored_events(sqlite_url) == []


def test_file_and_kafka_together_are_refused(sqlite_url: str) -> None:
    result = cli(sqlite_url, "ingest", "-", "--kafka", "localhost:9")
    assert result.exit_code == 2
    assert "either a FILE or --kafka" in result.output


def cli(url: str, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(root, ["--ledger", url, *args], input=stdin)


# --- worker processes -----------------------------------------------------------------


class Worker:
    """``ledger ingest --kafka`` in a process of its own; its log is kept."""

    def __init__(self, url: str, bootstrap: str, log: Path, *extra: str, **env: str) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from cli.main import main; main()", "--ledger", url,
             "ingest", "--kafka", bootstrap, "--topic", TOPIC, "--group", GROUP,
             "--batch-size", "50", "--json", *FAST_GROUP, *extra],
            stdout=subprocess.PIPE, stderr=log.open("wb"), env={**os.environ, **env},
        )  # fmt: skip

    def text(self) -> str:
        return self.log.read_text()

    def wait_for(self, needle: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while needle not in self.text():
            assert self.process.poll() is None, self.text()
            assert time.monotonic() < deadline, f"no {needle!r} in:\n{self.text()}"
            time.sleep(0.1)

    def stop(self) -> dict[str, int]:
        """SIGTERM; the totals it printed."""
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=60)
        assert self.process.returncode == 0, self.text()
        totals: dict[str, int] = orjson.loads(out)
        return totals


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait()


def count(url: str) -> int:
    ledger = Ledger(locate(url))
    try:
        return ledger.count()
    finally:
        ledger.close()


def wait_until_stored(url: str, expected: int) -> None:
    deadline = time.monotonic() + DEADLINE
    while (n := count(url)) < expected:
        assert time.monotonic() < deadline, f"{n} of {expected} events stored"
        time.sleep(0.2)
    assert count(url) == expected


def test_two_workers_in_one_group_share_the_partitions(
    ledger_url: str, kafka: KafkaBroker, tmp_path: Path, workers: list[Worker]
) -> None:
    topics(kafka.bootstrap, partitions=4)
    Ledger(locate(ledger_url), create=True).close()
    a = Worker(ledger_url, kafka.bootstrap, tmp_path / "a.log")
    workers.append(a)
    a.wait_for("partitions assigned: ledger.ingest")
    b = Worker(ledger_url, kafka.bootstrap, tmp_path / "b.log")
    workers.append(b)
    b.wait_for("partitions assigned: ledger.ingest")
    a.wait_for("partitions revoked")  # the group rebalanced: each has some now

    hosts = [f"app-{i:02}" for i in range(16)]
    events = [event(h, n) for n in range(30) for h in hosts]
    produce(kafka.bootstrap, keyed(events))
    wait_until_stored(ledger_url, len(events))
    totals = [a.stop(), b.stop()]

    assert all(t["stored"] > 0 for t in totals), totals
    assert sum(t["stored"] for t in totals) == len(events)
    stored = stored_events(ledger_url)
    assert sorted(e["event_id"] for e in stored) == sorted(e["event_id"] for e in events)
    for host in hosts:
        assert [e["metric"] for e in stored if e["host"] == host] == [float(n) for n in range(30)]


def test_workers_run_once_stop_only_when_the_topic_is_read(
    sqlite_url: str, kafka: KafkaBroker, tmp_path: Path, workers: list[Worker]
) -> None:
    """With --once, the worker that finishes first leaves the group; the other gets its
    partitions back after the rebalance and must read them to their end before it stops
    (not stop at the first empty poll after the reassignment)."""
    topics(kafka.bootstrap, partitions=4)
    Ledger(locate(sqlite_url), create=True).close()
    events = [event(f"lb-{i:02}", n) for n in range(150) for i in range(12)]
    produce(kafka.bootstrap, keyed(events))
    started = [Worker(sqlite_url, kafka.bootstrap, tmp_path / f"{n}.log", "--once")
               for n in range(2)]  # fmt: skip
    workers += started
    totals = []
    for worker in started:
        out, _ = worker.process.communicate(timeout=DEADLINE)
        assert worker.process.returncode == 0, worker.text()
        totals.append(orjson.loads(out))
    assert count(sqlite_url) == len(events), [w.text() for w in started]
    assert sum(t["stored"] for t in totals) == len(events)


def test_database_stopped_mid_ingest_loses_and_doubles_nothing(
    own_postgres: OwnPostgres, kafka: KafkaBroker, tmp_path: Path, workers: list[Worker]
) -> None:
    url = own_postgres.url
    topics(kafka.bootstrap, partitions=3)
    Ledger(locate(url), create=True).close()
    hosts = [f"cache-{i:02}" for i in range(12)]
    events = [event(h, n) for n in range(100) for h in hosts]
    # Connection attempts give up after 1 s, so the outage reaches the worker quickly.
    worker = Worker(url, kafka.bootstrap, tmp_path / "w.log", POSTGRES_CONNECT_TIMEOUT="1")
    workers.append(worker)
    worker.wait_for("partitions assigned: ledger.ingest")

    def send_slowly() -> None:
        for start in range(0, len(events), 40):
            produce(kafka.bootstrap, keyed(events[start : start + 40]))
            time.sleep(0.05)

    sender = threading.Thread(target=send_slowly)
    sender.start()
    deadline = time.monotonic() + DEADLINE
    while count(url) < 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    own_postgres.stop()
    worker.wait_for("retrying the same records")
    assert "the ledger store is unavailable (" in worker.text()
    time.sleep(2)  # a few more failed attempts while records keep arriving
    own_postgres.start()
    sender.join()
    wait_until_stored(url, len(events))
    totals = worker.stop()

    stored = stored_events(url)
    assert sorted(e["event_id"] for e in stored) == sorted(e["event_id"] for e in events)
    for host in hosts:
        assert [e["metric"] for e in stored if e["host"] == host] == [float(n) for n in range(100)]
    assert totals["stored"] == len(events)
    assert totals["dead_lettered"] == 0
    assert read_topic(kafka.bootstrap, DEAD, wait=1) == []
    ledger = Ledger(locate(url))
    try:
        assert ledger.verify().intact
    finally:
        ledger.close()


def test_a_broker_outage_is_logged_as_a_retry_and_ingest_resumes(
    sqlite_url: str, kafka: KafkaBroker, tmp_path: Path, workers: list[Worker]
) -> None:
    """kafka-python's poll does not raise while the broker is away; the worker's own
    log must still say, with the cause, that Kafka is unavailable and that it retries,
    and it must store what arrives once the broker is back. (The broker keeps records
    in memory: its restart empties it, so the topics are created again.)"""
    Ledger(locate(sqlite_url), create=True).close()
    topics(kafka.bootstrap, partitions=1)
    first = [event("web-01", n) for n in range(20)]
    produce(kafka.bootstrap, keyed(first))
    worker = Worker(sqlite_url, kafka.bootstrap, tmp_path / "w.log")
    workers.append(worker)
    wait_until_stored(sqlite_url, len(first))

    kafka.stop()
    worker.wait_for(f"could not reach Kafka: {kafka.bootstrap}: connection refused; retrying")

    kafka.start()
    topics(kafka.bootstrap, partitions=1)
    later = [event("web-01", n) for n in range(20, 40)]
    produce(kafka.bootstrap, keyed(later))
    wait_until_stored(sqlite_url, len(first) + len(later))
    worker.wait_for("storing again")
    totals = worker.stop()
    assert totals["stored"] == len(first) + len(later)
    assert [e["metric"] for e in stored_events(sqlite_url)] == [float(n) for n in range(40)]


# --- the agent's producer -------------------------------------------------------------


def test_agent_report_and_send_reach_the_ledger(
    ledger: Ledger, kafka: KafkaBroker, tmp_path: Path
) -> None:
    topics(kafka.bootstrap)
    url = ledger.location.url
    manifest = tmp_path / "active.json"
    manifest.write_text('[{"service": "api", "build_id": "' + "c" * 32 + '"}]')
    result = cli(url, "agent", "report", "web-007", "--env", "production",
                 "--manifest", str(manifest), "--kafka", kafka.bootstrap)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Sent the report of web-007 (1 services active)" in result.output

    lines = "\n".join(orjson.dumps(event("web-008", n)).decode() for n in range(3))
    result = cli(url, "agent", "send", "-", "--kafka", kafka.bootstrap, "--json", stdin=lines)
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.output) == {"sent": 3, "topic": TOPIC}

    records = read_topic(kafka.bootstrap, TOPIC)
    assert [r.key for r in records if r.key == b"web-008"] == [b"web-008"] * 3
    ingest_once(ledger, kafka.bootstrap)
    stored = stored_events(url)
    assert [e["kind"] for e in stored].count("health_reported") == 3
    [reported] = [e for e in stored if e["kind"] == "host_reported"]
    assert reported["host"] == "web-007"
    assert reported["manifest"][0]["service"] == "api"


def test_agent_send_refuses_a_bad_file_and_sends_nothing(
    sqlite_url: str, kafka: KafkaBroker
) -> None:
    topics(kafka.bootstrap)
    good = orjson.dumps(event("web-001", 1)).decode()
    bad = orjson.dumps({**event("web-001", 2), "state": "meh"}).decode()
    result = cli(sqlite_url, "agent", "send", "-", "--kafka", kafka.bootstrap,
                 stdin=f"{good}\n{bad}\n{{oops\n")  # fmt: skip
    assert result.exit_code == 2
    assert "2 of 3 lines are invalid" in result.output
    assert "line 2, field state" in result.output
    assert "line 3: not valid JSON" in result.output
    assert read_topic(kafka.bootstrap, TOPIC, wait=1) == []


def test_a_worker_killed_mid_ingest_and_started_again_loses_and_doubles_nothing(
    postgres_url: str, kafka: KafkaBroker, tmp_path: Path, workers: list[Worker]
) -> None:
    topics(kafka.bootstrap, partitions=2)
    Ledger(locate(postgres_url), create=True).close()
    hosts = [f"queue-{i:02}" for i in range(8)]
    events = [event(h, n) for n in range(150) for h in hosts]
    produce(kafka.bootstrap, keyed(events))
    for round_, stored_before_kill in enumerate((150, 600)):
        worker = Worker(postgres_url, kafka.bootstrap, tmp_path / f"w{round_}.log")
        workers.append(worker)
        deadline = time.monotonic() + DEADLINE
        while count(postgres_url) < stored_before_kill:
            assert time.monotonic() < deadline, worker.text()
            time.sleep(0.01)
        worker.process.kill()  # SIGKILL: between an append and its commit, or anywhere
        worker.process.wait()
    last = Worker(postgres_url, kafka.bootstrap, tmp_path / "last.log")
    workers.append(last)
    wait_until_stored(postgres_url, len(events))
    totals = last.stop()

    stored = stored_events(postgres_url)
    assert sorted(e["event_id"] for e in stored) == sorted(e["event_id"] for e in events)
    for host in hosts:
        assert [e["metric"] for e in stored if e["host"] == host] == [float(n) for n in range(150)]
    assert totals["stored"] < len(events)  # the killed workers stored the rest
