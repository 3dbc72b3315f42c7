"""The fuzz suite's tallies: how many inputs each target accepted and refused, printed
at the end of the run (``make fuzz`` runs it with 10,000 examples per target)."""

from __future__ import annotations

from collections import Counter

import pytest

TALLY: Counter[tuple[str, str]] = Counter()
"""(target, outcome) → how many inputs."""


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLY:
        return
    terminalreporter.section("fuzz tallies")
    for (target, outcome), count in sorted(TALLY.items()):
        terminalreporter.write_line(f"{target:<28} {outcome:<10} {count:>8,}")
