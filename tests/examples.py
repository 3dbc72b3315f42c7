"""How many random streams the truth tests (views against an independent replay of the
raw events) try: a few in the test suite, which must stay under 15 minutes on 2 cores,
and as many as asked with ``make truth`` (``TRUTH_EXAMPLES=300``), outside it."""

from __future__ import annotations

import os


def examples(in_the_suite: int) -> int:
    """``TRUTH_EXAMPLES`` when set, else ``in_the_suite``."""
    return int(os.environ.get("TRUTH_EXAMPLES") or in_the_suite)
