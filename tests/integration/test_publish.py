"""Publishing the ledger to Kafka (a real Tansu broker): every event on the topic, in
ledger order, keyed and labelled; after a SIGKILL of the relay and across a broker
outage, nothing is lost and duplicates only repeat the unacknowledged tail."""

from __future__ import annotations

import itertools
import logging
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import orjson
import pytest
from kafka import KafkaConsumer

from collectors.follower import Follower
from collectors.publish import Publisher, PublishSettings
from collectors.run import run
from ledger.application import Ledger
from ledger.domain import CHAIN_ID, LedgerEntry
from ledger.store import locate
from tests.integration.test_collect_crash import rollouts, write_slowly
from tests.services.kafka import (  # noqa: F401 (fixture `kafka`)
    KafkaBroker,
    create_topic,
    kafka_broker,
)

TOPIC = "ledger.events"
DEADLINE = 90.0
BATCH = 20


@dataclass(frozen=True)
class Record:
    partition: int
    key: bytes
    value: dict[str, object]
    headers: dict[str, str]

    @property
    def position(self) -> int:
        return int(self.headers["position"])


def consume(bootstrap: str, count: int, *, last: int | None = None) -> list[Record]:
    """Records from the start of the topic until ``count`` arrived (and, when given, the
    one with position ``last``); fails after the deadline."""
    consumer = KafkaConsumer(
        TOPIC, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        enable_auto_commit=False, group_id=None,
    )  # fmt: skip
    records: list[Record] = []
    deadline = time.monotonic() + DEADLINE
    try:
        while len(records) < count or (last is not None and records[-1].position != last):
            assert time.monotonic() < deadline, f"{len(records)} of {count} records arrived"
            for batch in consumer.poll(timeout_ms=500).values():
                records += [
                    Record(m.partition, m.key, orjson.loads(m.value),
                           {k: v.decode() for k, v in m.headers})
                    for m in batch
                ]  # fmt: skip
    finally:
        consumer.close()
    return records


def entries(url: str) -> list[LedgerEntry]:
    """Every entry of the ledger, read independently of the publisher."""
    ledger = Ledger(locate(url))
    try:
        notifications = ledger.recorder.select_notifications(1, 1_000_000)
        return [
            ledger.mapper.to_domain_event(n)  # type: ignore[misc]
            for n in notifications
            if n.originator_id == CHAIN_ID
        ]
    finally:
        ledger.close()


def story_events(url: str, start: int, stop: int) -> None:
    """Append rollouts ``start`` up to ``stop`` (0-based) of ``rollouts()``."""
    ledger = Ledger(locate(url), create=True)
    try:
        for story in itertools.islice(rollouts(), start, stop):
            ledger.append(story.events)
    finally:
        ledger.close()


def publish_all(url: str, bootstrap: str) -> None:
    ledger = Ledger(locate(url))
    publisher = Publisher(ledger, PublishSettings(bootstrap, TOPIC, batch=BATCH, timeout=10))
    try:
        while publisher.step():
            pass
    finally:
        publisher.close()
        ledger.close()


def test_every_event_in_ledger_order_with_key_headers_and_value(
    ledger_url: str, kafka: KafkaBroker
) -> None:
    create_topic(kafka.bootstrap, TOPIC)
    story_events(ledger_url, 0, 3)
    publish_all(ledger_url, kafka.bootstrap)
    stored = entries(ledger_url)
    records = consume(kafka.bootstrap, len(stored))
    assert len(records) == len(stored) > BATCH * 2
    for record, entry in zip(records, stored, strict=True):
        event = entry.event
        assert record.position == entry.originator_version
        assert record.value == event
        assert record.key == (event.get("host") or event["env"]).encode()
        assert record.headers == {
            "position": str(entry.originator_version),
            "event_id": event["event_id"],
            "kind": event["kind"],
            "hash": entry.hash,
        }
    assert {r.key for r in records} >= {b"production", b"h0", b"h5"}

    # Published and confirmed: running again publishes nothing more.
    publish_all(ledger_url, kafka.bootstrap)
    story_events(ledger_url, 3, 4)  # one more rollout
    publish_all(ledger_url, kafka.bootstrap)
    head = len(entries(ledger_url))
    again = consume(kafka.bootstrap, head)
    assert [r.position for r in again] == list(range(1, head + 1))


def test_per_key_order_on_several_partitions(sqlite_url: str, kafka: KafkaBroker) -> None:
    create_topic(kafka.bootstrap, TOPIC, partitions=3)
    story_events(sqlite_url, 0, 2)
    publish_all(sqlite_url, kafka.bootstrap)
    head = len(entries(sqlite_url))
    records = consume(kafka.bootstrap, head)
    assert sorted(r.position for r in records) == list(range(1, head + 1))
    by_key: dict[bytes, set[int]] = {}
    for record in records:
        by_key.setdefault(record.key, set()).add(record.partition)
    assert all(len(partitions) == 1 for partitions in by_key.values())
    for partition in {r.partition for r in records}:
        positions = [r.position for r in records if r.partition == partition]
        assert positions == sorted(positions)


def relay(url: str, bootstrap: str, *extra: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", "from cli.main import main; main()", "--ledger", url,
               "publish", "--kafka", bootstrap, "--topic", TOPIC, "--batch", str(BATCH),
               "--poll-interval", "0.05", *extra]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def check_runs(positions: list[int], first: int, head: int) -> int:
    """``positions`` (the topic, in order) run consecutively from ``first`` to ``head``,
    except where a restart goes back by less than a batch; the number of such rewinds."""
    assert positions[0] == first
    rewinds = 0
    for before, after in itertools.pairwise(positions):
        if after != before + 1:
            assert after <= before, f"gap after {before}: {after}"
            assert before - after < BATCH, f"re-sent more than a batch: {before} -> {after}"
            rewinds += 1
    assert max(positions) == head == positions[-1]
    deduplicated = list(dict.fromkeys(positions))
    assert deduplicated == list(range(first, head + 1))
    return rewinds


def test_a_killed_relay_loses_nothing_and_resends_only_the_unacknowledged_tail(
    ledger_url: str, kafka: KafkaBroker
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    create_topic(kafka.bootstrap, TOPIC)
    Ledger(locate(ledger_url), create=True).close()
    writing = threading.Thread(target=write_slowly, args=(ledger_url,))
    writing.start()
    kills = 0
    while writing.is_alive() or kills < 4:
        process = relay(ledger_url, kafka.bootstrap)
        time.sleep(rng.uniform(0.3, 1.2))
        process.kill()  # SIGKILL: no chance to finish a batch or confirm it
        process.wait()
        kills += 1
    writing.join()
    final = relay(ledger_url, kafka.bootstrap, "--once")
    _, errors = final.communicate(timeout=120)
    assert final.returncode == 0, errors.decode()

    head = len(entries(ledger_url))
    records = consume(kafka.bootstrap, head, last=head)
    rewinds = check_runs([r.position for r in records], 1, head)
    assert rewinds <= kills, f"seed {seed}"


def test_a_broker_outage_is_backed_off_and_resumed_after(
    sqlite_url: str, kafka: KafkaBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """The broker keeps records in memory, so its restart empties the topic. Checked:
    before the outage the topic holds positions 1..a; while the broker is down the
    relay fails, backs off and its confirmed position stays at a; after the restart the
    new topic holds every position of a+1..head, each key's in order once duplicates
    are dropped by position. (The relay may auto-create the new topic, with several
    partitions, before the test creates it: so order is checked per key there.)
    Together: every event was acknowledged by a broker, none skipped."""
    create_topic(kafka.bootstrap, TOPIC)
    story_events(sqlite_url, 0, 2)
    ledger = Ledger(locate(sqlite_url))
    tracking = Follower(ledger, "kafka")
    publisher = Publisher(ledger, PublishSettings(kafka.bootstrap, TOPIC, batch=BATCH, timeout=3))
    stop = threading.Event()
    loop = threading.Thread(target=run, args=([publisher],),
                            kwargs={"poll_interval": 0.05, "stop": stop})  # fmt: skip
    caplog.set_level(logging.INFO, logger="ledger.collect")
    loop.start()
    try:
        before = ledger.count()
        wait_for(lambda: tracking.position() == notification_id(ledger, before))
        assert [r.position for r in consume(kafka.bootstrap, before)] == list(range(1, before + 1))

        kafka.stop()
        story_events(sqlite_url, 2, 4)  # two more rollouts while the broker is down
        wait_for(lambda: "kafka: " in caplog.text and "retrying" in caplog.text)
        assert tracking.position() == notification_id(ledger, before)

        kafka.start()
        create_topic(kafka.bootstrap, TOPIC)
        head = ledger.count()
        assert head > before + BATCH
        wait_for(lambda: tracking.position() == notification_id(ledger, head))
        assert "kafka: delivering again" in caplog.text
    finally:
        stop.set()
        loop.join()
        publisher.close()
        tracking.close()
        ledger.close()
    records = consume(kafka.bootstrap, head - before)
    positions = {r.position for r in records}
    deadline = time.monotonic() + DEADLINE
    while positions != set(range(before + 1, head + 1)):  # the partitions arrive unevenly
        assert time.monotonic() < deadline, (
            f"missing {set(range(before + 1, head + 1)) - positions}"
        )
        records = consume(kafka.bootstrap, len(records) + 1)
        positions = {r.position for r in records}
    for key in {r.key for r in records}:
        first_seen = list(dict.fromkeys(r.position for r in records if r.key == key))
        assert first_seen == sorted(first_seen), key


def notification_id(ledger: Ledger, position: int) -> int:
    """The notification id of the entry at ``position`` of the chain."""
    for n in ledger.recorder.select_notifications(1, 1_000_000):
        if n.originator_id == CHAIN_ID and n.originator_version == position:
            return n.id
    raise AssertionError(f"no entry at position {position}")


def wait_for(condition: object) -> None:
    assert callable(condition)
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.05)
