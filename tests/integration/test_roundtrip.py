"""Property: any valid event, whatever printable names it carries, is stored, shown and
exported as it came, and ingesting it again stores nothing — on both backends."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.main import root
from ledger.application import Ledger
from ledger.store import locate
from tests.factories import event_dict, jsonl

# Names refuse control, format (bidi, zero-width) and line/paragraph separator characters.
NAMES = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Cf", "Zl", "Zp")),
    min_size=1,
    max_size=40,
).filter(lambda s: s == s.strip())
TEXTS = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=200)
# RFC 3339 offsets are whole minutes (Monrovia's -00:44:30 of 1970-72 is not one).
TIMES = st.datetimes(timezones=st.timezones()).filter(
    lambda t: 1970 < t.year < 9998 and (t.utcoffset() or timedelta()).seconds % 60 == 0
)


@st.composite
def valid_event(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["activation_failed", "health_reported", "drain_timed_out"]))
    overrides: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),  # fresh in every example: the ledger is shared
        "env": draw(NAMES),
        "actor": draw(NAMES),
        "host": draw(NAMES),
        "service": draw(NAMES),
        "occurred_at": draw(TIMES).isoformat(),
    }
    if kind == "activation_failed":
        overrides["reason"] = draw(TEXTS)
    if kind == "health_reported":
        overrides["description"] = draw(TEXTS)
        overrides["metric"] = draw(st.floats(allow_nan=False, allow_infinity=False))
    return event_dict(kind, **overrides)


def test_valid_events_round_trip_and_are_stored_once(ledger_url: str) -> None:
    runner = CliRunner()

    def ledger(*args: str, input: bytes | str | None = None) -> str:
        result = runner.invoke(root, ["--ledger", ledger_url, *args], input=input)
        assert result.exit_code == 0, result.output
        return result.output

    ledger("init")
    store = Ledger(locate(ledger_url))

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(valid_event(), min_size=1, max_size=4))
    def round_trip(events: list[dict[str, Any]]) -> None:
        before = store.count()
        ledger("ingest", "-", input=jsonl(*events))
        ledger("log", "--limit", str(len(events)))  # the table renders whatever the names
        exported = [
            json.loads(line)
            for line in ledger("log", "--json", "--limit", str(len(events))).splitlines()
        ]
        for sent, stored in zip(events, exported, strict=True):
            assert stored["event_id"] == sent["event_id"]
            for field in ("env", "actor", "host", "service", "reason", "description"):
                assert stored.get(field) == sent.get(field)
        again = json.loads(ledger("ingest", "-", "--json", input=jsonl(*exported)))
        assert (again["stored"], again["skipped"]) == (0, len(events))
        assert store.count() == before + len(events)

    round_trip()
    assert store.verify().intact
