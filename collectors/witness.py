"""A witness: follows the published checkpoints and alerts on a split view.

``ledger publish`` puts each signed checkpoint the ledger makes on a companion topic
(``<topic>.checkpoints``, one partition: its order is the order they were made in). A
witness on another machine reads that topic, refuses every note whose signature does
not verify with the ledger's public key, and checks each new checkpoint against the
last good one it saw (``judge``):

- a larger size: consistent only when an RFC 9162 consistency proof from the old tree
  to the new one verifies against the two signed roots. The proof comes from the
  ledger's API (``ApiProofs``: ``GET /api/proof/consistency``; nothing in the answer
  but the hashes is trusted) or from a replica ``ledger restore`` keeps beside the
  witness (``ReplicaProofs``: the replica's own tree, built from the published events;
  beside a replica even the first checkpoint seen must have the replica's root);
- the same size: the same root (a re-sent checkpoint), or a split view;
- a smaller size: the log went back, a split view (a truncated or rolled-back ledger).

A split view, or a note whose signature fails, is kept in the witness's state file with
its offset and the note (one atomic write per batch of records judged), and only then
delivered to Riemann (an event with state ``critical``; ``warning`` for a refused note)
and Slack, at least once, until both took it (or Slack refused it for good): an alert
found is never lost to a crash or an outage of a sink. The last good checkpoint never
moves to a bad one, so every later checkpoint is still checked against what was good.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from pydantic import SecretStr

from collectors.kafka_client import KafkaUnavailable, MissingTopic
from collectors.riemann import RiemannError, RiemannSink
from collectors.webhook import SlackWebhook
from ledger.application import Ledger
from ledger.checkpoint import Checkpoint, Verifier, open_checkpoint
from ledger.errors import InvalidInput, StoreUnavailable
from ledger.merkle import EMPTY_ROOT, ProofError, verify_consistency

log = logging.getLogger("ledger.witness")

SERVICE = "ledger witness"
"""The Riemann service of the witness's alerts (host: the checkpoints' origin)."""
HTTP_TIMEOUT = 10.0
POLL_MS = 500

Status = Literal["first", "consistent", "same", "split", "refused", "waiting"]


class ProofUnavailable(StoreUnavailable):
    """The ledger's API could not be asked for a proof (down, or an error): try again."""


class NotYetProvable(Exception):
    """The proof source does not hold the new size yet (a replica behind): wait."""


class ProofRefused(Exception):
    """The ledger refuses to prove what its key signed: it kept no checkpoint of that
    size (404), or its tree no longer matches its own checkpoint (409). Either way the
    ledger shows something other than what the topic carries: a split view."""


class ProofSource(Protocol):
    def consistency(self, old_size: int, new_size: int) -> Sequence[bytes]:
        """The consistency proof's hashes from ``old_size`` to ``new_size``; raises
        ``NotYetProvable`` when the source is behind."""
        ...

    def root(self, size: int) -> bytes | None:
        """The root of the tree of ``size`` as the source computes it on its own, or
        ``None`` when it has no tree of its own (the API: the ledger under watch)."""
        ...


@dataclass(frozen=True)
class Seen:
    """A checkpoint the witness accepted: its size, root and signed note."""

    size: int
    root: bytes
    note: str


class Verdict(NamedTuple):
    status: Status
    reason: str
    checkpoint: Checkpoint | None = None


def judge(last: Seen | None, new: Checkpoint, proofs: ProofSource) -> Verdict:
    """Whether ``new`` (its signature already verified) is consistent with ``last``."""
    if last is None:
        own = proofs.root(new.size)
        if own is not None and own != new.root:
            return Verdict(
                "split",
                f"size {new.size} was signed with root {new.root.hex()}, but the published "
                f"events give {own.hex()}",
                new,
            )
        return Verdict("first", f"first checkpoint seen: size {new.size}", new)
    if new.size < last.size:
        return Verdict(
            "split",
            f"the log went back: size {new.size} after size {last.size} was signed "
            "(truncated or rolled back)",
            new,
        )
    if new.size == last.size:
        if new.root == last.root:
            return Verdict("same", f"size {new.size} again, same root", new)
        return Verdict(
            "split",
            f"two roots signed for size {new.size}: {last.root.hex()} and {new.root.hex()}",
            new,
        )
    if last.size == 0:
        if last.root != EMPTY_ROOT:
            return Verdict("split", "a checkpoint of size 0 was signed with a non-empty root", new)
        return Verdict("consistent", f"size 0 -> {new.size}", new)
    try:
        hashes = proofs.consistency(last.size, new.size)
    except ProofRefused as error:
        return Verdict("split", f"no proof of size {last.size} -> {new.size}: {error}", new)
    try:
        verify_consistency(last.size, new.size, last.root, new.root, hashes)
    except ProofError as error:
        return Verdict(
            "split",
            f"size {new.size} is not an extension of size {last.size}: the consistency "
            f"proof fails ({error})",
            new,
        )
    return Verdict("consistent", f"size {last.size} -> {new.size}: consistency proof verified", new)


# --- where proofs come from -----------------------------------------------------------


class ApiProofs:
    """Consistency proofs from the ledger's HTTP API (a reader's token). Only the hashes
    of the answer are used: the roots come from the signed checkpoints."""

    def __init__(self, base_url: str, token: SecretStr | None, timeout: float = HTTP_TIMEOUT):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"ApiProofs({self.base_url!r}, token=<secret>)"

    def root(self, size: int) -> bytes | None:
        return None

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        query = urllib.parse.urlencode({"old": old_size, "new": new_size})
        request = urllib.request.Request(f"{self.base_url}/api/proof/consistency?{query}")
        if self.token is not None:
            request.add_header("Authorization", f"Bearer {self.token.get_secret_value()}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read()[:300].decode(errors="replace")
            # The API proves only between checkpoints the ledger kept (it keeps each
            # before publishing it): 404 = it never signed that size, 409 = its history
            # no longer has that root. Any other status is an outage, retried.
            if error.code in (404, 409) and "checkpoint" in detail:
                raise ProofRefused(f"the ledger's API answered {error.code}: {detail}") from None
            raise ProofUnavailable(
                f"the API answered HTTP {error.code} for a consistency proof "
                f"{old_size} -> {new_size}: {detail}"
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise ProofUnavailable(f"cannot get a proof from {self.base_url}: {error}") from None
        try:
            return [bytes.fromhex(h) for h in body["hashes"]]
        except (KeyError, TypeError, ValueError) as error:
            # A malformed answer proves nothing: the check fails as a bad proof would.
            raise ProofUnavailable(f"the API's proof is malformed: {error!r}") from None


class ReplicaProofs:
    """Consistency proofs from a replica beside the witness (``ledger restore``): its
    Merkle tree is built from the published events, independently of the ledger's
    database, so a signed root that is not the replica's at that size is a split view."""

    def __init__(self, replica: Ledger) -> None:
        self.replica = replica

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        self._holds(new_size)
        return list(self.replica.consistency_proof(old_size, new_size).hashes)

    def root(self, size: int) -> bytes:
        self._holds(size)
        return self.replica.tree_head(size).root

    def _holds(self, size: int) -> None:
        held = self.replica.tree_head().size
        if held < size:
            raise NotYetProvable(f"the replica holds {held} events, the checkpoint {size}")


# --- the witness's state --------------------------------------------------------------


@dataclass(frozen=True)
class Alert:
    """A split view or a refused note, waiting to be delivered to the sinks."""

    status: Literal["split", "refused"]
    reason: str
    offset: int
    size: int | None
    origin: str | None
    note: str | None = None
    """The note found bad, kept as evidence: with the last good one (the state's
    ``last``), two notes signed by one key that no proof joins prove the split view."""
    riemann: bool = False
    """Delivered to Riemann already."""
    slack: bool = False


@dataclass
class WitnessState:
    """What the witness keeps in its file: the last good checkpoint, the next offset to
    read, and the alerts not yet delivered. Written whole and atomically (a temporary
    file renamed over it after fsync), so a crash leaves the old or the new state."""

    path: Path
    last: Seen | None = None
    offset: int = 0
    alerts: list[Alert] = field(default_factory=list)
    splits: int = 0
    refused: int = 0

    @classmethod
    def load(cls, path: Path) -> WitnessState:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError) as error:
            raise InvalidInput(f"{path}: not a witness state file ({error})") from None
        try:
            last = data.get("last")
            return cls(
                path,
                Seen(last["size"], bytes.fromhex(last["root"]), last["note"]) if last else None,
                int(data["offset"]),
                [Alert(**alert) for alert in data.get("alerts", [])],
                int(data.get("splits", 0)),
                int(data.get("refused", 0)),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise InvalidInput(f"{path}: not a witness state file ({error!r})") from None

    def save(self) -> None:
        last = self.last
        data = {
            "last": {"size": last.size, "root": last.root.hex(), "note": last.note}
            if last
            else None,
            "offset": self.offset,
            "alerts": [asdict(alert) for alert in self.alerts],
            "splits": self.splits,
            "refused": self.refused,
        }
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(descriptor, "w") as file:
                json.dump(data, file, indent=1)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise


# --- the sinks ------------------------------------------------------------------------


class AlertSinks:
    """Riemann and/or Slack; each alert goes to each once it is delivered there."""

    def __init__(self, riemann: RiemannSink | None, slack: SlackWebhook | None) -> None:
        self.riemann = riemann
        self.slack = slack

    def deliver(self, alert: Alert, clock: Callable[[], float]) -> Alert:
        """``alert`` with the sinks it reached marked; raises when one is down (after
        trying the others), so the caller keeps it for a later attempt."""
        failures: list[str] = []
        if self.riemann is not None and not alert.riemann:
            event = self.riemann.add()
            fill_event(event, alert, clock())
            try:
                self.riemann.flush()
            except (OSError, RiemannError) as error:
                failures.append(f"Riemann: {error}")
            else:
                alert = Alert(**{**asdict(alert), "riemann": True})
        if self.slack is not None and not alert.slack:
            outcome = self.slack.post(slack_message(alert), clock)
            if outcome.status == "sent":
                alert = Alert(**{**asdict(alert), "slack": True})
            elif outcome.status == "failed":
                # A permanent refusal (a deleted webhook, a bad payload): retrying would
                # fail the same way; said in the log, and Riemann still has the alert.
                log.error("witness: Slack refused the alert: %s", outcome.error)
                alert = Alert(**{**asdict(alert), "slack": True})
            else:
                failures.append(f"Slack: {outcome.error}")
        if failures:
            raise AlertUndelivered(alert, "; ".join(failures))
        return alert

    def done(self, alert: Alert) -> bool:
        return (self.riemann is None or alert.riemann) and (self.slack is None or alert.slack)

    def close(self) -> None:
        if self.riemann is not None:
            self.riemann.close()


class AlertUndelivered(ConnectionError):
    """A sink was down: the alert stays in the state file and is sent again later."""

    def __init__(self, alert: Alert, reason: str) -> None:
        self.alert = alert
        super().__init__(f"alert not delivered yet ({reason})")


def headline(alert: Alert) -> str:
    what = "SPLIT VIEW" if alert.status == "split" else "checkpoint REFUSED (bad signature)"
    origin = f" of {alert.origin}" if alert.origin else ""
    return f"Ledger witness: {what}{origin}"


def fill_event(event: Any, alert: Alert, now: float) -> None:
    """The Riemann event of an alert: critical for a split view, warning for a note
    refused (someone put an unsigned checkpoint on the topic; nothing was trusted)."""
    event.host = alert.origin or "ledger"
    event.service = f"{SERVICE} {'split view' if alert.status == 'split' else 'signature'}"
    event.state = "critical" if alert.status == "split" else "warning"
    event.time = int(now)
    event.description = f"{headline(alert)}: {alert.reason}"
    event.tags.extend(("witness", alert.status))
    add = event.attributes.add
    add(key="offset", value=str(alert.offset))
    if alert.size is not None:
        add(key="size", value=str(alert.size))


def slack_message(alert: Alert) -> dict[str, Any]:
    text = f"{headline(alert)}: {alert.reason} (topic offset {alert.offset})"
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*"}}],
    }


# --- following the topic --------------------------------------------------------------


@dataclass(frozen=True)
class WitnessSettings:
    bootstrap: str
    topic: str
    state: Path
    timeout: float = 30.0
    client_id: str = "deploy-ledger-witness"


class Record(NamedTuple):
    offset: int
    value: bytes


class Witness:
    """Reads the checkpoints topic from the offset in its state file, judges each note
    and keeps the outcome, then delivers the alerts (see this module's docstring)."""

    name = "witness"

    def __init__(
        self,
        settings: WitnessSettings,
        verifiers: Sequence[Verifier],
        proofs: ProofSource,
        sinks: AlertSinks,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.verifiers = list(verifiers)
        self.proofs = proofs
        self.sinks = sinks
        self.clock = clock
        self.state = WitnessState.load(settings.state)
        self.backlog: deque[Record] = deque()
        self.waiting: str | None = None
        """Why the record at the head of the backlog cannot be judged yet, if so."""
        self.found: list[Verdict] = []
        """Every verdict of this run, in order."""
        self.partition = TopicPartition(settings.topic, 0)
        self.consumer = self._open()

    def _open(self) -> Any:
        try:
            consumer = KafkaConsumer(
                bootstrap_servers=self.settings.bootstrap.split(","),
                client_id=self.settings.client_id,
                group_id=None,
                enable_auto_commit=False,
                allow_auto_create_topics=False,
                request_timeout_ms=max(1000, int(self.settings.timeout * 1000)),
            )
            partitions = consumer.partitions_for_topic(self.settings.topic)
        except KafkaError as error:
            raise KafkaUnavailable(f"could not reach Kafka: {error}") from error
        if not partitions:
            consumer.close()
            raise MissingTopic(
                f"there is no topic {self.settings.topic!r} on {self.settings.bootstrap}: "
                "`ledger publish --checkpoint-every N` fills it (create it with one partition)"
            )
        if len(partitions) != 1:
            consumer.close()
            raise InvalidInput(
                f"the topic {self.settings.topic!r} has {len(partitions)} partitions: a "
                "witness needs the checkpoints in the order they were made (one partition)"
            )
        consumer.assign([self.partition])
        consumer.seek(self.partition, self.state.offset)
        return consumer

    def end_offset(self) -> int:
        ends = self.consumer.end_offsets([self.partition])
        return int(ends[self.partition])

    def step(self) -> bool:
        """Deliver pending alerts, then judge the records available; whether anything
        was done. Raises when a sink or the proof source is down (retried later)."""
        busy = self.deliver()
        if not self.backlog:
            try:
                polled = self.consumer.poll(timeout_ms=POLL_MS)
            except KafkaError as error:
                raise KafkaUnavailable(f"could not read {self.settings.topic}: {error}") from error
            for batch in polled.values():
                self.backlog.extend(Record(m.offset, m.value) for m in batch)
        judged = False
        try:
            while self.backlog:
                record = self.backlog[0]
                if record.offset < self.state.offset:  # already judged before a restart
                    self.backlog.popleft()
                    continue
                verdict = self.check(record)
                if verdict.status == "waiting":
                    if verdict.reason != self.waiting:
                        log.info("witness: waiting: %s", verdict.reason)
                    self.waiting = verdict.reason
                    break
                self.waiting = None
                self.backlog.popleft()
                self.found.append(verdict)
                judged = True
        finally:
            # One write for the records judged (even when a proof could not be had for
            # the next): a crash before it judges them again, to the same verdicts.
            # Alerts are only delivered once written.
            if judged:
                self.state.save()
        return self.deliver() or judged or busy

    def check(self, record: Record) -> Verdict:
        """Judge one record and note the outcome (with the next offset) in the state,
        which the caller writes."""
        state = self.state
        try:
            note = record.value.decode()
            checkpoint = open_checkpoint(note, self.verifiers)
        except (UnicodeDecodeError, InvalidInput) as error:
            verdict = Verdict("refused", f"note refused, not trusted: {error}")
            log.error("witness: offset %d: %s", record.offset, verdict.reason)
            state.alerts.append(
                Alert("refused", verdict.reason, record.offset, None, None, note=repr(record.value))
            )
            state.refused += 1
            state.offset = record.offset + 1
            return verdict
        try:
            verdict = judge(state.last, checkpoint, self.proofs)
        except NotYetProvable as error:
            return Verdict("waiting", str(error), checkpoint)
        if verdict.status == "split":
            log.error("witness: SPLIT VIEW at offset %d: %s", record.offset, verdict.reason)
            state.alerts.append(
                Alert("split", verdict.reason, record.offset, checkpoint.size,
                      checkpoint.origin, note=note)
            )  # fmt: skip
            state.splits += 1
        else:
            log.info("witness: offset %d: %s", record.offset, verdict.reason)
            state.last = Seen(checkpoint.size, checkpoint.root, note)
        state.offset = record.offset + 1
        return verdict

    def deliver(self) -> bool:
        """Send the kept alerts; each leaves the state once every sink took it."""
        if not self.state.alerts:
            return False
        kept: list[Alert] = []
        error: AlertUndelivered | None = None
        for alert in self.state.alerts:
            now = alert
            if error is None:
                try:
                    now = self.sinks.deliver(alert, self.clock)
                except AlertUndelivered as failed:
                    now, error = failed.alert, failed
            if not self.sinks.done(now):
                kept.append(now)
        sent = len(self.state.alerts) - len(kept)
        self.state.alerts = kept
        self.state.save()
        if error is not None:
            raise error
        return sent > 0

    def pending(self) -> bool:
        return bool(self.state.alerts)

    def close(self) -> None:
        self.consumer.close()
        self.sinks.close()
