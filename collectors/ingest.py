"""Kafka ingest: workers in one consumer group append the events hosts and CI publish.

Each record's value is one event in the documented JSON form (``docs/events.md``),
keyed by host (env for fleet-wide events) so that one host's events stay in one
partition, in order. A worker polls a batch, validates every record with the event
models, appends the valid ones in one transaction, in partition order, and only after
that transaction committed commits the batch's offsets. The ``event_id`` makes a
redelivered record harmless: the append skips events already stored. So a crash, a
rebalance or a failed commit can only make a worker see records again, never lose or
double-store one.

A worker is a pipeline of two stages: while one thread appends a batch, the worker's
own thread (the only one that touches the consumer, which is not thread-safe) polls and
validates the next. At most one batch is being appended at a time and batches
are appended in the order they were polled, so a partition's records are stored in
order; the next batch is handed over only after the previous one's append committed,
and only then are that one's offsets committed. When an append fails, the worker
seeks back to its first offsets (and those of the batch polled meanwhile).

A record that can never be stored goes to the dead-letter topic, whatever the reason:
not UTF-8, not JSON, not a valid event, any other error while decoding or validating
it (a timestamp out of range, say), an ``event_id`` already stored with other content,
a generation number that is taken, or an error that storing that one record raises.
The dead letter holds the original key and value, and headers with the error and the
original topic, partition, offset and timestamp. The valid records behind it are
stored and the worker moves on.

Only the store or the broker being unavailable (``is_outage``: connection and
operational errors of the database, Kafka errors, network errors) is temporary: the
worker logs the cause, seeks back to the batch's first offsets and tries the same
records again after a back-off, so nothing is skipped and nothing is dead-lettered for
it. A broker that went away is noticed on the next empty poll (kafka-python's poll
does not raise for it) and logged and retried the same way. The back-off stays well
under the group's ``max.poll.interval``, so a worker waiting for its database keeps its
partitions.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg
from eventsourcing.persistence import DataError, PersistenceError
from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata
from pydantic import ValidationError

from collectors.kafka_client import (
    KafkaUnavailable,
    open_producer,
    require_reachable,
    require_topics,
    wait_for_acks,
)
from collectors.run import Backoff, describe
from ledger.application import Appended, CheckState, Ledger
from ledger.errors import EventConflict, InvalidInput, LedgerError
from ledger.events import LedgerEvent, describe_error, parse_event

log = logging.getLogger("ledger.ingest")

ERROR_HEADER = "error"
MAX_CONFLICT_ROUNDS = 5
BROKER_CHECK_EVERY = 2.0
"""Seconds between TCP checks of the bootstrap servers while polls bring nothing."""
PIPELINED_POLL = 0.05
"""Seconds a poll waits for records while a batch is being appended: the append's end,
not new records, is what the worker waits for then."""

Polled = dict[TopicPartition, list[Any]]


@dataclass(frozen=True)
class IngestSettings:
    bootstrap: str
    topic: str = "ledger.ingest"
    group: str = "deploy-ledger-ingest"
    dead_letter_topic: str = ""
    """Where poison records go; empty means ``<topic>.dead-letter``."""
    batch: int = 500
    timeout: float = 30.0
    """Seconds Kafka may take to answer (dead-letter acknowledgements, metadata)."""
    max_poll_interval: float = 300.0
    """Kafka's ``max.poll.interval.ms``, in seconds: a worker that does not poll for
    this long leaves the group and its partitions go to the others."""
    session_timeout: float = 10.0
    """Kafka's ``session.timeout.ms``, in seconds: how long a worker that died (no
    heartbeats) keeps its partitions before the group gives them to the others."""
    client_id: str = "deploy-ledger-ingest"

    @property
    def dead_letters(self) -> str:
        return self.dead_letter_topic or f"{self.topic}.dead-letter"

    @property
    def max_backoff(self) -> float:
        """The longest wait between retries: well inside ``max_poll_interval``."""
        return max(0.5, min(60.0, self.max_poll_interval / 3))


@dataclass
class IngestTotals:
    records: int = 0
    stored: int = 0
    duplicates: int = 0
    """Records whose event was stored already (a redelivery, or sent twice)."""
    dead_lettered: int = 0


@dataclass(frozen=True)
class Poison:
    """A record that can never be stored, and why."""

    record: Any
    error: str


@dataclass(frozen=True)
class Parsed:
    record: Any
    event: LedgerEvent


def parse_record(record: Any) -> Parsed | Poison:
    """Validate one record's value as an event, or say what is wrong with it."""
    value = record.value
    if value is None:
        return Poison(record, "the record has no value (a tombstone)")
    try:
        value.decode("utf-8")
    except UnicodeDecodeError as error:
        return Poison(record, f"not valid UTF-8 (byte at offset {error.start})")
    try:
        return Parsed(record, parse_event(value))
    except ValidationError as error:
        reasons = []
        for detail in error.errors(include_url=False):
            where, reason = describe_error(detail)
            reasons.append(f"field {where}: {reason}" if where else reason)
        return Poison(record, "; ".join(reasons))
    except RecursionError:
        return Poison(record, "JSON nested too deeply")
    except Exception as error:
        # Whatever decoding or validating one record raises (OverflowError for a
        # timestamp out of range, …) is about that record: retrying cannot help.
        return Poison(record, f"not a valid event: {describe(error)}")


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` says the store or the broker is unavailable (retry the batch)
    rather than that a record cannot be stored (dead-letter it).

    Database errors other than bad data count as the store's: a missing privilege or
    table must not send every record to the dead letters.
    """
    if isinstance(error, DataError | psycopg.DataError | sqlite3.DataError):
        return False
    if isinstance(error, InvalidInput):
        return False
    return isinstance(
        error, PersistenceError | psycopg.Error | sqlite3.Error | LedgerError | KafkaError | OSError
    )


def append_valid(ledger: Ledger, parsed: Sequence[Parsed]) -> tuple[list[Appended], list[Poison]]:
    """Append the events in one transaction, all but those the ledger refuses: those
    come back as poison. When the batch fails for a reason that is not an outage, the
    records are stored one by one (one transaction each) to find which one fails.
    Outages raise."""
    try:
        return _append_batch(ledger, parsed)
    except Exception as error:
        if is_outage(error):
            raise
        log.warning(
            "ingest: a batch of %d records cannot be stored (%s); storing them one by one",
            len(parsed), describe(error),
        )  # fmt: skip
    appended: list[Appended] = []
    refused: list[Poison] = []
    for one in parsed:
        try:
            stored, poison = _append_batch(ledger, [one])
        except Exception as error:
            if is_outage(error):
                raise
            refused.append(Poison(one.record, f"cannot be stored: {describe(error)}"))
            continue
        appended += stored
        refused += poison
    return appended, refused


def _append_batch(ledger: Ledger, parsed: Sequence[Parsed]) -> tuple[list[Appended], list[Poison]]:
    """Append the events in one transaction, all but those the ledger refuses (an
    ``event_id`` stored with other content, a taken generation number): those come
    back as poison. A clash with a concurrent writer is re-checked from the start."""
    refused: list[Poison] = []
    for _ in range(MAX_CONFLICT_ROUNDS):
        try:
            return ledger.append([p.event for p in parsed], source="kafka"), refused
        except EventConflict:
            problems = ledger.check([p.event for p in parsed], CheckState())
            bad = {problem.index for problem in problems}
            refused += [Poison(parsed[p.index].record, p.message) for p in problems]
            parsed = [p for i, p in enumerate(parsed) if i not in bad]
    raise EventConflict(
        f"the batch kept clashing with other writers after {MAX_CONFLICT_ROUNDS} checks"
    )


def dead_letter_headers(poison: Poison) -> list[tuple[str, bytes]]:
    """The record's own headers, then the error and where the record came from."""
    record = poison.record
    return [
        *(record.headers or []),
        (ERROR_HEADER, poison.error.encode()),
        ("original_topic", record.topic.encode()),
        ("original_partition", str(record.partition).encode()),
        ("original_offset", str(record.offset).encode()),
        ("original_timestamp", str(record.timestamp).encode()),
    ]


class LogAssignments(ConsumerRebalanceListener):  # type: ignore[misc]
    """Says in the log which partitions a worker got (runs on the poll), and before
    they go, lets the batch being appended finish and commits its offsets, so that the
    partitions' next owner does not read it again."""

    def __init__(self, worker: IngestWorker) -> None:
        self.worker = worker

    def on_partitions_revoked(self, revoked: Any) -> None:
        if revoked:
            log.info("ingest: partitions revoked: %s", _names(revoked))
        self.worker.settle()

    def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("ingest: partitions assigned: %s", _names(assigned) or "none")


def _names(partitions: Any) -> str:
    return ", ".join(f"{tp.topic}-{tp.partition}" for tp in sorted(partitions))


class IngestWorker:
    """One member of the ingest consumer group."""

    name = "ingest"

    def __init__(self, ledger: Ledger, settings: IngestSettings) -> None:
        self.ledger = ledger
        self.settings = settings
        self.totals = IngestTotals()
        self.producer: Any = None
        self.uncommitted: dict[TopicPartition, OffsetAndMetadata] = {}
        self.consumer: Any = None
        self.broker_checked = float("-inf")
        self.pending: tuple[Polled, Future[None]] | None = None
        """The batch being appended, by the appender thread."""
        self.appender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-append")
        timeout_ms = int(settings.timeout * 1000)
        poll_ms = int(settings.max_poll_interval * 1000)
        try:
            require_reachable(settings.bootstrap)
            self.consumer = KafkaConsumer(
                bootstrap_servers=settings.bootstrap.split(","),
                client_id=settings.client_id,
                group_id=settings.group,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                isolation_level="read_committed",
                max_poll_records=settings.batch,
                max_poll_interval_ms=poll_ms,
                session_timeout_ms=int(settings.session_timeout * 1000),
                heartbeat_interval_ms=max(100, int(settings.session_timeout * 1000) // 3),
                request_timeout_ms=max(timeout_ms, poll_ms + 5000),
                allow_auto_create_topics=False,
            )
            require_topics(
                self.consumer, [settings.topic, settings.dead_letters], settings.bootstrap
            )
            self.consumer.subscribe([settings.topic], listener=LogAssignments(self))
        except BaseException as error:
            self.close()
            if isinstance(error, KafkaError):
                raise KafkaUnavailable(
                    f"could not reach Kafka at {settings.bootstrap}: {error}"
                ) from error
            raise

    def assigned(self) -> set[TopicPartition]:
        return set(self.consumer.assignment())

    def caught_up(self) -> bool:
        """Whether it holds partitions and has read each to the end its last fetch saw.

        Not "the last poll brought nothing": right after a (re)assignment a poll can
        come back empty before the first fetch, with the partitions' records unread.
        Until a fetch answers, a partition's end (high watermark) is unknown.
        """
        mine = self.assigned()
        if not mine:
            return False
        for tp in mine:
            end = self.consumer.highwater(tp)
            if end is None or self.consumer.position(tp) < end:
                return False
        return True

    def step(self, poll_seconds: float = 1.0) -> bool:
        """Poll a batch while the previous one is appended; commit that one once its
        append committed, then hand the new one to the appender; whether there was
        anything to do.

        Raises on a temporary failure, after seeking back to the first offsets of the
        batch that failed and of the one polled meanwhile, so that the next step tries
        the same records again.
        """
        self.commit()  # a commit that failed earlier (Kafka was away) goes first
        wait = poll_seconds if self.pending is None else min(poll_seconds, PIPELINED_POLL)
        try:
            polled: Polled = self.consumer.poll(
                timeout_ms=int(wait * 1000), max_records=self.settings.batch
            )
        except BaseException:
            self.finish({})
            raise
        records = [r for tp in sorted(polled) for r in polled[tp]]
        # Validated here, also while the previous batch is appended: the append spends
        # much of its time waiting for the database, with the interpreter free.
        results = [parse_record(record) for record in records]
        busy = self.finish(polled)
        if not records:
            if not busy:
                self.check_broker()
            return busy
        self.pending = (polled, self.appender.submit(self.store, records, results))
        return True

    def finish(self, polled_next: Polled) -> bool:
        """Wait for the batch being appended and commit its offsets; whether there was
        one. When its append failed, seek back to its first offsets and to those of
        ``polled_next`` (polled meanwhile, not stored) and raise the append's error."""
        if self.pending is None:
            return False
        polled, future = self.pending
        self.pending = None
        try:
            future.result()
        except BaseException:
            self.rewind(polled, polled_next)
            raise
        for tp, batch in polled.items():
            self.uncommitted[tp] = OffsetAndMetadata(batch[-1].offset + 1, "", -1)
        self.commit()
        return True

    def settle(self) -> None:
        """Before partitions are taken away: let the batch being appended finish and
        commit its offsets. A failed append is left for ``step`` to raise."""
        if self.pending is not None and self.pending[1].exception() is None:
            self.finish({})

    def check_broker(self) -> None:
        """Raise ``KafkaUnavailable`` with the cause when no bootstrap server answers.

        kafka-python's ``poll`` does not raise while the broker is away: it returns
        nothing and says why only in its own log. An empty poll is therefore followed
        by a TCP check (at most every ``BROKER_CHECK_EVERY`` seconds), so the outage is
        logged as the worker's own retry, with its cause, like a database outage.
        """
        now = time.monotonic()
        if now - self.broker_checked < BROKER_CHECK_EVERY:
            return
        self.broker_checked = now
        require_reachable(self.settings.bootstrap, timeout=1.0)

    def store(
        self, records: Sequence[Any], results: Sequence[Parsed | Poison] | None = None
    ) -> None:
        """Append the valid records (one transaction), dead-letter the others.

        ``results`` are the records' ``parse_record`` results when validated already.
        """
        parsed: list[Parsed] = []
        poison: list[Poison] = []
        if results is None:
            results = [parse_record(record) for record in records]
        for result in results:
            if isinstance(result, Parsed):
                parsed.append(result)
            else:
                poison.append(result)
        appended, refused = append_valid(self.ledger, parsed) if parsed else ([], [])
        poison += refused
        if poison:
            self.dead_letter(poison)
        new = sum(1 for a in appended if a.new)
        totals = self.totals
        totals.records += len(records)
        totals.stored += new
        totals.duplicates += len(appended) - new
        totals.dead_lettered += len(poison)
        log.debug(
            "ingest: %d records, %d stored, %d already stored, %d dead-lettered",
            len(records), new, len(appended) - new, len(poison),
        )  # fmt: skip

    def dead_letter(self, poison: Sequence[Poison]) -> None:
        if self.producer is None:
            self.producer = open_producer(
                self.settings.bootstrap,
                client_id=f"{self.settings.client_id}-dead-letters",
                timeout=self.settings.timeout,
            )
        topic = self.settings.dead_letters
        futures = []
        for p in poison:
            log.warning(
                "ingest: %s partition %d offset %d to %s: %s",
                p.record.topic, p.record.partition, p.record.offset, topic, p.error,
            )  # fmt: skip
            futures.append(
                self.producer.send(
                    topic, key=p.record.key, value=p.record.value, headers=dead_letter_headers(p)
                )
            )
        try:
            wait_for_acks(self.producer, futures, self.settings.timeout)
        except BaseException:
            producer, self.producer = self.producer, None
            producer.close(timeout=0)
            raise

    def rewind(self, *polls: Polled) -> None:
        """Seek back to the first record of these batches, on the partitions still ours."""
        first: dict[TopicPartition, int] = {}
        for polled in polls:
            for tp, batch in polled.items():
                if batch:
                    first[tp] = min(first.get(tp, batch[0].offset), batch[0].offset)
        mine = self.assigned()
        for tp, offset in first.items():
            if tp in mine:
                self.consumer.seek(tp, offset)

    def commit(self) -> None:
        """Commit the offsets of stored batches. A failed commit is not an error: the
        records are stored, so whoever reads them again skips them."""
        if not self.uncommitted:
            return
        offsets, self.uncommitted = self.uncommitted, {}
        try:
            self.consumer.commit(offsets=offsets)
        except CommitFailedError as error:
            # The group rebalanced: the partitions' new owners start from the last
            # committed offsets and skip what this worker stored.
            log.info("ingest: offsets not committed (%s); the records are stored", error)
        except KafkaError as error:
            log.warning("ingest: committing offsets failed (%s); will retry", describe(error))
            mine = self.assigned()
            self.uncommitted = {tp: o for tp, o in offsets.items() if tp in mine}

    def close(self) -> None:
        """Let the batch being appended finish (and commit it), then close."""
        if self.pending is not None and self.consumer is not None:
            try:
                self.finish({})
            except Exception as error:  # stopping: its records are read again next time
                log.warning("ingest: the last batch was not stored (%s)", describe(error))
        self.appender.shutdown(wait=True)
        if self.consumer is not None:
            consumer, self.consumer = self.consumer, None
            consumer.close(autocommit=False)
        if self.producer is not None:
            producer, self.producer = self.producer, None
            producer.close(timeout=self.settings.timeout)


def run_ingest(
    worker: IngestWorker,
    stop: threading.Event,
    *,
    once: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Step the worker until ``stop`` is set (with ``once``: until a poll brings nothing
    and it has read every partition it holds to its end). Temporary failures back off
    and retry the same records."""
    backoff = Backoff(ceiling=worker.settings.max_backoff)
    while not stop.is_set():
        try:
            busy = worker.step()
        except Exception as error:  # the supervisor loop: log, back off, retry
            delay = backoff.failed(clock())
            log.warning(
                "ingest: %s; retrying the same records in %.1f s (failure %d in a row)",
                outage_cause(worker, error), delay, backoff.failures,
            )  # fmt: skip
            stop.wait(delay)
            continue
        if backoff.failures:
            log.info("ingest: storing again")
        backoff.succeeded()
        if once and not busy and worker.caught_up():
            return


def outage_cause(worker: IngestWorker, error: Exception) -> str:
    """What is unavailable and why, for the log line of a retry."""
    if isinstance(error, KafkaUnavailable):
        return str(error)  # "could not reach Kafka: HOST:PORT: connection refused"
    text = describe(error)
    if isinstance(error, KafkaError):
        return f"Kafka at {worker.settings.bootstrap} is unavailable ({text})"
    if isinstance(error, PersistenceError | psycopg.Error | sqlite3.Error):
        if "couldn't get a connection" in text:
            # The pool does not say why; one direct attempt does.
            text += f"; {worker.ledger.store.connection_problem() or 'reachable again'}"
        return f"the ledger store is unavailable ({text})"
    return text
