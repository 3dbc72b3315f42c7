"""``python -m bench.witness``: what publishing checkpoints costs, and how fast a witness
judges them (issue 19).

Publishing: a fresh SQLite ledger grows by 1,000 small events at a time (the appends are
not timed); after each chunk the collectors of ``ledger publish`` are stepped until idle
(timed): the events ``Publisher`` alone, or with ``CheckpointMaker`` and
``CheckpointPublisher`` as ``--checkpoint-every 1000`` adds them, so each timed chunk
costs one checkpoint signed, kept, published and acknowledged. The first chunk (producer
opened, topics looked up) is not timed. Rounds alternate the two variants; the time
spent in each collector's steps is summed over all rounds (the steadier figure on a
shared machine) next to the end-to-end rates.

The witness: a ledger of ``--ledger-events`` small events, a checkpoint signed over every
1,000-event prefix (``tree_head(size)``) and put on a checkpoints topic; the time for
``collectors.witness.Witness`` to read, verify and judge all of them, with consistency
proofs from a replica (the ledger file) and from the HTTP API (reader token), per
checkpoint. A Tansu broker (``tests.services.kafka``) is started for the run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bench.events import small_events
from bench.merkle import build
from collectors.publish import CheckpointMaker, CheckpointPublisher, Publisher, PublishSettings
from collectors.witness import AlertSinks, ApiProofs, ReplicaProofs, Witness, WitnessSettings
from ledger.application import Ledger, PreparedEvent, prepare
from ledger.checkpoint import Checkpoint, Signer, sign_checkpoint
from ledger.checkpoints import keep
from ledger.store import locate
from tests.services.api import serve
from tests.services.kafka import KafkaBroker, create_topic

STEP = 1000
ORIGIN = "bench.example.com/ledger"


def drain(collectors: list[Any], spent: dict[str, float] | None) -> None:
    """Step every collector until none has anything left; add each one's time to
    ``spent`` (by its name) when given."""
    while True:
        busy = []
        for collector in collectors:
            start = time.perf_counter()
            busy.append(collector.step())
            if spent is not None:
                spent[collector.name] = spent.get(collector.name, 0.0) + (
                    time.perf_counter() - start
                )
        if not any(busy):
            return


def publish_round(
    events: list[PreparedEvent],
    folder: Path,
    bootstrap: str,
    topic: str,
    signer: Signer | None,
    spent: dict[str, float],
) -> float:
    """Events/s published (and, with ``signer``, checkpointed) in steady state."""
    create_topic(bootstrap, topic)
    create_topic(bootstrap, topic + ".checkpoints")
    path = folder / f"{topic}.db"
    ledger = Ledger(locate(str(path)), create=True)
    settings = PublishSettings(bootstrap=bootstrap, topic=topic, batch=1000, timeout=30)
    collectors: list[Any] = [Publisher(ledger, settings)]
    if signer is not None:
        collectors += [
            CheckpointMaker(ledger, signer, every=STEP, interval=None),
            CheckpointPublisher(ledger, settings),
        ]
    seconds, timed = 0.0, 0
    for start in range(0, len(events), STEP):
        ledger.append(events[start : start + STEP])
        began = time.perf_counter()
        drain(collectors, spent if start else None)
        if start:
            seconds += time.perf_counter() - began
            timed += STEP
    for collector in collectors:
        collector.close()
    ledger.close()
    path.unlink()
    return timed / seconds


def publishing(folder: Path, broker: KafkaBroker, events: int, rounds: int) -> None:
    signer = Signer.generate(ORIGIN)
    prepared = [prepare(e) for e in small_events(events)]
    rates: dict[str, list[float]] = {"without": [], "with": []}
    spent: dict[str, float] = {}
    for r in range(rounds):
        rates["without"].append(
            publish_round(prepared, folder, broker.bootstrap, f"plain{r}", None, spent)
        )
        rates["with"].append(
            publish_round(prepared, folder, broker.bootstrap, f"cp{r}", signer, spent)
        )
    chunks = rounds * (events // STEP - 1)  # timed chunks per variant
    per_chunk = {name: seconds / chunks * 1000 for name, seconds in spent.items()}
    publish = spent["kafka"] / (2 * chunks) * 1000  # both variants publish the events
    print(f"time in the steps per {STEP} events (ms): publishing the events {publish:.1f}")
    print(f"  making the checkpoint {per_chunk['checkpoints']:.2f}")
    print(f"  publishing it {per_chunk['kafka-checkpoints']:.2f}")
    work = per_chunk["checkpoints"] + per_chunk["kafka-checkpoints"]
    print(
        f"  rate with checkpoints / without, from the step times: {publish / (publish + work):.3f}"
    )
    medians = {k: statistics.median(v) for k, v in rates.items()}
    print(
        f"end to end, medians of {rounds}: without {medians['without']:,.0f}/s, with "
        f"{medians['with']:,.0f}/s, ratio {medians['with'] / medians['without']:.3f}"
    )


def judged(
    bootstrap: str, topic: str, state: Path, proofs: Any, signer: Signer, expected: int
) -> tuple[float, int]:
    """Milliseconds per checkpoint for a witness to judge the ``expected`` ones on the
    topic (all must be consistent), and how many it judged."""
    watcher = Witness(
        WitnessSettings(bootstrap, topic, state), [signer.verifier], proofs, AlertSinks(None, None)
    )
    start = time.perf_counter()
    while watcher.state.offset < expected:
        watcher.step()
    seconds = time.perf_counter() - start
    statuses = [verdict.status for verdict in watcher.found]
    if statuses[1:] != ["consistent"] * (len(statuses) - 1):
        raise RuntimeError(f"the witness did not find every checkpoint consistent: {statuses[:5]}")
    watcher.close()
    return seconds / len(statuses) * 1000, len(statuses)


def witnessing(folder: Path, broker: KafkaBroker, events: int) -> None:
    from kafka import KafkaProducer

    signer = Signer.generate(ORIGIN)
    path = folder / "big.db"
    ledger = Ledger(locate(str(path)), create=True)
    print(f"built {events:,} events in {build(ledger, events):.0f} s")
    notes = []
    for size in range(STEP, events + 1, STEP):
        note = sign_checkpoint(Checkpoint(ORIGIN, size, ledger.tree_head(size).root), signer)
        keep(ledger, note)
        notes.append((size, note))
    ledger.close()
    topic = "big.checkpoints"
    create_topic(broker.bootstrap, topic)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    for size, note in notes:
        producer.send(topic, key=str(size).encode(), value=note.encode())
    producer.flush()
    producer.close()

    def from_replica(state: str) -> tuple[float, int]:
        replica = Ledger(locate(str(path)))
        try:
            return judged(
                broker.bootstrap, topic, folder / state, ReplicaProofs(replica), signer, len(notes)
            )
        finally:
            replica.close()

    ms, count = from_replica("w1.json")
    print(f"proofs from a replica (cold): {ms:.2f} ms per checkpoint ({count} checkpoints)")
    with contextmanager(serve)(str(path)) as api:
        proofs = ApiProofs(api.base, SecretStr(api.tokens["reader"]))
        ms, count = judged(broker.bootstrap, topic, folder / "w2.json", proofs, signer, len(notes))
    print(f"proofs from the HTTP API: {ms:.2f} ms per checkpoint ({count} checkpoints)")
    ms, count = from_replica("w3.json")
    print(f"proofs from the replica again (warm): {ms:.2f} ms per checkpoint")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.witness", description=__doc__)
    parser.add_argument("--publish-events", type=int, default=30_000)
    parser.add_argument("--rounds", type=int, default=6, help="rounds of each publish variant")
    parser.add_argument("--ledger-events", type=int, default=1_000_000, help="for the witness")
    parser.add_argument("--skip-publish", action="store_true")
    parser.add_argument("--skip-witness", action="store_true")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="bench-witness-"))
    broker = KafkaBroker().start()
    try:
        print("load average at start:", os.getloadavg())
        if not args.skip_publish:
            publishing(folder, broker, args.publish_events, args.rounds)
        if not args.skip_witness:
            witnessing(folder, broker, args.ledger_events)
        print("load average at the end:", os.getloadavg())
    finally:
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
