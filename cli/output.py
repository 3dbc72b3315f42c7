"""All rendering of the CLI: tables for people, JSON for scripts, progress bars.

Tables are written as their rows come (``table``): a pipe gets plain rows at once, a
terminal a table a screenful at a time, so the first screen of a long answer appears
before the last row is read. rich is imported only by what draws with it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cache
from itertools import chain, islice
from typing import TYPE_CHECKING, Any, Literal

import orjson

if TYPE_CHECKING:
    from rich.console import Console

    from ledger.application import Appended, StoredFact, Verification
    from ledger.importers.jsonl import IngestReport
    from ledger.summary import LedgerSummary


@cache
def console() -> Console:
    from rich.console import Console

    # Pipes and files get whole lines: never wrapped, never truncated.
    tty = sys.stdout.isatty()
    return Console(highlight=False, width=None if tty else 180, soft_wrap=not tty)


def plain() -> bool:
    """Whether tables are written as plain rows: standard output is not a terminal
    (a pipe, a file). See ``table``."""
    if "TTY_COMPATIBLE" in os.environ or "FORCE_COLOR" in os.environ:
        return not console().is_terminal  # rich's rules for these
    # Without them rich asks isatty too: a pipe's rows need no rich at all.
    try:
        return not sys.stdout.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return True


def escape(text: str) -> str:
    """``text`` with rich markup escaped, for messages that mix markup and producers'
    names."""
    from rich.markup import escape

    return escape(text)


def note(text: str) -> None:
    """A line about a table (how many rows it left out, that there are none): with
    the table on a terminal; on standard error when the table goes to a pipe, so that
    standard output holds only the table's rows."""
    (error_console() if plain() else console()).print(f"[dim]{escape(text)}[/dim]")


@cache
def error_console() -> Console:
    from rich.console import Console

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
    if not error_console().is_terminal:
        yield lambda phase, n: None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("{task.description:>10}"),
        BarColumn(),
        DownloadColumn() if unit == "bytes" else MofNCompleteColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=error_console(), transient=True) as progress:
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

Row = tuple[Sequence[str], str | None]
"""A table row: its cells, and its rich style on a terminal (``"red"``) or None."""

Justify = Literal["left", "right"]

TIME_KEYS = ("since", "occurred_at", "planned_at", "finished_at")
ID_KEYS = ("build_id", "from_build", "to_build")
PLAIN_MEASURED_ROWS = 1_000
"""A pipe's columns are as wide as their widest cell in this many first rows (or in
all of them, when the answer is already in memory); a wider cell after them widens its
column from its row on."""


def cell(key: str, value: Any) -> str:
    """A value as a table cell."""
    if value is None:
        return ""
    if key in TIME_KEYS:
        return when(value)
    if key in ID_KEYS:
        return _short(value)
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else ""
    return str(value)


def table(
    headers: Sequence[str],
    rows: Iterable[Row],
    *,
    measure_all: bool = False,
    justify: Sequence[Justify] = (),
    wrap_last: bool = False,
) -> int:
    """Write rows as they come and return how many there were (nothing at all when
    none). A pipe or a file gets plain rows (``plain_rows``); a terminal a rich table,
    a screenful at a time (``terminal_rows``). ``measure_all`` when ``rows`` is already
    in memory: the columns are then as wide as their widest cell."""
    if plain():
        return plain_rows(
            headers,
            (cells for cells, _ in rows),
            measure=None if measure_all else PLAIN_MEASURED_ROWS,
        )
    return terminal_rows(
        headers, rows, measure_all=measure_all, justify=justify, wrap_last=wrap_last
    )


def plain_rows(
    headers: Sequence[str], rows: Iterable[Sequence[str]], *, measure: int | None
) -> int:
    """A table for pipes and files: the header line, then one line per row, each cell
    left-aligned and padded to its column's width, columns two spaces apart; no padding
    after the last cell, and a cell's line breaks and tabs become spaces, so no row ever
    continues on a second line (grep, awk, cut -c and sort see one row per line).

    The widths are those of the first ``measure`` rows (all when None); each row after
    them is written as it comes, and a wider cell widens its column from there on.
    """
    rows = iter(rows)
    first = [[_flat(value) for value in row] for row in islice(rows, measure)]
    if not first:
        return 0
    lines = [[_flat(str(value)) for value in headers], *first]
    widths = [max(map(_width, column)) for column in zip(*lines, strict=True)]
    write = sys.stdout.write
    for line in lines:
        write(_padded(line, widths))
    sys.stdout.flush()
    count = len(first)
    for row in rows:
        write(_padded([_flat(value) for value in row], widths))
        count += 1
    sys.stdout.flush()
    return count


def _padded(line: list[str], widths: list[int]) -> str:
    """One plain row; widens ``widths`` where a cell is wider."""
    last = len(line) - 1
    for i, value in enumerate(line):
        width = _width(value)
        if width > widths[i]:
            widths[i] = width
        elif i < last:
            line[i] = value + " " * (widths[i] - width)
    return "  ".join(line).rstrip() + "\n"


def _width(text: str) -> int:
    if text.isascii():
        return len(text)
    from rich.cells import cell_len

    return cell_len(text)


def _flat(text: str) -> str:
    # Every character that splits a line is unprintable: most cells skip the work.
    return text if text.isprintable() else " ".join(text.replace("\t", " ").splitlines())


def terminal_rows(
    headers: Sequence[str],
    rows: Iterable[Row],
    *,
    measure_all: bool = False,
    justify: Sequence[Justify] = (),
    wrap_last: bool = False,
) -> int:
    """A rich table on a terminal, printed a screenful of rows at a time so the first
    screen appears at once however long the answer. Every column but the last is as
    wide as its widest cell in the first screenful (in all rows with ``measure_all``),
    so the columns line up from one screenful to the next; a wider cell after that is
    cut with "…". The last column gets the rest of the line and wraps when
    ``wrap_last`` (lists, reasons); otherwise it is cut too."""
    from rich.table import Table
    from rich.text import Text

    screen = console()
    page = max(screen.height - 2, 10)
    rows = iter(rows)
    head = list(rows) if measure_all else list(islice(rows, page))
    if not head:
        return 0
    widths = [
        max(_width(str(header)), *(_width(_flat(cells[i])) for cells, _ in head))
        for i, header in enumerate(headers)
    ]
    # rich puts two spaces between columns (box=None, no edge padding).
    room = screen.width - sum(widths[:-1]) - 2 * (len(widths) - 1)
    widths[-1] = max(min(widths[-1], room) if measure_all else room, min(widths[-1], 10))
    count = 0
    pending = chain(head, rows)
    while part := list(islice(pending, page)):
        grid = Table(box=None, header_style="bold", pad_edge=False, show_header=not count)
        for i, header in enumerate(headers):
            grid.add_column(
                header,
                width=widths[i],
                justify=justify[i] if i < len(justify) else "left",
                no_wrap=not (wrap_last and i == len(headers) - 1),
            )
        for cells, style in part:
            grid.add_row(*(Text(value) for value in cells), style=style)
        screen.print(grid)
        count += len(part)
    return count


def rows_table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[Column],
    *,
    empty: str,
    style: Callable[[dict[str, Any]], str | None] = lambda row: None,
) -> None:
    """Rows as a table, one column per (key, header); ``empty`` when there are none.
    A terminal gets a rich table; a pipe or a file plain rows (``plain_rows``)."""
    shown = table(
        [header for _, header in columns],
        (([cell(key, row.get(key)) for key, _ in columns], style(row)) for row in rows),
        measure_all=True,
        wrap_last=True,
    )
    if not shown:
        note(empty)


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
FACT_JUSTIFY: tuple[Justify, ...] = ("right",)


def _fact_row(fact: StoredFact) -> Row:
    event = fact.event
    kind = event["kind"]
    cells = [
        str(fact.position),
        when(event["occurred_at"]),
        event["env"],
        kind,
        event.get("host") or "",
        event.get("service") or "",
        _detail(event),
    ]
    return cells, "red" if failed_kind(kind) else None


def facts_table(facts: Iterable[StoredFact], *, matching: int | None = None) -> None:
    """Facts as they are read, one row each; ``matching`` is how many matched when
    ``facts`` holds only the last of them."""
    # The last N are in memory already: their columns can be measured whole.
    shown = table(
        FACT_COLUMNS, map(_fact_row, facts), measure_all=matching is not None, justify=FACT_JUSTIFY
    )
    if not shown:
        note("no events match")
    elif matching is not None and matching > shown:
        note(f"showing the last {shown} of {matching} matching events; --limit 0 shows all")


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
        checked = (
            "hash, position and Merkle tree node" if result.tree_checked else "hash and position"
        )
        console().print(
            f"[green]Intact[/green]: {result.events} events in {where}, every {checked} "
            f"checks out.\nHead: position {result.events}, hash {result.head_hash}"
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
        (
            [
                name,
                str(len(env.hosts)),
                str(len(env.services)),
                str(env.generations),
                str(env.completed),
                str(env.failed),
                str(env.rollbacks),
                str(env.failed_activations),
            ],
            None,
        )
        for name, env in sorted(summary.envs.items())
    ]
    right: list[Justify] = ["right"] * (len(columns) - 1)
    table(columns, rows, measure_all=True, justify=["left", *right])
    if result.intact:
        console().print(f"  verify: [green]intact[/green] (head hash {result.head_hash[:16]}…)")
    else:
        console().print(f"  verify: [red]TAMPERED at position {result.bad_position}[/red]")
