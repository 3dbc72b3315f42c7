"""The ``ledger`` command end to end through click's runner, on both backends."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import root
from ledger.application import Ledger
from ledger.importers import jsonl as jsonl_importer
from ledger.store import locate
from tests.factories import BUILD_ID, OPENSSL, event_dict, jsonl


def run(url: str, *args: str, input: bytes | str | None = None) -> Result:
    return CliRunner().invoke(root, ["--ledger", url, *args], input=input)


@pytest.fixture
def url(ledger_url: str) -> str:
    assert run(ledger_url, "init").exit_code == 0
    return ledger_url


def count(url: str) -> int:
    return Ledger(locate(url)).count()


def test_init_twice_changes_nothing(url: str) -> None:
    result = run(url, "init")
    assert result.exit_code == 0, result.output
    assert "0 events" in result.output


def test_record_prints_the_position_and_is_idempotent_with_an_event_id(url: str) -> None:
    args = [
        "record", "activation-failed", "--env", "production", "--host", "web-001",
        "--service", "api", "--build-id", BUILD_ID, "--generation", "42",
        "--reason", "health check failed", "--exit-code", "1",
        "--event-id", "6f1c3a7e-0000-4000-8000-000000000001",
        "--occurred-at", "2026-03-11T14:10:00+01:00",
    ]  # fmt: skip
    first = run(url, *args)
    assert first.exit_code == 0, first.output
    assert "Recorded activation_failed at position 1" in first.output
    again = run(url, *args, "--json")
    assert json.loads(again.output) == {
        "event_id": "6f1c3a7e-0000-4000-8000-000000000001",
        "position": 1,
        "new": False,
    }
    fact = next(Ledger(locate(url)).facts())
    assert fact.event["generation"] == 42
    assert fact.event["exit_code"] == 1
    assert fact.event["source"] == "cli"


def test_record_a_build_with_its_closure_from_a_file(url: str, tmp_path: Path) -> None:
    closure = tmp_path / "closure.json"
    closure.write_text(json.dumps([OPENSSL]))
    result = run(
        url, "record", "build-recorded", "--env", "production", "--service", "api",
        "--version", "2.4.1", "--build-id", BUILD_ID, "--artifact", "/nix/store/x-api",
        "--closure", str(closure),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert next(Ledger(locate(url)).facts()).event["closure"][0]["name"] == "openssl"


def test_record_with_bad_input_exits_2_naming_the_field_and_stores_nothing(url: str) -> None:
    result = run(
        url, "record", "health-reported", "--env", "production", "--host", "web\x07001",
        "--state", "critical", "--occurred-at", "2026-03-11T14:10:00",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "host: control character '\\x07' at offset 3 is not allowed" in result.output
    assert "occurred_at: Value error, timestamp must be timezone-aware" in result.output
    assert "Traceback" not in result.output
    assert count(url) == 0


def test_record_with_an_unknown_choice_exits_2(url: str) -> None:
    result = run(url, "record", "health-reported", "--env", "p", "--host", "h", "--state", "purple")
    assert result.exit_code == 2
    assert "'purple' is not one of" in result.output


def test_ingest_of_a_file_ignores_the_services_kafka_setting(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy/systemd's ledger.env sets LEDGER_KAFKA for the Kafka units; an operator
    who sources it must still be able to ingest a file (only --kafka on the command
    line asks for both)."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(jsonl(event_dict("health_reported")))
    monkeypatch.setenv("LEDGER_KAFKA", "127.0.0.1:9")
    result = run(url, "ingest", str(path))
    assert result.exit_code == 0, result.output
    assert count(url) == 1
    both = run(url, "ingest", str(path), "--kafka", "127.0.0.1:9")
    assert both.exit_code == 2
    assert "not both" in both.output


def test_ingest_stores_new_lines_and_skips_known_ones(url: str, tmp_path: Path) -> None:
    events = [event_dict("health_reported", host=f"web-{i:03}") for i in range(5)]
    path = tmp_path / "events.jsonl"
    path.write_bytes(jsonl(*events[:3]))
    assert run(url, "ingest", str(path)).exit_code == 0
    path.write_bytes(jsonl(*events))
    result = run(url, "ingest", str(path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["stored"], report["skipped"], report["first_position"]) == (2, 3, 4)
    assert count(url) == 5


def test_ingest_refuses_the_whole_file_naming_every_bad_line(url: str, tmp_path: Path) -> None:
    good = event_dict("health_reported")
    lines = [
        json.dumps(good),
        "{not json",
        json.dumps(event_dict("health_reported", occurred_at="2026-03-11T14:10:00")),
        json.dumps(event_dict("activation_completed", generation="3")),
        json.dumps(event_dict("health_reported") | {"kind": "teleported"}),
        json.dumps(event_dict("build_recorded", closure=[{**event_dict("build_failed")}])),
        json.dumps(good | {"event_id": "6f1c3a7e-0000-4000-8000-000000000009"}),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = run(url, "ingest", str(path))
    assert result.exit_code == 2
    assert "5 of 7 lines are invalid; nothing was stored." in result.output
    assert "line 2: not valid JSON" in result.output
    assert "line 3, field occurred_at: Value error, timestamp must be timezone-aware" in (
        result.output
    )
    assert "line 4, field generation: Input should be a valid integer" in result.output
    assert "line 5, field kind: unknown kind 'teleported'" in result.output
    assert "line 6, field closure[0]." in result.output
    assert count(url) == 0


def test_ingest_refuses_an_event_id_stored_with_other_content(url: str, tmp_path: Path) -> None:
    stored = event_dict("health_reported")
    run(url, "ingest", "-", input=jsonl(stored))
    clash = {**stored, "state": "ok"}
    result = run(url, "ingest", "-", input=jsonl(event_dict("health_reported"), clash))
    assert result.exit_code == 2
    assert "line 2: event_id" in result.output
    assert "already stored at position 1 with different content" in result.output
    assert count(url) == 1


def test_log_json_copies_a_ledger_and_reingesting_stores_nothing(url: str, tmp_path: Path) -> None:
    events = [
        event_dict(kind)
        for kind in (
            "build_recorded",
            "generation_planned",
            "activation_completed",
            "generation_completed",
        )
    ]
    run(url, "ingest", "-", input=jsonl(*events))
    exported = run(url, "log", "--json")
    assert exported.exit_code == 0
    assert [json.loads(line)["kind"] for line in exported.output.splitlines()] == [
        e["kind"] for e in events
    ]

    copy = str(tmp_path / "copy.db")
    run(copy, "init")
    copied = run(copy, "ingest", "-", "--json", input=exported.output)
    assert json.loads(copied.output)["stored"] == 4
    assert run(copy, "log", "--json").output == exported.output

    again = run(url, "ingest", "-", "--json", input=exported.output)
    assert json.loads(again.output)["skipped"] == 4
    assert count(url) == 4


def test_log_filters_and_shows_a_table(url: str) -> None:
    run(
        url,
        "ingest",
        "-",
        input=jsonl(
            event_dict("activation_failed", host="web-001", occurred_at="2026-03-10T10:00:00Z"),
            event_dict("activation_failed", host="web-002", occurred_at="2026-03-12T10:00:00Z"),
            event_dict("health_reported", host="web-002", env="staging"),
        ),
    )
    table = run(url, "log", "--kind", "activation_failed", "--since", "2026-03-11")
    assert table.exit_code == 0, table.output
    assert "web-002" in table.output
    assert "web-001" not in table.output
    lines = run(url, "log", "--json", "--env", "staging").output.splitlines()
    assert [json.loads(line)["kind"] for line in lines] == ["health_reported"]
    last = run(url, "log", "--json", "--limit", "1").output.splitlines()
    assert json.loads(last[0])["env"] == "staging"


def test_log_refuses_a_naive_since(url: str) -> None:
    result = run(url, "log", "--since", "2026-03-11T10:00:00")
    assert result.exit_code == 2
    assert "has no timezone" in result.output


def test_verify_exit_codes(url: str) -> None:
    run(url, "ingest", "-", input=jsonl(event_dict("health_reported")))
    intact = run(url, "verify", "--json")
    assert intact.exit_code == 0
    assert json.loads(intact.output)["intact"] is True


def test_uninitialised_store_exits_1_with_one_sentence(ledger_url: str) -> None:
    result = run(ledger_url, "log")
    assert result.exit_code == 1
    assert "run `ledger init` first" in result.output
    assert "Traceback" not in result.output


@pytest.mark.postgres
def test_unreachable_postgres_exits_1_without_a_traceback() -> None:
    result = run("postgresql://ledger:secret@127.0.0.1:1/ledger", "log")
    assert result.exit_code == 1
    assert "cannot connect to the ledger's PostgreSQL at 127.0.0.1:1: connection refused" in (
        result.output
    )
    assert "secret" not in result.output
    assert "Traceback" not in result.output


def test_a_bad_url_is_bad_input() -> None:
    result = run("mysql://db/ledger", "init")
    assert result.exit_code == 2
    assert "unsupported ledger URL" in result.output


def test_debug_shows_the_traceback(ledger_url: str) -> None:
    result = run(ledger_url, "--debug", "log")
    assert result.exit_code == 1
    assert type(result.exception).__name__ == "StoreNotInitialised"


def test_a_closed_pipe_ends_log_quietly(url: str, tmp_path: Path) -> None:
    events = [event_dict("health_reported", host=f"web-{i:03}") for i in range(3000)]
    run(url, "ingest", "-", input=jsonl(*events))
    ledger = shutil.which("ledger", path=str(Path(sys.executable).parent))
    assert ledger is not None
    log = subprocess.Popen(
        [ledger, "--ledger", url, "log", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert log.stdout is not None
    assert log.stderr is not None
    assert json.loads(log.stdout.readline())["kind"] == "health_reported"
    log.stdout.close()
    assert log.wait(timeout=60) == 0
    assert log.stderr.read() == b""


def test_demo_records_a_fleet_once_and_summarises_it(ledger_url: str) -> None:
    first = run(ledger_url, "demo", "--hosts", "12", "--services", "4", "--seed", "3")
    assert first.exit_code == 0, first.output
    assert "production" in first.output
    assert "staging" in first.output
    assert "verify: intact" in first.output
    # It ends with the audit answer: which openssl is active where.
    audit = first.output.split("Audit:")[1]
    assert "openssl" in audit
    assert " hosts " in audit
    stored = count(ledger_url)
    assert f"Recorded {stored} new demo events (0 were already there)." in first.output
    again = run(ledger_url, "demo", "--hosts", "12", "--services", "4", "--seed", "3")
    assert again.exit_code == 0, again.output
    assert f"Recorded 0 new demo events ({stored} were already there)." in again.output
    assert count(ledger_url) == stored


def test_a_line_too_long_to_hold_is_refused_without_reading_it(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsonl_importer, "MAX_LINE_BYTES", 4096)
    huge = event_dict("health_reported", description="x" * 8000)
    data = jsonl(event_dict("health_reported"), huge, event_dict("build_failed") | {"env": ""})
    result = run(url, "ingest", "-", input=data)
    assert result.exit_code == 2
    assert "line 2: longer than" in result.output
    assert "line 3, field env: String should have at least 1 character" in result.output
    assert count(url) == 0


def test_verify_with_anchors(url: str) -> None:
    run(url, "ingest", "-", input=jsonl(*(event_dict("drain_started") for _ in range(3))))
    head = json.loads(run(url, "verify", "--json").output)
    good = run(url, "verify", "--anchor", f"3:{head['head_hash']}")
    assert good.exit_code == 0, good.output
    wrong = run(url, "verify", "--anchor", f"2:{head['head_hash']}")
    assert wrong.exit_code == 3
    assert "position 2 does not have its anchored hash" in wrong.output
    beyond = run(url, "verify", "--anchor", f"9:{head['head_hash']}")
    assert beyond.exit_code == 3
    malformed = run(url, "verify", "--anchor", "three:abc")
    assert malformed.exit_code == 2
    assert "is not POSITION:HASH" in malformed.output


def test_names_that_look_like_markup_are_shown_as_they_are(url: str) -> None:
    run(
        url,
        "ingest",
        "-",
        input=jsonl(event_dict("build_failed", service="[/]api", reason="[bold]oops[/bold]")),
    )
    result = run(url, "log")
    assert result.exit_code == 0, result.output
    assert "[/]api" in result.output
    assert "[bold]oops[/bold]" in result.output
