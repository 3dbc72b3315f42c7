"""All rendering of the CLI: tables for people, JSON for scripts, progress bars."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cache
from typing import Any

import orjson
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from ledger.application import Appended, StoredFact, Verification
from ledger.importers.jsonl import IngestReport
from ledger.summary import LedgerSummary


@cache
def console() -> Console:
    # Pipes and files get whole lines: never wrapped, never truncated.
    tty = sys.stdout.isatty()
    return Console(highlight=False, width=None if tty else 180, soft_wrap=not tty)


def plain() -> bool:
    """Whether tables are written as plain rows: standard output is not a terminal
    (a pipe, a file). See ``plain_table``."""
    return not console().is_terminal


def note(text: str) -> None:
    """A line about a table (how many rows it left out, that there are none): with
    the table on a terminal; on standard error when the table goes to a pipe, so that
    standard output holds only the table's rows."""
    (error_console() if plain() else console()).print(f"[dim]{escape(text)}[/dim]")


@cache
def error_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def print_json_lines(values: Iterable[dict[str, Any]]) -> None:
    write = sys.stdout.buffer.write
    for value in values:
        write(orjson.dumps(value) + b"\n")
    sys.stdout.flush()


@contextlib.contextmanager
def progress_bars(
    phases: Sequence[str], total: int | None, *, unit: str = "items"
) -> Iterator[Callable[[str, int], None]]:
    """One bar per phase on standard error when it is a terminal; silent otherwise."""
    columns = [
        TextColumn("{task.description:>10}"),
        BarColumn(),
        DownloadColumn() if unit == "bytes" else MofNCompleteColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(
        *columns, console=error_console(), transient=True, disable=not error_console().is_terminal
    ) as progress:
        tasks = {phase: progress.add_task(phase, total=total) for phase in phases}
        yield lambda phase, n: progress.advance(tasks[phase], n)


@contextlib.contextmanager
def progress_bar(
    description: str, total: int | None, *, unit: str = "items"
) -> Iterator[Callable[[int], None]]:
    with progress_bars([description], total, unit=unit) as advance:
        yield lambda n: advance(description, n)


def when(value: str | None) -> str:
    """A timestamp for people: 2026-01-13 04:11:57Z."""
    return "" if not value else value.replace("T", " ")[:19] + "Z"


def _short(build_id: str | None) -> str:
    return "" if not build_id else build_id[:12]


def _detail(event: dict[str, Any]) -> str:
    kind = event["kind"]
    if kind == "build_recorded":
        return f"{event['version']} {_short(event['build_id'])} ({len(event['closure'])} paths)"
    if kind == "generation_planned":
        target = f" → {event['target']}" if event.get("target") else ""
        return (
            f"gen {event['number']} {event['reason']}{target}, {len(event['manifest'])} placements"
        )
    if kind in ("generation_completed", "generation_failed"):
        return f"gen {event['number']} {event.get('reason', '')}".rstrip()
    if kind == "generation_tagged":
        return f"gen {event['number']} +{' +'.join(event['tags'])}"
    if kind == "health_reported":
        return f"{event['state']} {event.get('description', '')}".rstrip()
    if kind == "host_reported":
        return f"{len(event['manifest'])} services active"
    parts = [_short(event.get("build_id"))]
    if event.get("generation"):
        parts.append(f"gen {event['generation']}")
    if event.get("reason"):
        parts.append(str(event["reason"]).splitlines()[0][:60])
    return " ".join(p for p in parts if p)


Column = tuple[str, str]
"""A table column: the row key it shows, and its header."""

TIME_KEYS = ("since", "occurred_at", "planned_at", "finished_at")
ID_KEYS = ("build_id", "from_build", "to_build")


def cell(key: str, value: Any) -> Text:
    """A value as a table cell; producers' strings are never read as rich markup."""
    if value is None:
        return Text("")
    if key in TIME_KEYS:
        return Text(when(value))
    if key in ID_KEYS:
        return Text(_short(value))
    if isinstance(value, list | tuple):
        return Text(", ".join(str(v) for v in value))
    if isinstance(value, bool):
        return Text("yes" if value else "")
    return Text(str(value))


def plain_table(headers: Sequence[str], rows: Iterable[Sequence[str | Text]]) -> None:
    """A table for pipes and files: the header line, then one line per row, each cell
    left-aligned and padded to its column's width, columns two spaces apart; no padding
    after the last cell, and a cell's line breaks and tabs become spaces, so no row ever
    continues on a second line (grep, awk, cut -c and sort see one row per line)."""
    lines = [[_flat(str(value)) for value in headers]]
    lines += [[_flat(value.plain if isinstance(value, Text) else value) for value in row]
              for row in rows]  # fmt: skip
    widths = [max(cell_len(line[i]) for line in lines) for i in range(len(headers))]
    write = sys.stdout.write
    for line in lines:
        padded = [value + " " * (widths[i] - cell_len(value)) for i, value in enumerate(line)]
        write("  ".join(padded).rstrip() + "\n")
    sys.stdout.flush()


def _flat(text: str) -> str:
    return " ".join(text.replace("\t", " ").splitlines())


def rows_table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[Column],
    *,
    empty: str,
    style: Callable[[dict[str, Any]], str | None] = lambda row: None,
) -> None:
    """Rows as a table, one column per (key, header); ``empty`` when there are none.
    A terminal gets a rich table; a pipe or a file plain rows (``plain_table``)."""
    if not rows:
        note(empty)
        return
    if plain():
        plain_table(
            [header for _, header in columns],
            ([cell(key, row.get(key)) for key, _ in columns] for row in rows),
        )
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for index, (_, header) in enumerate(columns):
        # The last column may wrap (lists, reasons); the others stay whole.
        table.add_column(header, no_wrap=index < len(columns) - 1)
    for row in rows:
        table.add_row(*(cell(key, row.get(key)) for key, _ in columns), style=style(row))
    console().print(table)


def answer(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[Column],
    *,
    as_json: bool,
    empty: str,
    style: Callable[[dict[str, Any]], str | None] = lambda row: None,
) -> None:
    """What a query command prints: the rows as JSON, or as a table for people."""
    if as_json:
        print_json(rows)
    else:
        rows_table(rows, columns, empty=empty, style=style)


def failed_kind(kind: str) -> bool:
    """Whether an event kind reports something that went wrong."""
    return kind.endswith(("_failed", "_timed_out"))


def where_summary(summary: Sequence[dict[str, Any]]) -> None:
    """``ledger where``'s answer in one line per environment and package version; the
    package's name and ecosystem are shown when the answer holds several."""
    several = len({(s["ecosystem"], s["name"]) for s in summary}) > 1
    columns = [("env", "env")]
    if several:
        columns += [("package", "package")]
    columns += [
        ("version", "version"),
        ("outputs", "outputs"),
        ("hosts", "on"),
        ("services", "in services"),
    ]
    rows_table(
        [
            {**s, "hosts": f"{s['hosts']} hosts", "package": f"{s['name']} ({s['ecosystem']})"}
            for s in summary
        ],
        columns,
        empty="no active closure holds it",
    )


FACT_COLUMNS = ("pos", "occurred (UTC)", "env", "kind", "host", "service", "detail")


def _fact_row(fact: StoredFact) -> list[Text]:
    event = fact.event
    # Names and reasons come from producers: never read them as rich markup.
    return [
        Text(str(fact.position)),
        Text(when(event["occurred_at"])),
        Text(event["env"]),
        Text(event["kind"]),
        Text(event.get("host") or ""),
        Text(event.get("service") or ""),
        Text(_detail(event)),
    ]


def facts_table(facts: list[StoredFact], *, matching: int) -> None:
    if not facts:
        note("no events match")
        return
    if plain():
        plain_table(FACT_COLUMNS, map(_fact_row, facts))
    else:
        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in FACT_COLUMNS:
            table.add_column(column, justify="right" if column == "pos" else "left", no_wrap=True)
        for fact in facts:
            style = "red" if failed_kind(fact.event["kind"]) else None
            table.add_row(*_fact_row(fact), style=style)
        console().print(table)
    if matching > len(facts):
        note(f"showing the last {len(facts)} of {matching} matching events; --limit 0 shows all")


def appended(result: Appended, kind: str) -> None:
    if result.new:
        console().print(f"Recorded {kind} at position {result.position} (event {result.event_id}).")
    else:
        console().print(
            f"Already recorded at position {result.position} (event {result.event_id}); "
            "nothing new was stored."
        )


def ingest_report(report: IngestReport) -> None:
    where = (
        f" at positions {report.first_position}–{report.last_position}"
        if report.first_position is not None
        else ""
    )
    console().print(
        f"Ingested {report.lines} lines: {report.stored} new events stored{where}, "
        f"{report.skipped} already stored (skipped)."
    )


def verification(result: Verification, where: str) -> None:
    where = escape(where)
    if result.intact:
        console().print(
            f"[green]Intact[/green]: {result.events} events in {where}, every hash and "
            f"position checks out.\nHead: position {result.events}, hash {result.head_hash}"
        )
    else:
        console().print(
            f"[red]TAMPERED[/red]: {where} fails verification at position "
            f"{result.bad_position}.\n{result.reason}.\n"
            f"The {result.events} events before it verify."
        )


def summary_view(summary: LedgerSummary, result: Verification, where: str) -> None:
    where = escape(where)
    console().print(f"[bold]Deployment ledger[/bold] at {where}")
    console().print(
        f"  {summary.events} events · {summary.hosts} hosts · {summary.services} services · "
        f"{len(summary.envs)} environments · {summary.builds} builds"
    )
    columns = ("env", "hosts", "services", "generations", "completed", "failed", "rollbacks",
               "failed activations")  # fmt: skip
    rows = [
        [
            Text(name),
            Text(str(len(env.hosts))),
            Text(str(len(env.services))),
            Text(str(env.generations)),
            Text(str(env.completed)),
            Text(str(env.failed)),
            Text(str(env.rollbacks)),
            Text(str(env.failed_activations)),
        ]
        for name, env in sorted(summary.envs.items())
    ]
    if plain():
        plain_table(columns, rows)
    else:
        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in columns:
            table.add_column(column, justify="left" if column == "env" else "right")
        for row in rows:
            table.add_row(*row)
        console().print(table)
    if result.intact:
        console().print(f"  verify: [green]intact[/green] (head hash {result.head_hash[:16]}…)")
    else:
        console().print(f"  verify: [red]TAMPERED at position {result.bad_position}[/red]")
