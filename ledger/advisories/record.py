"""Recording advisory files: every record checked first, then appended in batches.

As with ``ledger ingest`` (``ledger.importers.jsonl``), an import makes two passes over
its files. The first reads every record (``read_advisories`` streams, so an NVD year
file of 40,000 CVEs never sits in memory whole), checks it and spools its prepared
event to a temporary file; a bad record refuses the whole import with its file, record
and reason, and nothing is stored. The second appends the spooled events, a batch per
transaction. Event ids are derived from the record (id, ``modified`` and content), so a
file imported again stores nothing new and an updated advisory is a new fact.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

from ledger.advisories.files import read_advisories, total_bytes
from ledger.application import (
    CheckState,
    Ledger,
    PreparedEvent,
    append_in_batches,
    batched,
    prepare,
    prepared_from_json,
)
from ledger.importers.base import ImportRefused

BATCH_SIZE = 500

Batch = list[tuple[int, PreparedEvent]]


@dataclass(frozen=True)
class AdvisoryImport:
    """What an import did: records read, new versions stored, repeats skipped."""

    records: int
    stored: int
    skipped: int
    first: int | None
    last: int | None


@dataclass
class CheckedImport:
    """Records checked and spooled by ``checked_advisories``, ready to store."""

    spool: IO[bytes]
    records: int

    def store(
        self, ledger: Ledger, progress: Callable[[int], None] | None = None
    ) -> AdvisoryImport:
        """Append the checked records, a batch per transaction (``progress``: records)."""
        totals = append_in_batches(
            ledger, _unspool(self.spool), source="import", unit="records", on_batch=progress
        )
        return AdvisoryImport(
            self.records, totals.stored, totals.skipped, totals.first, totals.last
        )


@contextmanager
def checked_advisories(
    ledger: Ledger,
    paths: Sequence[Path],
    *,
    actor: str,
    progress: Callable[[int], None] | None = None,
) -> Iterator[CheckedImport]:
    """Read and check every record of ``paths`` (``progress``: bytes of the files read)
    and spool them; raises ImportRefused, with nothing stored, on a bad record."""
    records = 0
    with tempfile.TemporaryFile() as spool:
        state = CheckState()
        for path in paths:
            told = 0

            def checking(consumed: int) -> None:
                nonlocal told
                if progress is not None:
                    progress(consumed - told)
                told = consumed

            events = read_advisories(path, actor=actor, progress=checking)
            for batch in batched(enumerate(events, start=records + 1), BATCH_SIZE):
                prepared: Batch = [(n, prepare(event)) for n, event in batch]
                problems = ledger.check([event for _, event in prepared], state)
                if problems:
                    _, event = prepared[problems[0].index]
                    raise ImportRefused(
                        str(path),
                        f"advisory {event.data['advisory_id']}",
                        problems[0].message,
                    )
                _spool(spool, prepared)
                records += len(prepared)
        yield CheckedImport(spool, records)


def import_advisories(ledger: Ledger, paths: Sequence[Path], *, actor: str) -> AdvisoryImport:
    """Check, then store, every record of ``paths`` (see the module docstring)."""
    with checked_advisories(ledger, paths, actor=actor) as checked:
        return checked.store(ledger)


def import_size(paths: Sequence[Path]) -> int:
    """The bytes the "checking" phase counts up to."""
    return sum(total_bytes(path) for path in paths)


def _spool(spool: IO[bytes], batch: Batch) -> None:
    spool.write(orjson.dumps([(number, e.digest, e.data) for number, e in batch]))
    spool.write(b"\n")


def _unspool(spool: IO[bytes]) -> Iterator[Batch]:
    spool.seek(0)
    for line in spool:
        yield [
            (number, prepared_from_json(data, digest))
            for number, digest, data in orjson.loads(line)
        ]
