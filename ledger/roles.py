"""PostgreSQL roles for running the ledger with least privilege (``ledger init
--postgres-roles``): a writer that can append but never change or remove a stored event,
and a reader for dashboards and auditors.

Both are group roles (NOLOGIN); the operator grants them to login roles::

    CREATE ROLE ingest LOGIN PASSWORD '…' IN ROLE deploy_ledger_writer;
    CREATE ROLE grafana LOGIN PASSWORD '…' IN ROLE deploy_ledger_reader;

The ledger's own tables stay owned by whoever ran ``ledger init`` (the owner alone may
drop them or disable their triggers):

- the writer may SELECT and INSERT the events and the event index, and use the
  notification sequence. It also holds UPDATE on the events table, only because
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
from psycopg import sql

from ledger.errors import InvalidInput
from ledger.index import INDEX_TABLE
from ledger.store import StoreLocation


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


def create_roles(
    location: StoreLocation, events_table: str, prefix: str = "deploy_ledger"
) -> Roles:
    """Create (or bring up to date) the writer and reader roles of the ledger at
    ``location``, which must be PostgreSQL with its tables created. Safe to run again."""
    if location.backend != "postgres":
        raise InvalidInput("--postgres-roles needs a PostgreSQL ledger (postgresql://…)")
    writer, reader = role_names(prefix)
    settings = location.settings
    schema = settings["POSTGRES_SCHEMA"] or "public"
    names = {
        "schema": sql.Identifier(schema),
        "events": sql.Identifier(schema, events_table),
        "index": sql.Identifier(schema, INDEX_TABLE),
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
        "REVOKE ALL ON {events}, {index} FROM {writer}",
        "GRANT SELECT, INSERT, UPDATE ON {events} TO {writer}",
        "GRANT SELECT, INSERT ON {index} TO {writer}",
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
        with psycopg.connect(_conninfo(location), autocommit=True) as conn:
            for role in (writer, reader):
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
                if exists.fetchone() is None:
                    conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
            with conn.transaction():
                # The derived tables (views, tracking, alerts, tokens) become the writer's:
                # it keeps them, and creating an index IF NOT EXISTS needs the owner.
                derived = conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = %s "
                    "AND tablename <> ALL(%s)",
                    (schema, [events_table, INDEX_TABLE]),
                ).fetchall()
                for (table,) in derived:
                    conn.execute(
                        sql.SQL("ALTER TABLE {} OWNER TO {}").format(
                            sql.Identifier(schema, table), names["writer"]
                        )
                    )
                for statement in statements:
                    conn.execute(sql.SQL(statement).format(**names))
    except psycopg.errors.InsufficientPrivilege as error:
        raise InvalidInput(
            f"creating roles needs a role that may (CREATEROLE, and owning the ledger's "
            f"tables): {str(error).strip()}"
        ) from None
    return Roles(writer, reader, schema)


def _conninfo(location: StoreLocation) -> str:
    s = location.settings
    return psycopg.conninfo.make_conninfo(
        dbname=s["POSTGRES_DBNAME"],
        host=s["POSTGRES_HOST"],
        port=s["POSTGRES_PORT"],
        user=s["POSTGRES_USER"],
        password=s["POSTGRES_PASSWORD"] or None,
        connect_timeout=s.get("POSTGRES_CONNECT_TIMEOUT", "5"),
    )
