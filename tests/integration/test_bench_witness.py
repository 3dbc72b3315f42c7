"""``bench.witness`` runs end to end with tiny numbers (its own broker, a real server for
the API proofs, every checkpoint judged consistent) and prints every figure.

No timing is checked: only that the benchmark still runs against the code it measures."""

from __future__ import annotations

import re

import pytest

from bench.witness import main

FIGURE = r"\d+\.\d+"


@pytest.mark.slow
def test_every_figure_is_measured(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--publish-events", "3000", "--rounds", "1", "--ledger-events", "3000"])
    out = capsys.readouterr().out
    for line in (
        rf"publishing the events {FIGURE}",
        rf"making the checkpoint {FIGURE}",
        rf"publishing it {FIGURE}",
        rf"from the step times: {FIGURE}",
        r"end to end, medians of 1: without [\d,]+/s, with [\d,]+/s",
        rf"proofs from a replica \(cold\): {FIGURE} ms per checkpoint \(3 checkpoints\)",
        rf"proofs from the HTTP API: {FIGURE} ms per checkpoint \(3 checkpoints\)",
        rf"proofs from the replica again \(warm\): {FIGURE} ms",
    ):
        assert re.search(line, out), (line, out)
