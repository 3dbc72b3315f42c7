"""``bench.proofs`` runs end to end with tiny numbers, on both backends: the real server,
the real CLI, every proof checked on the way; its Markdown names every row, with figures;
and a ledger kept with ``--ledger`` is never written by a run (it runs on a copy).

No timing is checked: only that the benchmark still runs against the code it measures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.postgres import URL_VARIABLE
from bench.proofs import ROWS, main
from ledger.application import Ledger
from ledger.store import locate

EVENTS = 40
FIGURE = r"\d+\.\d\d (ms|s)"


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_every_row_is_measured(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kept = tmp_path / "kept.db"
    where = ["--ledger", str(kept)] if backend == "sqlite" else []
    if backend == "postgres":
        monkeypatch.setenv(URL_VARIABLE, request.getfixturevalue("postgres_server_url"))
    markdown = tmp_path / "proofs.md"
    main(["--events", str(EVENTS), "--repeat", "2", "--verify-runs", "1", "--post-batch",
          "3", "--backends", backend, "--markdown", str(markdown), *where])  # fmt: skip
    text = markdown.read_text()
    assert capsys.readouterr().out.strip() == text.strip()
    name = {"sqlite": "SQLite", "postgres": "PostgreSQL"}[backend]
    assert f"{name}, {EVENTS} small events" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows[1:]] == list(ROWS)
    for row in rows[1:]:
        cells = row.strip("| ").split(" | ")
        assert cells[3] == ("1" if cells[0] == ROWS[-1] else "2"), row  # samples
        assert all(re.fullmatch(FIGURE, cell) for cell in cells[4:8]), row
        assert re.fullmatch(r"\d+\.\d\d", cells[8]), row  # the ratio
    if backend == "sqlite":
        ledger = Ledger(locate(str(kept)))
        try:
            assert ledger.count() == EVENTS  # what the run appended went to its copy
        finally:
            ledger.close()
