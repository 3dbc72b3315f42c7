"""``ledger init`` and ``ledger verify``: creating the store and re-checking its chain."""

from __future__ import annotations

from dataclasses import asdict

import click

from cli import output
from cli.errors import TAMPERED
from cli.session import Session, pass_session
from ledger.errors import InvalidInput
from ledger.roles import create_roles
from ledger.store import locate


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
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_session
def verify(session: Session, anchors: tuple[str, ...], as_json: bool) -> None:
    """Re-check the whole hash chain; exit 3 at the first row changed, deleted or inserted.

    Prints the head (last position and its hash): keep it somewhere else and pass it
    back with --anchor to prove later that nothing up to it was rewritten or cut off.

    \b
    Example:
      ledger verify && echo "ledger intact"
      ledger verify --anchor 19505:26fcd692116e4ff3716f7c578e7a701dff3d40880718dee3b289c968bfcc955d
    """
    ledger = session.open()
    with output.progress_bar("verifying", ledger.count(), unit="events") as advance:
        result = ledger.verify(progress=advance, anchors=dict(map(_anchor, anchors)))
    if as_json:
        output.print_json({**asdict(result), "intact": result.intact})
    else:
        output.verification(result, ledger.location.display)
    if not result.intact:
        raise click.exceptions.Exit(TAMPERED)
