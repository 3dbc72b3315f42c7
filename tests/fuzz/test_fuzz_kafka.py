"""Fuzzing the Kafka ingest worker: fuzzed records (tests/fuzz/test_fuzz_input.py's
mutations of valid events of every kind) among valid ones, on a real broker, SQLite and
PostgreSQL. Every record ends up stored or in the dead-letter topic — none lost, none
blocking its partition — and only valid ones are stored."""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application import Ledger
from ledger.importers.jsonl import parse_line
from tests.fuzz.conftest import TALLY
from tests.fuzz.test_fuzz_input import fuzzed_line
from tests.integration.test_ingest_kafka import (
    DEAD,
    TOPIC,
    ingest_once,
    produce,
    read_topic,
)
from tests.services.kafka import (  # noqa: F401 (fixture `kafka`)
    KafkaBroker,
    create_topic,
    kafka_broker,
)

ROUNDS = int(os.environ.get("FUZZ_EXAMPLES", "0")) // 50 or 2
"""Rounds of 5-50 fuzzed records, each read by one worker run (200 with ``make fuzz``'s
10,000 examples)."""
READY: set[str] = set()
"""Brokers whose topics are made."""


@settings(max_examples=ROUNDS, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])  # fmt: skip
@given(lines=st.lists(fuzzed_line(), min_size=5, max_size=50))
def test_every_record_is_stored_or_dead_lettered(
    ledger: Ledger, kafka: KafkaBroker, lines: list[tuple[str, bytes]]
) -> None:
    if kafka.bootstrap not in READY:  # one broker per test, several examples on it
        create_topic(kafka.bootstrap, TOPIC, 2)
        create_topic(kafka.bootstrap, DEAD)
        READY.add(kafka.bootstrap)
    # Each valid record gets an event id of its own (fuzzing may have reused one): none
    # may be skipped as a redelivery of another.
    expected_valid = 0
    values: list[tuple[bytes, bytes | None]] = []
    for _, raw in lines:
        value = raw
        if not isinstance(parse_line(1, raw), list):
            data: dict[str, Any] = json.loads(raw)
            data["event_id"] = str(uuid.uuid4())
            value = json.dumps(data).encode()
            expected_valid += 1
        values.append((str(len(values) % 7).encode(), value))
    dead_before = len(read_topic(kafka.bootstrap, DEAD, wait=0.5))
    before = ledger.count()
    produce(kafka.bootstrap, values)
    ingest_once(ledger, kafka.bootstrap)
    stored = ledger.count() - before
    dead = read_topic(kafka.bootstrap, DEAD)[dead_before:]
    TALLY[("kafka ingest", "stored")] += stored
    TALLY[("kafka ingest", "dead-lettered")] += len(dead)
    # A valid record can still be refused at append (a taken generation number): it is
    # a dead letter too. Nothing is lost, nothing stored twice, no partition blocked.
    assert stored + len(dead) == len(values), (stored, len(dead), len(values))
    assert stored <= expected_valid
    assert all(dict(record.headers).get("error") for record in dead)
    assert ledger.verify().intact
