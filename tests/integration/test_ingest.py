"""The ingest function itself, where the CLI cannot reach: an input that changes after
the validation pass, the spooled path of large inputs, and inputs that cannot seek."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pytest

from ledger.application import Ledger
from ledger.chain import GENESIS, content_digest, entry_hash
from ledger.events import parse_event
from ledger.importers import jsonl as jsonl_importer
from tests.factories import event_dict, jsonl


class ChangingInput(io.BytesIO):
    """Reads as ``first`` until rewound for a second pass, then as ``second``."""

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


class Pipe(io.RawIOBase):
    """A stream that cannot seek, as standard input from a pipe."""

    def __init__(self, data: bytes) -> None:
        self.data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self.data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


@pytest.fixture(params=["kept", "spooled"])
def keep_parsed(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test runs with the prepared events kept in memory and spooled to a file."""
    if request.param == "spooled":
        monkeypatch.setattr(jsonl_importer, "KEEP_PARSED_BYTES", 0)
    return str(request.param)


def test_what_is_stored_is_what_was_validated_even_if_the_input_changes(
    ledger: Ledger, keep_parsed: str
) -> None:
    # The input is read once; the append pass uses what the validation pass prepared.
    good = [event_dict("health_reported") for _ in range(3)]
    changed = jsonl(good[0]) + b"{not json\n" + jsonl(good[2])
    report = jsonl_importer.ingest(ledger, ChangingInput(jsonl(*good), changed), batch_size=1)
    assert (report.stored, ledger.count()) == (3, 3)
    assert [f.event["event_id"] for f in ledger.facts()] == [e["event_id"] for e in good]
    assert ledger.verify().intact


def test_a_spooled_ingest_stores_what_a_kept_one_does(ledger: Ledger, keep_parsed: str) -> None:
    events = [event_dict(kind) for kind in ("build_recorded", "generation_planned") * 5]
    events += [events[0], events[3]]  # resent: skipped, not stored twice
    progress: dict[str, int] = {}

    def advance(phase: str, n: int) -> None:
        progress[phase] = progress.get(phase, 0) + n

    data = jsonl(*events)
    report = jsonl_importer.ingest(ledger, io.BytesIO(data), batch_size=3, progress=advance)
    assert (report.lines, report.stored, report.skipped) == (12, 10, 2)
    facts = list(ledger.facts())
    assert [f.event["event_id"] for f in facts] == [e["event_id"] for e in events[:10]]
    planned = [f.event["number"] for f in facts if f.event["kind"] == "generation_planned"]
    assert planned == [1, 2, 3, 4, 5]
    assert progress == {"checking": len(data), "appending": len(data)}
    assert ledger.verify().intact


def test_a_pipe_is_read_once_and_ingested(ledger: Ledger, keep_parsed: str) -> None:
    events = [event_dict("health_reported") for _ in range(4)]
    report = jsonl_importer.ingest(ledger, io.BufferedReader(Pipe(jsonl(*events))), batch_size=2)
    assert (report.stored, ledger.count()) == (4, 4)


def test_a_refused_spooled_input_stores_nothing(ledger: Ledger, keep_parsed: str) -> None:
    events = [event_dict("health_reported") for _ in range(5)]
    data = jsonl(*events[:4]) + b'{"kind": "health_reported"}\n' + jsonl(events[4])
    with pytest.raises(jsonl_importer.IngestRefused, match="line 5"):
        jsonl_importer.ingest(ledger, io.BytesIO(data), batch_size=2)
    assert ledger.count() == 0


def test_hashes_and_digests_are_those_of_the_event_form(ledger: Ledger, keep_parsed: str) -> None:
    """What is hashed is unchanged by preparing or spooling: each entry's hash is that of
    the event's documented JSON form (with what the ledger fills in) at its position,
    and each index digest that of the producer's content, so existing ledgers verify."""
    sent = [event_dict(kind) for kind in ("build_recorded", "generation_planned", "deactivated")]
    sent[2]["recorded_at"] = "2026-03-11T14:10:00Z"  # a copy of a stored event keeps its own
    jsonl_importer.ingest(ledger, io.BytesIO(jsonl(*sent)), batch_size=2)
    prev = GENESIS
    rows = ledger.store.index_rows(1, 3)
    for fact, original, row in zip(ledger.facts(), sent, rows, strict=True):
        form = parse_event(orjson.dumps(original)).model_dump(mode="json")
        assert row.digest == content_digest(form)
        form.update(source="file", recorded_at=fact.event["recorded_at"])
        if form["kind"] == "generation_planned":
            form["number"] = 1
        assert fact.event == form
        assert fact.hash == entry_hash(fact.position, prev, form)
        prev = fact.hash
    assert sent[2]["recorded_at"] == "2026-03-11T14:10:00Z" == fact.event["recorded_at"]
