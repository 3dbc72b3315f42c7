"""JSON Lines ingest: one event per line, all-or-nothing validation, batched appends.

An ingest makes two passes. The first validates every line (schema, event-id clashes
with what is stored, generation numbers) and collects every error with its line number;
if there is any, the whole file is refused and nothing is stored. The second appends
in batches. Small inputs keep their parsed events between the passes; large ones are
parsed again so memory stays bounded whatever the file size. Standard input is spooled
to a temporary file so it can be read twice.
"""

from __future__ import annotations

import codecs
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ledger.application import CheckState, Ledger, append_in_batches
from ledger.errors import InvalidInput
from ledger.events import Envelope, LedgerEvent, Source, describe_error, parse_event

BATCH_SIZE = 1000
KEEP_PARSED_BYTES = 32 * 1024 * 1024
"""Inputs up to this size keep their parsed events between the two passes."""
MAX_BATCH_BYTES = 4 * 1024 * 1024
"""A batch (one transaction) holds at most this much input, however large its events."""
MAX_LINE_BYTES = 64 * 1024 * 1024
"""The longest line (one event) an ingest reads; a generation of ~300,000 placements."""
MAX_REPORTED_ERRORS = 100
JSON_WHITESPACE = b" \t\r\n"
"""What may surround an event on its line. ``bytes.strip()`` would also take \\x0b and
\\x0c, which JSON does not: a line starting with one is refused, not cleaned up."""


@dataclass(frozen=True)
class LineError:
    """What is wrong with one line: ``field`` is a dotted path, empty for the whole line."""

    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", field {self.field}" if self.field else "")
        return f"{where}: {self.reason}"


class IngestRefused(InvalidInput):
    """The input has invalid lines; nothing was stored."""

    def __init__(self, errors: list[LineError], bad_lines: int, lines: int) -> None:
        self.errors = errors
        self.bad_lines = bad_lines
        self.lines = lines
        super().__init__(
            f"{bad_lines} of {lines} lines are invalid, nothing was stored; first: {errors[0]}"
        )


@dataclass(frozen=True)
class IngestReport:
    lines: int
    stored: int
    skipped: int
    first_position: int | None
    last_position: int | None


Progress = Callable[[int], None]
"""Called with the number of bytes just processed."""


def parse_line(number: int, raw: bytes) -> LedgerEvent | list[LineError]:
    """Parse one line, or say everything that is wrong with it."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return [LineError(number, "", f"not valid UTF-8 (byte at offset {error.start})")]
    try:
        return parse_event(raw)
    except ValidationError as error:
        details = error.errors(include_url=False)
        if details[0]["type"] == "json_invalid" and (stray := _stray_byte(raw)):
            return [LineError(number, "", stray)]
        return [_line_error(number, e) for e in details]
    except RecursionError:
        return [LineError(number, "", "JSON nested too deeply")]


def _stray_byte(raw: bytes) -> str | None:
    """Names what surrounds the JSON object on a line (JSON whitespace is stripped)."""
    if raw.startswith(codecs.BOM_UTF8):
        return "not valid JSON: the line starts with a byte order mark (U+FEFF)"
    for offset in (0, len(raw) - 1):
        byte = raw[offset : offset + 1]
        if byte < b" " or byte == b"\x7f":
            return (
                f"not valid JSON: byte {byte!r} at offset {offset} is not JSON whitespace "
                "(only space, tab, CR and LF may surround an event)"
            )
    return None


def parse_lines(lines: Iterable[bytes]) -> list[LedgerEvent]:
    """Every event of a small JSON Lines input held in memory (an agent's file, an HTTP
    body), blank lines skipped; ``IngestRefused`` naming every bad line if any is."""
    events: list[LedgerEvent] = []
    errors: list[LineError] = []
    bad_lines = count = 0
    for number, raw in enumerate(lines, start=1):
        count = number
        stripped = raw.strip(JSON_WHITESPACE)
        if not stripped:
            continue
        parsed = parse_line(number, stripped)
        if isinstance(parsed, list):
            bad_lines += 1
            errors += parsed[: MAX_REPORTED_ERRORS - len(errors)]
        else:
            events.append(parsed)
    if bad_lines:
        raise IngestRefused(errors, bad_lines, count)
    return events


def _line_error(number: int, detail: ErrorDetails) -> LineError:
    field, reason = describe_error(detail)
    return LineError(number, field, reason)


def _lines(stream: IO[bytes], progress: Progress | None) -> Iterator[tuple[int, bytes | None]]:
    """Numbered non-blank lines; ``None`` for a line too long to hold (it is not read)."""
    number = 0
    while raw := stream.readline(MAX_LINE_BYTES + 1):
        number += 1
        if progress is not None:
            progress(len(raw))
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while (rest := stream.readline(1 << 20)) and not rest.endswith(b"\n"):
                if progress is not None:
                    progress(len(rest))
            if progress is not None:
                progress(len(rest))
            yield number, None
            continue
        stripped = raw.strip(JSON_WHITESPACE)
        if stripped:
            yield number, stripped


def _batches(
    stream: IO[bytes],
    batch_size: int,
    progress: Progress | None,
    on_error: Callable[[list[LineError]], None],
) -> Iterator[list[tuple[int, Envelope]]]:
    """Parsed events with their line numbers, in batches bounded by count and bytes."""
    batch: list[tuple[int, Envelope]] = []
    size = 0
    for number, raw in _lines(stream, progress):
        if raw is None:
            on_error([LineError(number, "", f"longer than {MAX_LINE_BYTES >> 20} MiB")])
            continue
        parsed = parse_line(number, raw)
        if isinstance(parsed, list):
            on_error(parsed)
            continue
        batch.append((number, parsed))
        size += len(raw)
        if len(batch) >= batch_size or size >= MAX_BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def ingest(
    ledger: Ledger,
    stream: IO[bytes],
    *,
    source: Source = "file",
    batch_size: int = BATCH_SIZE,
    progress: Callable[[str, int], None] | None = None,
) -> IngestReport:
    """Validate the whole input, then append it in batches; see the module docstring.

    ``progress(phase, bytes)`` is told how far each pass ("checking", "appending") got.
    Raises ``IngestRefused`` when any line is invalid (nothing is stored).
    """
    if not stream.seekable():
        with tempfile.TemporaryFile() as spool:
            shutil.copyfileobj(stream, spool)
            spool.seek(0)
            return ingest(ledger, spool, source=source, batch_size=batch_size, progress=progress)
    length = stream.seek(0, 2)
    stream.seek(0)

    def tell(phase: str) -> Progress | None:
        return None if progress is None else (lambda n: progress(phase, n))

    errors: list[LineError] = []
    bad_lines = last_line = 0

    def refuse(line_errors: list[LineError]) -> None:
        # Counted, not collected: a file of a million bad lines must not fill memory.
        nonlocal bad_lines, last_line
        if line_errors:
            bad_lines += len({e.line for e in line_errors})
            last_line = max(last_line, line_errors[-1].line)
        errors.extend(line_errors[: MAX_REPORTED_ERRORS - len(errors)])

    def changed_underneath(line_errors: list[LineError]) -> None:
        raise InvalidInput(
            f"{line_errors[0]}; the input changed while it was being ingested, and the "
            "events before that line were stored: fix the input and run the ingest again"
        )

    kept: list[list[tuple[int, Envelope]]] = []
    state = CheckState()
    for batch in _batches(stream, batch_size, tell("checking"), refuse):
        last_line = max(last_line, batch[-1][0])
        refuse(
            [
                LineError(batch[p.index][0], "", p.message)
                for p in ledger.check([event for _, event in batch], state)
            ]
        )
        if length <= KEEP_PARSED_BYTES:
            kept.append(batch)
    if bad_lines:
        errors.sort(key=lambda e: e.line)
        raise IngestRefused(errors, bad_lines, last_line)

    if length <= KEEP_PARSED_BYTES:
        batches: Iterable[list[tuple[int, Envelope]]] = kept
        if progress is not None:
            progress("appending", length)
    else:
        stream.seek(0)
        batches = _batches(stream, batch_size, tell("appending"), changed_underneath)
    totals = append_in_batches(ledger, batches, source=source)
    return IngestReport(last_line, totals.stored, totals.skipped, totals.first, totals.last)
