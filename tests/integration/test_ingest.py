"""The ingest function itself, where the CLI cannot reach: an input that changes between
the validation pass and the append pass."""

from __future__ import annotations

import io

import pytest

from ledger.application import Ledger
from ledger.errors import InvalidInput
from ledger.importers import jsonl as jsonl_importer
from tests.factories import event_dict, jsonl


class ChangingInput(io.BytesIO):
    """Reads as ``first`` until rewound for the second pass, then as ``second``."""

    def __init__(self, first: bytes, second: bytes) -> None:
        super().__init__(first)
        self.second = second
        self.rewinds = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        if (offset, whence) == (0, 0):
            self.rewinds += 1
            if self.rewinds == 2:  # after the length check and the validation pass
                super().seek(0)
                self.write(self.second)
                self.truncate()
        return super().seek(offset, whence)


def test_an_input_that_changes_between_the_passes_stops_the_ingest(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsonl_importer, "KEEP_PARSED_BYTES", 0)  # parse twice
    good = [event_dict("health_reported") for _ in range(3)]
    changed = jsonl(good[0]) + b"{not json\n" + jsonl(good[2])
    with pytest.raises(InvalidInput, match=r"line 2: not valid JSON.*changed while it was"):
        jsonl_importer.ingest(ledger, ChangingInput(jsonl(*good), changed), batch_size=1)
    assert ledger.count() == 1
