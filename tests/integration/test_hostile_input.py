"""Property: whatever malformed or hostile input ``ledger ingest`` is fed, it exits 2 and
the stream is unchanged (same event count, chain intact) — on both backends."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.main import root
from ledger.application import Ledger
from ledger.events import KINDS
from ledger.store import locate
from tests.factories import event_dict, jsonl

EXAMPLES = 1000
NAME_FIELDS = ["env", "actor", "host", "service"]
REQUIRED_FIELDS = ["event_id", "env", "occurred_at", "actor", "host", "service", "build_id"]
CONTROL = st.sampled_from(["\x00", "\x07", "\x1b", "\x7f", "\n", "\r", "\x85"])
NOT_A_STRING = st.one_of(
    st.integers(), st.floats(allow_nan=False), st.booleans(), st.none(),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers()),
)  # fmt: skip


def base_event() -> dict[str, Any]:
    return event_dict("activation_completed")


@st.composite
def hostile_line(draw: st.DrawFn) -> bytes:
    """One line that can never be a valid event."""
    event = base_event()
    how = draw(
        st.sampled_from(
            [
                "control", "huge", "naive", "wrong_type", "unknown_kind", "extra_field",
                "missing", "truncated", "garbage", "not_utf8", "not_an_object", "nested",
                "bad_generation",
            ]
        )
    )  # fmt: skip
    if how == "control":
        field = draw(st.sampled_from(NAME_FIELDS))
        value = str(event[field])
        at = draw(st.integers(0, len(value)))
        event[field] = value[:at] + draw(CONTROL) + value[at:]
    elif how == "huge":
        field = draw(st.sampled_from(NAME_FIELDS))
        event[field] = "x" * draw(st.integers(254, 200_000))
    elif how == "naive":
        event["occurred_at"] = draw(st.datetimes(timezones=st.none()).map(lambda d: d.isoformat()))
    elif how == "wrong_type":
        event[draw(st.sampled_from(REQUIRED_FIELDS))] = draw(NOT_A_STRING)
    elif how == "unknown_kind":
        event["kind"] = draw(st.text(max_size=40).filter(lambda k: k not in KINDS))
    elif how == "extra_field":
        name = draw(st.text(min_size=1, max_size=20).filter(lambda n: n not in event))
        event[name] = draw(st.text(max_size=10))
    elif how == "missing":
        del event[draw(st.sampled_from([*REQUIRED_FIELDS, "kind"]))]
    elif how == "bad_generation":
        event["generation"] = draw(
            st.one_of(st.integers(max_value=0), st.integers(min_value=2**62 + 1), st.text())
        )
    text = json.dumps(event)
    if how == "truncated":
        return text[: draw(st.integers(1, len(text) - 1))].encode()
    if how == "garbage":
        return draw(
            st.binary(min_size=1, max_size=300).filter(lambda b: b.strip() and b"\n" not in b)
        )
    if how == "not_utf8":
        return text.replace("web-001", "web-\udcff", 1).encode("utf-8", "surrogateescape")
    if how == "not_an_object":
        not_object: Any = draw(
            st.one_of(st.lists(st.integers()), st.integers(), st.text(), st.booleans())
        )
        return json.dumps(not_object).encode()
    if how == "nested":
        depth = draw(st.integers(200, 20_000))
        return ("[" * depth + "]" * depth).encode()
    return text.encode()


@st.composite
def hostile_file(draw: st.DrawFn) -> bytes:
    """Valid lines with at least one hostile line somewhere among them."""
    valid = [jsonl(base_event()).rstrip(b"\n") for _ in range(draw(st.integers(0, 3)))]
    bad = draw(st.lists(hostile_line(), min_size=1, max_size=3))
    lines = draw(st.permutations(valid + bad))
    return b"\n".join(lines) + draw(st.sampled_from([b"", b"\n"]))


def test_hostile_input_is_refused_and_changes_nothing(ledger_url: str) -> None:
    runner = CliRunner()
    assert runner.invoke(root, ["--ledger", ledger_url, "init"]).exit_code == 0
    seed = jsonl(*(event_dict(kind) for kind in KINDS))
    assert runner.invoke(root, ["--ledger", ledger_url, "ingest", "-"], input=seed).exit_code == 0
    ledger = Ledger(locate(ledger_url))
    before = ledger.head()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(hostile_file())
    def refused(data: bytes) -> None:
        result = runner.invoke(root, ["--ledger", ledger_url, "ingest", "-"], input=data)
        assert result.exit_code == 2, result.output
        assert "nothing was stored" in result.output
        assert "Traceback" not in result.output
        assert ledger.head() == before

    refused()
    assert ledger.verify().intact
    assert ledger.count() == len(KINDS)
