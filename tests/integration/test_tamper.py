"""Tamper evidence: rows changed, deleted or inserted with raw SQL behind the ledger's back
are caught by ``verify`` at the first bad position, on both backends; PostgreSQL refuses
UPDATE, DELETE and TRUNCATE outright."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from cli.errors import TAMPERED
from cli.main import root
from ledger.application import Ledger
from ledger.chain import content_digest, entry_hash
from ledger.domain import CHAIN_ID, TOPICS
from tests.factories import make_event

EVENTS = 12


class RawSQL:
    """Raw access to a ledger's tables, as an intruder with database access has it."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.backend = ledger.location.backend
        recorder: Any = ledger.recorder
        self.table = recorder.events_table_name
        if self.backend == "postgres":
            self.table = f'"{recorder.datastore.schema}"."{self.table}"'
            self.index = f'"{recorder.datastore.schema}".ledger_event_index'
        else:
            self.index = "ledger_event_index"

    @contextmanager
    def cursor(self, *, bypass_triggers: bool = True) -> Iterator[Any]:
        """A connection to the ledger's database; by default with the append-only
        triggers out of the way, as an intruder with the file or a superuser has it."""
        settings = self.ledger.location.settings
        conn: Any
        if self.backend == "sqlite":
            conn = sqlite3.connect(settings["SQLITE_DBNAME"])
            if bypass_triggers:
                for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'"):
                    conn.execute(f"DROP TRIGGER {name}")
            try:
                yield conn
                conn.commit()
            finally:
                conn.close()
        else:
            with psycopg.connect(
                dbname=settings["POSTGRES_DBNAME"],
                host=settings["POSTGRES_HOST"],
                port=settings["POSTGRES_PORT"],
                user=settings["POSTGRES_USER"],
                password=settings["POSTGRES_PASSWORD"],
                autocommit=True,
            ) as conn:
                if bypass_triggers:
                    conn.execute("SET session_replication_role = replica")
                yield conn

    def run(self, sql: str, *params: Any) -> None:
        if self.backend == "postgres":
            sql = sql.replace("?", "%s")
        with self.cursor() as conn:
            conn.execute(sql, params)

    def state(self, position: int) -> bytes:
        placeholder = "%s" if self.backend == "postgres" else "?"
        with self.cursor() as conn:
            row = conn.execute(
                f"SELECT state FROM {self.table} WHERE originator_version = {placeholder}",
                (position,),
            ).fetchone()
        return bytes(row[0])

    def originator(self) -> Any:
        return CHAIN_ID if self.backend == "postgres" else CHAIN_ID.hex


@pytest.fixture
def filled(ledger: Ledger) -> Ledger:
    ledger.append([make_event("activation_completed", host=f"web-{i:03}") for i in range(EVENTS)])
    assert ledger.verify().intact
    return ledger


def _rewrite(raw: RawSQL, position: int, change: Callable[[bytes], bytes]) -> None:
    raw.run(
        f"UPDATE {raw.table} SET state = ? WHERE originator_version = ?",
        change(raw.state(position)),
        position,
    )


def test_intact_ledger_verifies(filled: Ledger) -> None:
    result = filled.verify()
    assert (result.intact, result.events) == (True, EVENTS)
    assert result.head_hash == filled.head()[1]


def test_a_changed_field_is_caught_at_its_position(filled: Ledger) -> None:
    raw = RawSQL(filled)
    _rewrite(raw, 5, lambda s: s.replace(b"web-004", b"web-666"))
    result = filled.verify()
    assert result.bad_position == 5
    assert "changed" in result.reason


def test_bytes_that_no_longer_decode_are_caught(filled: Ledger) -> None:
    raw = RawSQL(filled)
    _rewrite(raw, 7, lambda s: s[:-5])
    assert filled.verify().bad_position == 7


def test_a_change_with_a_recomputed_hash_breaks_the_next_link(filled: Ledger) -> None:
    raw = RawSQL(filled)
    fact = next(f for f in filled.facts() if f.position == 4)
    forged = {**fact.event, "host": "web-666"}
    new_hash = entry_hash(4, fact.prev_hash, forged)
    _rewrite(
        raw,
        4,
        lambda s: s.replace(b"web-003", b"web-666").replace(fact.hash.encode(), new_hash.encode()),
    )
    result = filled.verify()
    assert result.bad_position == 4
    assert "link between positions 4 and 5" in result.reason


def test_a_deleted_row_is_caught(filled: Ledger) -> None:
    raw = RawSQL(filled)
    raw.run(f"DELETE FROM {raw.table} WHERE originator_version = ?", 6)
    result = filled.verify()
    assert result.bad_position == 6
    assert "missing" in result.reason


def test_deleting_the_last_rows_is_caught_by_the_event_index(filled: Ledger) -> None:
    raw = RawSQL(filled)
    raw.run(f"DELETE FROM {raw.table} WHERE originator_version > ?", EVENTS - 2)
    result = filled.verify()
    assert result.bad_position == EVENTS - 1
    assert "event index" in result.reason


def test_a_foreign_row_inserted_into_the_table_is_caught(filled: Ledger) -> None:
    raw = RawSQL(filled)
    forged = filled.mapper.to_stored_event(
        filled.mapper.to_domain_event(filled.recorder.select_events(CHAIN_ID, lte=3, gt=2)[0])
    )
    other_id = "00000000000040008000000000000001"
    if raw.backend == "postgres":
        other_id = "00000000-0000-4000-8000-000000000001"
    raw.run(
        f"INSERT INTO {raw.table} (originator_id, originator_version, topic, state) "
        "VALUES (?, ?, ?, ?)",
        other_id,
        1,
        forged.topic,
        forged.state,
    )
    result = filled.verify()
    assert result.bad_position == EVENTS + 1
    assert "not part of the chain" in result.reason


def test_a_correctly_chained_row_appended_behind_the_ledgers_back_is_caught(
    filled: Ledger,
) -> None:
    """The intruder knows the hash algorithm; the event index still gives them away."""
    raw = RawSQL(filled)
    head_position, head_hash = filled.head()
    template = filled.recorder.select_events(CHAIN_ID, desc=True, limit=1)[0]
    entry: Any = filled.mapper.to_domain_event(template)
    event = {**entry.event, "event_id": "6f1c3a7e-0000-4000-8000-00000000beef"}
    position = head_position + 1
    forged = type(entry)(
        originator_id=CHAIN_ID,
        originator_version=position,
        timestamp=entry.timestamp,
        event=event,
        prev_hash=head_hash,
        hash=entry_hash(position, head_hash, event),
    )
    stored = filled.mapper.to_stored_event(forged)
    raw.run(
        f"INSERT INTO {raw.table} (originator_id, originator_version, topic, state) "
        "VALUES (?, ?, ?, ?)",
        raw.originator(),
        position,
        TOPICS[event["kind"]],
        stored.state,
    )
    result = filled.verify()
    assert result.bad_position == position
    assert "not in the event index" in result.reason


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE {table} SET topic = 'x'",
        "DELETE FROM {table} WHERE originator_version = 3",
        "UPDATE {index} SET position = 99 WHERE position = 3",
        "DELETE FROM {index}",
        "TRUNCATE {table}",
    ],
)
def test_update_delete_and_truncate_are_refused(filled: Ledger, statement: str) -> None:
    raw = RawSQL(filled)
    if statement.startswith("TRUNCATE") and raw.backend == "sqlite":
        statement = "DELETE FROM {table}"  # SQLite's TRUNCATE is an unqualified DELETE
    with (
        raw.cursor(bypass_triggers=False) as conn,
        pytest.raises(
            (sqlite3.IntegrityError, psycopg.errors.InsufficientPrivilege), match="append-only"
        ),
    ):
        conn.execute(statement.format(table=raw.table, index=raw.index))
    assert filled.count() == EVENTS
    assert filled.verify().intact


def test_cutting_off_the_end_of_chain_and_index_needs_an_anchor(filled: Ledger) -> None:
    head_position, head_hash = filled.head()
    raw = RawSQL(filled)
    raw.run(f"DELETE FROM {raw.table} WHERE originator_version > ?", EVENTS - 3)
    raw.run(f"DELETE FROM {raw.index} WHERE position > ?", EVENTS - 3)
    assert filled.verify().intact, "consistent from inside the database"
    result = filled.verify(anchors={head_position: head_hash})
    assert result.bad_position == EVENTS - 2
    assert f"position {head_position} was anchored but the chain ends" in result.reason


def test_a_consistently_rewritten_last_row_is_caught_by_an_anchor(filled: Ledger) -> None:
    head_position, head_hash = filled.head()
    fact = next(f for f in filled.facts() if f.position == head_position)
    forged = {**fact.event, "host": "web-666"}
    new_hash = entry_hash(head_position, fact.prev_hash, forged)
    host = fact.event["host"].encode()
    raw = RawSQL(filled)
    _rewrite(
        raw,
        head_position,
        lambda s: s.replace(host, b"web-666").replace(head_hash.encode(), new_hash.encode()),
    )
    raw.run(
        f"UPDATE {raw.index} SET digest = ? WHERE position = ?",
        content_digest(forged),
        head_position,
    )
    assert filled.verify().intact, "consistent from inside the database"
    third = next(f for f in filled.facts() if f.position == 3)
    result = filled.verify(anchors={3: third.hash, head_position: head_hash})
    assert result.bad_position == head_position
    assert "does not have its anchored hash" in result.reason


def test_the_first_bad_position_is_reported_whatever_the_kind_of_damage(filled: Ledger) -> None:
    raw = RawSQL(filled)
    raw.run(f"DELETE FROM {raw.index} WHERE position = ?", 2)
    _rewrite(raw, 7, lambda s: s.replace(b"web-006", b"web-666"))
    result = filled.verify()
    assert result.bad_position == 2
    assert "not in the event index" in result.reason


def test_a_cleared_generation_number_in_the_index_is_caught(filled: Ledger) -> None:
    """Without it the next plan of the env would get a number already given out."""
    filled.append([make_event("generation_planned")])
    second = filled.append([make_event("generation_planned")])[0].position
    raw = RawSQL(filled)
    raw.run(f"UPDATE {raw.index} SET planned_generation = NULL WHERE position = ?", second)
    again = filled.append([make_event("generation_planned")])[0].position
    numbers = [f.event["number"] for f in filled.facts(kinds=["generation_planned"])]
    assert numbers == [1, 2, 2], "the damage this test is about: a number given out twice"
    result = filled.verify()
    assert (result.intact, result.bad_position) == (False, second)
    assert f"index row of position {second}" in result.reason
    assert "generation number is None but the event says 2" in result.reason
    assert again > second


def test_a_replaced_digest_in_the_index_is_caught(filled: Ledger) -> None:
    """Without it a changed resend of the event would count as already stored."""
    original = make_event("activation_completed", host="web-100")
    position = filled.append([original])[0].position
    changed = original.model_copy(update={"host": "web-666"})
    forged = next(iter(filled.store.lookup_event_ids([original.event_id]).values()))
    raw = RawSQL(filled)
    new_digest = content_digest(changed.model_dump(mode="json"))
    raw.run(f"UPDATE {raw.index} SET digest = ? WHERE position = ?", new_digest, position)
    resent = filled.append([changed])[0]
    assert (resent.new, resent.position) == (False, position), "counted as already stored"
    result = filled.verify()
    assert (result.intact, result.bad_position) == (False, position)
    assert f"index row of position {position} was changed: its content digest" in result.reason
    assert forged.digest in result.reason


@pytest.mark.parametrize(
    ("column", "value", "field"),
    [("env", "evil-env", "env"), ("kind", "health_reported", "kind")],
)
def test_every_index_field_is_checked(filled: Ledger, column: str, value: str, field: str) -> None:
    raw = RawSQL(filled)
    raw.run(f"UPDATE {raw.index} SET {column} = ? WHERE position = ?", value, 9)
    result = filled.verify()
    assert result.bad_position == 9
    assert f"position 9 was changed: its {field} is {value!r}" in result.reason


def test_index_damage_makes_ledger_verify_exit_3(filled: Ledger) -> None:
    raw = RawSQL(filled)
    raw.run(f"UPDATE {raw.index} SET digest = ? WHERE position = ?", "0" * 64, 4)
    result = CliRunner().invoke(root, ["--ledger", filled.location.url, "verify"])
    assert result.exit_code == TAMPERED, result.output
    assert "position 4" in result.output
    assert "content digest" in result.output
