"""``ledger doctor`` against real stores and services: a healthy ledger, one not
initialised, views behind, a Kafka broker with and without the topics, Riemann up and
down, and a Slack webhook that is checked without a request and never printed."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.doctor import doctor
from cli.session import Session
from ledger.application import Ledger
from ledger.store import locate
from projections.runner import Views
from tests.factories import make_event
from tests.services.kafka import (
    KafkaBroker,
    create_topic,
    free_port,
    kafka_broker,  # noqa: F401 (the `kafka` fixture)
)
from tests.services.riemann import (
    RiemannReceiver,
    riemann_fixture,  # noqa: F401 (the `riemann` fixture)
)
from tests.services.slack import (
    SlackStandIn,
    slack_fixture,  # noqa: F401 (the `slack` fixture)
)

TOPICS = ("ledger.events", "ledger.ingest", "ledger.ingest.dead-letter")
UNSET = dict.fromkeys(
    (
        "LEDGER_KAFKA",
        "LEDGER_RIEMANN",
        "LEDGER_RIEMANN_TLS",
        "LEDGER_SLACK_WEBHOOK",
        "LEDGER_CONFIG",
        "LEDGER_VIEWS_URL",
    )
)


def run(url: str, *args: str, **env: str) -> Result:
    return CliRunner().invoke(
        doctor, [*args], obj=Session(url=url, debug=False), env={**UNSET, **env}
    )


def checks(url: str, *args: str, **env: str) -> tuple[int, dict[str, dict[str, Any]], str]:
    """The exit code, each check's row by name, and the JSON text."""
    result = run(url, "--json", *args, **env)
    rows = json.loads(result.stdout)
    return result.exit_code, {row["check"]: row for row in rows}, result.stdout


def append(ledger: Ledger, count: int) -> None:
    ledger.append(
        [make_event("health_reported", host=f"web-{i:04}", state="ok") for i in range(count)]
    )


def caught_up(ledger: Ledger) -> None:
    views = Views(ledger)
    views.catch_up()
    views.recorder.datastore.close()


def test_a_healthy_ledger_is_all_ok(ledger: Ledger, ledger_url: str) -> None:
    append(ledger, 5)
    caught_up(ledger)
    code, rows, _ = checks(ledger_url, "--verify")
    assert code == 0
    assert rows["store"]["status"] == "ok"
    assert "head at 5" in rows["store"]["finding"]
    assert rows["chain"]["status"] == "ok"
    assert rows["views"]["status"] == "ok"
    for name in ("kafka", "riemann", "slack"):
        assert rows[name]["status"] == "not configured"
    assert all(row["status"] in ("ok", "not configured") for row in rows.values())

    table = run(ledger_url)
    assert table.exit_code == 0
    assert "store" in table.stdout
    assert "Traceback" not in table.output


def test_an_uninitialised_ledger_fails_and_says_ledger_init(tmp_path: Path) -> None:
    code, rows, _ = checks(str(tmp_path / "nothing.db"))
    assert code == 1
    assert rows["store"]["status"] == "failed"
    assert "ledger init" in rows["store"]["fix"]
    assert rows["views"]["status"] == "skipped"

    table = run(str(tmp_path / "nothing.db"))
    assert table.exit_code == 1
    assert "ledger init" in table.stdout
    assert "Traceback" not in table.output


def test_an_unreachable_postgres_fails_with_a_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTGRES_CONNECT_TIMEOUT", "2")
    url = f"postgresql://ledger@127.0.0.1:{free_port()}/ledger"
    code, rows, _ = checks(url)
    assert code == 1
    assert rows["store"]["status"] == "failed"
    assert "LEDGER_URL" in rows["store"]["fix"]


@pytest.mark.postgres
def test_postgres_views_behind_are_a_warning(postgres_url: str) -> None:
    ledger = Ledger(locate(postgres_url), create=True)
    try:
        append(ledger, 3)
        caught_up(ledger)
        append(ledger, 4)
    finally:
        ledger.close()
    code, rows, _ = checks(postgres_url)
    assert code == 0
    assert rows["views"]["status"] == "warning"
    assert "4 events behind" in rows["views"]["finding"]
    assert "ledger project --follow" in rows["views"]["fix"]


def test_sqlite_views_behind_catch_up_on_the_next_query(sqlite_url: str) -> None:
    ledger = Ledger(locate(sqlite_url), create=True)
    try:
        append(ledger, 3)
    finally:
        ledger.close()
    code, rows, _ = checks(sqlite_url)
    assert code == 0
    assert rows["views"]["status"] == "ok"
    assert "catch up on the next query" in rows["views"]["finding"]


def test_kafka_topics_missing_then_present(
    ledger: Ledger, ledger_url: str, kafka: KafkaBroker
) -> None:
    append(ledger, 2)
    caught_up(ledger)
    code, rows, _ = checks(ledger_url, "--kafka", kafka.bootstrap)
    assert code == 1
    assert rows["kafka"]["status"] == "failed"
    for topic in TOPICS:
        assert f"--create --topic {topic}" in rows["kafka"]["fix"]
    assert "kafka-topics.sh" in rows["kafka"]["fix"]
    assert rows["kafka publisher"]["status"] == "warning"

    for topic in TOPICS:
        create_topic(kafka.bootstrap, topic)
    code, rows, _ = checks(ledger_url, LEDGER_KAFKA=kafka.bootstrap)
    assert rows["kafka"]["status"] == "ok", rows["kafka"]
    assert code == 0


def test_kafka_unreachable_fails_within_the_timeout(ledger: Ledger, ledger_url: str) -> None:
    started = time.monotonic()
    code, rows, _ = checks(ledger_url, "--kafka", f"127.0.0.1:{free_port()}", "--timeout", "1")
    assert time.monotonic() - started < 10
    assert code == 1
    assert rows["kafka"]["status"] == "failed"
    assert "LEDGER_KAFKA" in rows["kafka"]["fix"]


def test_riemann_up_and_down(ledger: Ledger, ledger_url: str, riemann: RiemannReceiver) -> None:
    code, rows, _ = checks(ledger_url, "--riemann", riemann.address)
    assert rows["riemann"]["status"] == "ok", rows["riemann"]
    assert rows["riemann collector"]["status"] == "ok"  # an empty ledger: nothing to send
    assert code == 0
    assert riemann.count() == 0

    code, rows, _ = checks(ledger_url, LEDGER_RIEMANN=f"127.0.0.1:{free_port()}")
    assert code == 1
    assert rows["riemann"]["status"] == "failed"
    assert "Riemann is running" in rows["riemann"]["fix"]


def test_settings_come_from_the_config_file(
    ledger: Ledger, ledger_url: str, riemann: RiemannReceiver, tmp_path: Path
) -> None:
    config = tmp_path / "collect.toml"
    config.write_text(f'riemann = "{riemann.address}"\n')
    code, rows, _ = checks(ledger_url, "--config", str(config))
    assert rows["riemann"]["status"] == "ok"
    assert code == 0


def test_slack_is_checked_without_a_request_and_never_shown(
    ledger: Ledger, ledger_url: str, slack: SlackStandIn
) -> None:
    append(ledger, 2)
    caught_up(ledger)
    for args, env in (
        (("--slack-webhook", slack.url), {}),
        ((), {"LEDGER_SLACK_WEBHOOK": slack.url}),
    ):
        code, rows, text = checks(ledger_url, *args, **env)
        table = run(ledger_url, *args, **env)
        assert rows["slack"]["status"] == "warning"  # http://, not https://
        assert "slack outbox" in rows
        assert "slack collector" in rows
        assert code == 0
        for printed in (text, table.output):
            assert slack.url not in printed
            assert slack.token not in printed
    assert slack.requests == []


def test_slack_webhook_shapes(ledger: Ledger, ledger_url: str) -> None:
    real = "https://hooks.slack.com/services/T0AAA/B0BBB/abcdefsecret"
    code, rows, text = checks(ledger_url, LEDGER_SLACK_WEBHOOK=real)
    assert rows["slack"]["status"] == "ok"
    assert code == 0
    assert "abcdefsecret" not in text
    code, rows, _ = checks(ledger_url, LEDGER_SLACK_WEBHOOK="not a url")
    assert rows["slack"]["status"] == "failed"
    assert code == 1


def test_api_tokens(ledger: Ledger, ledger_url: str) -> None:
    from api.tokens import create_tables, create_token, revoke_token
    from projections.store import open_views

    store = open_views(ledger.location)
    try:
        create_tables(store)
        code, rows, _ = checks(ledger_url)
        assert rows["api tokens"]["status"] == "warning"
        assert "ledger token create" in rows["api tokens"]["fix"]
        assert code == 0
        create_token(store, "ci", "writer", by="test")
        create_token(store, "old", "reader", by="test")
        revoke_token(store, "old", by="test")
        _, rows, _ = checks(ledger_url)
        assert rows["api tokens"]["status"] == "ok"
        assert rows["api tokens"]["finding"] == "1 active: 1 writer"
    finally:
        store.datastore.close()
