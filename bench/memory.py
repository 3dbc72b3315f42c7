"""Peak memory of ingesting a large JSON Lines file into SQLite.

The ingest runs in a child process (``bench.memory_child``) so that its peak resident
set size is its own: ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` (KiB on Linux) once it has
exited. That figure is the largest of all waited-for children, so this must run before
anything else starts a subprocess (pgserver does): ``python -m bench`` runs it first.
The peak includes the interpreter and imports; the child also reports its peak before
the ingest began.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.events import EventsFile

ROOT = Path(__file__).resolve().parent.parent
"""The folder that holds ``bench`` and ``ledger``: the child's working directory."""


@dataclass(frozen=True)
class Memory:
    events: int
    peak_mb: float
    before_ingest_mb: float
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def ingest_memory(events: EventsFile, workdir: Path) -> Memory:
    ledger_path = workdir / "memory.db"
    done = subprocess.run(
        [sys.executable, "-m", "bench.memory_child", str(events.path), str(ledger_path)],
        cwd=ROOT,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    for file in workdir.glob("memory.db*"):
        file.unlink()
    child = json.loads(done.stdout)
    if child["stored"] != events.events:
        raise RuntimeError(f"the child stored {child['stored']} of {events.events} events")
    return Memory(events.events, peak_kib / 1024, child["before_kib"] / 1024, child["seconds"])
