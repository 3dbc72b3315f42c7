"""A PostgreSQL server for the benchmarks, and a fresh schema per measurement.

The server is ``LEDGER_BENCH_POSTGRES_URL`` when set, otherwise one started with
``pgserver`` (which ships PostgreSQL's binaries) in a temporary directory and stopped
at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

URL_VARIABLE = "LEDGER_BENCH_POSTGRES_URL"


@contextmanager
def postgres_server(workdir: Path) -> Iterator[str]:
    """The URL of a PostgreSQL server to use for the duration of the block."""
    url = os.environ.get(URL_VARIABLE)
    if url:
        yield url
        return
    import pgserver

    server = pgserver.get_server(workdir / "pgdata", cleanup_mode="stop")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


def create_schema(server_url: str, prefix: str) -> str:
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    return schema


def drop_schema(server_url: str, schema: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def ledger_url(server_url: str, schema: str) -> str:
    """The ledger URL of ``schema`` on the server (``?schema=`` is read by ``locate``)."""
    return f"{server_url}{'&' if '?' in server_url else '?'}schema={schema}"


def server_settings(server_url: str) -> dict[str, str]:
    """Version and the settings that matter most for write speed."""
    settings: dict[str, str] = {}
    with psycopg.connect(server_url, autocommit=True) as conn:
        for name in ("server_version", "fsync", "synchronous_commit", "shared_buffers"):
            row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
            settings[name] = str(row[0]) if row else "?"
    return settings
