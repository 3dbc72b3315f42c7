"""The e2e tests' SQLite ledgers: the demo fleet recorded once (with its views built) and
copied wherever a test needs a ledger of its own, an advisory on its older openssl, and
the head a shared ledger must still have when the tests that only read it are done.

Recording the demo takes seconds; copying the recorded file (SQLite's backup) takes a
fraction of one, which is why every demo ledger of the run is a copy of one recording.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from ledger.application import Ledger, append_in_batches, numbered_batches
from ledger.demo import recorded_demo_fleet
from ledger.store import locate
from projections.runner import Views
from tests.factories import make_event

ADVISORY = "CVE-2014-0160"
"""An advisory on the demo's older openssl builds (1.0.1 up to 1.0.2e), in the shared
demo ledger: the advisory page, the vulns page and the exposure chart need one."""


def record_demo(path: Path) -> Path:
    """A SQLite ledger at ``path`` holding the demo fleet (as ``ledger demo`` records
    it), with its views built."""
    ledger = Ledger(locate(str(path)), create=True)
    try:
        append_in_batches(ledger, numbered_batches(recorded_demo_fleet()), source="demo")
        Views(ledger).catch_up()
    finally:
        ledger.close()
    return path


def copy_ledger(source: Path, target: Path) -> Path:
    """A copy of the SQLite ledger ``source`` at ``target`` (its events, views and any
    API tokens: copy a ledger before a server has added its tokens to serve the copy)."""
    with closing(sqlite3.connect(source)) as original, closing(sqlite3.connect(target)) as copy:
        original.backup(copy)
    return target


def add_advisory(path: Path) -> Path:
    """Record ``ADVISORY`` in the ledger at ``path`` and bring its views up to date."""
    ledger = Ledger(locate(str(path)))
    try:
        ledger.append([make_event(
            "advisory_recorded", advisory_id=ADVISORY, aliases=[], unmatched=[],
            affected=[{"ecosystem": "cpe", "name": "openssl", "vendor": "openssl",
                       "bounds": [{"start": "1.0.1", "end": "1.0.2e"}]}],
        )])  # fmt: skip
        Views(ledger).catch_up()
    finally:
        ledger.close()
    return path


def head(path: Path) -> tuple[int, str]:
    """The position and hash of the ledger's last fact."""
    ledger = Ledger(locate(str(path)))
    try:
        return ledger.head()
    finally:
        ledger.close()
