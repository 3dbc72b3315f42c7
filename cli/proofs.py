"""``ledger checkpoint`` and ``ledger prove``: signed tree heads and RFC 9162 proofs.

The work is ``ledger.checkpoints``'s; here the arguments are read and the answers
printed. A checkpoint or a proof that this ledger no longer matches (rewritten, cut
off) ends with exit 3, like ``ledger verify``'s findings.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

import click

from cli import output
from cli.errors import TAMPERED
from cli.kafka_options import ack_timeout_option, bootstrap_option, published_topic_option
from cli.session import Session, pass_session
from ledger.errors import InvalidInput, StoreUnavailable, UnknownName

if TYPE_CHECKING:
    from ledger.application import Ledger

CHECKPOINT_FILE = click.Path(path_type=Path, dir_okay=False, exists=True)


def tampered(error: Exception) -> click.exceptions.Exit:
    """Print a finding (the ledger does not match a checkpoint) and exit 3."""
    output.error_console().print(f"TAMPERED: {error}", markup=False, highlight=False)
    return click.exceptions.Exit(TAMPERED)


def read_note(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(f"cannot read the checkpoint {path}: {error}") from None


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Origin, size, root (hex), the note and "
              "what was published.")  # fmt: skip
@bootstrap_option(
    "--kafka",
    required=False,
    envvar=None,  # LEDGER_KAFKA alone must not make every `ledger checkpoint` publish
    help="Also publish the checkpoint to TOPIC.checkpoints on these Kafka bootstrap "
    "servers, as `ledger publish` does (not read from LEDGER_KAFKA: pass --kafka "
    '"$LEDGER_KAFKA").',
)
@published_topic_option("With --kafka: the topic `ledger publish` publishes the events to.")
@ack_timeout_option("With --kafka: seconds the broker may take to acknowledge the checkpoint.")
@pass_session
def checkpoint(
    session: Session, as_json: bool, bootstrap: str | None, topic: str, timeout: float
) -> None:
    """Sign the Merkle tree head of the ledger as a checkpoint, keep it and print it.

    The checkpoint (C2SP tlog-checkpoint: origin, tree size, base64 root) is signed as
    a C2SP signed note with the key in the file LEDGER_CHECKPOINT_KEY (`ledger keys
    generate`), whose name is the origin. It is kept in the ledger's database, so that
    `ledger prove` and GET /api/checkpoint answer against it; signing again with no new
    event prints the same checkpoint. Hand it to auditors and keep it elsewhere: a
    later `ledger verify --checkpoint FILE` or `ledger prove consistency FILE` shows
    whether the ledger still extends it. Exit 3 (nothing signed) when the ledger no
    longer matches the newest checkpoint kept.

    With --kafka it is also published next to the replica, to TOPIC.checkpoints (one
    partition; `ledger witness` follows it), once the broker acknowledged it: key =
    its size, value = the note. A checkpoint that large published already (by an
    earlier run or `ledger publish`) is not sent again. When it cannot be published
    (broker unreachable, topic missing, no acknowledgement in --timeout) the command
    exits non-zero, and the checkpoint stays kept: the next `ledger checkpoint --kafka`
    or `ledger publish` publishes it.

    \b
    Example:
      LEDGER_CHECKPOINT_KEY=/etc/deploy-ledger/checkpoint.key ledger checkpoint > cp.txt
      ledger checkpoint --json
      ledger checkpoint --kafka kafka1:9092,kafka2:9092 --topic ledger.events
    """
    from ledger.checkpoint import load_signer
    from ledger.checkpoints import CheckpointConflict, issue, parse_unverified

    signer = load_signer()
    ledger = session.open()
    try:
        note = issue(ledger, signer)
    except CheckpointConflict as error:
        raise tampered(error) from None
    kept = parse_unverified(note)
    published: dict[str, Any] | None = None
    failure: tuple[int, list[str]] | None = None
    if bootstrap is not None:
        published, failure = _publish(session, ledger, kept.size, bootstrap, topic, timeout)
    if as_json:
        output.print_json(
            {"origin": kept.origin, "size": kept.size, "root": kept.root.hex(), "note": note,
             "published": published}
        )  # fmt: skip
    else:
        sys.stdout.write(note)
    if failure is not None:
        code, lines = failure
        for line in lines:
            output.error_console().print(line, markup=False, highlight=False)
        raise click.exceptions.Exit(code)


def _publish(
    session: Session, ledger: Ledger, size: int, bootstrap: str, topic: str, timeout: float
) -> tuple[dict[str, Any] | None, tuple[int, list[str]] | None]:
    """Publish the latest kept checkpoint (``ledger checkpoint --kafka``): what was
    published (topic and size; ``None`` when it was already), said on standard error,
    or the exit code and the lines that say why it was not."""
    from kafka.errors import KafkaError

    from cli.errors import explain
    from collectors.publish import PublishSettings, checkpoints_topic, publish_checkpoint

    settings = PublishSettings(bootstrap=bootstrap, topic=topic, timeout=timeout)
    checkpoints = checkpoints_topic(topic)
    say = output.error_console().print
    try:
        sent = publish_checkpoint(ledger, settings)
    except (InvalidInput, StoreUnavailable, KafkaError, OSError) as error:
        if session.debug:
            raise
        code, lines = explain(error)
        lines.append(
            f"  The checkpoint of size {size} was signed and kept, not published: the next "
            f"`ledger checkpoint --kafka` or `ledger publish` publishes it to {checkpoints}."
        )
        return None, (code, lines)
    if sent is None:
        say(f"The checkpoint of size {size} was published already (the ledger keeps the "
            f"position, shared with `ledger publish`): nothing was sent to {checkpoints}.",
            markup=False, highlight=False)  # fmt: skip
        return None, None
    say(f"Published the checkpoint of size {sent} to {checkpoints} on {bootstrap}.",
        markup=False, highlight=False)  # fmt: skip
    return {"topic": checkpoints, "size": sent}, None


@click.group()
def prove() -> None:
    """Print an inclusion or consistency proof (RFC 9162) as JSON, with its checkpoint.

    The JSON carries the proof's hashes (lowercase hex) and the signed checkpoint(s)
    it leads to; `ledger verify-proof` (or any RFC 9162 code) checks it with the
    public key alone. Exit 3 when the ledger no longer matches a checkpoint named.

    \b
    Example:
      ledger prove inclusion 2c6f0d0e-8a51-4d6c-9b1e-0f5b1d0c7a11 > receipt.json
      ledger prove consistency yesterday.cp > consistency.json
    """


@prove.command("inclusion")
@click.argument("target", metavar="EVENT_ID|POSITION")
@click.option(
    "--checkpoint", "checkpoint_file", type=CHECKPOINT_FILE, metavar="FILE",
    help="Prove against this checkpoint (its size); default: the latest kept.",
)  # fmt: skip
@pass_session
def inclusion(session: Session, target: str, checkpoint_file: Path | None) -> None:
    """Prove that an event (by event id or position) is in a checkpoint's tree.

    Without --checkpoint, the proof is against the latest checkpoint kept (`ledger
    checkpoint`), which must cover the event.

    \b
    Example:
      ledger prove inclusion 19835
      ledger prove inclusion 2c6f0d0e-8a51-4d6c-9b1e-0f5b1d0c7a11 --checkpoint cp.txt
    """
    from ledger.checkpoints import CheckpointConflict, covering, inclusion_answer

    ledger = session.open()
    position = _position(ledger, target)
    note = read_note(checkpoint_file) if checkpoint_file else covering(ledger, position)
    try:
        answer = inclusion_answer(ledger, position, note)
    except CheckpointConflict as error:
        raise tampered(error) from None
    output.print_json(answer)


@prove.command("consistency")
@click.argument("old_file", metavar="OLD_CHECKPOINT", type=CHECKPOINT_FILE)
@click.argument("new_file", metavar="[NEW_CHECKPOINT]", type=CHECKPOINT_FILE, required=False)
@pass_session
def consistency(session: Session, old_file: Path, new_file: Path | None) -> None:
    """Prove that the ledger of NEW_CHECKPOINT extends the one of OLD_CHECKPOINT.

    Both are checkpoint files (as `ledger checkpoint` prints them); NEW_CHECKPOINT
    defaults to the latest kept. Exit 3 when this ledger no longer has the old
    checkpoint's root at its size (rewritten) or is shorter (cut off).

    \b
    Example:
      ledger prove consistency monday.cp friday.cp
      ledger prove consistency monday.cp > consistency.json
    """
    from ledger.checkpoints import CheckpointConflict, consistency_answer, latest

    ledger = session.open()
    old = read_note(old_file)
    if new_file is not None:
        new = read_note(new_file)
    elif (kept := latest(ledger)) is not None:
        new = kept
    else:
        raise InvalidInput("no checkpoint was made yet: run `ledger checkpoint` first")
    try:
        answer = consistency_answer(ledger, old, new)
    except CheckpointConflict as error:
        raise tampered(error) from None
    output.print_json(answer)


def _position(ledger: Ledger, target: str) -> int:
    """A position given as such, or the position of an event id."""
    if target.isascii() and target.isdigit():
        position = int(target)
        head = ledger.count()
        if not 1 <= position <= head:
            raise InvalidInput(f"there is no position {position}: the ledger holds 1–{head}")
        return position
    try:
        event_id = UUID(target)
    except ValueError:
        raise InvalidInput(
            f"{target!r} is neither a position (a number) nor an event id (a UUID)"
        ) from None
    found = ledger.stored([event_id])
    if event_id not in found:
        raise UnknownName(f"event {event_id} is not in this ledger")
    return found[event_id]
