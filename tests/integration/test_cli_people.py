"""What a person meets first, on both backends: stale health does not page, `ledger
alerts` before any collector ran, kinds in either spelling, tables in pipes, and
`ledger serve` on a port that is taken (issue 15)."""

from __future__ import annotations

import io
import json
import re
import socket
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from cli import output
from cli.main import root
from ledger.application import Ledger, StoredFact
from tests.services.slack import (
    Clock,
    SlackStandIn,
    clock_fixture,  # noqa: F401 (the `clock` fixture)
    run_until_idle,
    slack_collector,
    slack_fixture,  # noqa: F401 (the `slack` fixture)
)
from tests.story import Story, build_id, openssl

SERVICES = [f"service-with-a-rather-long-name-{i:02}" for i in range(30)]
LONG_REASON = "health check did not pass within 30s: " + "x" * 150 + "\nsecond line of the log"


def cli(ledger: Ledger, *args: str) -> Result:
    return CliRunner().invoke(root, ["--ledger", ledger.location.url, *args])


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def alerts(ledger: Ledger, *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = as_json(cli(ledger, "alerts", "--json", *args))
    return rows


# --- stale health does not page ------------------------------------------------------


def health(ledger: Ledger, host: str, state: str, *, at: datetime, ttl_s: float | None) -> None:
    s = Story()
    event = s.add("health_reported", host=host, service="api", state=state, ttl_s=ttl_s)
    ledger.append([event.model_copy(update={"occurred_at": at, "recorded_at": at})])


def test_health_whose_ttl_ran_out_before_the_collector_read_it_does_not_page(
    ledger: Ledger, slack: SlackStandIn, clock: Clock
) -> None:
    now = datetime.fromtimestamp(clock.now, UTC)
    months_ago = now - timedelta(days=120)
    health(ledger, "web-001", "critical", at=months_ago, ttl_s=60)
    health(ledger, "web-002", "critical", at=months_ago, ttl_s=60)
    collector = slack_collector(ledger, slack.url, clock, group_wait=0)
    run_until_idle(collector)
    clock.advance(3600)
    run_until_idle(collector)
    assert slack.requests == [], "a report stale when read never pages"
    [row] = alerts(ledger)
    assert row["status"] == "stale"
    assert row["hosts"] == 2
    assert "not paged" in row["summary"]
    table = cli(ledger, "alerts")
    assert table.exit_code == 0, table.output
    assert "stale" in table.output
    # A fresh report of the same state pages as any alert; its host is the alert's.
    health(ledger, "web-003", "critical", at=datetime.fromtimestamp(clock.now, UTC), ttl_s=60)
    run_until_idle(collector)
    [message] = slack.requests
    assert message.body["text"] == "[FIRING:1] production · health: 1 host reports api critical"
    assert [r["status"] for r in alerts(ledger)] == ["firing"]
    collector.close()


def test_a_stale_alert_goes_away_silently_when_its_hosts_report_again(
    ledger: Ledger, slack: SlackStandIn, clock: Clock
) -> None:
    now = datetime.fromtimestamp(clock.now, UTC)
    health(ledger, "web-001", "critical", at=now - timedelta(days=30), ttl_s=60)
    health(ledger, "web-001", "ok", at=now - timedelta(days=29), ttl_s=60)
    health(ledger, "web-002", "warning", at=now - timedelta(hours=2), ttl_s=None)
    collector = slack_collector(ledger, slack.url, clock, group_wait=0)
    run_until_idle(collector)
    clock.advance(100_000)
    run_until_idle(collector)
    assert slack.requests == []
    assert alerts(ledger) == [], "resolved without a word: it was never sent"
    [resolved] = alerts(ledger, "--all")
    assert (resolved["status"], resolved["resolution"]) == ("resolved", "web-001 reports ok")
    collector.close()


def test_a_report_without_a_ttl_or_still_valid_pages(
    ledger: Ledger, slack: SlackStandIn, clock: Clock
) -> None:
    now = datetime.fromtimestamp(clock.now, UTC)
    health(ledger, "web-001", "critical", at=now - timedelta(days=30), ttl_s=None)
    health(ledger, "web-002", "critical", at=now - timedelta(seconds=10), ttl_s=60)
    collector = slack_collector(ledger, slack.url, clock, group_wait=0)
    run_until_idle(collector)
    [message] = slack.requests
    assert "2 hosts report api critical" in message.body["text"]
    collector.close()


# --- ledger alerts before any collector ran ------------------------------------------


def a_failure(ledger: Ledger) -> None:
    s = Story()
    build = s.build("api", "2.4.1")
    s.plan(1, {("web-1", "api"): build})
    s.add("activation_failed", host="web-1", service="api", build_id=build, generation=1,
          reason="x")  # fmt: skip
    s.record(ledger)


def test_alerts_says_when_no_collector_has_run_yet(ledger: Ledger) -> None:
    a_failure(ledger)
    result = cli(ledger, "alerts")
    assert result.exit_code == 0, result.output
    assert "no alerts" not in result.output.replace("no alerts yet", "")
    assert "no Slack collector has run on this ledger" in result.output
    assert "ledger collect --slack-webhook" in result.output
    scripted = cli(ledger, "alerts", "--json")
    assert scripted.exit_code == 0
    assert json.loads(scripted.stdout) == []
    assert "no Slack collector has run" in scripted.stderr


def test_alerts_says_no_alerts_once_a_collector_looked(
    ledger: Ledger, slack: SlackStandIn, clock: Clock
) -> None:
    a_failure(ledger)
    s = Story()
    s.add("generation_completed", number=1)
    s.record(ledger)
    collector = slack_collector(ledger, slack.url, clock, group_wait=0)
    run_until_idle(collector)
    collector.close()
    result = cli(ledger, "alerts")
    assert result.exit_code == 0, result.output
    assert "no alerts" in result.output
    assert "no Slack collector" not in result.output


def test_an_empty_ledger_has_no_alerts(ledger: Ledger) -> None:
    result = cli(ledger, "alerts")
    assert result.exit_code == 0, result.output
    assert "no alerts" in result.output
    assert "no Slack collector" not in result.output


# --- kinds: one spelling shown, both accepted ----------------------------------------


@pytest.mark.parametrize("spelling", ["activation_failed", "activation-failed"])
def test_log_takes_either_spelling_of_a_kind(ledger: Ledger, spelling: str) -> None:
    a_failure(ledger)
    rows = [json.loads(line) for line in cli(ledger, "log", "--kind", spelling, "--json").stdout
            .splitlines()]  # fmt: skip
    assert [r["kind"] for r in rows] == ["activation_failed"]
    table = cli(ledger, "log", "--kind", spelling)
    assert table.exit_code == 0, table.output
    assert "activation_failed" in table.output
    assert "activation-failed" not in table.output


def test_an_unknown_kind_names_the_stored_spellings(ledger: Ledger) -> None:
    result = cli(ledger, "log", "--kind", "activation-fail")
    assert result.exit_code == 2
    assert "activation_failed" in result.output
    assert "activation-failed" not in result.output


@pytest.mark.parametrize("spelling", ["activation-failed", "activation_failed"])
def test_record_takes_either_spelling_of_a_kind(ledger: Ledger, spelling: str) -> None:
    result = cli(
        ledger, "record", spelling, "--env", "production", "--host", "web-1",
        "--service", "api", "--build-id", build_id("api", "2.4.1"), "--generation", "1",
        "--reason", "health check failed",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Recorded activation_failed at position 1" in result.output
    assert "--reason" in cli(ledger, "record", spelling, "--help").output


def test_record_help_says_both_spellings_work(ledger: Ledger) -> None:
    shown = cli(ledger, "record", "--help").output
    assert "activation-failed" in shown
    assert "underscores" in shown


@pytest.mark.parametrize("spelling", ["drain_timed_out", "drain-timed-out"])
def test_silence_takes_either_spelling_of_a_kind(ledger: Ledger, spelling: str) -> None:
    added = as_json(cli(ledger, "silence", "add", "--kind", spelling, "--for", "1h", "--json"))
    assert added["kind"] == "drain_timed_out"
    listed = cli(ledger, "silence", "list")
    assert "kind=drain_timed_out" in listed.output


# --- tables in pipes: one row per line, no padding -----------------------------------


@pytest.fixture
def big(ledger: Ledger) -> Ledger:
    """30 services with long names, all holding openssl, on two hosts; a failure with a
    long reason of two lines; a health report whose description has a line break."""
    s = Story()
    builds = {service: s.build(service, "1.0", openssl("3.0.13")) for service in SERVICES}
    placements = {(host, service): builds[service] for host in ("h1", "h2") for service in SERVICES}
    s.plan(1, placements)
    for host, service in sorted(placements):
        s.add("activation_completed", host=host, service=service, build_id=builds[service],
              generation=1)  # fmt: skip
    s.add("activation_failed", host="h1", service=SERVICES[0], build_id=builds[SERVICES[0]],
          generation=1, reason=LONG_REASON)  # fmt: skip
    s.add("health_reported", host="h2", service=SERVICES[1], state="warning",
          description="slow\nvery slow\ttabbed")  # fmt: skip
    s.record(ledger)
    if "postgresql" in ledger.location.url:  # queries do not catch PostgreSQL views up
        assert cli(ledger, "project").exit_code == 0
    return ledger


def table_lines(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for line in lines:
        assert line == line.rstrip(), f"padded past its content: {line!r}"
        assert not line or not line[0].isspace(), f"a continuation line: {line!r}"
    return lines


def columns(header: str) -> list[int]:
    """Where each column of a plain table starts."""
    return [0] + [m.end() for m in re.finditer(r"  +", header)]


def test_where_in_a_pipe_is_one_line_per_row(big: Ledger) -> None:
    """A pipe gets the placements only, one per line, so `wc -l`, grep and awk count
    and pick rows; the totals line goes to standard error."""
    result = cli(big, "where", "openssl")
    lines = table_lines(result)
    assert len(lines) == 1 + 60, "the header and the 60 placements, nothing after them"
    assert lines[0].startswith("env  ")
    assert all(line.startswith("production ") for line in lines[1:])
    assert "openssl: 60 placements on 2 hosts" in result.stderr


def test_where_summary_in_a_pipe_is_the_summary_rows(big: Ledger) -> None:
    result = cli(big, "where", "openssl", "--summary")
    lines = table_lines(result)
    assert len(lines) == 1 + 1, "the header and one version"
    summary = lines[-1]
    assert re.split(r"  +", summary)[:4] == ["production", "3.0.13", "out", "2 hosts"]
    assert summary.endswith(", ".join(SERVICES)), "the whole list, on its line"
    assert len(summary) > 180, "not cut at a width"


def test_topology_in_a_pipe_is_one_line_per_row(big: Ledger) -> None:
    lines = table_lines(cli(big, "topology"))
    assert len(lines) == 1 + 60
    starts = columns(lines[0])
    for line in lines[1:]:
        for start in starts[1:]:
            if start < len(line):  # an empty last cell leaves nothing after it
                assert line[start - 2 : start] == "  ", f"columns line up: {line!r}"


def test_log_in_a_pipe_is_one_line_per_row(big: Ledger) -> None:
    result = cli(big, "log", "--limit", "0")
    lines = table_lines(result)
    events = 30 + 1 + 60 + 2
    assert len(lines) == 1 + events
    assert lines[0].startswith("pos  occurred (UTC)")
    assert all(line.split()[0].isdigit() for line in lines[1:])
    assert any("slow very slow tabbed" in line for line in lines)


def test_log_notes_go_to_stderr_in_a_pipe(big: Ledger) -> None:
    result = cli(big, "log", "--limit", "3")
    assert len(table_lines(result)) == 1 + 3
    assert "showing the last 3 of 93 matching events" in result.stderr
    nothing = cli(big, "log", "--host", "nowhere")
    assert nothing.stdout == ""
    assert "no events match" in nothing.stderr


# --- long answers: rows written as they are read ------------------------------------


def fact(position: int, host: str = "web-1") -> StoredFact:
    event = {"kind": "activation_completed", "env": "production", "host": host,
             "service": "api", "occurred_at": "2026-01-05T09:08:37Z", "generation": 1}  # fmt: skip
    return StoredFact(position, event, prev_hash="", hash="")


def test_a_pipe_gets_the_first_rows_before_the_rest_are_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`ledger log --limit 0 | …` on a long ledger: rows reach the pipe as they are read,
    the table is never built whole first."""
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    total = output.PLAIN_MEASURED_ROWS + 500
    seen_while_reading: list[int] = []

    def facts() -> Iterator[StoredFact]:
        for position in range(1, total + 1):
            if position == total:
                seen_while_reading.append(out.getvalue().count("\n"))
            yield fact(position)

    output.facts_table(facts())
    assert seen_while_reading[0] >= 1 + output.PLAIN_MEASURED_ROWS
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 + total
    assert [line.split()[0] for line in lines[1:]] == [str(p) for p in range(1, total + 1)]


def test_a_wider_cell_after_the_measured_rows_widens_its_column_from_there_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    rows = [["a", "x", "1"], ["bb", "y", "2"], ["a-much-wider-cell", "z", "3"], ["c", "w", "4"]]
    assert output.plain_rows(["h1", "h2", "h3"], rows, measure=2) == 4
    assert out.getvalue().splitlines() == [
        "h1  h2  h3",
        "a   x   1",
        "bb  y   2",
        "a-much-wider-cell  z   3",
        "c                  w   4",
    ]


def terminal(monkeypatch: pytest.MonkeyPatch, *, height: int) -> Console:
    screen = Console(file=io.StringIO(), force_terminal=True, color_system=None, width=100,
                     height=height)  # fmt: skip
    monkeypatch.setattr(output, "console", lambda: screen)
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # a terminal by rich's rules, not isatty's
    return screen


def test_a_terminal_gets_the_first_screen_before_the_rest_are_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    screen = terminal(monkeypatch, height=20)
    page = 20 - 2
    shown_while_reading: list[str] = []

    def facts() -> Iterator[StoredFact]:
        for position in range(1, 5 * page + 1):
            if position == page + 1:
                shown_while_reading.append(screen.file.getvalue())  # type: ignore[attr-defined]
            # A host name wider than the first screen's: cut, never pushing columns right.
            yield fact(position, host="web-1" if position <= page else "web-" + "9" * 30)

    output.facts_table(facts())
    first = shown_while_reading[0].splitlines()
    assert len(first) == 1 + page, "the header and a screenful, before row page+1 was read"
    lines = screen.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 + 5 * page, "one header, then every row"
    assert lines[0].split() == ["pos", "occurred", "(UTC)", "env", "kind", "host", "service",
                                "detail"]  # fmt: skip
    service = lines[0].index("service")
    assert all(line[service:].startswith("api ") for line in lines[1:]), "columns line up"
    assert "  web-…  api" in lines[-1], "cut where its column ends"


# --- ledger serve on a taken port ----------------------------------------------------


@pytest.fixture
def taken_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


def test_serve_on_a_taken_port_fails_with_the_cause_and_never_says_serving(
    ledger: Ledger, taken_port: int
) -> None:
    result = cli(ledger, "serve", "--port", str(taken_port))
    assert result.exit_code == 1, result.output
    assert f"cannot listen on 127.0.0.1:{taken_port}: address already in use" in result.output
    assert "serving" not in result.output
