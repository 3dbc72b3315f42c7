"""Advisory alerts, on both backends, against the Slack stand-in and the Riemann receiver:
an advisory recorded while an affected build runs fires one Slack alert per vulnerability
and a Riemann event whose metric is the hosts exposed; a deployment away resolves it, a
rollback back fires it again; a silence on an id mutes it; a withdrawn advisory
resolves; replaying the same facts gives the same alerts, whatever the batches."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from pydantic import SecretStr

from cli.main import root
from collectors.riemann import RiemannCollector
from collectors.settings import CollectSettings
from collectors.slack import SlackCollector
from ledger.application import Ledger
from tests.services.riemann import (
    RiemannReceiver,
    attributes,
    riemann_fixture,  # noqa: F401 (the `riemann` fixture)
)
from tests.services.slack import (
    Answer,
    Clock,
    SlackStandIn,
    clock_fixture,  # noqa: F401 (the `clock` fixture)
    run_until_idle,
    slack_collector,
    slack_fixture,  # noqa: F401 (the `slack` fixture)
)
from tests.story import Story, build_id, openssl

CVE = "CVE-2014-0160"
GHSA = "GHSA-0000-0000-0000"
OLD = build_id("api", "1.0")
NEW = build_id("api", "1.1")
HOSTS = ("web-1", "web-2", "web-3")


def heartbleed(
    s: Story, *, withdrawn: bool = False, modified: str = "2024-11-21T02:00:00Z"
) -> None:
    """CVE-2014-0160 as NVD writes it: openssl 1.0.1 to 1.0.1f, fixed in 1.0.1g."""
    s.add(
        "advisory_recorded",
        env="*",
        advisory_id=CVE,
        database="nvd",
        aliases=[GHSA],
        published="2014-04-07T22:55:03Z",
        modified=modified,
        withdrawn=modified if withdrawn else None,
        summary="The TLS heartbeat extension reads past the end of a buffer.",
        severity=[
            {"type": "CVSS_V3", "vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
             "score": 7.5}
        ],
        affected=[
            {"ecosystem": "cpe", "name": "openssl", "vendor": "openssl",
             "bounds": [{"start": "1.0.1", "end": "1.0.1g"}]}
        ],
    )  # fmt: skip


def fleet() -> Story:
    """api 1.0 (openssl 1.0.1f, affected) on three hosts in generation 1."""
    s = Story()
    s.build("api", "1.0", openssl("1.0.1f"))
    s.build("api", "1.1", openssl("1.0.1g"))
    s.plan(1, {(h, "api"): OLD for h in HOSTS})
    for host in HOSTS:
        s.activate(host, "api", OLD, 1)
    s.add("generation_completed", number=1)
    return s


def upgrade(s: Story, number: int, old: str, new: str, hosts: tuple[str, ...] = HOSTS) -> None:
    reason = "rollback" if new == OLD else "deploy"
    s.plan(number, {(h, "api"): new for h in HOSTS}, reason=reason)
    for host in hosts:
        s.replace(host, "api", old, new, number)
    s.add("generation_completed", number=number)


def cli(ledger: Ledger, *args: str) -> Result:
    return CliRunner().invoke(root, ["--ledger", ledger.location.url, *args])


def alerts(ledger: Ledger, *args: str) -> list[dict[str, Any]]:
    result = cli(ledger, "alerts", "--json", *args)
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return [row for row in rows if row["kind"] == "advisory"]


@pytest.fixture
def collector(ledger: Ledger, slack: SlackStandIn, clock: Clock) -> Iterator[SlackCollector]:
    made = slack_collector(ledger, slack.url, clock, group_wait=0)
    yield made
    made.close()


def deliver(collector: SlackCollector, clock: Clock) -> None:
    """Everything due now, then again a group_interval later."""
    run_until_idle(collector)
    clock.advance(301)
    run_until_idle(collector)


def test_an_advisory_fires_resolves_on_upgrade_and_fires_again_on_rollback(
    ledger: Ledger, slack: SlackStandIn, clock: Clock, collector: SlackCollector
) -> None:
    s = fleet()
    heartbleed(s)
    s.record(ledger)
    deliver(collector, clock)
    [fired] = slack.requests
    assert fired.body["text"] == (
        f"[FIRING:1] {CVE} · high 7.5: 3 hosts in production exposed to {CVE}: openssl 1.0.1f"
    )
    text = fired.text
    assert "*Hosts:* web-1, web-2, web-3" in text
    assert "*Affected:* openssl 1.0.1f — fixed in 1.0.1g" in text
    assert "*Runs:* api: openssl 1.0.1f — 3 hosts" in text
    assert GHSA in text, "the aliases are named"
    [row] = alerts(ledger)
    assert (row["status"], row["hosts"], row["env"]) == ("firing", 3, "production")
    table = cli(ledger, "alerts")
    assert table.exit_code == 0, table.output
    assert f"3 hosts in production exposed to {CVE}" in table.stdout

    upgrade(s, 2, OLD, NEW)
    s.record(ledger)
    deliver(collector, clock)
    assert len(slack.requests) == 2
    resolved = slack.requests[1]
    assert resolved.body["text"].startswith(f"[RESOLVED] {CVE} · high 7.5")
    assert "no host runs an affected build" in resolved.text
    assert alerts(ledger) == []

    upgrade(s, 3, NEW, OLD, hosts=("web-2",))
    s.record(ledger)
    deliver(collector, clock)
    assert len(slack.requests) == 3
    again = slack.requests[2]
    assert again.body["text"].startswith(f"[FIRING:1] {CVE} · high 7.5: 1 host in production")
    assert "*Hosts:* web-2" in again.text
    [row] = alerts(ledger)
    assert (row["status"], row["hosts"]) == ("firing", 1)


def test_hosts_leave_one_by_one_during_an_upgrade_and_the_message_says_how_many(
    ledger: Ledger, slack: SlackStandIn, clock: Clock, collector: SlackCollector
) -> None:
    s = fleet()
    heartbleed(s)
    s.record(ledger)
    deliver(collector, clock)
    upgrade(s, 2, OLD, NEW, hosts=("web-1", "web-3"))
    s.record(ledger)
    deliver(collector, clock)
    assert len(slack.requests) == 2
    assert (
        slack.requests[1]
        .body["text"]
        .startswith(f"[FIRING:1] {CVE} · high 7.5: 1 host in production exposed")
    )
    [row] = alerts(ledger)
    assert row["hosts"] == 1


def test_a_slack_outage_neither_loses_nor_repeats_an_advisory_alert(
    ledger: Ledger, slack: SlackStandIn, clock: Clock, collector: SlackCollector
) -> None:
    """The advisory message goes through the outbox like any other: retried after
    server errors, then sent once; a restarted collector does not send it again."""
    slack.answer(Answer(500), Answer(500))  # slack_sdk retries a 500 once, at once
    s = fleet()
    heartbleed(s)
    s.record(ledger)
    run_until_idle(collector)
    assert [r.status for r in slack.requests] == [500, 500]
    clock.advance(2)
    run_until_idle(collector)
    assert [r.status for r in slack.requests] == [500, 500, 200]
    assert len({r.message_id for r in slack.requests}) == 1
    restarted = slack_collector(ledger, slack.url, clock, group_wait=0)
    clock.advance(301)
    run_until_idle(restarted)
    restarted.close()
    assert len(slack.requests) == 3, "told once: nothing changed since"


def test_a_silence_on_an_advisory_id_or_alias_mutes_its_alert(
    ledger: Ledger, slack: SlackStandIn, clock: Clock, collector: SlackCollector
) -> None:
    added = cli(ledger, "silence", "add", "--advisory", "GHSA-*", "--for", "2h", "--json")
    assert added.exit_code == 0, added.output
    other = cli(ledger, "silence", "add", "--advisory", "CVE-2099-*", "--for", "2h")
    assert other.exit_code == 0, other.output
    clock.advance(1)  # the silences start at the CLI's now, just after the clock's
    s = fleet()
    heartbleed(s)
    s.record(ledger)
    deliver(collector, clock)
    assert slack.requests == [], "muted by the alias pattern"
    [row] = alerts(ledger)
    assert row["silenced_by"] == [json.loads(added.stdout)["id"]]
    listed = cli(ledger, "silence", "list")
    assert "advisory=GHSA-*" in listed.stdout
    expired = cli(ledger, "silence", "expire", json.loads(added.stdout)["id"])
    assert expired.exit_code == 0, expired.output
    deliver(collector, clock)
    assert len(slack.requests) == 1, "sent once the silence ended"


def test_a_silence_refuses_an_advisory_with_another_kind(ledger: Ledger) -> None:
    result = cli(ledger, "silence", "add", "--advisory", CVE, "--kind", "drift", "--for", "1h")
    assert result.exit_code == 2
    assert "--advisory mutes advisory alerts only" in result.output


def test_a_withdrawn_advisory_resolves(
    ledger: Ledger, slack: SlackStandIn, clock: Clock, collector: SlackCollector
) -> None:
    s = fleet()
    heartbleed(s)
    s.record(ledger)
    deliver(collector, clock)
    heartbleed(s, withdrawn=True, modified="2025-01-01T00:00:00Z")
    s.record(ledger)
    deliver(collector, clock)
    assert len(slack.requests) == 2
    assert slack.requests[1].body["text"].startswith("[RESOLVED]")
    assert "withdrawn" in slack.requests[1].text
    assert alerts(ledger) == []


def test_an_advisory_affecting_nothing_that_runs_sends_nothing(
    ledger: Ledger, slack: SlackStandIn, clock: Clock, collector: SlackCollector
) -> None:
    s = fleet()
    upgrade(s, 2, OLD, NEW)
    heartbleed(s)
    s.record(ledger)
    deliver(collector, clock)
    assert slack.requests == []
    assert alerts(ledger, "--all") == []


def test_the_commands_an_advisory_message_suggests_work(
    ledger: Ledger, slack: SlackStandIn, clock: Clock, collector: SlackCollector
) -> None:
    s = fleet()
    heartbleed(s)
    s.record(ledger)
    deliver(collector, clock)
    [message] = slack.requests
    commands = message.body["blocks"][-1]["elements"][0]["text"].split("`")[1::2]
    assert f"ledger exposure {CVE} --env production" in commands
    for command in commands:
        result = cli(ledger, *shlex.split(command)[1:])
        assert result.exit_code == 0, f"{command}: {result.output}"


def history(s: Story) -> None:
    """Fires, shrinks, resolves, fires again: every way an advisory alert changes."""
    heartbleed(s)
    upgrade(s, 2, OLD, NEW, hosts=("web-1",))
    upgrade(s, 3, OLD, NEW, hosts=("web-2", "web-3"))
    upgrade(s, 4, NEW, OLD, hosts=("web-3",))


def forget(collector: SlackCollector | RiemannCollector, *tables: str) -> None:
    """Start a collector over: no position, no state (as a new ledger's would be)."""
    store = collector.follower.store
    with store.transaction(commit=True) as tx:
        store.forget(tx, collector.follower.name)
        for table in ("exposures", "exposure_vulnerabilities", *tables):
            tx.execute(f"DELETE FROM {table}")


SLACK_STATE = ("alerts", "alert_hosts", "alert_groups", "alert_generations", "slack_outbox")


def test_replaying_the_same_facts_gives_the_same_alerts(
    ledger: Ledger, slack: SlackStandIn, clock: Clock
) -> None:
    """All facts in one batch, then again one fact per batch from a fresh state: the
    same alerts, with the same hosts."""
    s = fleet()
    history(s)
    s.record(ledger)
    collector = slack_collector(ledger, slack.url, clock, group_wait=0)
    run_until_idle(collector)
    once = alerts(ledger, "--all")
    assert [(r["status"], r["hosts"]) for r in once] == [("firing", 1)]
    forget(collector, *SLACK_STATE)
    collector.follower.batch = 1
    run_until_idle(collector)
    again = alerts(ledger, "--all")
    collector.close()
    keep = ("fingerprint", "env", "status", "hosts", "summary", "resolution")
    assert [{k: r[k] for k in keep} for r in again] == [{k: r[k] for k in keep} for r in once]


# --- Riemann -------------------------------------------------------------------------


def exposure_events(riemann: RiemannReceiver) -> list[tuple[str, str, str, int, str]]:
    return [
        (e.host, e.service, e.state, e.metric_sint64, attributes(e)["position"])
        for e in riemann.events()
        if e.service.startswith("advisory ")
    ]


def riemann_collector(ledger: Ledger, riemann: RiemannReceiver, batch: int) -> RiemannCollector:
    settings = CollectSettings(riemann=riemann.address, gauge_interval=3600, riemann_batch=batch)
    return RiemannCollector(ledger, settings)


def drain(collector: RiemannCollector) -> None:
    while collector.step():
        pass


def test_riemann_gets_the_hosts_exposed_per_advisory_and_env(
    ledger: Ledger, riemann: RiemannReceiver
) -> None:
    s = fleet()
    history(s)
    s.record(ledger)
    collector = riemann_collector(ledger, riemann, batch=500)
    drain(collector)
    collector.close()
    got = [(host, service, state, metric) for host, service, state, metric, _ in
           exposure_events(riemann)]  # fmt: skip
    service = f"advisory {CVE}"
    assert got == [
        ("production", service, "critical", 3),  # recorded while three hosts run it
        ("production", service, "critical", 2),  # web-1 upgraded
        ("production", service, "critical", 1),
        ("production", service, "ok", 0),  # resolved: no host runs it
        ("production", service, "critical", 1),  # web-3 rolled back
    ]
    advisory = next(e for e in riemann.events() if e.service == service)
    found = attributes(advisory)
    assert found["advisory_id"] == CVE
    assert found["aliases"] == GHSA
    assert found["severity"] == "high"
    assert found["fixed"] == "openssl 1.0.1g"
    assert "web-1" in advisory.description


def test_riemann_exposure_events_are_the_same_whatever_the_batches(
    ledger: Ledger, riemann: RiemannReceiver
) -> None:
    s = fleet()
    history(s)
    s.record(ledger)
    collector = riemann_collector(ledger, riemann, batch=500)
    drain(collector)
    once = exposure_events(riemann)
    assert len(once) == 5
    riemann.clear()
    forget(collector)
    collector.position = 0
    collector.settings = collector.settings.model_copy(update={"riemann_batch": 3})
    drain(collector)
    collector.close()
    assert exposure_events(riemann) == once


def test_a_record_that_joins_the_group_keeps_its_one_alert(
    ledger: Ledger, slack: SlackStandIn, clock: Clock, collector: SlackCollector
) -> None:
    """A GHSA record aliasing the CVE alerts as the CVE at once; the NVD record arriving
    later joins that alert instead of making a second one."""
    s = fleet()
    s.add(
        "advisory_recorded",
        env="*",
        advisory_id=GHSA,
        database="osv",
        aliases=[CVE],
        modified="2024-01-01T00:00:00Z",
        severity=[],
        affected=[{"ecosystem": "cpe", "name": "openssl", "versions": ["1.0.1f"]}],
    )
    s.record(ledger)
    deliver(collector, clock)
    assert slack.requests[0].body["text"].startswith(f"[FIRING:1] {CVE} · severity unknown")
    heartbleed(s)
    s.record(ledger)
    deliver(collector, clock)
    [row] = alerts(ledger, "--all")
    assert (row["status"], row["hosts"]) == ("firing", 3)
    assert len(slack.requests) == 1, "the score alone changed: nothing new to tell"


def test_a_build_recorded_after_its_activation_fires_when_it_arrives(
    ledger: Ledger, slack: SlackStandIn, clock: Clock, collector: SlackCollector
) -> None:
    s = Story()
    heartbleed(s)
    s.plan(1, {("web-1", "api"): OLD})
    s.activate("web-1", "api", OLD, 1)
    s.record(ledger)
    deliver(collector, clock)
    assert slack.requests == [], "a build the ledger does not know yet holds nothing"
    s.build("api", "1.0", openssl("1.0.1f"))
    s.record(ledger)
    deliver(collector, clock)
    [row] = alerts(ledger)
    assert (row["status"], row["hosts"]) == ("firing", 1)


def test_a_silences_table_made_before_advisories_gets_the_column(ledger: Ledger) -> None:
    from collectors.alert_tables import create_tables
    from projections.store import open_views

    store = open_views(ledger.location)
    try:
        with store.transaction(commit=True) as tx:
            tx.execute(
                "CREATE TABLE silences (id TEXT PRIMARY KEY, env TEXT, service TEXT, "
                "kind TEXT, starts_at DOUBLE PRECISION NOT NULL, ends_at DOUBLE PRECISION "
                "NOT NULL, comment TEXT NOT NULL, created_by TEXT NOT NULL, expired_by TEXT)"
            )
            tx.execute(
                "INSERT INTO silences VALUES ('old', 'staging', NULL, NULL, 0, 4e9, '', "
                "'ops', NULL)"
            )
        create_tables(store)
        create_tables(store)  # again: nothing to add
    finally:
        store.datastore.close()
    added = cli(ledger, "silence", "add", "--advisory", CVE, "--for", "1h")
    assert added.exit_code == 0, added.output
    listed = cli(ledger, "silence", "list", "--json")
    assert listed.exit_code == 0, listed.output
    assert sorted((r["id"] == "old", r["advisory"]) for r in json.loads(listed.stdout)) == [
        (False, CVE),
        (True, None),
    ]


@pytest.mark.parametrize("mapped", [False, True], ids=["no-map", "cpe-map"])
def test_the_collector_takes_the_cpe_map_for_products_named_otherwise(
    ledger: Ledger, slack: SlackStandIn, clock: Clock, tmp_path: Path, mapped: bool
) -> None:
    """NVD names curl's product haxx:libcurl: only with the map does a Nix curl alert."""
    cpe_map = tmp_path / "cpe-map.txt"
    cpe_map.write_text("haxx:libcurl curl\n")
    s = Story()
    curl = s.build("api", "1.0", {"name": "curl", "version": "8.1.1",
                                  "store_path": f"/nix/store/{'c' * 32}-curl-8.1.1"})  # fmt: skip
    s.plan(1, {("web-1", "api"): curl})
    s.activate("web-1", "api", curl, 1)
    s.add(
        "advisory_recorded", env="*", advisory_id="CVE-2023-38545", database="nvd", aliases=[],
        modified="2024-01-21T02:23:03Z", severity=[], unmatched=[],
        affected=[{"ecosystem": "cpe", "name": "libcurl", "vendor": "haxx",
                   "bounds": [{"start": "7.69.0", "end": "8.4.0"}]}],
    )  # fmt: skip
    s.record(ledger)
    settings = CollectSettings.model_construct(
        slack_webhook=SecretStr(slack.url), group_wait=0, group_interval=300,
        repeat_interval=3600, cpe_map=cpe_map if mapped else None,
    )  # fmt: skip
    collector = SlackCollector(ledger, settings, clock=clock)
    try:
        deliver(collector, clock)
    finally:
        collector.close()
    expected = 1 if mapped else 0
    assert len(slack.requests) == expected
    assert len(alerts(ledger, "--all")) == expected
