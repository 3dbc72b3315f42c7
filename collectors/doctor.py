"""The checks behind ``ledger doctor``: the store, the views, Kafka, Riemann, Slack and
the API tokens, each ending in a ``Finding`` — ok, warning or failed, what was found,
and, when not ok, how to fix it.

Nothing here changes what it looks at beyond what opening it does (the views' and the
tracking tables are created when missing, as every command does): no event is
published, no Slack message sent (the webhook is only looked at, never POSTed to), no
topic created. Each network check has a timeout of its own.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import psycopg
from eventsourcing.persistence import PersistenceError
from kafka import KafkaConsumer
from kafka.errors import KafkaError

from api.tokens import ROLES, tokens
from collectors.alerts import FOLLOWED_KINDS
from collectors.follower import tracking_name
from collectors.kafka_client import create_topic_command
from collectors.settings import CollectSettings
from collectors.tls import client_context
from ledger.application import Ledger
from ledger.domain import CHAIN_ID, TOPICS
from ledger.errors import InvalidInput, StoreNotInitialised, StoreUnavailable
from ledger.store import StoreLocation
from projections.runner import Views
from projections.store import AnyViewRecorder, open_views

Status = Literal["ok", "warning", "failed", "not configured", "skipped"]
OK: Status = "ok"
WARNING: Status = "warning"
FAILED: Status = "failed"
NOT_CONFIGURED: Status = "not configured"
SKIPPED: Status = "skipped"

PUBLISH_TOPIC = "ledger.events"
INGEST_TOPIC = "ledger.ingest"
DEAD_LETTER_SUFFIX = ".dead-letter"
PUBLISHER = "kafka"
LAG_CAP = 100_000
"""Count a collector's unread events up to this many (``100000+`` beyond)."""

DATABASE_ERRORS = (StoreUnavailable, PersistenceError, psycopg.Error, OSError)


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    finding: str
    fix: str = ""

    def row(self) -> dict[str, Any]:
        return asdict(self)


def failed(findings: list[Finding]) -> bool:
    return any(f.status == FAILED for f in findings)


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines() or [type(error).__name__])[0]


# --- the store ------------------------------------------------------------------------


def check_store(open_ledger: Callable[[], Ledger], url_hint: str) -> tuple[Finding, Ledger | None]:
    """Whether the ledger opens, and its head. ``url_hint`` names where the URL is set."""
    try:
        ledger = open_ledger()
        position, head_hash = ledger.head()
    except StoreNotInitialised as error:
        return Finding("store", FAILED, first_line(error), "run `ledger init`"), None
    except InvalidInput as error:
        return Finding("store", FAILED, first_line(error), f"correct {url_hint}"), None
    except DATABASE_ERRORS as error:
        return (
            Finding(
                "store",
                FAILED,
                f"the ledger store cannot be reached: {first_line(error)}",
                f"check that the database server is running and that {url_hint} points at it",
            ),
            None,
        )
    where = f"{ledger.location.display} ({ledger.location.backend})"
    if position == 0:
        return Finding("store", OK, f"{where}: empty, no events yet"), ledger
    return Finding("store", OK, f"{where}: head at {position} ({head_hash[:12]}…)"), ledger


def check_chain(ledger: Ledger, progress: Callable[[int], None] | None = None) -> Finding:
    """The whole chain re-checked (``ledger verify``)."""
    result = ledger.verify(progress=progress)
    if result.intact:
        return Finding("chain", OK, f"{result.events} events verified, the chain is intact")
    return Finding(
        "chain",
        FAILED,
        f"the chain breaks at position {result.bad_position}: {result.reason}",
        "treat the ledger as tampered with: restore it (`ledger restore`) from a copy "
        "verified earlier and find out who wrote to the database",
    )


# --- the views ------------------------------------------------------------------------


def check_views(ledger: Ledger, location: StoreLocation | None) -> Finding:
    """The slowest view's lag behind the ledger's head."""
    try:
        views = Views(ledger, location)
    except DATABASE_ERRORS as error:
        return Finding(
            "views",
            FAILED,
            f"the views' database cannot be reached: {first_line(error)}",
            "check that it is running and that --views / LEDGER_VIEWS_URL points at it",
        )
    try:
        status = views.status()
    finally:
        views.recorder.datastore.close()
    lag = max((s.lag for s in status), default=0)
    where = f"{len(status)} views ({views.location.backend})"
    if lag <= 0:
        return Finding("views", OK, f"{where}, up to date")
    behind = ", ".join(sorted(s.name for s in status if s.lag == lag))
    if views.embedded:
        return Finding(
            "views",
            OK,
            f"{where}, {lag} events behind ({behind}): SQLite views catch up on the next query",
        )
    return Finding(
        "views",
        WARNING,
        f"{where}, {lag} events behind ({behind})",
        "run `ledger project --follow` as a service (or `ledger project` once)",
    )


# --- the collectors' positions --------------------------------------------------------


def collector_lag(
    ledger: Ledger, store: AnyViewRecorder, name: str, kinds: tuple[str, ...] = ()
) -> tuple[int, int, bool]:
    """(confirmed notification id, facts not yet read, whether that count is capped)."""
    position = store.max_tracking_id(tracking_name(name)) or 0
    topics = tuple(TOPICS[kind] for kind in sorted(set(kinds)))
    unread, start, capped = 0, position, False
    while True:
        batch = ledger.recorder.select_notifications(
            start, 1000, topics=topics, inclusive_of_start=False
        )
        unread += sum(1 for n in batch if n.originator_id == CHAIN_ID)
        if len(batch) < 1000:
            break
        if unread >= LAG_CAP:
            capped = True
            break
        start = batch[-1].id
    return position, unread, capped


def _lag_finding(
    check: str, position: int, unread: int, capped: bool, what: str, fix: str
) -> Finding:
    if unread == 0:
        return Finding(check, OK, f"{what}: up to date")
    count = f"{unread}+" if capped else str(unread)
    if position == 0:
        return Finding(
            check, WARNING, f"{what}: has not confirmed anything yet ({count} to do)", fix
        )
    return Finding(check, WARNING, f"{what}: {count} events behind", fix)


# --- Kafka ----------------------------------------------------------------------------


def check_kafka(
    bootstrap: str | None,
    topics: dict[str, str],
    timeout: float,
    ledger: Ledger | None,
    store: AnyViewRecorder | None,
) -> list[Finding]:
    """The broker answers, ``topics`` (topic → what uses it) exist, the publisher's lag."""
    if not bootstrap:
        return [Finding("kafka", NOT_CONFIGURED, "no --kafka / LEDGER_KAFKA")]
    findings = [_kafka_topics(bootstrap, topics, timeout)]
    if ledger is not None and store is not None:
        position, unread, capped = collector_lag(ledger, store, PUBLISHER)
        findings.append(
            _lag_finding(
                "kafka publisher",
                position,
                unread,
                capped,
                "the publisher (`ledger publish`)",
                f"is `ledger publish --kafka {bootstrap}` running? start it (as a service)",
            )
        )
    return findings


def _kafka_topics(bootstrap: str, topics: dict[str, str], timeout: float) -> Finding:
    timeout_ms = max(200, int(timeout * 1000))
    consumer: Any = None
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap.split(","),
            client_id="deploy-ledger-doctor",
            group_id=None,
            enable_auto_commit=False,
            allow_auto_create_topics=False,
            request_timeout_ms=timeout_ms,
            bootstrap_timeout_ms=timeout_ms,
            fetch_max_wait_ms=min(500, timeout_ms // 2),
            reconnect_backoff_max_ms=min(1000, timeout_ms),
        )
        known = consumer.topics()
    except (KafkaError, OSError) as error:
        return Finding(
            "kafka",
            FAILED,
            f"no answer from the broker at {bootstrap} in {timeout:g} s: {first_line(error)}",
            "check that Kafka is running and that --kafka / LEDGER_KAFKA lists its "
            "bootstrap servers (HOST:PORT,…)",
        )
    finally:
        if consumer is not None:
            consumer.close()
    missing = [topic for topic in topics if topic not in known]
    if not missing:
        return Finding("kafka", OK, f"{bootstrap} answers; topics {', '.join(topics)} exist")
    names = ", ".join(f"{topic} ({topics[topic]})" for topic in missing)
    return Finding(
        "kafka",
        FAILED,
        f"{bootstrap} answers, but there is no topic {names}",
        " && ".join(create_topic_command(bootstrap, topic) for topic in missing),
    )


# --- Riemann --------------------------------------------------------------------------


def check_riemann(
    settings: CollectSettings | None,
    timeout: float,
    ledger: Ledger | None,
    store: AnyViewRecorder | None,
) -> list[Finding]:
    """A TCP (or TLS) connection to Riemann, and the Riemann collector's lag."""
    if settings is None or settings.riemann_address is None:
        return [Finding("riemann", NOT_CONFIGURED, "no --riemann / LEDGER_RIEMANN")]
    host, port = settings.riemann_address
    findings = [_riemann_connects(settings, host, port, timeout)]
    if ledger is not None and store is not None:
        position, unread, capped = collector_lag(ledger, store, "riemann")
        findings.append(
            _lag_finding(
                "riemann collector",
                position,
                unread,
                capped,
                "the Riemann collector (`ledger collect`)",
                f"is `ledger collect --riemann {settings.riemann}` running? start it "
                "(as a service)",
            )
        )
    return findings


def _riemann_connects(settings: CollectSettings, host: str, port: int, timeout: float) -> Finding:
    address = settings.riemann
    fix = (
        f"check that Riemann is running and listening on {address} (TCP), and that "
        "--riemann / LEDGER_RIEMANN names it"
    )
    try:
        context = (
            client_context(settings.riemann_ca, settings.riemann_cert, settings.riemann_key)
            if settings.riemann_tls
            else None
        )
    except InvalidInput as error:
        return Finding("riemann", FAILED, str(error), "check riemann_ca, riemann_cert, riemann_key")
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            if context is None:
                return Finding("riemann", OK, f"{address} accepts TCP connections")
            sock.settimeout(timeout)
            with context.wrap_socket(sock, server_hostname=host):
                return Finding("riemann", OK, f"{address} accepts TLS connections")
    except ssl.SSLError as error:
        return Finding(
            "riemann",
            FAILED,
            f"the TLS handshake with {address} failed: {first_line(error)}",
            "check the CA bundle (riemann_ca), the client certificate and key, and that "
            "Riemann's certificate names the host",
        )
    except TimeoutError:
        return Finding("riemann", FAILED, f"no answer from {address} in {timeout:g} s", fix)
    except OSError as error:
        reason = error.strerror or first_line(error)
        return Finding("riemann", FAILED, f"cannot connect to {address}: {reason}", fix)


# --- Slack ----------------------------------------------------------------------------


def check_slack(
    settings: CollectSettings | None, ledger: Ledger | None, store: AnyViewRecorder | None
) -> list[Finding]:
    """The webhook looks like one (never POSTed to, never shown), the collector's lag and
    its undelivered messages."""
    if settings is None or settings.slack_webhook is None:
        return [Finding("slack", NOT_CONFIGURED, "no --slack-webhook / LEDGER_SLACK_WEBHOOK")]
    findings = [webhook_finding(settings.slack_webhook.get_secret_value())]
    if ledger is not None and store is not None:
        position, unread, capped = collector_lag(ledger, store, "slack", FOLLOWED_KINDS)
        findings.append(
            _lag_finding(
                "slack collector",
                position,
                unread,
                capped,
                "the Slack collector (`ledger collect`)",
                "is `ledger collect` running with LEDGER_SLACK_WEBHOOK? start it (as a service)",
            )
        )
        findings.append(outbox_finding(store))
    return findings


def webhook_finding(url: str) -> Finding:
    """What the URL looks like, without ever saying what it is (it is a secret)."""
    secret = "(it is not shown: it is a secret)"
    parts = urlsplit(url)
    fix = "set LEDGER_SLACK_WEBHOOK to the webhook's URL from Slack (https://hooks.slack.com/…)"
    if parts.scheme not in ("https", "http") or not parts.netloc:
        return Finding("slack", FAILED, f"the webhook is not an https:// URL {secret}", fix)
    if parts.scheme == "http":
        return Finding(
            "slack",
            WARNING,
            f"the webhook is http://, not https://: its secret travels in clear {secret}",
            fix,
        )
    segments = [s for s in parts.path.split("/") if s]
    looks_like_slack = (
        (parts.hostname or "").endswith("slack.com")
        and len(segments) == 4
        and segments[0] == "services"
    )
    if not looks_like_slack:
        return Finding(
            "slack",
            WARNING,
            f"the webhook is https, but not of the form hooks.slack.com/services/T…/B…/… "
            f"(fine for a relay) {secret}",
            fix,
        )
    return Finding("slack", OK, "the webhook is an https Slack incoming webhook (not sent to)")


def outbox_finding(store: AnyViewRecorder) -> Finding:
    if not table_exists(store, "slack_outbox"):
        return Finding("slack outbox", OK, "no messages queued yet")
    with store.transaction(commit=False) as tx:
        rows = tx.query("SELECT status, COUNT(*) AS n FROM slack_outbox GROUP BY status")
    counts = {row["status"]: int(row["n"]) for row in rows}
    problems = counts.get("failed", 0) + counts.get("unknown", 0)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "empty"
    if problems:
        return Finding(
            "slack outbox",
            WARNING,
            f"{problems} message(s) not delivered ({summary})",
            "see `ledger alerts --deliveries` for why; check the webhook in Slack",
        )
    return Finding("slack outbox", OK, summary)


# --- API tokens -----------------------------------------------------------------------


def check_tokens(store: AnyViewRecorder | None) -> Finding:
    fix = "`ledger serve` will refuse every request: `ledger token create NAME --role reader`"
    if store is None:
        return Finding("api tokens", SKIPPED, "the store did not open")
    if not table_exists(store, "api_tokens"):
        return Finding("api tokens", NOT_CONFIGURED, "no tokens created yet (for `ledger serve`)")
    active = tokens(store)
    if not active:
        return Finding("api tokens", WARNING, "no active API tokens", fix)
    per_role = {role: sum(1 for t in active if t.role == role) for role in ROLES}
    text = ", ".join(f"{n} {role}" for role, n in per_role.items() if n)
    return Finding("api tokens", OK, f"{len(active)} active: {text}")


def table_exists(store: AnyViewRecorder, table: str) -> bool:
    with store.transaction(commit=False) as tx:
        if store.postgres:
            rows = tx.query("SELECT to_regclass(?) IS NOT NULL AS found", (table,))
            return bool(rows[0]["found"])
        rows = tx.query(
            "SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        )
        return bool(rows)


@contextmanager
def collector_store(ledger: Ledger | None) -> Iterator[AnyViewRecorder | None]:
    """The ledger's own database as the collectors see it (``None`` without a ledger)."""
    if ledger is None:
        yield None
        return
    store = open_views(ledger.location)
    try:
        yield store
    finally:
        store.datastore.close()
