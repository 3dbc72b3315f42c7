"""Errors name their cause at once: PostgreSQL refused, a database or role that does not
exist; Riemann or Kafka down is an outage (exit 1), never "report it"; the Kafka worker
tells a record that can never be stored from an outage it should wait out."""

from __future__ import annotations

import socket
import sqlite3
import time
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from click.testing import CliRunner, Result
from eventsourcing.persistence import DataError, OperationalError, ProgrammingError
from kafka.errors import KafkaConnectionError

from cli.errors import FAILURE
from cli.main import root
from collectors.ingest import is_outage
from collectors.kafka_client import KafkaUnavailable
from ledger.application import Ledger
from ledger.errors import EventConflict, StoreUnavailable
from ledger.postgres import _cause
from ledger.store import locate
from tests.factories import make_event

# Long enough that waiting for the pool's timeout could not pass for failing fast.
POOL_TIMEOUT = "20"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(url: str, *args: str) -> tuple[Result, float]:
    started = time.monotonic()
    result = CliRunner().invoke(root, ["--ledger", url, *args])
    return result, time.monotonic() - started


def replaced(url: str, *, user: str | None = None, dbname: str | None = None) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc
    if user is not None:
        netloc = f"{user}:@{netloc.rpartition('@')[2]}"
    path = f"/{dbname}" if dbname is not None else parts.path
    return urlunsplit(parts._replace(netloc=netloc, path=path))


def assert_outage(result: Result, *expected: str) -> None:
    assert result.exit_code == FAILURE, result.output
    for text in expected:
        assert text in result.output
    assert "couldn't get a connection" not in result.output
    assert "report it" not in result.output
    assert "unexpected" not in result.output


@pytest.fixture(autouse=True)
def slow_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTGRES_CONNECT_TIMEOUT", POOL_TIMEOUT)


@pytest.mark.postgres
def test_a_refused_postgresql_connection_is_named_at_once() -> None:
    port = closed_port()
    result, took = run(f"postgresql://postgres@127.0.0.1:{port}/postgres", "verify")
    assert_outage(result, f"PostgreSQL at 127.0.0.1:{port}: connection refused")
    assert took < float(POOL_TIMEOUT) / 2


@pytest.mark.postgres
def test_a_missing_database_is_named_at_once(postgres_server_url: str) -> None:
    result, took = run(replaced(postgres_server_url, dbname="no_such_ledger"), "verify")
    assert_outage(result, 'database "no_such_ledger" does not exist')
    assert took < float(POOL_TIMEOUT) / 2


@pytest.mark.postgres
def test_a_missing_role_is_named_at_once(postgres_server_url: str) -> None:
    result, took = run(replaced(postgres_server_url, user="no_such_role"), "verify")
    assert_outage(result, 'role "no_such_role" does not exist')
    assert took < float(POOL_TIMEOUT) / 2


def test_libpq_reasons_lose_their_preamble() -> None:
    """The test server trusts every local login, so a wrong password is checked on
    libpq's own wording."""
    error = psycopg.OperationalError(
        'connection failed: connection to server at "10.0.0.5", port 5432 failed: '
        'FATAL:  password authentication failed for user "ingest"'
    )
    assert _cause(error) == 'password authentication failed for user "ingest"'


@pytest.mark.postgres
def test_opening_a_reachable_postgresql_ledger_still_works(postgres_url: str) -> None:
    Ledger(locate(postgres_url), create=True).close()
    assert run(postgres_url, "verify")[0].exit_code == 0


def test_riemann_down_is_an_outage(sqlite_url: str) -> None:
    ledger = Ledger(locate(sqlite_url), create=True)
    ledger.append([make_event("activation_completed")])
    ledger.close()
    port = closed_port()
    result, _ = run(sqlite_url, "collect", "--riemann", f"127.0.0.1:{port}", "--once")
    assert_outage(result, f"cannot reach Riemann at 127.0.0.1:{port}", "Connection refused")


def test_kafka_down_is_an_outage_named_at_once(sqlite_url: str) -> None:
    Ledger(locate(sqlite_url), create=True).close()
    port = closed_port()
    result, took = run(sqlite_url, "ingest", "--kafka", f"127.0.0.1:{port}", "--once")
    assert_outage(result, f"could not reach Kafka: 127.0.0.1:{port}: connection refused")
    assert took < 15  # kafka-python alone retries for 30 s before it gives up


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (OperationalError("couldn't get a connection after 5.00 sec"), True),
        (ProgrammingError("permission denied for table ledger_events"), True),
        (psycopg.OperationalError("server closed the connection unexpectedly"), True),
        (sqlite3.OperationalError("database is locked"), True),
        (StoreUnavailable("gave up after 100 attempts"), True),
        (KafkaUnavailable("no acknowledgement from Kafka in 10 s"), True),
        (KafkaConnectionError("refused"), True),
        (ConnectionRefusedError(111, "Connection refused"), True),
        (OverflowError("date value out of range"), False),
        (ValueError("timestamp out of range"), False),
        (TypeError("Integer exceeds 64-bit range"), False),
        (DataError("value out of range for type bigint"), False),
        (psycopg.DataError("invalid byte sequence"), False),
        (EventConflict("event_id … is already stored with different content"), False),
    ],
)
def test_the_kafka_worker_retries_outages_only(error: Exception, outage: bool) -> None:
    assert is_outage(error) is outage
