"""Alerts as Alertmanager sends them, on both backends: grouping, group_wait,
group_interval, repeat_interval, resolution, silences (CLI too) and the rules file.
Time is the collector's injected clock; Slack is the local stand-in."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.main import root
from collectors.rules import Rules, load_rules
from ledger.application import Ledger
from ledger.errors import InvalidInput
from tests.services.slack import (
    Clock,
    SlackStandIn,
    clock_fixture,  # noqa: F401 (the `clock` fixture)
    run_until_idle,
    slack_collector,
    slack_fixture,  # noqa: F401 (the `slack` fixture)
)
from tests.story import Story, build_id

OLD, NEW = build_id("api", "2.4.0"), build_id("api", "2.4.1")
HOSTS = [f"web-{i:03}" for i in range(300)]
SUMMARY = "12 of 300 hosts failed to activate api 2.4.1 in generation 2"


def cli(ledger: Ledger, *args: str) -> Result:
    return CliRunner().invoke(root, ["--ledger", ledger.location.url, *args])


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def fleet() -> Story:
    """api 2.4.0 on 300 hosts (generation 1, completed), then 2.4.1 planned
    (generation 2)."""
    s = Story()
    s.build("api", "2.4.0")
    s.build("api", "2.4.1")
    s.plan(1, {(h, "api"): OLD for h in HOSTS})
    s.add("generation_completed", number=1)
    s.plan(2, {(h, "api"): NEW for h in HOSTS})
    return s


def fail(s: Story, hosts: list[str], generation: int = 2) -> None:
    for host in hosts:
        s.add(
            "activation_failed",
            host=host,
            service="api",
            build_id=NEW,
            generation=generation,
            reason="health check failed\nsee the log",
            exit_code=1,
        )


def failing(ledger: Ledger, count: int = 12) -> None:
    s = fleet()
    fail(s, HOSTS[:count])
    s.record(ledger)


def record(ledger: Ledger, kind: str, **fields: Any) -> None:
    s = Story()
    s.add(kind, **fields)
    s.record(ledger)


def test_twelve_failures_of_a_generation_are_one_message_after_group_wait(
    ledger: Ledger, slack: SlackStandIn, clock: Clock
) -> None:
    failing(ledger)
    collector = slack_collector(ledger, slack.url, clock)
    run_until_idle(collector)
    clock.advance(29.5)
    run_until_idle(collector)
    assert slack.requests == [], "nothing before group_wait"
    clock.advance(0.5)
    run_until_idle(collector)
    [message] = slack.requests
    assert message.body["text"] == f"[FIRING:1] production · generation 2: {SUMMARY}"
    text = message.text
    assert f"*{SUMMARY}*" in text
    assert "*Hosts:* web-000, web-001" in text
    assert "web-009 and 2 more" in text
    assert f"*Build:* api 2.4.1 `{NEW[:12]}`" in text
    assert "*Reason:* health check failed (exit 1) — 12 hosts" in text
    clock.advance(3599)
    run_until_idle(collector)
    assert len(slack.requests) == 1, "one message, not one per host"
    collector.close()


def test_the_commands_a_message_suggests_work(
    ledger: Ledger, slack: SlackStandIn, clock: Clock
) -> None:
    s = fleet()
    fail(s, HOSTS[:2])
    s.add("generation_failed", number=2, reason="2 hosts failed")
    s.add("health_reported", host="web-007", service="api", state="critical", ttl_s=None)
    s.record(ledger)
    collector = slack_collector(ledger, slack.url, clock)
    run_until_idle(collector)
    clock.advance(30)
    run_until_idle(collector)
    clock.advance(1)
    run_until_idle(collector)
    assert len(slack.requests) == 2
    commands = [
        command
        for request in slack.requests
        for command in request.body["blocks"][-1]["elements"][0]["text"].split("`")[1::2]
    ]
    assert "ledger failures --env production --generation 2" in commands
    assert "ledger generation 2 --env production" in commands
    assert "ledger history --host web-007 --env production" in commands
    for command in commands:
        result = cli(ledger, *shlex.split(command)[1:])
        assert result.exit_code == 0, f"{command}: {result.output}"
    failures = cli(ledger, "failures", "--env", "production", "--generation", "2", "--json")
    assert sorted(f["problem"] for f in json.loads(failures.stdout)) == [
        "activation failed", "activation failed", "generation failed"
    ]  # fmt: skip
    collector.close()


def test_a_changed_group_is_sent_again_at_most_every_group_interval(
    ledger: Ledger, slack: SlackStandIn, clock: Clock
) -> None:
    failing(ledger)
    collector = slack_collector(ledger, slack.url, clock)
    run_until_idle(collector)
    clock.advance(30)
    run_until_idle(collector)
    s = Story()
    fail(s, HOSTS[:15])  # 3 new hosts; the first 12 fail again: counted once
    s.record(ledger)
    clock.advance(299)
    run_until_idle(collector)
    assert len(slack.requests) == 1, "not before group_interval"
    clock.advance(1)
    run_until_idle(collector)
    assert len(slack.requests) == 2
    assert "15 of 300 hosts failed to activate api 2.4.1" in slack.requests[1].text
    collector.close()


def test_an_unchanged_alert_is_repeated_only_after_repeat_interval(
    ledger: Ledger, slack: SlackStandIn, clock: Clock
) -> None:
    failing(ledger)
    collector = slack_collector(ledger, slack.url, clock, repeat_interval=3600)
    run_until_idle(collector)
    clock.advance(30)
    run_until_idle(collector)
    s = Story()
    fail(s, HOSTS[:12])  # the same hosts fail again: nothing changed
    s.record(ledger)
    for _ in range(11):  # every group_interval for most of an hour
        clock.advance(300)
        run_until_idle(collector)
    clock.advance(299)
    run_until_idle(collector)
    assert len(slack.requests) == 1
    clock.advance(1)
    run_until_idle(collector)
    assert len(slack.requests) == 2
    assert SUMMARY in slack.requests[1].text
    assert "(new)" not in slack.requests[1].text
    collector.close()


@pytest.mark.parametrize("ending", ["completed", "rolled back"])
def test_a_resolved_message_follows_when_the_generation_completes_or_is_rolled_back(
    ledger: Ledger, slack: SlackStandIn, clock: Clock, ending: str
) -> None:
    failing(ledger)
    collector = slack_collector(ledger, slack.url, clock)
    run_until_idle(collector)
    clock.advance(30)
    run_until_idle(collector)
    s = Story()
    s.clock = 1000
    if ending == "completed":
        s.add("generation_completed", number=2)
    else:
        s.plan(3, {(h, "api"): OLD for h in HOSTS}, parent=2, reason="rollback", target=1)
    s.record(ledger)
    clock.advance(300)
    run_until_idle(collector)
    assert len(slack.requests) == 2
    resolved = slack.requests[1]
    assert resolved.body["text"] == f"[RESOLVED] production · generation 2: {SUMMARY}"
    why = (
        "generation 2 completed"
        if ending == "completed"
        else "generation 2 rolled back by generation 3"
    )
    assert f":white_check_mark: *Resolved:* {SUMMARY} — {why}" in resolved.text
    clock.advance(100_000)
    run_until_idle(collector)
    assert len(slack.requests) == 2, "a resolved alert is not repeated"
    collector.close()


def test_health_alerts_resolve_host_by_host_when_health_recovers(
    ledger: Ledger, slack: SlackStandIn, clock: Clock
) -> None:
    s = fleet()
    for host in ("web-001", "web-002"):
        s.add(
            "health_reported",
            host=host,
            service="api",
            state="critical",
            description="5xx",
            ttl_s=None,
        )
    s.record(ledger)
    collector = slack_collector(ledger, slack.url, clock)
    run_until_idle(collector)
    clock.advance(30)
    run_until_idle(collector)
    [first] = slack.requests
    assert first.body["text"] == "[FIRING:1] production · health: 2 hosts report api critical"
    record(ledger, "health_reported", host="web-001", service="api", state="ok")
    clock.advance(300)
    run_until_idle(collector)
    assert "1 host reports api critical" in slack.requests[1].text
    record(ledger, "health_reported", host="web-002", service="api", state="ok")
    clock.advance(300)
    run_until_idle(collector)
    assert len(slack.requests) == 3
    assert slack.requests[2].body["text"].startswith("[RESOLVED] production · health")
    assert "web-002 reports ok" in slack.requests[2].text
    collector.close()


def test_drift_from_a_completed_generation_alerts_and_resolves(
    ledger: Ledger, slack: SlackStandIn, clock: Clock
) -> None:
    s = fleet()
    s.add("generation_completed", number=2)
    s.add("host_reported", host="web-001", manifest=[entry("web-001", OLD)])
    s.record(ledger)
    collector = slack_collector(ledger, slack.url, clock)
    run_until_idle(collector)
    clock.advance(30)
    run_until_idle(collector)
    [message] = slack.requests
    assert "1 of 300 hosts run another api than generation 2 wants" in message.text
    assert f"runs {OLD[:12]}; generation 2 wants {NEW[:12]}" in message.text
    assert "ledger drift --env production" in message.text
    record(ledger, "host_reported", host="web-001", manifest=[entry("web-001", NEW)])
    clock.advance(300)
    run_until_idle(collector)
    assert slack.requests[1].body["text"].startswith("[RESOLVED]")
    assert "web-001 runs what generation 2 wants" in slack.requests[1].text
    collector.close()


def test_hosts_that_differ_during_a_rollout_are_not_drift(
    ledger: Ledger, slack: SlackStandIn, clock: Clock
) -> None:
    s = fleet()  # generation 2 planned, not completed: hosts still run 2.4.0
    s.add("host_reported", host="web-001", manifest=[entry("web-001", OLD)])
    s.record(ledger)
    collector = slack_collector(ledger, slack.url, clock)
    run_until_idle(collector)
    clock.advance(100_000)
    run_until_idle(collector)
    assert slack.requests == []
    collector.close()


def entry(host: str, build: str) -> dict[str, Any]:
    return {"host": host, "service": "api", "build_id": build}


def test_an_alert_resolved_before_group_wait_sends_nothing(
    ledger: Ledger, slack: SlackStandIn, clock: Clock
) -> None:
    s = fleet()
    fail(s, HOSTS[:3])
    s.add("generation_completed", number=2)  # retried and completed
    s.record(ledger)
    collector = slack_collector(ledger, slack.url, clock)
    run_until_idle(collector)
    clock.advance(100_000)
    run_until_idle(collector)
    assert slack.requests == []
    rows = as_json(cli(ledger, "alerts", "--all", "--json"))
    assert [(r["status"], r["hosts"], r["resolution"]) for r in rows] == [
        ("resolved", 3, "generation 2 completed")
    ]
    collector.close()


def test_a_silence_mutes_until_it_is_expired_then_the_alert_is_sent(
    ledger: Ledger, slack: SlackStandIn, clock: Clock
) -> None:
    failing(ledger)
    collector = slack_collector(ledger, slack.url, clock)
    run_until_idle(collector)
    added = as_json(
        cli(ledger, "silence", "add", "--env", "production", "--service", "api", "--for", "2h",
            "--comment", "CHG-1234", "--json")
    )  # fmt: skip
    assert added["active"]
    assert added["comment"] == "CHG-1234"
    listed = as_json(cli(ledger, "silence", "list", "--json"))
    assert [s["id"] for s in listed] == [added["id"]]
    clock.advance(600)
    run_until_idle(collector)
    assert slack.requests == [], "silenced"
    [alert] = as_json(cli(ledger, "alerts", "--json"))
    assert alert["silenced_by"] == [added["id"]]
    assert alert["notified"] is None
    assert alert["summary"] == "12 of 300 hosts failed to activate api in generation 2"
    result = cli(ledger, "silence", "expire", added["id"])
    assert result.exit_code == 0, result.output
    assert as_json(cli(ledger, "silence", "list", "--json")) == []
    run_until_idle(collector)
    [message] = slack.requests
    assert SUMMARY in message.text
    assert as_json(cli(ledger, "alerts", "--json"))[0]["notified"] == "firing"
    collector.close()


def test_a_silence_that_runs_out_lets_a_still_firing_alert_through(
    ledger: Ledger, slack: SlackStandIn, clock: Clock
) -> None:
    failing(ledger)
    result = cli(ledger, "silence", "add", "--kind", "activation_failed", "--for", "1h30m")
    assert result.exit_code == 0, result.output
    assert "mutes 0 alert(s)" in result.output
    collector = slack_collector(ledger, slack.url, clock)
    run_until_idle(collector)
    clock.advance(5399)
    run_until_idle(collector)
    assert slack.requests == []
    clock.advance(2)
    run_until_idle(collector)
    assert len(slack.requests) == 1
    collector.close()


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--for", "2h"], "at least one of --env, --service, --kind"),
        (["--env", "production", "--for", "soon"], "not a duration"),
        (["--env", "production", "--for", "0m"], "must last some time"),
        (["--kind", "activation_fail", "--for", "2h"], "activation_fail"),
    ],
)
def test_silence_add_refuses_what_would_mute_nothing_or_everything(
    ledger: Ledger, args: list[str], problem: str
) -> None:
    result = cli(ledger, "silence", "add", *args)
    assert result.exit_code == 2
    assert problem in result.output
    assert as_json(cli(ledger, "silence", "list", "--all", "--json")) == []


def test_silence_expire_refuses_an_unknown_id(ledger: Ledger) -> None:
    result = cli(ledger, "silence", "expire", "deadbeef")
    assert result.exit_code == 2
    assert "no silence 'deadbeef'" in result.output


# --- rules ---------------------------------------------------------------------------


def rules_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alerts.toml"
    path.write_text(text)
    return path


def test_a_rules_file_adds_and_silences_alerts(
    ledger: Ledger, slack: SlackStandIn, clock: Clock, tmp_path: Path
) -> None:
    rules = rules_file(
        tmp_path,
        """
        [[rule]]                 # health warnings of production's api too
        kind = "health_warning"
        env = "production"
        service = "api"

        [[rule]]                 # never alert about pull-request environments
        action = "silence"
        env = "pr-*"
        """,
    )
    s = fleet()
    s.add("health_reported", host="web-001", service="api", state="warning", ttl_s=None)
    s.add("health_reported", host="web-002", service="db", state="warning", ttl_s=None)
    pr = Story(env="pr-1234")
    pr.add("drain_timed_out", host="pr-web", service="api", build_id=NEW, in_flight=3)
    s.record(ledger)
    pr.record(ledger)
    collector = slack_collector(ledger, slack.url, clock, rules=rules)
    run_until_idle(collector)
    clock.advance(30)
    run_until_idle(collector)
    [message] = slack.requests
    assert message.body["text"] == "[FIRING:1] production · health: 1 host reports api warning"
    collector.close()


def test_without_defaults_only_the_rules_alert(
    ledger: Ledger, slack: SlackStandIn, clock: Clock, tmp_path: Path
) -> None:
    rules = rules_file(tmp_path, 'defaults = false\n[[rule]]\nkind = "drain_timed_out"\n')
    s = fleet()
    fail(s, HOSTS[:12])
    s.add("drain_timed_out", host="web-001", service="api", build_id=OLD, in_flight=3)
    s.record(ledger)
    collector = slack_collector(ledger, slack.url, clock, rules=rules)
    run_until_idle(collector)
    clock.advance(30)
    run_until_idle(collector)
    [message] = slack.requests
    assert "1 of 300 hosts timed out draining api 2.4.0 in generation 2" in message.text
    assert "*Reason:* 3 still in flight after 30 s" in message.text
    assert "failed to activate" not in message.text
    collector.close()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[[rule]]\nkind = "drift"\n[[rule]]\nknd = "drift"\n', "rule 2: unknown key 'knd'"),
        ('[[rule]]\nkind = "activation_fail"\n', "rule 1: unknown kind 'activation_fail'"),
        ('[[rule]]\naction = "mute"\nenv = "pr"\n', "rule 1: action must be 'alert' or 'silence'"),
        ('[[rule]]\naction = "silence"\n', "rule 1: name at least one of kind, env, service"),
        ("[[rule]]\nenv = 3\n", "rule 1: env must be a non-empty string"),
        ("defaults = 'no'\n", "defaults must be true or false"),
        ("[[rules]]\nkind = 'drift'\n", "unknown setting 'rules'"),
        ("[[rule]\n", "not valid TOML"),
    ],
)  # fmt: skip
def test_a_bad_rules_file_is_refused_naming_the_file_rule_and_reason(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = rules_file(tmp_path, text)
    with pytest.raises(InvalidInput) as refused:
        load_rules(path)
    assert str(refused.value).startswith(f"{path}: ")
    assert problem in str(refused.value)


def test_rules_match_env_and_service_patterns() -> None:
    rules = load_rules(None)
    assert rules == Rules()
    assert rules.alerts("production", "api", "activation_failed")
    assert not rules.alerts("production", "api", "health_warning")


def test_a_rule_may_spell_a_kind_as_ledger_record_does(tmp_path: Path) -> None:
    rules = load_rules(
        rules_file(tmp_path, '[[rule]]\naction = "silence"\nkind = "drain-timed-out"\n')
    )
    assert rules.rules[0].kind == "drain_timed_out"
    assert not rules.alerts("production", "api", "drain_timed_out")
