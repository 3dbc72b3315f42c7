"""What a fleet host or a CI job runs to report into the ledger through Kafka.

Events are validated here first, with the same models the ingest workers use, so a
bad event is refused on the host that made it (with the line and field at fault)
rather than ending up on the dead-letter topic. Each event is one record keyed by
its host (env for fleet-wide events), sent through the idempotent ``acks=all``
producer; ``send`` returns only once the broker acknowledged every record, so an
event the agent reported as sent is on the topic. Sending again is harmless: the
ingest workers skip event ids the ledger holds already.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO

import orjson
from kafka.errors import KafkaError

from collectors.kafka_client import KafkaUnavailable, open_producer, record_key, wait_for_acks
from ledger.events import Envelope
from ledger.importers.jsonl import parse_lines


def read_events(stream: IO[bytes]) -> list[Envelope]:
    """Every event of a JSON Lines stream; refuses the whole stream if a line is bad."""
    return list(parse_lines(stream))


def send(
    events: Sequence[Envelope],
    *,
    bootstrap: str,
    topic: str,
    timeout: float = 30.0,
    client_id: str = "deploy-ledger-agent",
) -> int:
    """Produce each event to ``topic`` and wait for every acknowledgement; how many."""
    producer = open_producer(bootstrap, client_id=client_id, timeout=timeout)
    try:
        futures = []
        for event in events:
            data = event.model_dump(mode="json")
            futures.append(producer.send(topic, key=record_key(data), value=orjson.dumps(data)))
        wait_for_acks(producer, futures, timeout)
    except KafkaError as error:
        raise KafkaUnavailable(
            f"could not send to topic {topic!r} on {bootstrap}: {error}; the ingest "
            "workers skip events already stored, so sending them all again is safe"
        ) from error
    finally:
        producer.close(timeout=timeout)
    return len(events)
