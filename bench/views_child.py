"""The child process of ``bench.views``: read the whole ledger raw, then rebuild the views.

``python -m bench.views_child LEDGER_URL`` prints one JSON object: events read and
seconds taken by the raw read (every notification selected and decoded into its entry,
nothing projected), the same for a full rebuild of every view, and this process's peak
RSS (KiB) after the raw read and after the rebuild. Running in its own process makes
the peak its own.
"""

from __future__ import annotations

import json
import resource
import sys
import time

from ledger.application import Ledger
from ledger.store import locate
from projections.runner import Views


def main(argv: list[str]) -> None:
    (url,) = argv
    ledger = Ledger(locate(url))
    views = Views(ledger)

    start = time.perf_counter()
    read = sum(1 for _ in ledger.facts())
    raw_seconds = time.perf_counter() - start
    after_read_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    start = time.perf_counter()
    rebuilt = views.rebuild()
    rebuild_seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ledger.close()
    print(
        json.dumps(
            {
                "read": read,
                "raw_seconds": raw_seconds,
                "rebuilt": rebuilt,
                "rebuild_seconds": rebuild_seconds,
                "after_read_kib": after_read_kib,
                "peak_kib": peak_kib,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
