"""The child process of ``bench.memory``: ingest one file into a new SQLite ledger.

``python -m bench.memory_child EVENTS_FILE LEDGER_PATH`` prints one JSON object: events
stored, seconds ``ingest()`` took, and this process's peak RSS (KiB) before the ingest
started, i.e. the interpreter and the imports.
"""

from __future__ import annotations

import json
import resource
import sys
import time

from ledger.application import Ledger
from ledger.importers.jsonl import ingest
from ledger.store import locate


def main(argv: list[str]) -> None:
    events_file, ledger_path = argv
    ledger = Ledger(locate(ledger_path), create=True)
    before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open(events_file, "rb") as stream:
        start = time.perf_counter()
        report = ingest(ledger, stream, source="file")
        seconds = time.perf_counter() - start
    ledger.close()
    print(json.dumps({"stored": report.stored, "seconds": seconds, "before_kib": before_kib}))


if __name__ == "__main__":
    main(sys.argv[1:])
