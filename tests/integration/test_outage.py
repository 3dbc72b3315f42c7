"""PostgreSQL crashes in the middle of `ledger ingest`: the ingest fails with exit code 1
and a clear sentence, and once the server is back, running the same ingest again stores
every event exactly once. Uses a server of its own, since it is crashed on purpose."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ledger.application import Ledger
from ledger.store import locate
from projections.runner import Views
from tests.factories import event_dict, jsonl, make_event

EVENTS = 10_000


@pytest.fixture
def crashable_postgres(tmp_path: Path) -> Iterator[Any]:
    import pgserver

    server = pgserver.get_server(tmp_path / "pgdata", cleanup_mode="stop")
    yield server
    server.cleanup()


def ledger_command(*args: str) -> list[str]:
    ledger = shutil.which("ledger", path=str(Path(sys.executable).parent))
    assert ledger is not None
    return [ledger, *args]


def stored(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM ledger_events").fetchone()
        return int(row[0]) if row else 0


@pytest.mark.postgres
@pytest.mark.timeout(240)
def test_a_crash_mid_ingest_loses_nothing_and_a_rerun_duplicates_nothing(
    crashable_postgres: Any, tmp_path: Path
) -> None:
    url = crashable_postgres.get_uri()
    Ledger(locate(url), create=True).close()
    events = [event_dict("health_reported", host=f"web-{i:05}") for i in range(EVENTS)]
    path = tmp_path / "events.jsonl"
    path.write_bytes(jsonl(*events))
    env = {**os.environ, "LEDGER_URL": url}

    first = subprocess.Popen(
        ledger_command("ingest", str(path), "--batch-size", "100"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while stored(url) == 0:
        assert first.poll() is None, "the ingest ended before the crash"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(crashable_postgres.get_pid(), signal.SIGQUIT)  # immediate shutdown: a crash
    out, err = first.communicate(timeout=180)
    assert first.returncode == 1, (out, err)
    assert b"the ledger store failed" in err
    assert b"Traceback" not in err

    with crashable_postgres._lock:
        crashable_postgres.ensure_postgres_running()
    url = crashable_postgres.get_uri()
    committed = stored(url)
    assert 0 < committed < EVENTS

    again = subprocess.run(
        ledger_command("ingest", str(path), "--json"),
        env={**env, "LEDGER_URL": url},
        capture_output=True,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert (report["stored"], report["skipped"]) == (EVENTS - committed, committed)

    ledger = Ledger(locate(url))
    assert ledger.count() == EVENTS
    ids = [fact.event["event_id"] for fact in ledger.facts()]
    assert sorted(ids) == sorted(e["event_id"] for e in events)
    assert ledger.verify().intact


def history_rows(url: str) -> int:
    with psycopg.connect(url) as conn:
        try:
            row = conn.execute("SELECT count(*) FROM host_history").fetchone()
        except psycopg.errors.UndefinedTable:
            return 0  # the follower has not created its tables yet
        return int(row[0]) if row else 0


@pytest.mark.postgres
@pytest.mark.timeout(240)
def test_the_follower_waits_out_a_crash_and_applies_every_event_once(
    crashable_postgres: Any,
) -> None:
    url = crashable_postgres.get_uri()
    ledger = Ledger(locate(url), create=True)
    events = [make_event("health_reported", host=f"web-{i:05}", state="ok") for i in range(EVENTS)]
    ledger.append(events[: EVENTS // 2])
    ledger.close()
    follower = subprocess.Popen(
        ledger_command("project", "--follow", "--interval", "0.2"),
        env={**os.environ, "LEDGER_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 150

    def wait_for(rows: int) -> None:
        while history_rows(url) < rows:
            assert follower.poll() is None, follower.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)

    try:
        wait_for(1)
        os.kill(crashable_postgres.get_pid(), signal.SIGQUIT)  # a crash
        time.sleep(3)
        with crashable_postgres._lock:
            crashable_postgres.ensure_postgres_running()
        assert follower.poll() is None, "the follower gave up on the outage"
        ledger = Ledger(locate(url))
        ledger.append(events[EVENTS // 2 :])
        ledger.close()
        wait_for(EVENTS)
    finally:
        follower.send_signal(signal.SIGINT)
        _, err = follower.communicate(timeout=30)
    assert b"Traceback" not in err
    views = Views(Ledger(locate(url)))
    assert views.lag() == 0
    incremental = views.dump("history")
    assert len(incremental["host_history"]) == EVENTS  # none lost, none twice
    views.rebuild(["history"])
    assert views.dump("history") == incremental
