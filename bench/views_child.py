"""The child process of ``bench.views``: read the whole ledger raw, then rebuild the views.

``python -m bench.views_child LEDGER_URL`` prints one JSON object: events read and
seconds taken by the raw read (every notification selected and decoded into its entry,
nothing projected), the same for a full rebuild of every view, and this process's peak
RSS (KiB) after the raw read and after the rebuild. Running in its own process makes
the peak its own.

It also says where the rebuild's time went (``breakdown``, seconds): reading and
decoding the stream, each view's ``apply``, and the rest — dropping the old tables,
writing tracking rows and committing, which is mostly SQLite or PostgreSQL writing the
views' pages. The timers add a few calls per batch, not per event.
"""

from __future__ import annotations

import collections
import json
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

from ledger.application import Ledger
from ledger.store import locate
from projections.runner import Views

Spent = collections.defaultdict[str, float]


def timed(spent: Spent, label: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] += time.perf_counter() - start

    return wrapper


def main(argv: list[str]) -> None:
    (url,) = argv
    ledger = Ledger(locate(url))
    views = Views(ledger)
    spent: Spent = collections.defaultdict(float)
    views._select = timed(spent, "read and decode", views._select)  # type: ignore[method-assign]
    views._decode = timed(spent, "read and decode", views._decode)  # type: ignore[method-assign]
    for view in views.views.values():
        view.apply = timed(spent, view.name, view.apply)  # type: ignore[method-assign]

    start = time.perf_counter()
    read = sum(1 for _ in ledger.facts())
    raw_seconds = time.perf_counter() - start
    after_read_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    start = time.perf_counter()
    rebuilt = views.rebuild()
    rebuild_seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ledger.close()
    spent["drop, track, commit"] = rebuild_seconds - sum(spent.values())
    print(
        json.dumps(
            {
                "read": read,
                "raw_seconds": raw_seconds,
                "rebuilt": rebuilt,
                "rebuild_seconds": rebuild_seconds,
                "after_read_kib": after_read_kib,
                "peak_kib": peak_kib,
                "breakdown": dict(spent),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
