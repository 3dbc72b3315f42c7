"""``ledger init`` and ``ledger verify``: creating the store and re-checking its chain."""

from __future__ import annotations

from base64 import b64encode
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli import output
from cli.errors import TAMPERED
from cli.session import Session, pass_session
from ledger.errors import InvalidInput
from ledger.roles import create_roles
from ledger.store import locate

if TYPE_CHECKING:
    from ledger.checkpoint import Checkpoint


@click.command()
@click.option(
    "--postgres-roles", is_flag=True,
    help="Also create the PostgreSQL roles PREFIX_writer (append only) and PREFIX_reader.",
)  # fmt: skip
@click.option(
    "--role-prefix", default="deploy_ledger", show_default=True, metavar="PREFIX",
    help="With --postgres-roles: the roles' names start with this.",
)  # fmt: skip
@pass_session
def init(session: Session, postgres_roles: bool, role_prefix: str) -> None:
    """Create the ledger's tables (safe to run again: it changes nothing then).

    This also installs the triggers that refuse UPDATE and DELETE (and, on
    PostgreSQL, TRUNCATE) of stored events. With --postgres-roles it also creates two
    group roles: PREFIX_writer appends but can never change or delete a stored event,
    PREFIX_reader only reads; grant them to login roles (see docs/operations.md).

    \b
    Example:
      ledger init
      ledger --ledger postgresql://postgres@db.internal/ledger init --postgres-roles
    """
    if postgres_roles and locate(session.url).backend != "postgres":
        raise InvalidInput("--postgres-roles needs a PostgreSQL ledger (postgresql://…)")
    ledger = session.open(create=True)
    from ledger.checkpoints import create_table

    create_table(ledger)  # where `ledger checkpoint` keeps what it signs
    output.console().print(
        f"Ledger ready at {ledger.location.display} ({ledger.location.backend}): "
        f"{ledger.count()} events.",
        markup=False,
    )
    if postgres_roles:
        views = session.open_views(ledger)  # their tables exist before privileges are set
        views.recorder.datastore.close()
        roles = create_roles(ledger, role_prefix)
        output.console().print(
            f"Roles ready in schema {roles.schema}: {roles.writer} (appends, never changes "
            f"or deletes an event), {roles.reader} (reads). Grant them to login roles, "
            f"e.g.: CREATE ROLE ingest LOGIN PASSWORD '…' IN ROLE {roles.writer};",
            markup=False,
        )


def _anchor(value: str) -> tuple[int, str]:
    position, _, digest = value.partition(":")
    if not (position.isascii() and position.isdigit()) or int(position) < 1 or len(digest) != 64:
        raise click.BadParameter(
            f"{value!r} is not POSITION:HASH, e.g. 19505:26fcd692…(64 hex digits)",
            param_hint="--anchor",
        )
    return int(position), digest.lower()


@click.command()
@click.option(
    "--anchor",
    "anchors",
    multiple=True,
    metavar="POSITION:HASH",
    help="A head printed by an earlier verify, kept elsewhere: that position must still "
    "have that hash. May be repeated.",
)
@click.option(
    "--checkpoint", "checkpoint_file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
    metavar="FILE",
    help="A signed checkpoint (`ledger checkpoint`): the chain must give its root at its size.",
)  # fmt: skip
@click.option(
    "--key", metavar="VKEY",
    help="With --checkpoint: the verifier key (or a file of them); default "
    "LEDGER_CHECKPOINT_VKEY, else the public half of LEDGER_CHECKPOINT_KEY.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_session
def verify(
    session: Session,
    anchors: tuple[str, ...],
    checkpoint_file: Path | None,
    key: str | None,
    as_json: bool,
) -> None:
    """Re-check the whole hash chain; exit 3 at the first row changed, deleted or inserted.

    Every stored Merkle tree node is recomputed from the chain too, so a history
    rewritten consistently from some position on (chain and index) but not its tree
    fails. Prints the head (last position and its hash): keep it somewhere else and
    pass it back with --anchor to prove later that nothing up to it was rewritten or
    cut off, even by an intruder who rewrote the tree as well.
    Stronger: --checkpoint FILE, a checkpoint signed by `ledger checkpoint`. Its
    signature is checked, then the Merkle root of the chain hashes of its first SIZE
    positions is recomputed from the events themselves and must be the signed root,
    and the stored tree must agree; a history rewritten or cut off fails (exit 3),
    the message naming what differs.

    \b
    Example:
      ledger verify && echo "ledger intact"
      ledger verify --anchor 19505:26fcd692116e4ff3716f7c578e7a701dff3d40880718dee3b289c968bfcc955d
      ledger verify --checkpoint monday.cp --key "$(cat ledger.vkey)"
    """
    signed = _signed_checkpoint(checkpoint_file, key) if checkpoint_file else None
    ledger = session.open()
    with output.progress_bar("verifying", ledger.count(), unit="events") as advance:
        result = ledger.verify(
            progress=advance,
            anchors=dict(map(_anchor, anchors)),
            check_tree=True,
            root_at=signed.size if signed is not None else None,
        )
    problem = None if result.intact else "not checked: the chain itself fails verification"
    if signed is not None and result.intact:
        from ledger.checkpoints import CheckpointConflict, check_ledger

        try:
            check_ledger(ledger, signed, result)
        except CheckpointConflict as error:
            problem = str(error)
    if as_json:
        answer = {**asdict(result), "intact": result.intact and problem is None}
        answer.pop("root")  # bytes; the checkpoint's part below says whether it matched
        if signed is not None:
            answer["checkpoint"] = {"origin": signed.origin, "size": signed.size,
                                    "root": signed.root.hex(), "problem": problem}  # fmt: skip
        output.print_json(answer)
    elif signed is not None and result.intact and problem is not None:
        output.console().print(
            f"[red]TAMPERED[/red]: {output.escape(ledger.location.display)} does not match "
            f"the checkpoint of size {signed.size}.\n{output.escape(problem)}."
        )
    else:
        output.verification(result, ledger.location.display)
        if signed is not None and result.intact:
            output.console().print(
                f"Checkpoint: size {signed.size}, root {b64encode(signed.root).decode()} "
                "(as in its note; signed by "
                f"{output.escape(signed.origin)}) matches the chain and the stored tree."
            )
    if problem is not None:
        raise click.exceptions.Exit(TAMPERED)


def _signed_checkpoint(path: Path, key: str | None) -> Checkpoint:
    """The checkpoint in the file, once its signature verifies with the key given."""
    from ledger.checkpoint import KeySettings, load_verifiers, open_checkpoint

    settings = KeySettings(checkpoint_vkey=key) if key else KeySettings()
    try:
        note = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(f"cannot read the checkpoint {path}: {error}") from None
    return open_checkpoint(note, load_verifiers(settings))
