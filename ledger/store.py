"""Where the ledger lives: turns ``LEDGER_URL`` into the eventsourcing library's settings.

``LEDGER_URL`` is a SQLite file path (the embedded default, ``./ledger.db``; also
``sqlite:///abs/path.db``) or a ``postgresql://user:password@host:port/dbname`` URL.
A PostgreSQL URL may carry ``?schema=NAME`` to keep the ledger's tables in that schema.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ledger.errors import InvalidInput

DEFAULT_URL = "./ledger.db"
URL_VARIABLE = "LEDGER_URL"


@dataclass(frozen=True)
class StoreLocation:
    """A parsed ``LEDGER_URL``."""

    url: str
    backend: str  # "sqlite" or "postgres"
    settings: dict[str, str]

    @property
    def display(self) -> str:
        """The URL without its password, for messages and logs."""
        if self.backend == "sqlite":
            return self.settings["SQLITE_DBNAME"]
        parts = urlsplit(self.url)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            return urlunsplit(parts._replace(netloc=netloc))
        return self.url


def default_url() -> str:
    return os.environ.get(URL_VARIABLE) or DEFAULT_URL


def locate(url: str) -> StoreLocation:
    """Parse a ledger URL; raises ``InvalidInput`` naming what is wrong."""
    if url.startswith(("postgresql://", "postgres://")):
        return _postgres(url)
    if "://" in url and not url.startswith("sqlite://"):
        raise InvalidInput(
            f"unsupported ledger URL {url!r}: use a SQLite file path or a postgresql:// URL"
        )
    path = url.removeprefix("sqlite:").removeprefix("//") if url.startswith("sqlite:") else url
    if not path:
        raise InvalidInput("the ledger URL names no SQLite file")
    parent = Path(path).expanduser().resolve().parent
    if not parent.is_dir():
        raise InvalidInput(f"cannot create a ledger at {path}: folder {parent} does not exist")
    return StoreLocation(
        url=url,
        backend="sqlite",
        settings={
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(Path(path).expanduser()),
            "SQLITE_LOCK_TIMEOUT": os.environ.get("SQLITE_LOCK_TIMEOUT", "30"),
            "APPLICATION_RECORDER_TOPIC": "ledger.sqlite:SQLiteLedgerRecorder",
        },
    )


def _postgres(url: str) -> StoreLocation:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    schema = query.pop("schema", "")
    try:
        from psycopg.conninfo import conninfo_to_dict  # here: SQLite needs no psycopg

        info = conninfo_to_dict(urlunsplit(parts._replace(query=urlencode(query))))
    except Exception as error:  # psycopg raises ProgrammingError for a malformed URL
        raise InvalidInput(f"malformed PostgreSQL URL: {error}") from None
    dbname = str(info.get("dbname") or info.get("user") or "postgres")
    return StoreLocation(
        url=url,
        backend="postgres",
        settings={
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": dbname,
            "POSTGRES_HOST": str(info.get("host") or "localhost"),
            "POSTGRES_PORT": str(info.get("port") or "5432"),
            "POSTGRES_USER": str(info.get("user") or os.environ.get("USER", "postgres")),
            "POSTGRES_PASSWORD": str(info.get("password") or ""),
            "POSTGRES_SCHEMA": schema,
            "POSTGRES_CONNECT_TIMEOUT": os.environ.get("POSTGRES_CONNECT_TIMEOUT", "5"),
            "POSTGRES_LOCK_TIMEOUT": os.environ.get("POSTGRES_LOCK_TIMEOUT", "30"),
            # With database functions on, process recorders silently drop tracking
            # records (eventsourcing 9.5): keep them off.
            "POSTGRES_ENABLE_DB_FUNCTIONS": "no",
            "APPLICATION_RECORDER_TOPIC": "ledger.postgres:PostgresLedgerRecorder",
        },
    )
