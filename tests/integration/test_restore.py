"""Restoring a ledger from its published Kafka topic (a real Tansu broker): the restored
ledger verifies, has the original's head and the same views; duplicates are dropped; a
non-empty target, a gap, an altered record and an invalid record are refused with
nothing stored."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterable
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result
from kafka import KafkaProducer

from cli.main import root
from collectors.publish import Publisher, PublishSettings
from ledger.application import Ledger, StoredFact, numbered_batches
from ledger.demo import demo_fleet
from ledger.store import locate
from projections.runner import VIEW_NAMES, Views
from tests.services.kafka import (  # noqa: F401 (fixture `kafka`)
    KafkaBroker,
    create_topic,
    kafka_broker,
)

TOPIC = "ledger.events"
BATCH = 50


@pytest.fixture
def original(tmp_path: Path) -> str:
    """A small demo fleet in a SQLite ledger."""
    url = str(tmp_path / "original.db")
    ledger = Ledger(locate(url), create=True)
    try:
        for batch in numbered_batches(demo_fleet(hosts=4, services=3, seed=3), 500):
            ledger.append([event for _, event in batch], source="demo")
        assert ledger.count() > 4 * BATCH
    finally:
        ledger.close()
    return url


def publish(url: str, bootstrap: str, *, batches: int | None = None) -> None:
    """Publish the ledger (only its first ``batches`` batches, when given)."""
    ledger = Ledger(locate(url))
    publisher = Publisher(ledger, PublishSettings(bootstrap, TOPIC, batch=BATCH, timeout=10))
    try:
        sent = 0
        while (batches is None or sent < batches) and publisher.step():
            sent += 1
    finally:
        publisher.close()
        ledger.close()


def facts(url: str) -> list[StoredFact]:
    ledger = Ledger(locate(url))
    try:
        return list(ledger.facts())
    finally:
        ledger.close()


def produce(bootstrap: str, topic: str, records: Iterable[tuple[StoredFact, bytes]]) -> None:
    """Records as the publisher writes them, with the given values, on a new topic of
    one partition."""
    create_topic(bootstrap, topic)
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        for fact, value in records:
            headers = [("position", str(fact.position).encode()),
                       ("event_id", str(fact.event["event_id"]).encode()),
                       ("kind", str(fact.event["kind"]).encode()),
                       ("hash", fact.hash.encode())]  # fmt: skip
            producer.send(topic, key=str(fact.event["env"]).encode(), value=value,
                          headers=headers)  # fmt: skip
        producer.flush(timeout=30)
    finally:
        producer.close()


def restore(url: str, bootstrap: str, topic: str = TOPIC) -> Result:
    return CliRunner().invoke(
        root, ["--ledger", url, "restore", "--from-kafka", bootstrap, "--topic", topic,
               "--timeout", "10"],
    )  # fmt: skip


def count(url: str) -> int:
    ledger = Ledger(locate(url), create=True)
    try:
        return ledger.count()
    finally:
        ledger.close()


def test_restore_rebuilds_the_ledger_with_its_head_and_views(
    original: str, ledger_url: str, kafka: KafkaBroker
) -> None:
    create_topic(kafka.bootstrap, TOPIC)
    publish(original, kafka.bootstrap)

    result = restore(ledger_url, kafka.bootstrap)
    assert result.exit_code == 0, result.output

    source, copy = Ledger(locate(original)), Ledger(locate(ledger_url))
    try:
        checked = copy.verify()
        assert checked.intact, checked.reason
        assert copy.head() == source.head() == (checked.events, checked.head_hash)
        assert f"Head: position {checked.events}, hash {checked.head_hash}" in result.output
        assert list(copy.facts()) == list(source.facts())  # recorded_at and source kept
        for ledger in (source, copy):
            Views(ledger).rebuild()
        source_views, copy_views = Views(source), Views(copy)
        for name in VIEW_NAMES:
            assert copy_views.dump(name) == source_views.dump(name), name
        assert any(source_views.dump(name) != {} for name in VIEW_NAMES)
    finally:
        source.close()
        copy.close()


def test_duplicates_across_partitions_are_dropped(
    original: str, sqlite_url: str, tmp_path: Path, kafka: KafkaBroker
) -> None:
    again = str(tmp_path / "again.db")
    shutil.copy(original, again)  # the same ledger, its publisher at position 0
    create_topic(kafka.bootstrap, TOPIC, partitions=3)
    publish(original, kafka.bootstrap)
    publish(again, kafka.bootstrap, batches=2)  # a relay re-sending from a reset position
    head = count(original)

    result = restore(sqlite_url, kafka.bootstrap)
    assert result.exit_code == 0, result.output
    assert f"({head + 2 * BATCH} records, {2 * BATCH} duplicates dropped)" in result.output
    assert facts(sqlite_url) == facts(original)


def test_a_non_empty_ledger_is_refused_and_left_as_it_was(
    original: str, postgres_url: str, kafka: KafkaBroker
) -> None:
    create_topic(kafka.bootstrap, TOPIC)
    publish(original, kafka.bootstrap)
    target = Ledger(locate(postgres_url), create=True)
    try:
        target.append(list(itertools.islice(demo_fleet(hosts=2, services=1, seed=9), 3)))
        before = list(target.facts())
    finally:
        target.close()

    result = restore(postgres_url, kafka.bootstrap)
    assert result.exit_code == 2, result.output
    assert "already holds 3 events" in result.output
    assert facts(postgres_url) == before


def test_a_topic_with_a_gap_is_refused(original: str, sqlite_url: str, kafka: KafkaBroker) -> None:
    stored = facts(original)
    produce(kafka.bootstrap, "gap", ((f, orjson.dumps(f.event)) for f in stored if f.position != 7))
    result = restore(sqlite_url, kafka.bootstrap, "gap")
    assert result.exit_code == 2, result.output
    assert "position 7 is missing" in result.output
    assert count(sqlite_url) == 0


def test_an_altered_record_is_refused_at_its_position(
    original: str, sqlite_url: str, kafka: KafkaBroker
) -> None:
    stored = facts(original)

    def value(fact: StoredFact) -> bytes:
        event = fact.event if fact.position != 12 else {**fact.event, "actor": "mallory"}
        return orjson.dumps(event)

    produce(kafka.bootstrap, "altered", ((f, value(f)) for f in stored))
    result = restore(sqlite_url, kafka.bootstrap, "altered")
    assert result.exit_code == 3, result.output
    assert "position 12 " in result.output
    assert count(sqlite_url) == 0


def test_an_invalid_record_is_refused_naming_where_it_is(
    original: str, sqlite_url: str, kafka: KafkaBroker
) -> None:
    stored = facts(original)[:5]
    values = [orjson.dumps(f.event) for f in stored]
    values[3] = b'{"kind": "activation_completed"}'
    produce(kafka.bootstrap, "invalid", zip(stored, values, strict=True))
    result = restore(sqlite_url, kafka.bootstrap, "invalid")
    assert result.exit_code == 2, result.output
    assert "topic 'invalid' partition 0 offset 3 (position 4)" in result.output
    assert count(sqlite_url) == 0
