"""Every ledger event to a Kafka topic, in ledger order: a published replica of the ledger.

Each event becomes one record (see ``docs/kafka.md``): the key is the event's host, or
its env for fleet-wide events (builds, generations), so a host's events stay in one
partition, in order; the value is the event's documented JSON form; the headers carry
the ledger ``position``, the ``event_id``, the ``kind`` and the chain ``hash``.

Delivery is at least once, and ordered: the publisher reads a batch after its confirmed
position (``Collector/kafka``), sends it through an idempotent producer (``acks=all``,
``enable_idempotence=True``, at most 5 requests in flight, so retries neither reorder
nor duplicate within one producer session), waits until the broker acknowledged every
record, and only then confirms (while it waits, it reads the next batch, so reading
overlaps the broker's round trips; that batch is only sent after the confirmation).
After a crash, or a failure that drops the producer,
the batch after the confirmed position is sent again: duplicates only ever repeat that
unacknowledged tail, and a consumer drops them by position. While the broker is down
every step raises (the loop in ``collectors.run`` backs off) and the ledger keeps the
backlog.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from collectors.follower import Follower
from collectors.kafka_client import open_producer, record_key, wait_for_acks
from ledger.application import Ledger
from projections.view import Fact

log = logging.getLogger("ledger.collect")

Batch = tuple[list[Fact], list[str]]
"""Facts in ledger order, with their chain hashes."""

POSITION_HEADER = "position"
EVENT_ID_HEADER = "event_id"
KIND_HEADER = "kind"
HASH_HEADER = "hash"


@dataclass(frozen=True)
class PublishSettings:
    bootstrap: str
    topic: str
    batch: int = 1000
    timeout: float = 30.0
    """Seconds a batch may take from send to the broker's last acknowledgement."""
    client_id: str = "deploy-ledger-publish"


def headers_of(fact: Fact, chain_hash: str) -> list[tuple[str, bytes]]:
    return [
        (POSITION_HEADER, str(fact.position).encode()),
        (EVENT_ID_HEADER, str(fact.event["event_id"]).encode()),
        (KIND_HEADER, fact.kind.encode()),
        (HASH_HEADER, chain_hash.encode()),
    ]


class Publisher:
    """Follows the ledger from its own position (``Collector/kafka``) to a Kafka topic."""

    name = "kafka"

    def __init__(self, ledger: Ledger, settings: PublishSettings) -> None:
        self.ledger = ledger
        self.settings = settings
        self.follower = Follower(ledger, self.name, batch=settings.batch)
        self.position = self.follower.position()
        self.producer: Any = None
        self.ahead: Batch | None = None
        """The batch after the one in flight, read while the broker acknowledged it."""

    def step(self) -> bool:
        """Publish the next batch and confirm it once every record is acknowledged;
        whether there was anything to publish. Raises when the broker did not ack."""
        facts, hashes = self.ahead if self.ahead is not None else self.read()
        self.ahead = None
        if not facts:
            return False
        if self.producer is None:
            self.producer = open_producer(
                self.settings.bootstrap,
                client_id=self.settings.client_id,
                timeout=self.settings.timeout,
            )
        try:
            ahead = self.publish(facts, hashes)
        except BaseException:
            # Records still queued in this producer must not go out after the ones the
            # next attempt sends: drop the producer, start the next attempt afresh.
            self.drop_producer()
            raise
        self.follower.confirm(facts[-1].notification_id)
        self.position = facts[-1].notification_id
        self.ahead = ahead
        return True

    def read(self, after: int | None = None) -> Batch:
        """The next batch of facts after ``after`` (default: the position), with their
        chain hashes."""
        start = self.position if after is None else after
        return self.follower.read_with_hashes(start, self.settings.batch)

    def publish(self, facts: Sequence[Fact], hashes: Sequence[str]) -> Batch:
        """Send the batch and wait until the broker acknowledged all of it; meanwhile,
        read the batch after it (returned), so reading overlaps the round trips."""
        topic, send = self.settings.topic, self.producer.send
        futures = [
            send(topic, key=record_key(fact.event), value=orjson.dumps(fact.event),
                 headers=headers_of(fact, chain_hash))
            for fact, chain_hash in zip(facts, hashes, strict=True)
        ]  # fmt: skip
        ahead = self.read(after=facts[-1].notification_id)
        wait_for_acks(self.producer, futures, self.settings.timeout)
        log.debug("kafka: published positions %d-%d", facts[0].position, facts[-1].position)
        return ahead

    def drop_producer(self) -> None:
        if self.producer is not None:
            producer, self.producer = self.producer, None
            producer.close(timeout=0)

    def close(self) -> None:
        if self.producer is not None:
            producer, self.producer = self.producer, None
            producer.close(timeout=self.settings.timeout)
        self.follower.close()
