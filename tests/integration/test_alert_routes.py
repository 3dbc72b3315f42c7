"""GET /api/alerts and GET /api/silences, on both backends, against a real server and a
real Slack collector run (the Slack stand-in): the answers are what ``ledger alerts
--all --json`` and ``ledger silence list --json`` report for the same store, with each
alert's hosts by name and its advisory; firing first; filters; an answer that follows
the collector's tables although the views did not move; 404 for names the ledger never
saw, 422 for bad parameters; and an empty list saying so when no collector ever ran."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from api.alert_routes import STATUS_ORDER
from cli.main import root
from ledger.application import Ledger
from tests.integration.test_advisory_alerts import CVE, fleet, heartbleed
from tests.services.api import ApiServer, serve
from tests.services.slack import (
    Clock,
    SlackStandIn,
    clock_fixture,  # noqa: F401 (the `clock` fixture)
    run_until_idle,
    slack_collector,
    slack_fixture,  # noqa: F401 (the `slack` fixture)
)
from tests.story import Story, build_id

BAD = build_id("api", "2.0")


def cli(ledger: Ledger, *args: str) -> Result:
    result = CliRunner().invoke(root, ["--ledger", ledger.location.url, *args])
    assert result.exit_code == 0, result.output
    return result


def cli_json(ledger: Ledger, *args: str) -> Any:
    return json.loads(cli(ledger, *args, "--json").stdout)


def get(server: ApiServer, path: str, **params: Any) -> httpx.Response:
    return httpx.get(server.base + path, headers=server.headers("reader"), params=params)


def incident(ledger: Ledger) -> None:
    """An advisory exposing three hosts, a failed rollout (generation 2: two of three
    hosts failed to activate api 2.0, and the generation failed), and a host reporting
    itself critical, then ok again (an alert that fired and resolved)."""
    s = fleet()
    heartbleed(s)
    s.build("api", "2.0")
    s.plan(2, {(h, "api"): BAD for h in ("web-1", "web-2", "web-3")})
    for host in ("web-3", "web-1"):
        s.add("activation_failed", host=host, service="api", build_id=BAD, generation=2,
              reason="exit 1")  # fmt: skip
    s.add("generation_failed", number=2, reason="activations failed")
    s.add("health_reported", host="web-2", state="critical", ttl_s=None)
    s.record(ledger)


def recovered(ledger: Ledger) -> None:
    s = Story()
    s.clock = 100
    s.add("health_reported", host="web-2", state="ok", ttl_s=None)
    s.record(ledger)


@pytest.fixture
def collected(ledger: Ledger, slack: SlackStandIn, clock: Clock) -> Ledger:
    """The incident, as a Slack collector has seen and told it."""
    incident(ledger)
    collector = slack_collector(ledger, slack.url, clock, group_wait=0)
    run_until_idle(collector)
    clock.advance(301)
    recovered(ledger)
    run_until_idle(collector)
    collector.close()
    return ledger


@pytest.fixture
def server(collected: Ledger) -> Iterator[ApiServer]:
    yield from serve(collected.location.url)


def every_alert(server: ApiServer, **params: Any) -> list[dict[str, Any]]:
    response = get(server, "/api/alerts", **params)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["collector"] is True
    items: list[dict[str, Any]] = answer["alerts"]["items"]
    assert answer["alerts"]["total"] == len(items)
    return items


def as_cli(alert: dict[str, Any]) -> dict[str, Any]:
    """An API alert without what the API adds to ``ledger alerts --json``'s row."""
    added = ("detail", "changed_at", "host_names", "advisory")
    return {key: value for key, value in alert.items() if key not in added}


def by_fingerprint(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda row: str(row["fingerprint"]))


def test_alerts_are_what_ledger_alerts_reports(collected: Ledger, server: ApiServer) -> None:
    cli(collected, "silence", "add", "--advisory", CVE, "--for", "2h", "--comment", "SEC-1")
    expected = cli_json(collected, "alerts", "--all")
    alerts = every_alert(server)
    assert by_fingerprint([as_cli(a) for a in alerts]) == by_fingerprint(expected)
    assert {a["status"] for a in alerts} == {"firing", "resolved"}, "the incident has both"
    ranks = [STATUS_ORDER[a["status"]] for a in alerts]
    assert ranks == sorted(ranks), "firing first"

    kinds = {a["kind"]: a for a in alerts}
    failed = kinds["activation_failed"]
    assert (failed["generation"], failed["hosts"]) == (2, 2)
    assert failed["host_names"] == ["web-1", "web-3"]
    assert failed["advisory"] is None
    advisory = kinds["advisory"]
    assert advisory["advisory"] == CVE
    assert advisory["host_names"] == ["web-1", "web-2", "web-3"]
    assert advisory["silenced_by"] != [], "muted by the silence on its id"
    assert kinds["health_critical"]["status"] == "resolved"
    assert kinds["health_critical"]["host_names"] == ["web-2"]
    assert kinds["generation_failed"]["detail"] == "activations failed"


def test_filters_and_pages(server: ApiServer) -> None:
    alerts = every_alert(server)
    firing = every_alert(server, status="firing")
    assert firing == [a for a in alerts if a["status"] == "firing"]
    assert every_alert(server, status="resolved") == [
        a for a in alerts if a["status"] == "resolved"
    ]
    assert every_alert(server, generation=2) == [a for a in alerts if a["generation"] == 2]
    assert every_alert(server, env="production") == alerts

    first = get(server, "/api/alerts", limit=1).json()["alerts"]
    assert (first["items"], first["total"]) == (alerts[:1], len(alerts))
    following = httpx.get(server.base + first["next"], headers=server.headers("reader"))
    assert following.json()["alerts"]["items"] == alerts[1:2]


def test_silences_are_what_ledger_silence_list_reports(
    collected: Ledger, server: ApiServer
) -> None:
    assert get(server, "/api/silences").json() == []
    cli(collected, "silence", "add", "--env", "production", "--service", "api", "--for", "2h")
    ended = cli_json(collected, "silence", "add", "--kind", "drift", "--for", "1h")
    cli(collected, "silence", "expire", ended["id"])

    active = get(server, "/api/silences")
    assert active.status_code == 200, active.text
    assert active.json() == cli_json(collected, "silence", "list")
    assert [s["matches"] for s in active.json()] == ["env=production service=api"]
    every = get(server, "/api/silences", ended="true").json()
    assert every == cli_json(collected, "silence", "list", "--all")
    assert [s["active"] for s in every] == [True, False]


def test_the_answer_follows_the_collector_not_the_views(
    collected: Ledger, server: ApiServer
) -> None:
    """A silence changes the alerts' answer though the views stay where they are: an
    answer kept per views position would still say "not silenced"."""
    before = get(server, "/api/alerts", status="firing")
    assert all(a["silenced_by"] == [] for a in before.json()["alerts"]["items"])
    added = cli_json(collected, "silence", "add", "--env", "production", "--for", "1h")
    again = get(server, "/api/alerts", status="firing")
    after = again.json()["alerts"]["items"]
    assert after
    assert all(a["silenced_by"] == [added["id"]] for a in after)
    assert again.headers["ETag"] != before.headers["ETag"]


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"env": "prod"}, 404, "environment 'prod' is not in the ledger"),
        ({"generation": 9}, 404, "no environment has a generation 9"),
        ({"env": "production", "generation": 9}, 404, "production has no generation 9"),
        ({"status": "burning"}, 422, "status"),
        ({"limit": 0}, 422, "limit"),
        ({"generation": "two"}, 422, "generation"),
    ],
)
def test_unknown_names_and_bad_parameters_are_refused(
    server: ApiServer, params: dict[str, Any], status: int, says: str
) -> None:
    response = get(server, "/api/alerts", **params)
    assert response.status_code == status, response.text
    assert says in response.json()["message"]


def test_a_bad_ended_flag_is_refused(server: ApiServer) -> None:
    response = get(server, "/api/silences", ended="maybe")
    assert response.status_code == 422, response.text
    assert "ended" in response.json()["message"]


def test_without_a_collector_the_answer_says_so(ledger: Ledger) -> None:
    incident(ledger)
    for running in serve(ledger.location.url):
        answer = get(running, "/api/alerts")
        assert answer.status_code == 200, answer.text
        assert answer.json()["collector"] is False
        assert answer.json()["alerts"]["items"] == []
        assert get(running, "/api/silences").json() == []
        # Known names still answer empty; unknown ones are still a 404.
        assert get(running, "/api/alerts", env="production").status_code == 200
        assert get(running, "/api/alerts", env="nowhere").status_code == 404
