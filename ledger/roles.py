"""PostgreSQL roles for running the ledger with least privilege (``ledger init
--postgres-roles``): a writer that can append but never change or remove a stored event,
and a reader for dashboards and auditors.

Both are group roles (NOLOGIN); the operator grants them to login roles::

    CREATE ROLE ingest LOGIN PASSWORD '…' IN ROLE deploy_ledger_writer;
    CREATE ROLE grafana LOGIN PASSWORD '…' IN ROLE deploy_ledger_reader;

The ledger's own tables stay owned by whoever ran ``ledger init`` (the owner alone may
drop them or disable their triggers):

- the writer may SELECT and INSERT the events, the event index, the Merkle tree's nodes
  (kept with each append) and the signed checkpoints, and use the notification
  sequence. It also holds UPDATE on the events table, only because
  eventsourcing takes ``LOCK TABLE … IN EXCLUSIVE MODE`` before each insert (so that
  notification ids commit in order), and PostgreSQL asks for UPDATE, DELETE or TRUNCATE
  for that lock mode; the ledger's triggers refuse every UPDATE (and DELETE, TRUNCATE)
  anyway. DELETE and TRUNCATE are not granted. It may create tables in the schema and
  write every other table (views, tracking, alerts, tokens: derived data and settings),
  since ``ledger project``, ``collect``, ``publish`` and ``serve`` keep them; the
  derived tables that exist already are handed over to it (``ALTER TABLE … OWNER``).
- the reader may SELECT every table, including those the writer creates later.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from eventsourcing.persistence import PersistenceError
from eventsourcing.postgres import PostgresDatastore
from psycopg import sql

from ledger.application import Ledger
from ledger.errors import InvalidInput
from ledger.index import INDEX_TABLE, MERKLE_TABLE

CHECKPOINTS_TABLE = "ledger_checkpoints"  # ledger.checkpoints.TABLE, without importing it


OWN_TABLES = (INDEX_TABLE, MERKLE_TABLE, CHECKPOINTS_TABLE)
"""The ledger's own tables besides the events: append-only, never handed to the writer."""


@dataclass(frozen=True)
class Roles:
    writer: str
    reader: str
    schema: str


def role_names(prefix: str) -> tuple[str, str]:
    if not prefix.replace("_", "").isalnum() or not prefix[0].isalpha() or len(prefix) > 50:
        raise InvalidInput(
            f"{prefix!r} cannot name roles: letters, digits and underscores, starting with a "
            "letter, at most 50"
        )
    return f"{prefix}_writer", f"{prefix}_reader"


def create_roles(ledger: Ledger, prefix: str = "deploy_ledger") -> Roles:
    """Create (or bring up to date) the writer and reader roles of ``ledger``, which must
    be on PostgreSQL with its tables created. Safe to run again."""
    datastore = ledger.recorder.datastore  # type: ignore[attr-defined]
    if not isinstance(datastore, PostgresDatastore):
        raise InvalidInput("--postgres-roles needs a PostgreSQL ledger (postgresql://…)")
    writer, reader = role_names(prefix)
    schema = datastore.schema or "public"
    names = {
        "schema": sql.Identifier(schema),
        "events": sql.Identifier(schema, ledger.store.events_table_name),
        "index": sql.Identifier(schema, INDEX_TABLE),
        "merkle": sql.Identifier(schema, MERKLE_TABLE),
        "checkpoints": sql.Identifier(schema, CHECKPOINTS_TABLE),
        "writer": sql.Identifier(writer),
        "reader": sql.Identifier(reader),
    }
    statements = [
        "GRANT USAGE, CREATE ON SCHEMA {schema} TO {writer}",
        "GRANT USAGE ON SCHEMA {schema} TO {reader}",
        # Everything but the ledger's own tables: derived data and settings.
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {writer}",
        "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {writer}",
        # The ledger's own tables: append only (see the module's docstring on UPDATE).
        "REVOKE ALL ON {events}, {index}, {merkle}, {checkpoints} FROM {writer}",
        "GRANT SELECT, INSERT, UPDATE ON {events} TO {writer}",
        "GRANT SELECT, INSERT ON {index}, {merkle}, {checkpoints} TO {writer}",
        "GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {reader}",
        # Tables made later: by the writer (new views), or by the role running this
        # (alert or token tables of a later version), readable and writable the same way.
        "ALTER DEFAULT PRIVILEGES FOR ROLE {writer} IN SCHEMA {schema} "
        "GRANT SELECT ON TABLES TO {reader}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} "
        "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {writer}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {reader}",
    ]
    try:
        with datastore.transaction(commit=True) as curs:
            for role in (writer, reader):
                curs.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                if curs.fetchone() is None:
                    curs.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
            # The derived tables (views, tracking, alerts, tokens) become the writer's: it
            # keeps them, and creating an index IF NOT EXISTS needs the owner.
            curs.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename <> ALL(%s)",
                (schema, [ledger.store.events_table_name, *OWN_TABLES]),
            )
            for row in curs.fetchall():
                table = sql.Identifier(schema, row["tablename"])
                curs.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(table, names["writer"]))
            for statement in statements:
                curs.execute(sql.SQL(statement).format(**names))
    except PersistenceError as error:
        if not isinstance(error.__cause__, psycopg.errors.InsufficientPrivilege):
            raise
        raise InvalidInput(
            f"creating roles needs a role that may (CREATEROLE, and owning the ledger's "
            f"tables): {str(error).strip()}"
        ) from None
    return Roles(writer, reader, schema)
