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

Checkpoints (``CheckpointMaker``, ``CheckpointPublisher``): with ``--checkpoint-every``
or ``--checkpoint-interval`` the publisher also signs the tree head now and then and
keeps it in the ledger's database; every kept checkpoint (the latest, when several
were made in between) goes to the companion topic ``<topic>.checkpoints`` (one
partition), where witnesses (``collectors.witness``) check each against the last.
``ledger checkpoint --kafka`` publishes the one it signs the same way, at once
(``publish_checkpoint``), under the same position: nothing is published twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from eventsourcing.persistence import Tracking

from collectors.follower import Follower, tracking_name
from collectors.kafka_client import (
    KafkaUnavailable,
    MissingTopic,
    create_topic_command,
    open_producer,
    record_key,
    require_reachable,
    require_topics,
    wait_for_acks,
)
from ledger.application import Ledger
from ledger.errors import InvalidInput
from projections.store import open_views
from projections.view import Fact

if TYPE_CHECKING:  # imported where checkpoints are made: plain publishing needs neither
    from ledger.checkpoint import Signer

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


class ProducerSession:
    """The idempotent producer a publisher sends through, from its first send until a
    send fails or the publisher closes.

    Idempotence (no duplicates, no reordering on retries) holds within one producer
    session only. So after a failed send the session is dropped: closed at once, so
    records still queued in it never go out after the ones the next attempt sends,
    which a new session (opened on the next send) carries.
    """

    def __init__(self, settings: PublishSettings, client_id: str) -> None:
        self.settings = settings
        self.client_id = client_id
        self.producer: Any = None

    def open(self) -> Any:
        """The producer, opened now if there is none."""
        if self.producer is None:
            self.producer = open_producer(
                self.settings.bootstrap, client_id=self.client_id, timeout=self.settings.timeout
            )
        return self.producer

    def drop(self) -> None:
        """Close the producer at once, discarding what it still holds (after a failure)."""
        self._close(timeout=0)

    def close(self) -> None:
        """Close the producer, giving what it still holds the timeout to go out."""
        self._close(timeout=self.settings.timeout)

    def _close(self, timeout: float) -> None:
        if self.producer is not None:
            producer, self.producer = self.producer, None
            producer.close(timeout=timeout)


class Publisher:
    """Follows the ledger from its own position (``Collector/kafka``) to a Kafka topic."""

    name = "kafka"

    def __init__(self, ledger: Ledger, settings: PublishSettings) -> None:
        self.ledger = ledger
        self.settings = settings
        self.follower = Follower(ledger, self.name, batch=settings.batch)
        self.position = self.follower.position()
        self.session = ProducerSession(settings, settings.client_id)
        self.ahead: Batch | None = None
        """The batch after the one in flight, read while the broker acknowledged it."""

    def step(self) -> bool:
        """Publish the next batch and confirm it once every record is acknowledged;
        whether there was anything to publish. Raises when the broker did not ack."""
        facts, hashes = self.ahead if self.ahead is not None else self.read()
        self.ahead = None
        if not facts:
            return False
        try:
            ahead = self.publish(facts, hashes)
        except BaseException:
            self.session.drop()  # the next attempt starts afresh (see ProducerSession)
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
        producer = self.session.open()
        topic, send = self.settings.topic, producer.send
        futures = [
            send(topic, key=record_key(fact.event), value=orjson.dumps(fact.event),
                 headers=headers_of(fact, chain_hash))
            for fact, chain_hash in zip(facts, hashes, strict=True)
        ]  # fmt: skip
        ahead = self.read(after=facts[-1].notification_id)
        wait_for_acks(producer, futures, self.settings.timeout)
        log.debug("kafka: published positions %d-%d", facts[0].position, facts[-1].position)
        return ahead

    def close(self) -> None:
        self.session.close()
        self.follower.close()


# --- checkpoints ------------------------------------------------------------------------

CHECKPOINTS_SUFFIX = ".checkpoints"
SIZE_HEADER = "size"
ORIGIN_HEADER = "origin"


def checkpoints_topic(topic: str) -> str:
    """The companion topic of ``topic`` that carries its ledger's signed checkpoints."""
    return topic + CHECKPOINTS_SUFFIX


class CheckpointMaker:
    """Signs the ledger's tree head and keeps it (``ledger.checkpoints.issue``) when
    ``every`` events were appended since the last kept checkpoint, or ``interval``
    seconds passed since this maker last made one and the ledger grew meanwhile."""

    name = "checkpoints"

    def __init__(
        self,
        ledger: Ledger,
        signer: Signer,
        *,
        every: int | None,
        interval: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if every is None and interval is None:
            raise InvalidInput("give --checkpoint-every N and/or --checkpoint-interval SECONDS")
        self.ledger = ledger
        self.signer = signer
        self.every = every
        self.interval = interval
        self.clock = clock
        self.made_at: float | None = None
        """When this maker last made one (``None``: not yet, so the interval is due)."""

    def step(self) -> bool:
        """Make a checkpoint if one is due; whether one was made."""
        from ledger.checkpoints import issue, latest, parse_unverified

        head = self.ledger.tree_head()
        kept = latest(self.ledger)
        last_size = parse_unverified(kept).size if kept is not None else 0
        grown = head.size - last_size
        if grown <= 0:
            return False
        now = self.clock()
        due = (self.every is not None and grown >= self.every) or (
            self.interval is not None
            and (self.made_at is None or now - self.made_at >= self.interval)
        )
        if not due:
            return False
        # ``issue`` refuses to sign over a history rewritten since the last checkpoint.
        size = parse_unverified(issue(self.ledger, self.signer)).size
        self.made_at = now
        log.info("checkpoint: signed and kept size %d", size)
        return True

    def close(self) -> None:
        pass


class CheckpointPublisher:
    """Publishes the latest kept checkpoint to the checkpoints topic (key: its size,
    value: the signed note) once it is larger than the last one published.

    One checkpoint per step, confirmed (``Collector/kafka-checkpoints``, its size as the
    position) once the broker acknowledged it: a restart re-sends at most that one,
    which a witness sees as the same size with the same root. Checkpoints made between
    two steps are skipped: consistency is transitive, the latest proves them all.
    """

    name = "kafka-checkpoints"

    def __init__(self, ledger: Ledger, settings: PublishSettings) -> None:
        self.ledger = ledger
        self.settings = settings
        self.topic = checkpoints_topic(settings.topic)
        self.store = open_views(ledger.location)
        self.tracking = tracking_name(self.name)
        self.session = ProducerSession(settings, f"{settings.client_id}-checkpoints")

    def published(self) -> int:
        """The size of the last checkpoint the broker acknowledged (0: none yet)."""
        return self.store.max_tracking_id(self.tracking) or 0

    def step(self) -> bool:
        from ledger.checkpoints import latest, parse_unverified

        note = latest(self.ledger)
        if note is None:
            return False
        checkpoint = parse_unverified(note)
        size = checkpoint.size
        if size <= self.published():
            return False
        if self.session.producer is None:
            self.require_topic()
        producer = self.session.open()
        origin = checkpoint.origin
        try:
            future = producer.send(
                self.topic, key=str(size).encode(), value=note.encode(),
                headers=[(SIZE_HEADER, str(size).encode()), (ORIGIN_HEADER, origin.encode())],
            )  # fmt: skip
            wait_for_acks(producer, [future], self.settings.timeout)
        except BaseException:
            self.session.drop()
            raise
        with self.store.transaction(commit=True) as tx:
            self.store.track(tx, Tracking(self.tracking, size))
        log.info("kafka: published the checkpoint of size %d to %s", size, self.topic)
        return True

    def require_topic(self) -> None:
        """Refuse at once (``MissingTopic``, with the command that creates it) when the
        checkpoints topic does not exist: a send to it would block for the whole
        timeout on a broker that does not create topics, and hold up the events."""
        from kafka import KafkaConsumer
        from kafka.errors import KafkaError

        bootstrap, timeout = self.settings.bootstrap, self.settings.timeout
        require_reachable(bootstrap)
        timeout_ms = max(1000, int(timeout * 1000))
        try:
            # A broker that accepts connections but never answers: give up after the
            # timeout, not after kafka-python's own 30 s.
            consumer = KafkaConsumer(
                bootstrap_servers=bootstrap.split(","),
                client_id=f"{self.settings.client_id}-checkpoints",
                allow_auto_create_topics=False,
                bootstrap_timeout_ms=timeout_ms,
                request_timeout_ms=timeout_ms,
            )
        except KafkaError as error:
            raise KafkaUnavailable(
                f"Kafka at {bootstrap} did not answer in {timeout:g} s ({error})"
            ) from error
        try:
            require_topics(consumer, [self.topic], bootstrap)
        except MissingTopic:
            command = create_topic_command(bootstrap, self.topic)
            raise MissingTopic(
                f"there is no topic {self.topic!r} on {bootstrap} for the "
                "checkpoints: create it with ONE partition (witnesses read them in order), "
                f"for example {command.replace('--partitions 6', '--partitions 1')}"
            ) from None
        finally:
            consumer.close()

    def close(self) -> None:
        self.session.close()
        self.store.datastore.close()


def publish_checkpoint(ledger: Ledger, settings: PublishSettings) -> int | None:
    """Publish the latest kept checkpoint to the checkpoints topic now, once, confirmed
    (``ledger checkpoint --kafka``): its size, or ``None`` when a checkpoint that large
    was published already (by this, or by ``ledger publish``: one position for both).

    Raises ``MissingTopic``, ``KafkaUnavailable`` or a ``KafkaError`` when it could not
    be published; the checkpoint stays kept, and the next publish sends it.
    """
    publisher = CheckpointPublisher(ledger, settings)
    try:
        return publisher.published() if publisher.step() else None
    finally:
        publisher.close()
