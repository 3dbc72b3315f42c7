"""`ledger checkpoint --kafka` on a real Kafka (Tansu), on both backends: the signed
note lands on the checkpoints topic next to the replica (key, value, headers) and
verifies with the ledger's public key; a second run without new events sends nothing;
a missing topic, a broker that is down and one that never answers end with a clear
error and a non-zero exit, with the checkpoint kept for the next publish; a witness
following the topic accepts what the command published."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from kafka import KafkaConsumer

from cli.main import root
from ledger.application import Ledger
from ledger.checkpoint import Signer, Verifier, open_checkpoint
from ledger.checkpoints import latest, parse_unverified
from tests.conftest import checkpoint_key_in_env
from tests.integration.test_witness import (
    CHECKPOINTS,
    DEADLINE,
    EVENTS,
    ORIGIN,
    facts,
    new_ledger,
    verdicts,
    witness,
)
from tests.services.kafka import (  # noqa: F401 (fixture `kafka`)
    KafkaBroker,
    create_topic,
    free_port,
    kafka_broker,
)
from tests.services.riemann import RiemannReceiver, riemann_fixture  # noqa: F401
from tests.unit.test_startup import heavy, imported_by, run_root


@dataclass(frozen=True)
class Note:
    """A record of the checkpoints topic."""

    key: bytes
    value: str
    headers: dict[str, str]


@pytest.fixture(name="signer")
def signer_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Signer:
    """The ledger's checkpoint key, in the file LEDGER_CHECKPOINT_KEY names."""
    monkeypatch.delenv("LEDGER_KAFKA", raising=False)
    return checkpoint_key_in_env(ORIGIN, tmp_path, monkeypatch)


@pytest.fixture(name="ledger")
def ledger_fixture(ledger_url: str) -> Iterator[Ledger]:
    ledger = new_ledger(ledger_url, facts("main", 0, 12))
    yield ledger
    ledger.close()


def checkpoint(ledger: Ledger, *args: str) -> Result:
    return CliRunner().invoke(root, ["--ledger", ledger.location.url, "checkpoint", *args])


def notes(bootstrap: str, *, until_size: int) -> list[Note]:
    """The checkpoints topic from its start up to the note of ``until_size``."""
    consumer = KafkaConsumer(
        CHECKPOINTS, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
        enable_auto_commit=False, group_id=None,
    )  # fmt: skip
    found: list[Note] = []
    deadline = time.monotonic() + DEADLINE
    try:
        while not found or parse_unverified(found[-1].value).size != until_size:
            assert time.monotonic() < deadline, f"no note of size {until_size}: {found}"
            for batch in consumer.poll(timeout_ms=500).values():
                found += [
                    Note(m.key, m.value.decode(), {k: v.decode() for k, v in m.headers})
                    for m in batch
                ]
    finally:
        consumer.close()
    return found


def test_publishes_the_signed_note_and_a_second_run_sends_nothing(
    ledger: Ledger, kafka: KafkaBroker, signer: Signer
) -> None:
    create_topic(kafka.bootstrap, CHECKPOINTS)
    first = checkpoint(ledger, "--kafka", kafka.bootstrap, "--json")
    assert first.exit_code == 0, first.output
    answer = json.loads(first.stdout)
    assert answer["published"] == {"topic": CHECKPOINTS, "size": 12}
    assert f"Published the checkpoint of size 12 to {CHECKPOINTS}" in first.stderr

    again = checkpoint(ledger, "--kafka", kafka.bootstrap, "--topic", EVENTS)
    assert again.exit_code == 0, again.output
    assert again.stdout == answer["note"]  # nothing new: the same checkpoint, printed
    assert "published already" in again.stderr
    assert "nothing was sent" in again.stderr

    ledger.append(facts("main", 12, 15))
    third = checkpoint(ledger, "--kafka", kafka.bootstrap, "--json")
    assert third.exit_code == 0, third.output
    assert json.loads(third.stdout)["published"] == {"topic": CHECKPOINTS, "size": 15}

    # One partition, in order: had the second run sent anything, it would sit between.
    first_note, third_note = notes(kafka.bootstrap, until_size=15)
    assert first_note.value == answer["note"]
    assert first_note.key == b"12"
    assert first_note.headers == {"size": "12", "origin": ORIGIN}
    published = open_checkpoint(first_note.value, Verifier.parse(signer.verifier_key))
    assert (published.origin, published.size) == (ORIGIN, 12)
    assert published.root == ledger.tree_head(12).root
    assert third_note.value == latest(ledger)
    assert open_checkpoint(third_note.value, signer.verifier).root == ledger.tree_head().root


def test_a_witness_following_the_topic_accepts_what_the_command_published(
    ledger: Ledger, kafka: KafkaBroker, signer: Signer, riemann: RiemannReceiver, tmp_path: Path
) -> None:
    create_topic(kafka.bootstrap, CHECKPOINTS)
    assert checkpoint(ledger, "--kafka", kafka.bootstrap).exit_code == 0
    ledger.append(facts("main", 12, 20))
    assert checkpoint(ledger, "--kafka", kafka.bootstrap).exit_code == 0
    notes(kafka.bootstrap, until_size=20)  # both arrived
    result = witness(tmp_path / "witness.json", kafka.bootstrap, signer,
                     ledger_url=ledger.location.url, riemann=riemann)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert verdicts(result) == [("first", 12), ("consistent", 20)]
    assert riemann.events() == []


def test_a_missing_topic_is_named_with_its_create_command_and_the_checkpoint_kept(
    ledger: Ledger, kafka: KafkaBroker, signer: Signer
) -> None:
    result = checkpoint(ledger, "--kafka", kafka.bootstrap)
    assert result.exit_code == 2, result.output
    assert f"there is no topic {CHECKPOINTS!r} on {kafka.bootstrap}" in result.stderr
    assert f"--create --topic {CHECKPOINTS} --partitions 1" in result.stderr
    assert "signed and kept, not published" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == latest(ledger)  # kept, and printed
    assert parse_unverified(result.stdout).size == 12

    # Once the topic is there, the next run publishes the checkpoint kept.
    create_topic(kafka.bootstrap, CHECKPOINTS)
    later = checkpoint(ledger, "--kafka", kafka.bootstrap, "--json")
    assert later.exit_code == 0, later.output
    assert json.loads(later.stdout)["published"] == {"topic": CHECKPOINTS, "size": 12}
    (note,) = notes(kafka.bootstrap, until_size=12)
    assert note.value == result.stdout


def test_a_broker_that_is_down_is_a_clear_error_and_the_checkpoint_kept(
    ledger: Ledger, signer: Signer
) -> None:
    closed = f"127.0.0.1:{free_port()}"  # nothing listens there
    result = checkpoint(ledger, "--kafka", closed, "--json")
    assert result.exit_code == 1, result.output
    assert f"could not reach Kafka: {closed}: connection refused" in result.stderr
    assert "signed and kept, not published" in result.stderr
    assert "Traceback" not in result.output
    answer = json.loads(result.stdout)
    assert answer["published"] is None
    assert latest(ledger) == answer["note"]


def test_a_broker_that_never_answers_fails_after_the_timeout(
    ledger: Ledger, signer: Signer
) -> None:
    """A listener that accepts connections and never answers: a hung broker."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        accepted: list[socket.socket] = []
        stop = threading.Event()

        def accept() -> None:
            listener.settimeout(0.1)
            while not stop.is_set():
                try:
                    accepted.append(listener.accept()[0])
                except TimeoutError:
                    continue

        thread = threading.Thread(target=accept)
        thread.start()
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        try:
            result = checkpoint(ledger, "--kafka", address, "--timeout", "1")
        finally:
            stop.set()
            thread.join()
            for connection in accepted:
                connection.close()
    assert result.exit_code == 1, result.output
    assert f"Kafka at {address} did not answer in 1 s" in result.stderr
    assert "signed and kept, not published" in result.stderr
    assert result.stdout == latest(ledger)


def test_ledger_kafka_alone_does_not_make_the_command_publish(
    ledger: Ledger, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LEDGER_KAFKA is set wherever `ledger publish` runs; a timer's plain `ledger
    checkpoint` there must keep doing what it did, without Kafka."""
    monkeypatch.setenv("LEDGER_KAFKA", f"127.0.0.1:{free_port()}")
    result = checkpoint(ledger, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["published"] is None
    assert result.stderr == ""


@pytest.mark.parametrize("args", [["checkpoint", "--help"], ["prove", "--help"]])
def test_the_kafka_options_import_no_kafka(args: list[str]) -> None:
    """The options are defined without kafka-python: only a publish imports it."""
    modules, printed = imported_by(run_root(*args))
    assert "Example:" in printed
    assert "cli.proofs" in modules
    assert [m for m in heavy(modules) if m.split(".")[0] in ("kafka", "collectors")] == []
