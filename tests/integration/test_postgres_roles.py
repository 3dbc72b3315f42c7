"""``ledger init --postgres-roles`` on a real PostgreSQL: the writer appends but cannot
change, delete or truncate a stored event, nor disable the triggers or drop the table;
the reader reads and writes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from cli.main import root
from ledger.application import Ledger
from ledger.store import locate
from projections.runner import Views
from tests.conftest import with_query
from tests.story import api_upgrade


@pytest.fixture
def roles(postgres_server_url: str, postgres_url: str) -> Iterator[tuple[str, str, str]]:
    """A ledger with its roles (a prefix of this test's own) and a login role in each:
    the ledger's URL as the writer's login, as the reader's, and the prefix."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    result = CliRunner().invoke(
        root, ["--ledger", postgres_url, "init", "--postgres-roles", "--role-prefix", prefix]
    )
    assert result.exit_code == 0, result.output
    assert f"{prefix}_writer (appends, never changes or deletes an event)" in result.output
    logins = {}
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        for kind in ("writer", "reader"):
            login = f"{prefix}_{kind}_login"
            conn.execute(f'CREATE ROLE "{login}" LOGIN IN ROLE "{prefix}_{kind}"')
            logins[kind] = login
    schema = postgres_url.rsplit("schema=", 1)[1]
    as_writer = with_query(postgres_server_url.replace("postgres:@", f"{logins['writer']}:@"))
    as_reader = with_query(postgres_server_url.replace("postgres:@", f"{logins['reader']}:@"))
    yield f"{as_writer}&schema={schema}", f"{as_reader}&schema={schema}", prefix
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        for name in (*logins.values(), f"{prefix}_writer", f"{prefix}_reader"):
            conn.execute(f'DROP OWNED BY "{name}"')
            conn.execute(f'DROP ROLE "{name}"')
        conn.execute(f'CREATE SCHEMA "{schema}"')  # postgres_url's fixture drops it


def refused(url: str, statement: str) -> str:
    """The error PostgreSQL answers ``statement`` with (it must refuse it)."""
    with psycopg.connect(url.split("&schema=", maxsplit=1)[0]) as conn:
        schema = url.rsplit("schema=", 1)[1]
        conn.execute(f'SET search_path TO "{schema}"')
        with pytest.raises(psycopg.Error) as error:
            conn.execute(statement)
        return str(error.value)


def test_the_writer_appends_and_projects_but_never_changes_an_event(
    roles: tuple[str, str, str],
) -> None:
    as_writer, _, _ = roles
    ledger = Ledger(locate(as_writer))
    try:
        results = ledger.append(api_upgrade().events)
        assert results[-1].position == ledger.count() > 10
        views = Views(ledger)  # the runner's work: views are the writer's to keep
        views.catch_up()
        assert views.lag() == 0
        assert ledger.verify().intact
    finally:
        ledger.close()
    for statement in (
        "UPDATE ledger_events SET topic = 'x'",
        "UPDATE ledger_event_index SET env = 'x'",
    ):
        assert "append-only" in refused(as_writer, statement) or "permission denied" in refused(
            as_writer, statement
        )
    for statement in (
        "DELETE FROM ledger_events",
        "DELETE FROM ledger_event_index",
        "TRUNCATE ledger_events",
        "ALTER TABLE ledger_events DISABLE TRIGGER ALL",
        "DROP TABLE ledger_events",
    ):
        message = refused(as_writer, statement)
        assert "permission denied" in message or "must be owner" in message, (statement, message)


def test_the_reader_reads_and_writes_nothing(roles: tuple[str, str, str]) -> None:
    as_writer, as_reader, _ = roles
    writer = Ledger(locate(as_writer))
    writer.append(api_upgrade().events)
    Views(writer).catch_up()
    count = writer.count()
    writer.close()
    with psycopg.connect(as_reader.split("&schema=")[0]) as conn:
        conn.execute(f'SET search_path TO "{as_reader.rsplit("schema=", 1)[1]}"')
        [(events,)] = conn.execute("SELECT count(*) FROM ledger_events").fetchall()
        [(placements,)] = conn.execute("SELECT count(*) FROM placements").fetchall()
    assert events == count
    assert placements > 0
    for statement in (
        "INSERT INTO ledger_event_index VALUES (gen_random_uuid(), 99999, 'x', 'x', NULL, 'x')",
        "DELETE FROM placements",
        "CREATE TABLE sneaky (id int)",
    ):
        assert "permission denied" in refused(as_reader, statement), statement


def test_roles_need_postgresql(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        root, ["--ledger", f"{tmp_path}/ledger.db", "init", "--postgres-roles"]
    )
    assert result.exit_code == 2
    assert "--postgres-roles needs a PostgreSQL ledger" in result.output
    assert not Path(f"{tmp_path}/ledger.db").exists()  # refused before anything was made
