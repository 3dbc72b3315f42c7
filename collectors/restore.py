"""Rebuild an empty ledger from its published Kafka topic (see ``collectors.publish``).

The topic is read from the beginning of every partition up to the end offsets it had
when the restore started, and on until a poll brings nothing more (a broker may report
end offsets that lag behind its last records); no consumer group: the partitions are
assigned directly.
Records are put back in ledger order by their ``position`` header, re-sent duplicates
(same position, same event) are dropped, and the positions must then run 1..N without a
gap: a missing one means the topic lost records, and the restore refuses. Each value is
validated with the event models (a bad record is named by topic, partition and offset).

Before anything is written the chain is recomputed from the records' content and
compared with each record's ``hash`` header, so a record altered on the topic is caught
at its position with nothing stored. The events keep their original ``recorded_at`` and
``source`` (the published form carries them), so the restored chain has the original
hashes; after appending, ``Ledger.verify`` re-checks the whole chain with every header
hash as an anchor.

The target must hold no events: a restore never writes into a non-empty ledger. The
records are held in memory while they are put in order (about the topic's size).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from pydantic import ValidationError

from collectors.kafka_client import KafkaUnavailable
from collectors.publish import HASH_HEADER, POSITION_HEADER
from ledger.application import Ledger, append_in_batches, batched
from ledger.chain import GENESIS, entry_hash
from ledger.errors import InvalidInput, LedgerError
from ledger.events import Envelope, GenerationPlanned, describe_error, parse_event

BATCH = 1000
POLL_MS = 500

Progress = Callable[[int], None]


class RestoreRefused(InvalidInput):
    """The target is not empty, or the topic is not a whole, valid ledger: nothing stored."""


class RestoreMismatch(LedgerError):
    """A hash on the topic does not match the chain its events make (``position``)."""

    def __init__(self, position: int, message: str) -> None:
        self.position = position
        super().__init__(message)


@dataclass(frozen=True)
class RestoreSettings:
    bootstrap: str
    topic: str
    timeout: float = 30.0
    """Seconds the broker may take to answer, or to deliver more records."""
    batch: int = BATCH
    client_id: str = "deploy-ledger-restore"


@dataclass(frozen=True)
class TopicRecord:
    """One event read from the topic, with where it was found."""

    position: int
    event: Envelope
    hash: str
    partition: int
    offset: int


@dataclass(frozen=True)
class RestoreReport:
    records: int
    """Records read from the topic (duplicates included)."""
    duplicates: int
    events: int
    head_hash: str


def ensure_empty(ledger: Ledger) -> None:
    """Refuse a ledger that already holds events."""
    count = ledger.count()
    if count:
        raise RestoreRefused(
            f"{ledger.location.display} already holds {count} events: a restore only "
            "writes into an empty ledger (restore into a new database)"
        )


class TopicReader:
    """The topic's records, from the beginning to the end offsets taken at start."""

    def __init__(self, settings: RestoreSettings) -> None:
        self.settings = settings
        self.records = 0
        """Records read (duplicates included), once ``read`` returned."""
        timeout_ms = int(settings.timeout * 1000)
        self.consumer: Any = None
        try:
            self.consumer = KafkaConsumer(
                bootstrap_servers=settings.bootstrap.split(","),
                client_id=settings.client_id,
                group_id=None,
                enable_auto_commit=False,
                request_timeout_ms=min(max(timeout_ms, 1000), 300_000),
                allow_auto_create_topics=False,
            )
            partitions = self.consumer.partitions_for_topic(settings.topic)
            if not partitions:
                raise RestoreRefused(
                    f"there is no topic {settings.topic!r} on {settings.bootstrap}: "
                    "nothing to restore"
                )
            self.partitions = [TopicPartition(settings.topic, p) for p in sorted(partitions)]
            self.consumer.assign(self.partitions)
            self.start: dict[TopicPartition, int] = self.consumer.beginning_offsets(self.partitions)
            self.end: dict[TopicPartition, int] = self.consumer.end_offsets(self.partitions)
        except BaseException as error:
            self.close()
            if isinstance(error, KafkaError):
                raise KafkaUnavailable(
                    f"could not read topic {settings.topic!r} on {settings.bootstrap}: {error}"
                ) from error
            raise

    @property
    def size(self) -> int:
        """How many records there are to read, as the broker reported at start."""
        return sum(self.end[tp] - self.start[tp] for tp in self.partitions)

    def read(self, progress: Progress | None = None) -> list[TopicRecord]:
        """Every event of the topic once, in position order; refuses a bad record, two
        different events at one position, and a gap in the positions."""
        by_position: dict[int, TopicRecord] = {}
        count = 0
        for record in self._records(progress):
            count += 1
            earlier = by_position.setdefault(record.position, record)
            if earlier is not record and (
                earlier.event.event_id != record.event.event_id or earlier.hash != record.hash
            ):
                raise RestoreRefused(
                    f"position {record.position} holds two different events on topic "
                    f"{self.settings.topic!r} (partition {earlier.partition} offset "
                    f"{earlier.offset}, partition {record.partition} offset {record.offset}): "
                    "the topic mixes two histories"
                )
        self.records = count
        ordered = [by_position[p] for p in sorted(by_position)]
        if not ordered:
            raise RestoreRefused(
                f"topic {self.settings.topic!r} holds no events: nothing to restore"
            )
        for expected, record in enumerate(ordered, start=1):
            if record.position != expected:
                raise RestoreRefused(
                    f"position {expected} is missing from topic {self.settings.topic!r} "
                    f"(the next one there is {record.position}): the topic lost records, "
                    "nothing was stored"
                )
        return ordered

    def _records(self, progress: Progress | None) -> Iterator[TopicRecord]:
        consumer = self.consumer
        try:
            consumer.seek_to_beginning(*self.partitions)
            pending = {tp for tp in self.partitions if self.end[tp] > self.start[tp]}
            deadline = time.monotonic() + self.settings.timeout
            while pending:
                if time.monotonic() > deadline:
                    raise KafkaUnavailable(
                        f"no records arrived from topic {self.settings.topic!r} on "
                        f"{self.settings.bootstrap} for {self.settings.timeout:g} s, before "
                        "its end was reached"
                    )
                if (yield from self._poll(progress)):
                    deadline = time.monotonic() + self.settings.timeout
                for tp in list(pending):
                    if consumer.position(tp) >= self.end[tp]:
                        pending.discard(tp)
            # The end offsets a broker reports may lag behind its last records (some
            # report the last batch's base offset): read on until a poll brings nothing.
            while (yield from self._poll(progress)):
                pass
        except KafkaError as error:
            raise KafkaUnavailable(
                f"reading topic {self.settings.topic!r} on {self.settings.bootstrap} "
                f"failed: {error}"
            ) from error

    def _poll(self, progress: Progress | None) -> Generator[TopicRecord, None, int]:
        """The records one poll brings; how many there were."""
        read = 0
        for messages in self.consumer.poll(timeout_ms=POLL_MS).values():
            for message in messages:
                yield self._parse(message)
            read += len(messages)
            if progress is not None:
                progress(len(messages))
        return read

    def _parse(self, message: Any) -> TopicRecord:
        where = f"topic {message.topic!r} partition {message.partition} offset {message.offset}"
        headers = dict(message.headers or ())
        try:
            position = int(headers[POSITION_HEADER].decode())
            chain_hash = headers[HASH_HEADER].decode()
        except (KeyError, ValueError, UnicodeDecodeError):
            raise RestoreRefused(
                f"{where}: not a published ledger event (no valid {POSITION_HEADER!r} and "
                f"{HASH_HEADER!r} headers); nothing was stored"
            ) from None
        if position < 1:
            raise RestoreRefused(f"{where}: position {position} is not 1 or more")
        try:
            event = parse_event(message.value or b"")
        except ValidationError as error:
            field, reason = describe_error(error.errors(include_url=False)[0])
            raise RestoreRefused(
                f"{where} (position {position}): the event is invalid "
                f"({field or 'event'}: {reason}); nothing was stored"
            ) from None
        if event.recorded_at is None or event.source is None:
            raise RestoreRefused(
                f"{where} (position {position}): the event has no recorded_at or source, "
                "so it was not published from a ledger; nothing was stored"
            )
        return TopicRecord(position, event, chain_hash, message.partition, message.offset)

    def close(self) -> None:
        if self.consumer is not None:
            consumer, self.consumer = self.consumer, None
            consumer.close()


def check_chain(records: Sequence[TopicRecord], progress: Progress | None = None) -> str:
    """Recompute the chain from the records' content; the head hash. Raises
    ``RestoreMismatch`` at the first record whose ``hash`` header differs."""
    prev_hash = GENESIS
    for record in records:
        data = record.event.model_dump(mode="json")
        if isinstance(record.event, GenerationPlanned) and data["number"] is None:
            raise RestoreMismatch(
                record.position, f"position {record.position}: a generation without a number"
            )
        prev_hash = entry_hash(record.position, prev_hash, data)
        if prev_hash != record.hash:
            raise RestoreMismatch(
                record.position,
                f"position {record.position} (partition {record.partition} offset "
                f"{record.offset}) does not match its hash header: the record was altered, "
                "or the topic's history was rewritten up to it; nothing was stored",
            )
        if progress is not None:
            progress(1)
    return prev_hash


def write(
    ledger: Ledger,
    records: Sequence[TopicRecord],
    *,
    batch: int = BATCH,
    progress: Callable[[str, int], None] | None = None,
) -> str:
    """Append the records (already checked) to the empty ledger and verify it with every
    record's hash as an anchor; the head hash."""

    def tell(phase: str) -> Progress | None:
        return None if progress is None else (lambda n: progress(phase, n))

    ensure_empty(ledger)  # again: something may have written since the first look
    batches = batched(((r.position, r.event) for r in records), batch)
    totals = append_in_batches(
        ledger, batches, source="kafka", unit="positions", on_batch=tell("appending")
    )
    if totals.skipped or totals.first != 1 or totals.last != len(records):
        raise RestoreMismatch(
            1,
            f"{ledger.location.display} took {totals.stored} of {len(records)} events "
            f"(positions {totals.first}-{totals.last}): another writer used it during the "
            "restore",
        )
    result = ledger.verify(tell("verifying"), anchors={r.position: r.hash for r in records})
    if not result.intact:
        position = result.bad_position or 1
        raise RestoreMismatch(
            position,
            f"the restored ledger fails verification at position {position}: {result.reason}",
        )
    return result.head_hash


def restore(ledger: Ledger, settings: RestoreSettings) -> RestoreReport:
    """The whole restore without progress reports (see the module docstring)."""
    ensure_empty(ledger)
    reader = TopicReader(settings)
    try:
        records = reader.read()
    finally:
        reader.close()
    check_chain(records)
    head_hash = write(ledger, records, batch=settings.batch)
    return RestoreReport(reader.records, reader.records - len(records), len(records), head_hash)
