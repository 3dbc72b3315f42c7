"""The witness (`ledger witness`) on a real Kafka (Tansu), with the Riemann and Slack
stand-ins: a consistent series of checkpoints passes; a forked ledger signing with the
same key, a truncated one, and two roots for one size raise a split-view alert on both
sinks; a tampered note is refused and reported; across restarts nothing judged is
judged again and no alert is lost. ``ledger publish`` puts the checkpoints it makes on
the companion topic, in order, each once."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from kafka import KafkaConsumer, KafkaProducer

from cli.main import root
from collectors.publish import (
    CheckpointMaker,
    CheckpointPublisher,
    Publisher,
    PublishSettings,
    checkpoints_topic,
)
from collectors.restore import RestoreSettings, restore
from collectors.riemann import RiemannSink
from collectors.run import run
from collectors.witness import AlertSinks, ReplicaProofs, Witness, WitnessSettings
from ledger.application import Ledger
from ledger.checkpoint import Signer
from ledger.checkpoints import issue, latest, parse_unverified
from ledger.events import Envelope
from ledger.store import locate
from tests.factories import make_event
from tests.services.api import ApiServer, serve
from tests.services.kafka import (  # noqa: F401 (fixture `kafka`)
    KafkaBroker,
    create_topic,
    kafka_broker,
)
from tests.services.riemann import RiemannReceiver, riemann_fixture  # noqa: F401
from tests.services.slack import SlackStandIn, slack_fixture  # noqa: F401

ORIGIN = "ledger.example.com/witness-test"
EVENTS = "ledger.events"
CHECKPOINTS = checkpoints_topic(EVENTS)
NAMESPACE = uuid.UUID("8f1a3c52-6f55-4f0e-a1c8-3d9b0c3b7a10")
DEADLINE = 60.0


@pytest.fixture(name="signer")
def signer_fixture() -> Signer:
    return Signer.generate(ORIGIN)


@pytest.fixture(name="topic")
def topic_fixture(kafka: KafkaBroker) -> str:
    create_topic(kafka.bootstrap, CHECKPOINTS)
    return CHECKPOINTS


def facts(branch: str, start: int, stop: int) -> list[Envelope]:
    """Events ``start``..``stop`` of ``branch``: the same branch and index give the same
    event (id, content, recorded_at), so two ledgers fed the same ones share a chain."""
    return [
        make_event(
            "health_reported",
            event_id=str(uuid.uuid5(NAMESPACE, f"{branch}-{index}")),
            host=f"web-{index:03d}",
            description=f"{branch} {index}",
            recorded_at="2026-03-11T14:10:00Z",
            source="cli",
        )
        for index in range(start, stop)
    ]


def new_ledger(url: str, *batches: list[Envelope]) -> Ledger:
    ledger = Ledger(locate(url), create=True)
    for batch in batches:
        ledger.append(batch)
    return ledger


def drain(collectors: list[Any]) -> None:
    """Step every collector, each in every round, until none has anything to do."""
    while True:
        busy = [collector.step() for collector in collectors]
        if not any(busy):
            return


def put(bootstrap: str, *notes: str) -> None:
    """Notes on the checkpoints topic, in order, as ``ledger publish`` puts them."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for note in notes:
            size = parse_unverified(note).size if "\n\n" in note else 0
            producer.send(CHECKPOINTS, key=str(size).encode(), value=note.encode())
        producer.flush(timeout=30)
    finally:
        producer.close()


def witness(
    state: Path,
    bootstrap: str,
    signer: Signer,
    *,
    ledger_url: str | None = None,
    api: ApiServer | None = None,
    riemann: RiemannReceiver | None = None,
    slack: SlackStandIn | None = None,
) -> Result:
    """``ledger witness --once --json`` with proofs from the replica ``ledger_url`` or
    from the API ``api``."""
    args = ["witness", "--kafka", bootstrap, "--topic", CHECKPOINTS, "--once", "--json",
            "--key", signer.verifier_key, "--state", str(state)]  # fmt: skip
    env: dict[str, str | None] = {
        "LEDGER_RIEMANN": None,
        "LEDGER_SLACK_WEBHOOK": None,
        "LEDGER_TOKEN": None,
    }
    if ledger_url is not None:
        args = ["--ledger", ledger_url, *args, "--replica"]
    if api is not None:
        args += ["--api", api.base]
        env["LEDGER_TOKEN"] = api.tokens["reader"]
    if riemann is not None:
        args += ["--riemann", riemann.address]
    if slack is not None:
        env["LEDGER_SLACK_WEBHOOK"] = slack.url
    return CliRunner().invoke(root, args, env=env)


def verdicts(result: Result) -> list[tuple[str, int | None]]:
    found = json.loads(result.stdout)["verdicts"]
    return [(v["status"], v["size"]) for v in found]


def split_alerts(riemann: RiemannReceiver) -> list[str]:
    return [e.description for e in riemann.events() if e.state == "critical"]


# --- publishing the checkpoints --------------------------------------------------------


def consume_notes(bootstrap: str, count: int) -> list[tuple[bytes, str]]:
    consumer = KafkaConsumer(
        CHECKPOINTS, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        enable_auto_commit=False, group_id=None,
    )  # fmt: skip
    found: list[tuple[bytes, str]] = []
    deadline = time.monotonic() + DEADLINE
    try:
        while len(found) < count:
            assert time.monotonic() < deadline, f"{len(found)} of {count} notes arrived"
            for batch in consumer.poll(timeout_ms=500).values():
                found += [(m.key, m.value.decode()) for m in batch]
    finally:
        consumer.close()
    return found


def test_publish_makes_checkpoints_every_n_events_and_puts_each_on_the_topic_once(
    ledger_url: str, kafka: KafkaBroker, topic: str, signer: Signer
) -> None:
    create_topic(kafka.bootstrap, EVENTS)
    ledger = new_ledger(ledger_url)
    settings = PublishSettings(kafka.bootstrap, EVENTS, batch=7, timeout=10)
    publisher = Publisher(ledger, settings)
    maker = CheckpointMaker(ledger, signer, every=10, interval=None)
    checkpoints = CheckpointPublisher(ledger, settings)
    try:
        for start in range(0, 45, 15):
            ledger.append(facts("main", start, start + 15))
            drain([publisher, maker, checkpoints])
        sizes = [parse_unverified(note).size for _, note in consume_notes(kafka.bootstrap, 3)]
        assert sizes == [15, 30, 45]  # 15 events since the last each time: one each
        assert not maker.step()
        assert not checkpoints.step()
        ledger.append(facts("main", 45, 50))  # 5 < 10 new events: not due yet
        assert not maker.step()
        assert latest(ledger) is not None
        assert parse_unverified(latest(ledger) or "").size == 45
    finally:
        for collector in (publisher, maker, checkpoints):
            collector.close()
    # A new publisher resumes after the last acknowledged checkpoint: nothing re-sent.
    again = CheckpointPublisher(ledger, settings)
    try:
        assert not again.step()
        issue(ledger, signer)  # `ledger checkpoint` keeps one of size 50
        assert again.step()
    finally:
        again.close()
        ledger.close()
    notes = consume_notes(kafka.bootstrap, 4)
    assert [(key, parse_unverified(note).size) for key, note in notes] == [
        (b"15", 15), (b"30", 30), (b"45", 45), (b"50", 50)
    ]  # fmt: skip


def test_publish_once_with_an_interval_signs_the_head_and_publishes_it(
    sqlite_url: str, kafka: KafkaBroker, topic: str, signer: Signer, tmp_path: Path
) -> None:
    create_topic(kafka.bootstrap, EVENTS)
    new_ledger(sqlite_url, facts("main", 0, 12)).close()
    key = tmp_path / "checkpoint.key"
    signer.save(key)
    result = CliRunner().invoke(
        root,
        ["--ledger", sqlite_url, "publish", "--kafka", kafka.bootstrap, "--topic", EVENTS,
         "--once", "--checkpoint-interval", "1h"],
        env={"LEDGER_CHECKPOINT_KEY": str(key), "LEDGER_CHECKPOINT_EVERY": None},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    ((size_key, note),) = consume_notes(kafka.bootstrap, 1)
    assert size_key == b"12"
    assert parse_unverified(note).size == 12


def test_publish_says_which_topic_to_create_for_the_checkpoints(
    sqlite_url: str, kafka: KafkaBroker, signer: Signer
) -> None:
    create_topic(kafka.bootstrap, EVENTS)  # but not its companion
    ledger = new_ledger(sqlite_url, facts("main", 0, 3))
    issue(ledger, signer)
    ledger.close()
    result = CliRunner().invoke(
        root, ["--ledger", sqlite_url, "publish", "--kafka", kafka.bootstrap, "--once"]
    )
    assert result.exit_code == 2
    assert f"there is no topic {CHECKPOINTS!r}" in result.output
    assert "ONE partition" in result.output
    assert "--partitions 1" in result.output


def test_publish_refuses_checkpoints_without_a_key(sqlite_url: str, kafka: KafkaBroker) -> None:
    new_ledger(sqlite_url, facts("main", 0, 2)).close()
    result = CliRunner().invoke(
        root,
        ["--ledger", sqlite_url, "publish", "--kafka", kafka.bootstrap, "--once",
         "--checkpoint-every", "1"],
        env={"LEDGER_CHECKPOINT_KEY": None},
    )  # fmt: skip
    assert result.exit_code == 2
    assert "no checkpoint key" in result.output


def test_collect_signs_checkpoints_every_n_events(
    ledger_url: str, signer: Signer, tmp_path: Path
) -> None:
    ledger = new_ledger(ledger_url, facts("main", 0, 7))
    key = tmp_path / "checkpoint.key"
    signer.save(key)
    env = {"LEDGER_CHECKPOINT_KEY": str(key), "LEDGER_RIEMANN": None, "LEDGER_SLACK_WEBHOOK": None}

    def collect(*args: str) -> Result:
        return CliRunner().invoke(
            root, ["--ledger", ledger_url, "collect", "--once", *args], env=env
        )

    try:
        result = collect("--checkpoint-every", "5")
        assert result.exit_code == 0, result.output
        assert parse_unverified(latest(ledger) or "").size == 7
        ledger.append(facts("main", 7, 10))  # 3 < 5 events since: not due
        assert collect("--checkpoint-every", "5").exit_code == 0
        assert parse_unverified(latest(ledger) or "").size == 7
        assert collect("--checkpoint-interval", "1s").exit_code == 0  # grew: due at once
        assert parse_unverified(latest(ledger) or "").size == 10
        bad = collect("--checkpoint-interval", "soon")
        assert bad.exit_code == 2
        assert "not a duration" in bad.output
    finally:
        ledger.close()


# --- the witness -------------------------------------------------------------------------


def test_a_consistent_series_passes_against_a_restored_replica(
    ledger_url: str,
    kafka: KafkaBroker,
    topic: str,
    signer: Signer,
    riemann: RiemannReceiver,
    slack: SlackStandIn,
    tmp_path: Path,
) -> None:
    """The whole path: publish events and checkpoints, restore a replica from the
    events topic, witness the checkpoints topic beside it."""
    create_topic(kafka.bootstrap, EVENTS)
    ledger = new_ledger(ledger_url)
    settings = PublishSettings(kafka.bootstrap, EVENTS, timeout=10)
    maker = CheckpointMaker(ledger, signer, every=1, interval=None)
    collectors: list[Any] = [
        Publisher(ledger, settings),
        maker,
        CheckpointPublisher(ledger, settings),
    ]
    try:
        for stop in (1, 2, 3, 7, 8, 20, 33):  # sizes across several perfect subtrees
            ledger.append(facts("main", ledger.count(), stop))
            drain(collectors)
    finally:
        for collector in collectors:
            collector.close()
        ledger.close()
    replica_url = str(tmp_path / "replica.db")
    replica = Ledger(locate(replica_url), create=True)
    try:
        restore(replica, RestoreSettings(kafka.bootstrap, EVENTS, timeout=10))
    finally:
        replica.close()

    state = tmp_path / "witness.json"
    result = witness(state, kafka.bootstrap, signer, ledger_url=replica_url,
                     riemann=riemann, slack=slack)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert verdicts(result) == [("first", 1)] + [
        ("consistent", size) for size in (2, 3, 7, 8, 20, 33)
    ]
    assert riemann.events() == []
    assert slack.requests == []


def test_a_replica_behind_the_checkpoint_waits_and_judges_nothing_yet(
    sqlite_url: str,
    kafka: KafkaBroker,
    topic: str,
    signer: Signer,
    riemann: RiemannReceiver,
    tmp_path: Path,
) -> None:
    ledger = new_ledger(sqlite_url, facts("main", 0, 5))
    first = issue(ledger, signer)
    ledger.append(facts("main", 5, 9))
    put(kafka.bootstrap, first, issue(ledger, signer))
    ledger.close()
    replica_url = str(tmp_path / "replica.db")
    new_ledger(replica_url, facts("main", 0, 6)).close()  # 6 of the 9 events
    state = tmp_path / "witness.json"
    result = witness(state, kafka.bootstrap, signer, ledger_url=replica_url, riemann=riemann)
    assert result.exit_code == 0, result.output
    assert verdicts(result) == [("first", 5)]
    assert "holds 6 events" in json.loads(result.stdout)["waiting"]
    new_ledger(replica_url, facts("main", 6, 9)).close()  # the replica catches up
    result = witness(state, kafka.bootstrap, signer, ledger_url=replica_url, riemann=riemann)
    assert result.exit_code == 0, result.output
    assert verdicts(result) == [("consistent", 9)]
    assert riemann.events() == []


@pytest.fixture(name="forked")
def forked_fixture(ledger_url: str, tmp_path: Path, signer: Signer) -> Iterator[Forked]:
    honest = new_ledger(ledger_url, facts("main", 0, 10))
    fork = new_ledger(str(tmp_path / "fork.db"), facts("main", 0, 6), facts("fork", 6, 14))
    try:
        yield Forked(honest, fork, signer)
    finally:
        honest.close()
        fork.close()


class Forked:
    """An honest ledger, and a fork of it from position 7 signing with the same key."""

    def __init__(self, honest: Ledger, fork: Ledger, signer: Signer) -> None:
        self.honest, self.fork, self.signer = honest, fork, signer

    def sign(self, ledger: Ledger) -> str:
        return issue(ledger, self.signer)


def test_a_fork_signing_with_the_same_key_raises_the_alert_on_both_sinks(
    forked: Forked,
    kafka: KafkaBroker,
    topic: str,
    riemann: RiemannReceiver,
    slack: SlackStandIn,
    tmp_path: Path,
) -> None:
    """Proofs from the honest ledger's API: the fork's size 14, which the honest ledger
    never signed (404), and its size 20, whose root the honest proof does not lead to."""
    honest, fork = forked.honest, forked.fork
    assert honest.tree_head(6) == fork.tree_head(6)  # they share positions 1-6
    assert honest.tree_head(7) != fork.tree_head(7)
    put(kafka.bootstrap, forked.sign(honest), forked.sign(fork))  # size 10, fork's 14
    honest.append(facts("main", 10, 20))
    fork.append(facts("fork", 14, 20))
    put(kafka.bootstrap, forked.sign(fork), forked.sign(honest))  # fork's 20, honest 20
    with contextmanager(serve)(honest.location.url) as api:
        result = witness(tmp_path / "w.json", kafka.bootstrap, forked.signer, api=api,
                         riemann=riemann, slack=slack)  # fmt: skip
    assert result.exit_code == 3, result.output
    # The honest log's 20 is still judged against its 10: a split never becomes the last.
    assert verdicts(result) == [("first", 10), ("split", 14), ("split", 20),
                                ("consistent", 20)]  # fmt: skip
    alerts = split_alerts(riemann)
    assert len(alerts) == 2
    assert all("SPLIT VIEW" in alert for alert in alerts)
    assert "no checkpoint of size 14" in alerts[0]
    assert "size 20 is not an extension of size 10" in alerts[1]
    assert len(slack.delivered) == 2
    assert all("SPLIT VIEW" in message.text for message in slack.delivered)


def test_beside_a_replica_even_the_first_checkpoint_must_have_the_replicas_root(
    forked: Forked, kafka: KafkaBroker, topic: str, riemann: RiemannReceiver, tmp_path: Path
) -> None:
    """The honest ledger's events are the replica; the first checkpoint the witness sees
    is the fork's: there is no last one to prove it against, but the replica's own tree
    of its size has another root."""
    forked.honest.append(facts("main", 10, 20))
    put(kafka.bootstrap, forked.sign(forked.fork), forked.sign(forked.honest))
    result = witness(tmp_path / "w.json", kafka.bootstrap, forked.signer,
                     ledger_url=forked.honest.location.url, riemann=riemann)  # fmt: skip
    assert result.exit_code == 3, result.output
    assert verdicts(result) == [("split", 14), ("first", 20)]
    (alert,) = split_alerts(riemann)
    assert "the published events give" in alert


def test_the_same_size_with_another_root_is_a_split_view(
    forked: Forked, kafka: KafkaBroker, topic: str, riemann: RiemannReceiver, tmp_path: Path
) -> None:
    honest, fork = forked.honest, forked.fork
    fork.append(facts("fork", 14, 20))
    honest.append(facts("main", 10, 20))
    put(kafka.bootstrap, forked.sign(honest), forked.sign(fork))  # both of size 20
    result = witness(tmp_path / "w.json", kafka.bootstrap, forked.signer,
                     ledger_url=honest.location.url, riemann=riemann)  # fmt: skip
    assert result.exit_code == 3, result.output
    assert verdicts(result) == [("first", 20), ("split", 20)]
    (alert,) = split_alerts(riemann)
    assert "two roots signed for size 20" in alert


def test_a_truncated_ledger_raises_the_alert_on_both_sinks(
    ledger_url: str,
    kafka: KafkaBroker,
    topic: str,
    signer: Signer,
    riemann: RiemannReceiver,
    slack: SlackStandIn,
    tmp_path: Path,
) -> None:
    """The ledger cut back to 8 events (restored from an old copy, say) signs its head:
    a prefix of what was signed before, yet the log went back."""
    ledger = new_ledger(ledger_url, facts("main", 0, 12))
    truncated = new_ledger(str(tmp_path / "truncated.db"), facts("main", 0, 8))
    try:
        put(kafka.bootstrap, issue(ledger, signer), issue(truncated, signer))
        result = witness(tmp_path / "w.json", kafka.bootstrap, signer,
                         ledger_url=ledger_url, riemann=riemann, slack=slack)  # fmt: skip
    finally:
        ledger.close()
        truncated.close()
    assert result.exit_code == 3, result.output
    assert verdicts(result) == [("first", 12), ("split", 8)]
    (alert,) = split_alerts(riemann)
    assert "went back" in alert
    (message,) = slack.delivered
    assert "went back" in message.text


def test_a_tampered_or_foreign_signature_is_refused_never_trusted(
    sqlite_url: str,
    kafka: KafkaBroker,
    topic: str,
    signer: Signer,
    riemann: RiemannReceiver,
    slack: SlackStandIn,
    tmp_path: Path,
) -> None:
    ledger = new_ledger(sqlite_url, facts("main", 0, 5))
    good = issue(ledger, signer)
    ledger.append(facts("main", 5, 9))
    later = issue(ledger, signer)
    ledger.close()
    # The size changed after signing (the signature no longer matches the text)...
    tampered = later.replace("\n9\n", "\n99\n", 1)
    # ... and a note of the same origin signed by another key.
    foreign = Signer.generate(ORIGIN).sign(parse_unverified(later).body())
    put(kafka.bootstrap, good, tampered, foreign, later)
    result = witness(tmp_path / "w.json", kafka.bootstrap, signer, ledger_url=sqlite_url,
                     riemann=riemann, slack=slack)  # fmt: skip
    assert result.exit_code == 3, result.output
    # Neither refused note became the last seen: the real size 9 is judged against 5.
    assert verdicts(result) == [("first", 5), ("refused", None), ("refused", None),
                                ("consistent", 9)]  # fmt: skip
    refused = [e for e in riemann.events() if e.state == "warning"]
    assert len(refused) == 2
    assert all("REFUSED" in e.description for e in refused)
    assert "does not verify" in refused[0].description
    assert "trusted key" in refused[1].description
    assert len(slack.delivered) == 2
    assert split_alerts(riemann) == []


def test_a_restart_judges_nothing_again_and_loses_no_alert(
    forked: Forked,
    kafka: KafkaBroker,
    topic: str,
    riemann: RiemannReceiver,
    slack: SlackStandIn,
    tmp_path: Path,
) -> None:
    honest, fork = forked.honest, forked.fork
    state = tmp_path / "w.json"
    url = honest.location.url
    put(kafka.bootstrap, forked.sign(honest))
    result = witness(state, kafka.bootstrap, forked.signer, ledger_url=url, riemann=riemann)
    assert verdicts(result) == [("first", 10)]

    # Restarted: the first checkpoint is not "first" again, the next one is judged
    # against it. The fork's arrives while Riemann is down; Slack takes its alert.
    honest.append(facts("main", 10, 20))  # the replica holds what the fork's size needs
    riemann.stop()
    put(kafka.bootstrap, forked.sign(fork))
    result = witness(state, kafka.bootstrap, forked.signer, ledger_url=url, riemann=riemann,
                     slack=slack)  # fmt: skip
    assert result.exit_code == 3, result.output
    assert verdicts(result) == [("split", 14)]
    assert "not delivered" in result.stderr
    assert riemann.events() == []
    assert len(slack.delivered) == 1
    (kept,) = json.loads(state.read_text())["alerts"]
    assert kept["status"] == "split"
    assert kept["slack"]
    assert not kept["riemann"]

    # Restarted again with Riemann up: the kept alert goes there, and only there;
    # nothing is judged again.
    riemann.start()
    result = witness(state, kafka.bootstrap, forked.signer, ledger_url=url, riemann=riemann,
                     slack=slack)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert verdicts(result) == []
    (alert,) = split_alerts(riemann)
    assert "size 14" in alert
    (message,) = slack.delivered
    assert "size 14" in message.text
    assert json.loads(state.read_text())["alerts"] == []


def test_a_following_witness_alerts_once_the_sink_is_back(
    forked: Forked,
    kafka: KafkaBroker,
    topic: str,
    riemann: RiemannReceiver,
    tmp_path: Path,
) -> None:
    """Following (no --once): the fork's checkpoint arrives while Riemann is down; the
    loop backs off and the alert arrives once Riemann is back, exactly once."""
    honest, fork = forked.honest, forked.fork
    honest.append(facts("main", 10, 20))
    put(kafka.bootstrap, forked.sign(honest))
    riemann.stop()
    settings = WitnessSettings(kafka.bootstrap, CHECKPOINTS, tmp_path / "w.json", timeout=10)
    sinks = AlertSinks(RiemannSink("127.0.0.1", riemann.port, timeout=5, context=None), None)
    watcher = Witness(settings, [forked.signer.verifier], ReplicaProofs(honest), sinks)
    stop = threading.Event()
    following = threading.Thread(target=run, args=([watcher],),
                                 kwargs={"poll_interval": 0.05, "stop": stop})  # fmt: skip
    following.start()
    try:
        put(kafka.bootstrap, forked.sign(fork))
        deadline = time.monotonic() + DEADLINE
        while not watcher.state.alerts:  # judged, kept, not delivered
            assert time.monotonic() < deadline, "the fork's checkpoint was not judged"
            time.sleep(0.05)
        riemann.start()
        (alert,) = riemann.wait_for(1)
        assert alert.state == "critical"
        assert "size 20" in alert.description
    finally:
        stop.set()
        following.join()
        watcher.close()
    assert [v.status for v in watcher.found] == ["first", "split"]
    assert watcher.state.alerts == []
    assert len(riemann.events()) == 1


def test_the_witness_needs_its_topic_with_one_partition(
    kafka: KafkaBroker, signer: Signer, sqlite_url: str, riemann: RiemannReceiver, tmp_path: Path
) -> None:
    new_ledger(sqlite_url).close()
    state = tmp_path / "w.json"
    missing = witness(state, kafka.bootstrap, signer, ledger_url=sqlite_url, riemann=riemann)
    assert missing.exit_code == 2
    assert f"there is no topic {CHECKPOINTS!r}" in missing.output
    create_topic(kafka.bootstrap, CHECKPOINTS, partitions=2)
    several = witness(state, kafka.bootstrap, signer, ledger_url=sqlite_url, riemann=riemann)
    assert several.exit_code == 2
    assert "(one partition)" in several.output
    assert not state.exists()


def test_the_witness_needs_somewhere_to_alert_and_a_proof_source(
    kafka: KafkaBroker, signer: Signer, topic: str, tmp_path: Path
) -> None:
    nowhere = witness(tmp_path / "w.json", kafka.bootstrap, signer, ledger_url="x.db")
    assert nowhere.exit_code == 2
    assert "nowhere to alert" in nowhere.output
    neither = CliRunner().invoke(
        root, ["witness", "--kafka", kafka.bootstrap, "--key", signer.verifier_key, "--once"]
    )
    assert neither.exit_code == 2
    assert "give --api URL" in neither.output
