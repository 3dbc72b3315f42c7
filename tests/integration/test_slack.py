"""Delivery to Slack, on both backends: 429 with Retry-After honoured, 5xx retried with
backoff then given up and reported, other 4xx permanent, restarts and crashes that
never send a message twice, and a webhook URL that never shows."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from click.testing import CliRunner, Result
from pydantic import SecretStr

from cli.main import root
from collectors.messages import GroupNotice, dashboard_link
from collectors.outbox import MAX_ATTEMPTS
from collectors.settings import load_settings
from collectors.slack import SlackCollector
from ledger.application import Ledger
from ledger.errors import InvalidInput
from ledger.store import locate
from tests.integration.test_advisory_alerts import CVE, heartbleed
from tests.integration.test_advisory_alerts import fleet as advisory_fleet
from tests.services.slack import (
    DROP,
    Answer,
    Clock,
    SlackStandIn,
    clock_fixture,  # noqa: F401 (the `clock` fixture)
    rate_limited,
    run_until_idle,
    slack_collector,
    slack_fixture,  # noqa: F401 (the `slack` fixture)
)
from tests.story import Story, build_id

BUILD = build_id("api", "2.4.1")


def cli(ledger: Ledger, *args: str) -> Result:
    return CliRunner().invoke(root, ["--ledger", ledger.location.url, *args])


def deliveries(ledger: Ledger) -> list[dict[str, Any]]:
    result = cli(ledger, "alerts", "--deliveries", "--json")
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def a_failure(ledger: Ledger, host: str = "web-1") -> None:
    s = Story()
    s.build("api", "2.4.1")
    s.plan(1, {(h, "api"): BUILD for h in ("web-1", "web-2", "web-3")})
    s.add("activation_failed", host=host, service="api", build_id=BUILD, generation=1, reason="x")
    s.record(ledger)


def critical(ledger: Ledger, host: str = "web-2") -> None:
    """A critical report without a ttl: it never goes stale, so it pages."""
    s = Story()
    s.add("health_reported", host=host, service="api", state="critical", ttl_s=None)
    s.record(ledger)


def collector(ledger: Ledger, url: str, clock: Clock) -> SlackCollector:
    """Messages due as soon as an alert fires (no group_wait)."""
    return slack_collector(ledger, url, clock, group_wait=0)


def reopened(ledger: Ledger) -> Ledger:
    """The same ledger, opened anew: what a restarted `ledger collect` gets."""
    return Ledger(locate(ledger.location.url))


def test_a_429_holds_the_message_until_retry_after(
    ledger: Ledger, slack: SlackStandIn, clock: Clock
) -> None:
    a_failure(ledger)
    slack.answer(rate_limited(30))
    c = collector(ledger, slack.url, clock)
    run_until_idle(c)
    assert [r.status for r in slack.requests] == [429]
    clock.advance(29.9)
    run_until_idle(c)
    assert len(slack.requests) == 1, "not before Retry-After"
    clock.advance(0.1)
    run_until_idle(c)
    first, retry = slack.requests
    assert retry.status == 200
    assert retry.message_id == first.message_id
    assert [d["status"] for d in deliveries(ledger)] == ["sent"]
    c.close()


def test_a_short_retry_after_is_waited_out_by_slack_sdk(
    ledger: Ledger, slack: SlackStandIn, clock: Clock
) -> None:
    a_failure(ledger)
    slack.answer(rate_limited(1))
    c = collector(ledger, slack.url, clock)
    assert c.step()
    first, retry = slack.requests
    assert (first.status, retry.status) == (429, 200)
    assert retry.at - first.at >= 1.0, "the retry came after Retry-After"
    assert [d["status"] for d in deliveries(ledger)] == ["sent"]
    c.close()


def test_server_errors_are_retried_with_backoff_then_delivered(
    ledger: Ledger, slack: SlackStandIn, clock: Clock
) -> None:
    a_failure(ledger)
    slack.answer(Answer(500), Answer(500))  # slack_sdk retries a 500 once, at once
    c = collector(ledger, slack.url, clock)
    run_until_idle(c)
    assert [r.status for r in slack.requests] == [500, 500]
    clock.advance(1.9)
    run_until_idle(c)
    assert len(slack.requests) == 2, "backing off"
    clock.advance(0.1)
    run_until_idle(c)
    assert [r.status for r in slack.requests] == [500, 500, 200]
    assert len({r.message_id for r in slack.requests}) == 1
    [row] = deliveries(ledger)
    assert (row["status"], row["attempts"]) == ("sent", 2)
    c.close()


def test_a_webhook_that_keeps_failing_is_given_up_and_reported(
    ledger: Ledger, slack: SlackStandIn, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    a_failure(ledger)
    slack.answer(*[Answer(502, "bad gateway")] * MAX_ATTEMPTS)  # then it would say 200
    c = collector(ledger, slack.url, clock)
    for _ in range(50):  # 50 minutes: well past the backoff, before repeat_interval
        run_until_idle(c)
        clock.advance(60)
    assert [r.status for r in slack.requests] == [502] * MAX_ATTEMPTS, "not retried forever"
    [row] = deliveries(ledger)
    assert row["status"] == "failed"
    assert row["error"] == f"gave up after {MAX_ATTEMPTS} attempts; last: HTTP 502 bad gateway"
    assert "NOT delivered" in caplog.text
    shown = cli(ledger, "alerts")
    assert "1 Slack message(s) not delivered" in shown.output
    assert "#1 failed" in shown.output
    critical(ledger)  # the next message is not held up by the one given up
    run_until_idle(c)
    assert [r.status for r in slack.requests][-1] == 200
    assert slack.requests[-1].message_id == 2
    c.close()


@pytest.mark.parametrize("wrong", ["bad payload", "deleted webhook"])
def test_a_client_error_is_permanent_and_reported(
    ledger: Ledger, slack: SlackStandIn, clock: Clock, wrong: str
) -> None:
    a_failure(ledger)
    url = slack.url
    if wrong == "bad payload":
        slack.answer(Answer(400, "invalid_payload"))
    else:
        url = url.replace(slack.token, "0" * len(slack.token))
    c = collector(ledger, url, clock)
    run_until_idle(c)
    clock.advance(3000)  # before repeat_interval
    run_until_idle(c)
    assert len(slack.requests) == 1, "a 4xx is not retried"
    [row] = deliveries(ledger)
    assert row["status"] == "failed"
    assert row["error"] in ("HTTP 400 invalid_payload", "HTTP 404 no_service")
    c.close()


def test_a_restarted_collector_sends_nothing_already_sent(
    ledger: Ledger, slack: SlackStandIn, clock: Clock
) -> None:
    a_failure(ledger)
    first = collector(ledger, slack.url, clock)
    run_until_idle(first)
    assert len(slack.delivered) == 1
    first.close()
    clock.advance(301)  # past group_interval, before repeat_interval
    again = collector(reopened(ledger), slack.url, clock)
    assert not again.step(), "nothing to read again, nothing to send again"
    clock.advance(600)
    run_until_idle(again)
    assert len(slack.requests) == 1
    a_failure_more = Story()
    a_failure_more.add(
        "activation_failed", host="web-2", service="api", build_id=BUILD, generation=1, reason="y"
    )
    a_failure_more.record(ledger)
    run_until_idle(again)
    assert len(slack.requests) == 2
    assert "2 of 3 hosts failed to activate api 2.4.1" in slack.requests[1].text
    again.close()


def test_a_message_queued_before_a_restart_is_delivered_once_after_it(
    ledger: Ledger, slack: SlackStandIn, clock: Clock
) -> None:
    a_failure(ledger)
    slack.answer(rate_limited(30))
    first = collector(ledger, slack.url, clock)
    run_until_idle(first)
    first.close()
    clock.advance(30)
    again = collector(reopened(ledger), slack.url, clock)
    run_until_idle(again)
    clock.advance(3000)
    run_until_idle(again)
    assert [r.status for r in slack.requests] == [429, 200]
    again.close()


@pytest.mark.parametrize("died", ["before the POST", "after the POST"])
def test_a_message_in_flight_when_the_collector_died_is_not_sent_again(
    ledger: Ledger,
    slack: SlackStandIn,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    died: str,
) -> None:
    a_failure(ledger)
    slack.answer(rate_limited(30))
    first = collector(ledger, slack.url, clock)
    run_until_idle(first)  # queued; Slack said to wait
    clock.advance(30)
    # What the collector does to deliver it, up to the moment the process is killed:
    message = first.outbox.next_due(clock())
    assert message is not None
    assert first.outbox.claim(message.id, clock())
    if died == "after the POST":
        assert first.webhook.post(message.payload, clock).status == "sent"
    sent_before = len(slack.requests)
    again = collector(reopened(ledger), slack.url, clock)
    clock.advance(3000)
    run_until_idle(again)
    assert len(slack.requests) == sent_before, "not sent again"
    assert "delivery unknown" in caplog.text
    [row] = deliveries(ledger)
    assert row["status"] == "delivery unknown"
    assert "#1 delivery unknown" in cli(ledger, "alerts").output
    again.close()
    first.close()


def test_no_answer_from_slack_means_delivery_unknown_and_no_retry(
    ledger: Ledger, slack: SlackStandIn, clock: Clock
) -> None:
    a_failure(ledger)
    slack.answer(DROP)
    c = collector(ledger, slack.url, clock)
    run_until_idle(c)
    clock.advance(3000)
    run_until_idle(c)
    assert len(slack.requests) == 1, "Slack may have shown it: never twice"
    [row] = deliveries(ledger)
    assert row["status"] == "delivery unknown"
    assert row["error"].startswith("no answer from Slack: RemoteDisconnected")
    c.close()


def test_pending_while_a_message_is_still_to_be_sent(
    ledger: Ledger, slack: SlackStandIn, clock: Clock
) -> None:
    c = slack_collector(ledger, slack.url, clock, group_wait=30)
    assert not c.pending(), "nothing yet"
    a_failure(ledger)
    run_until_idle(c)
    assert c.pending(), "the group waits out its group_wait"
    assert not slack.requests
    clock.advance(30)
    assert c.pending(), "the group is due"
    slack.answer(rate_limited(30), Answer(500), Answer(500))
    run_until_idle(c)
    assert [r.status for r in slack.requests] == [429]
    assert c.pending(), "waiting for Retry-After"
    clock.advance(30)
    run_until_idle(c)
    assert [r.status for r in slack.requests] == [429, 500, 500]
    assert c.pending(), "waiting for the retry's backoff"
    clock.advance(2)
    run_until_idle(c)
    assert [r.status for r in slack.requests][-1] == 200
    assert not c.pending(), "sent"
    clock.advance(60)
    assert not c.pending(), "an unchanged alert waits for repeat_interval: not pending"
    c.close()


@pytest.mark.parametrize("answer", [Answer(400, "invalid_payload"), DROP])
def test_not_pending_once_a_message_failed_or_its_delivery_is_unknown(
    ledger: Ledger, slack: SlackStandIn, clock: Clock, answer: Answer
) -> None:
    a_failure(ledger)
    slack.answer(answer)
    c = collector(ledger, slack.url, clock)
    run_until_idle(c)
    assert len(slack.requests) == 1
    assert [d["status"] for d in deliveries(ledger)] in (["failed"], ["delivery unknown"])
    assert not c.pending()
    c.close()


def test_the_webhook_url_never_shows_in_logs_errors_or_reprs(
    ledger: Ledger, slack: SlackStandIn, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    a_failure(ledger)
    critical(ledger)
    critical(ledger, "web-3")
    slack.answer(Answer(500), Answer(500), DROP, Answer(403, "action_prohibited"))
    c = collector(ledger, slack.url, clock)
    for _ in range(3):
        run_until_idle(c)
        clock.advance(10)
    slack.stop()  # and now nothing listens: connection refused
    critical(ledger, "web-1")
    clock.advance(300)
    run_until_idle(c)
    assert "HTTP 500" in caplog.text
    assert "delivery unknown" in caplog.text
    assert "HTTP 403 action_prohibited" in caplog.text
    assert "cannot reach Slack: ConnectionRefusedError" in caplog.text
    shown = [
        caplog.text,
        repr(c),
        repr(c.webhook),
        cli(ledger, "alerts", "--deliveries").output,
        json.dumps(deliveries(ledger)),
        cli(ledger, "alerts").output,
    ]
    for text in shown:
        assert slack.token not in text
    with pytest.raises(InvalidInput) as refused:
        slack_collector(ledger, f"ftp://{slack.token}", clock)
    assert slack.token not in str(refused.value)
    assert slack.token not in repr(SecretStr(slack.url))
    c.close()


# --- links to the dashboard (--dashboard-url) -----------------------------------------

DASHBOARD = "https://ledger.example.com/ops"


def linked_collector(ledger: Ledger, url: str, clock: Clock) -> SlackCollector:
    """A collector whose settings went through validation, with the dashboard's URL."""
    settings = load_settings(slack_webhook=url, dashboard_url=DASHBOARD, group_wait=0)
    return SlackCollector(ledger, settings, clock=clock)


def test_messages_link_to_the_generations_page_when_the_dashboard_url_is_set(
    ledger: Ledger, slack: SlackStandIn, clock: Clock
) -> None:
    a_failure(ledger)
    c = linked_collector(ledger, slack.url, clock)
    run_until_idle(c)
    [message] = slack.delivered
    link = f"<{DASHBOARD}/#/generation/production/1|production generation 1>"
    assert f"Dashboard: {link}" in message.text
    assert message.body["blocks"][-1]["elements"][0]["text"].startswith("See more:")
    [row] = deliveries(ledger)
    assert row["summary"] == message.body["text"], "the summary is the message's, unchanged"
    critical(ledger)
    clock.advance(1)
    run_until_idle(c)
    assert f"<{DASHBOARD}/#/env/production|production health>" in slack.delivered[-1].text
    c.close()


def test_advisory_messages_link_to_the_advisorys_page(
    ledger: Ledger, slack: SlackStandIn, clock: Clock
) -> None:
    s = advisory_fleet()
    heartbleed(s)
    s.record(ledger)
    c = linked_collector(ledger, slack.url, clock)
    run_until_idle(c)
    [message] = slack.delivered
    assert f"Dashboard: <{DASHBOARD}/#/advisory/{CVE}|{CVE}>" in message.text
    c.close()


def test_without_the_dashboard_url_messages_have_no_link(
    ledger: Ledger, slack: SlackStandIn, clock: Clock
) -> None:
    a_failure(ledger)
    c = collector(ledger, slack.url, clock)
    run_until_idle(c)
    [message] = slack.delivered
    assert "Dashboard:" not in message.text
    assert "#/generation" not in json.dumps(message.body)
    c.close()


def test_link_text_is_escaped_and_names_encoded() -> None:
    notice = GroupNotice("k", "pr-1 <b>&c", 7, (), ())
    assert dashboard_link("https://l.example/", notice) == (
        "<https://l.example/#/generation/pr-1%20%3Cb%3E%26c/7|pr-1 &lt;b&gt;&amp;c generation 7>"
    )


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ledger.example.com", "expected an http(s) URL"),
        ("ftp://ledger.example.com/", "expected an http(s) URL"),
        ("https://", "expected an http(s) URL"),
        ("https://ledger.example.com/#/alerts", "without a fragment"),
        ("https://ledger.example.com/a|b", "one of < > |"),
        ("https://ledger.example.com:99999/", "setting dashboard_url"),
    ],
)
def test_a_dashboard_url_that_is_not_a_web_address_is_refused(url: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(says)):
        load_settings(dashboard_url=url)
    assert load_settings(dashboard_url="http://10.0.0.1:8080").dashboard_url == (
        "http://10.0.0.1:8080/"
    )


def test_ledger_collect_links_to_the_dashboard_given_in_the_environment(
    ledger: Ledger, slack: SlackStandIn
) -> None:
    a_failure(ledger)
    environment = {"LEDGER_DASHBOARD_URL": DASHBOARD, "LEDGER_GROUP_WAIT": "0"}
    result = CliRunner().invoke(
        root,
        ["--ledger", ledger.location.url, "collect", "--slack-webhook", slack.url, "--once"],
        env=environment,
    )
    assert result.exit_code == 0, result.output
    [message] = slack.delivered
    assert f"<{DASHBOARD}/#/generation/production/1|production generation 1>" in message.text


def test_ledger_collect_refuses_a_bad_dashboard_url(ledger: Ledger, slack: SlackStandIn) -> None:
    result = cli(ledger, "collect", "--slack-webhook", slack.url, "--dashboard-url", "nope",
                 "--once")  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "dashboard_url" in result.output
    assert "expected an http(s) URL" in result.output
    assert slack.requests == []
