"""Shared fixtures: a real PostgreSQL started once per session, and a fresh ledger per test
on each backend.

PostgreSQL comes from ``LEDGER_TEST_POSTGRES_URL`` when set, otherwise from the
``pgserver`` wheel (it ships PostgreSQL's binaries, so nothing has to be installed on the
machine). PostgreSQL tests are never skipped: if no server can be had they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ledger.application import Ledger
from ledger.checkpoint import Signer
from ledger.store import locate

BACKENDS = ["sqlite", "postgres"]


# The browser tests' `browser` fixture: one Chromium per session, whichever modules use it.
pytest_plugins = ["tests.services.browser"]


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("LEDGER_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def with_query(url: str, **params: str) -> str:
    extra = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{url}{'&' if '?' in url else '?'}{extra}"


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A PostgreSQL ledger URL in a schema of its own, dropped after the test."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield with_query(postgres_server_url, schema=schema)
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return str(tmp_path / "ledger.db")


@pytest.fixture(params=BACKENDS)
def ledger_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty, not yet initialised ledger, on each backend in turn."""
    if request.param == "postgres":
        request.applymarker(pytest.mark.postgres)
        return str(request.getfixturevalue("postgres_url"))
    return str(request.getfixturevalue("sqlite_url"))


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def module_ledger_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The URL of an empty, not yet initialised ledger shared by a module's tests, on each
    backend in turn: for a module whose tests only read what one set-up recorded and
    check that they changed nothing (a ledger and a server per test cost their set-up
    and tear-down each time)."""
    if request.param == "sqlite":
        yield str(tmp_path_factory.mktemp("module-ledger") / "ledger.db")
        return
    server_url = str(request.getfixturevalue("postgres_server_url"))
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield with_query(server_url, schema=schema)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    app = Ledger(locate(ledger_url), create=True)
    yield app
    app.close()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI (``CI`` set) a skipped test fails the run: every service must be there."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    skipped = reporter.stats.get("skipped", [])
    if os.environ.get("CI") and skipped and exitstatus == 0:
        reporter.write_line(f"CI: {len(skipped)} tests were skipped; failing the run.", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def checkpoint_key_in_env(name: str, directory: Path, monkeypatch: pytest.MonkeyPatch) -> Signer:
    """A new checkpoint key called ``name``, saved in ``directory`` and named by
    LEDGER_CHECKPOINT_KEY (as the CLI, the server and the collectors read it); no
    LEDGER_CHECKPOINT_VKEY, so verifiers default to its public half."""
    signer = Signer.generate(name)
    signer.save(directory / "checkpoint.key")
    monkeypatch.setenv("LEDGER_CHECKPOINT_KEY", str(directory / "checkpoint.key"))
    monkeypatch.delenv("LEDGER_CHECKPOINT_VKEY", raising=False)
    return signer
