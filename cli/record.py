"""``ledger record``: putting events in one by one, a subcommand per kind of event."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import IO, Any, Literal, get_args, get_origin
from uuid import uuid4

import click

from cli import output
from cli.params import default_actor
from cli.session import Session, pass_session
from ledger.errors import InvalidInput
from ledger.events import EVENT_ADAPTER, KINDS, Envelope

ENVELOPE_FIELDS = {*Envelope.model_fields, "kind"}
LIST_OF_OBJECTS = {"closure", "manifest"}

KIND_EXAMPLES = {
    "build_recorded": "--env production --service api --version 2.4.1 "
    "--build-id 0c9w2k…(32 chars) --artifact /nix/store/0c9w…-api-2.4.1 --closure closure.json",
    "activation_completed": "--env production --host web-001 --service api "
    "--build-id 0c9w2k… --generation 42 --duration-s 3.2",
    "activation_failed": "--env production --host web-001 --service api --build-id 0c9w2k… "
    "--generation 42 --reason 'health check failed' --exit-code 1",
    "health_reported": "--env production --host web-001 --service api --state critical "
    "--description 'p99 latency 2.3 s' --ttl-s 60",
    "generation_planned": "--env production --parent 41 --reason deploy --manifest manifest.json",
}


class RecordGroup(click.Group):
    """``ledger record``: a subcommand per event kind, named with dashes
    (``activation-failed``); the stored spelling (``activation_failed``) is an alias."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name.replace("_", "-"))


def _choices(annotation: Any) -> list[str] | None:
    """The allowed values of a ``Literal`` field (also inside ``X | None``)."""
    if get_origin(annotation) is Literal:
        return [str(a) for a in get_args(annotation)]
    for arg in get_args(annotation):
        if get_origin(arg) is Literal:
            return [str(a) for a in get_args(arg)]
    return None


def _read_json_list(stream: IO[bytes], option: str) -> list[Any]:
    try:
        value = json.loads(stream.read())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidInput(f"{option}: not valid JSON ({error})") from None
    if not isinstance(value, list):
        raise InvalidInput(f"{option}: expected a JSON array of objects")
    return value


def _record_command(kind: str, model: type[Envelope]) -> click.Command:
    params: list[click.Parameter] = [
        click.Option(["--env"], required=True, help="Environment, e.g. production."),
        click.Option(
            ["--actor"], default=default_actor, show_default="user@host", help="Who reports it."
        ),
        click.Option(
            ["--occurred-at"],
            default=None,
            help="When it happened (ISO 8601 with a timezone; default: now).",
        ),
        click.Option(
            ["--event-id"],
            default=None,
            help="Idempotency key (default: a new UUID). Re-use it with the same "
            "--occurred-at to retry safely.",
        ),
        click.Option(["--json", "as_json"], is_flag=True, help="Print the result as JSON."),
    ]
    for name, info in model.model_fields.items():
        if name in ENVELOPE_FIELDS:
            continue
        flag = "--" + name.replace("_", "-")
        if name in LIST_OF_OBJECTS:
            params.append(
                click.Option(
                    [flag, name],
                    type=click.File("rb"),
                    help=f"JSON file holding the {name} (an array of objects; - for stdin).",
                )
            )
        elif get_origin(info.annotation) is tuple:
            params.append(click.Option([flag, name], multiple=True, help="May be repeated."))
        else:
            choices = _choices(info.annotation)
            params.append(
                click.Option(
                    [flag, name],
                    required=info.is_required(),
                    type=click.Choice(choices) if choices else None,
                    help=(info.description or "") or None,
                )
            )

    @pass_session
    def callback(session: Session, /, **values: Any) -> None:
        as_json = values.pop("as_json")
        data: dict[str, Any] = {
            "kind": kind,
            "event_id": values.pop("event_id") or str(uuid4()),
            "env": values.pop("env"),
            "actor": values.pop("actor"),
            "occurred_at": values.pop("occurred_at") or datetime.now(UTC).isoformat(),
        }
        for name, value in values.items():
            if name in LIST_OF_OBJECTS:
                if value is not None:
                    data[name] = _read_json_list(value, "--" + name)
            elif value is not None and value != ():
                data[name] = value
        # Options arrive as strings: validate leniently here (the models are strict
        # for JSON input), so "--generation 42" means the number 42.
        event = EVENT_ADAPTER.validate_python(data, strict=False)
        result = session.open().append([event], source="cli")[0]
        if as_json:
            output.print_json(
                {"event_id": str(result.event_id), "position": result.position, "new": result.new}
            )
        else:
            output.appended(result, kind)

    doc = (model.__doc__ or "").strip().splitlines()
    summary = doc[0] if doc and not doc[0].startswith("Fields") else kind.replace("_", " ")
    example = KIND_EXAMPLES.get(kind, "--env production …")
    return click.Command(
        name=kind.replace("_", "-"),
        params=params,
        callback=callback,
        help=f"{summary}\n\n\b\nExample:\n  ledger record {kind.replace('_', '-')} {example}",
        short_help=summary,
    )


@click.group(cls=RecordGroup)
def record() -> None:
    """Record one event; prints the position it was stored at.

    Each kind of event is a subcommand with its own options (see
    `ledger record KIND --help`). KIND may also be written with underscores, as the
    ledger stores and shows kinds (`ledger record activation_failed` is
    `ledger record activation-failed`). Lists of objects (a build's closure, a
    generation's manifest) are read from a JSON file.

    \b
    Example:
      ledger record activation-failed --env production --host web-001 \\
        --service api --build-id 0c9w2k7q0mbw4a1q2x5lq9lq0pb1jr4x \\
        --generation 42 --reason "health check failed" --exit-code 1
    """


for _kind, _model in KINDS.items():
    record.add_command(_record_command(_kind, _model))
