"""What every Kafka part of the ledger shares: the producer, record keys, topic checks.

Publishing, restoring, ingesting and the agent's producer all talk to Kafka through
``kafka-python`` with nothing broker-specific, so any Kafka-protocol broker serves.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from ledger.errors import InvalidInput, StoreUnavailable


class KafkaUnavailable(StoreUnavailable):
    """The broker could not be reached, or a topic could not be read or written."""


class MissingTopic(InvalidInput):
    """A topic the command needs does not exist (topics are created by the operator)."""


def record_key(event: Mapping[str, Any]) -> bytes:
    """The record key of an event: its host, or its env for fleet-wide events (builds,
    generations), so one host's events stay in one partition, in order."""
    return str(event.get("host") or event["env"]).encode()


def require_reachable(bootstrap: str, timeout: float = 2.0) -> None:
    """Raise ``KafkaUnavailable`` at once, with the cause, when no bootstrap server
    accepts a TCP connection; kafka-python would retry until its timeout (30 s) and
    then only say it was "unable to bootstrap"."""
    causes = []
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        if not (port.isascii() and port.isdigit()):
            return  # not HOST:PORT: leave the complaint to the client
        try:
            socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout).close()
        except OSError as error:
            reason = error.strerror or str(error) or type(error).__name__
            causes.append(f"{address.strip()}: {reason.lower()}")
        else:
            return
    raise KafkaUnavailable(f"could not reach Kafka: {'; '.join(causes)}")


def open_producer(bootstrap: str, *, client_id: str, timeout: float) -> Any:
    """An idempotent producer with ``acks=all``; refuses to run without idempotence.

    ``enable_idempotence=True`` is set explicitly: kafka-python otherwise turns
    idempotence off with only a warning when another setting conflicts.
    """
    require_reachable(bootstrap)
    timeout_ms = int(timeout * 1000)
    request_ms = max(1000, timeout_ms // 3)
    try:
        producer = KafkaProducer(
            bootstrap_servers=bootstrap.split(","),
            client_id=client_id,
            acks="all",
            enable_idempotence=True,  # explicit: a conflicting setting then raises
            max_in_flight_requests_per_connection=5,
            linger_ms=5,
            max_block_ms=timeout_ms,
            request_timeout_ms=request_ms,
            delivery_timeout_ms=timeout_ms + request_ms,
        )
    except KafkaError as error:
        raise KafkaUnavailable(f"could not reach Kafka at {bootstrap}: {error}") from error
    if not producer.config["enable_idempotence"] or producer.config["acks"] != -1:
        producer.close(timeout=0)
        raise RuntimeError("the Kafka producer is not idempotent with acks=all")
    return producer


def wait_for_acks(producer: Any, futures: Iterable[Any], timeout: float) -> None:
    """Flush, then raise unless the broker acknowledged every one of ``futures``."""
    producer.flush(timeout=timeout)
    for future in futures:
        if not future.is_done:
            raise KafkaUnavailable(f"no acknowledgement from Kafka in {timeout} s")
        if future.failed():
            raise future.exception


def create_topic_command(bootstrap: str, topic: str) -> str:
    """The command that creates ``topic`` with Apache Kafka's tools (for error messages)."""
    return (
        f"kafka-topics.sh --bootstrap-server {bootstrap.partition(',')[0]} --create "
        f"--topic {topic} --partitions 6"
    )


def require_topics(client: Any, topics: Iterable[str], bootstrap: str) -> None:
    """Refuse to start when one of ``topics`` does not exist on the broker.

    ``client`` is a consumer; ``topics()`` asks for metadata without creating anything.
    """
    try:
        known = client.topics()
    except KafkaError as error:
        raise KafkaUnavailable(f"could not reach Kafka at {bootstrap}: {error}") from error
    missing = [t for t in topics if t not in known]
    if missing:
        names = ", ".join(repr(t) for t in missing)
        raise MissingTopic(
            f"there is no topic {names} on {bootstrap}: create it first (for example "
            f"{create_topic_command(bootstrap, missing[0])})"
        )
