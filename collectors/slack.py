"""Alerts to Slack: the collector that follows the ledger into the alert state and
delivers the messages it calls for to one incoming webhook — each message at most
once. It wires together:

- ``collectors.rules``: which facts alert; ``collectors.alerts``: the alert state, as
  facts change it (``collectors.exposure_state``: what advisories expose);
  ``collectors.silences``: what mutes alerts;
- ``collectors.grouping``: when a group of alerts becomes a message;
  ``collectors.messages``: what the message says, in Block Kit;
- ``collectors.outbox``: the messages to send, durably, at most once;
  ``collectors.webhook``: one POST through slack_sdk, the webhook URL kept secret.

With the dashboard's public URL (``--dashboard-url``), each message links to the page
of what it is about: the generation's (``URL/#/generation/ENV/N``), the advisory's
(``URL/#/advisory/ID``), or the env's for health alerts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from collectors.alert_tables import create_tables
from collectors.alerts import FOLLOWED_KINDS, AlertBook
from collectors.exposure_state import AdvisoryWatch, ExposureBook, cpe_map_of
from collectors.exposure_state import create_tables as create_exposure_tables
from collectors.fleet import Fleet
from collectors.follower import Follower
from collectors.grouping import AlertGroups, Timing
from collectors.outbox import MAX_ATTEMPTS, PENDING, SENT, UNKNOWN, Message, Outbox
from collectors.rules import load_rules
from collectors.settings import CollectSettings
from collectors.webhook import SEND_INTERVAL, Outcome, SlackWebhook
from ledger.application import Ledger
from ledger.errors import InvalidInput
from ledger.store import StoreLocation
from projections.runner import Views

log = logging.getLogger("ledger.collect.slack")


class SlackCollector:
    """Follows the ledger into the alert state, and delivers the messages it calls for
    to Slack (see this module's docstring)."""

    name = "slack"

    def __init__(
        self,
        ledger: Ledger,
        settings: CollectSettings,
        *,
        views_location: StoreLocation | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if settings.slack_webhook is None:
            raise InvalidInput("no Slack webhook: give --slack-webhook or LEDGER_SLACK_WEBHOOK")
        self.clock = clock
        self.webhook = SlackWebhook(settings.slack_webhook)
        rules = load_rules(settings.rules)
        self.follower = Follower(ledger, self.name, kinds=FOLLOWED_KINDS)
        self.views = Views(ledger, views_location)
        timing = Timing(settings.group_wait, settings.group_interval, settings.repeat_interval)
        fleet = Fleet(self.views)
        exposure = ExposureBook(self.name, self.views, cpe_map_of(settings))
        self.book = AlertBook(rules, fleet, exposure, AdvisoryWatch(ledger))
        self.groups = AlertGroups(fleet, timing)
        self.store = self.follower.store
        self.outbox = Outbox(self.store, dashboard_url=settings.dashboard_url)
        create_tables(self.store)
        create_exposure_tables(self.store)
        self.outbox.create_tables()
        for row in self.outbox.recover(clock()):
            log.error(
                "message #%d (%s) was being sent when the collector stopped: delivery "
                "unknown, not sent again; check the Slack channel",
                row["id"],
                row["group_key"],
            )
        self._next_post_at = 0.0
        self._unfinished: tuple[Message, Outcome, float] | None = None

    def __repr__(self) -> str:
        return f"SlackCollector({self.follower.ledger.location.display}, webhook=<secret>)"

    def step(self) -> bool:
        busy = self._follow()
        busy = self._evaluate() or busy
        return self._deliver() or busy

    def pending(self) -> bool:
        """Whether something will still be sent without new facts: a message in the
        outbox (due now, or waiting for a retry's backoff or a 429's Retry-After), or a
        group due now or waiting out its ``group_wait``. Messages sent, failed or of
        unknown delivery are done; a group held back by ``group_interval`` or
        ``repeat_interval`` is not pending (see ``AlertGroups.pending``)."""
        if self.outbox.pending():
            return True
        now = self.clock()
        with self.store.transaction(commit=False) as tx:
            return self.groups.pending(tx, now)

    def _follow(self) -> bool:
        """Facts after the position → alert state, confirmed in one transaction. The
        views (manifests, builds) are brought at least as far as the facts read."""
        self.views.catch_up()
        ready = min(self.views.positions().values())
        facts = [
            f for f in self.follower.read(self.follower.position()) if f.notification_id <= ready
        ]
        if not facts:
            return False
        now = self.clock()
        self.follower.confirm(
            facts[-1].notification_id, also=lambda tx: self.book.apply(tx, facts, now)
        )
        return True

    def _evaluate(self) -> bool:
        now = self.clock()
        with self.store.transaction(commit=False) as tx:
            if not self.groups.due(tx, now):
                return False
        with self.store.transaction(commit=True) as tx:
            queued = self.groups.evaluate(tx, now, self.outbox.enqueue)
        for message_id in queued:
            log.info("queued alert message #%d", message_id)
        return bool(queued)

    def _deliver(self) -> bool:
        """Send the oldest due message, if the rate limit allows one now."""
        if self._unfinished is not None:  # the database failed after the last POST
            self.outbox.finish(*self._unfinished)
            self._unfinished = None
        now = self.clock()
        if now < self._next_post_at:
            return False
        message = self.outbox.next_due(now)
        if message is None or not self.outbox.claim(message.id, now):
            return False
        outcome = self.webhook.post(message.payload, self.clock)
        done = self.clock()
        self._next_post_at = done + SEND_INTERVAL
        self._unfinished = (message, outcome, done)
        status = self.outbox.finish(message, outcome, done)
        self._unfinished = None
        _report(message, outcome, status)
        return True

    def close(self) -> None:
        self.follower.close()
        self.views.recorder.datastore.close()


def _report(message: Message, outcome: Outcome, status: str) -> None:
    what = f"message #{message.id} ({message.group_key})"
    if status == SENT:
        log.info("sent %s", what)
    elif status == PENDING and outcome.retry_after is not None:
        log.warning("%s: %s; waiting before sending it", what, outcome.error)
    elif status == PENDING:
        log.warning(
            "%s: %s (attempt %d of %d); retrying with backoff",
            what,
            outcome.error,
            message.attempts + 1,
            MAX_ATTEMPTS,
        )
    elif status == UNKNOWN:
        log.error("%s: delivery unknown (%s); not sent again", what, outcome.error)
    else:
        log.error(
            "%s NOT delivered: %s; see `ledger alerts --deliveries`",
            what,
            outcome.error if outcome.status == "failed" else f"gave up: {outcome.error}",
        )
