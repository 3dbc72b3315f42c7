"""JSON Lines ingest: one event per line, all-or-nothing validation, batched appends.

An ingest makes two passes. The first validates every line (schema, event-id clashes
with what is stored, generation numbers), collects every error with its line number, and
prepares each valid event for the append (its JSON form and content digest, see
``ledger.application.PreparedEvent``); if any line is invalid, the whole file is refused
and nothing is stored. The second pass appends the prepared events in batches, one
transaction each. Small inputs keep them in memory between the passes; large ones spool
them, a batch per line, to a temporary file, so memory stays bounded whatever the file
size, the input is read (and parsed) once, and what is appended is exactly what was
validated even if the input changes meanwhile. Standard input is read once, like a file.
"""

from __future__ import annotations

import codecs
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO

import orjson
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ledger.application import (
    CheckState,
    Ledger,
    PreparedEvent,
    append_in_batches,
    prepare,
    prepared_from_json,
)
from ledger.errors import InvalidInput
from ledger.events import LedgerEvent, Source, describe_error, parse_event

BATCH_SIZE = 1000
KEEP_PARSED_BYTES = 32 * 1024 * 1024
"""Inputs up to this size keep their prepared events in memory between the two passes;
larger ones spool them to a temporary file."""
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


Batch = list[tuple[int, PreparedEvent]]
"""Prepared events with their line numbers."""


def _batches(
    stream: IO[bytes],
    batch_size: int,
    progress: Progress | None,
    on_error: Callable[[list[LineError]], None],
) -> Iterator[Batch]:
    """Prepared events with their line numbers, in batches bounded by count and bytes."""
    batch: Batch = []
    size = 0
    for number, raw in _lines(stream, progress):
        if raw is None:
            on_error([LineError(number, "", f"longer than {MAX_LINE_BYTES >> 20} MiB")])
            continue
        parsed = parse_line(number, raw)
        if isinstance(parsed, list):
            on_error(parsed)
            continue
        batch.append((number, prepare(parsed)))
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
    try:
        length: int | None = stream.seek(0, 2)
        stream.seek(0)
    except OSError:  # a pipe: read once all the same, its size is unknown
        length = None
    keep = length is not None and length <= KEEP_PARSED_BYTES

    consumed = 0

    def checking(n: int) -> None:
        nonlocal consumed
        consumed += n
        if progress is not None:
            progress("checking", n)

    errors: list[LineError] = []
    bad_lines = last_line = 0

    def refuse(line_errors: list[LineError]) -> None:
        # Counted, not collected: a file of a million bad lines must not fill memory.
        nonlocal bad_lines, last_line
        if line_errors:
            bad_lines += len({e.line for e in line_errors})
            last_line = max(last_line, line_errors[-1].line)
        errors.extend(line_errors[: MAX_REPORTED_ERRORS - len(errors)])

    with tempfile.TemporaryFile() as spool:
        kept: list[Batch] = []
        state = CheckState()
        for batch in _batches(stream, batch_size, checking, refuse):
            last_line = max(last_line, batch[-1][0])
            refuse(
                [
                    LineError(batch[p.index][0], "", p.message)
                    for p in ledger.check([event for _, event in batch], state)
                ]
            )
            if bad_lines:
                continue  # the file is refused: only its errors are still wanted
            if keep:
                kept.append(batch)
            else:
                _spool(spool, batch)
        if bad_lines:
            errors.sort(key=lambda e: e.line)
            raise IngestRefused(errors, bad_lines, last_line)
        if keep:
            batches: Iterable[Batch] = kept
            if progress is not None:
                progress("appending", consumed)
        else:
            appending = None if progress is None else (lambda n: progress("appending", n))
            batches = _unspool(spool, appending, consumed)
        totals = append_in_batches(ledger, batches, source=source)
    return IngestReport(last_line, totals.stored, totals.skipped, totals.first, totals.last)


def _spool(spool: IO[bytes], batch: Batch) -> None:
    """One line per batch: its line numbers, digests and JSON forms."""
    spool.write(orjson.dumps([(number, e.digest, e.data) for number, e in batch]))
    spool.write(b"\n")


def _unspool(spool: IO[bytes], progress: Progress | None, length: int) -> Iterator[Batch]:
    """The spooled batches back; ``progress`` is told the input's bytes, in proportion."""
    total = spool.tell()
    spool.seek(0)
    done = told = 0
    for line in spool:
        yield [
            (number, prepared_from_json(data, digest))
            for number, digest, data in orjson.loads(line)
        ]
        done += len(line)
        if progress is not None and total:
            now = length * done // total
            progress(now - told)
            told = now
