"""Fuzzing every way an event comes in: valid events of every kind, mutated (wrong types,
missing and unknown fields, huge and tiny numbers and times, control, bidi and
zero-width characters, duplicate keys, deep nesting, random bytes), fed to

- the parser every path shares (``parse_line``),
- ``ledger ingest -`` through the CLI, on SQLite and PostgreSQL,
- ``POST /api/events`` on a real server, on SQLite and PostgreSQL.

Whatever comes in: no crash (exit 1, 5xx, an exception), every refusal names the line or
field, nothing is stored on a refusal, and everything accepted validates against the
published JSON Schema (docs/schema/ledger-event.schema.json).

``FUZZ_EXAMPLES`` sets the examples per target (default 200 for the parser, 40 for the
others); ``make fuzz`` runs 10,000 of each and prints the tallies.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.main import root
from ledger.application import Ledger
from ledger.events import KINDS
from ledger.importers.jsonl import parse_line
from ledger.store import locate
from tests.factories import event_dict
from tests.fuzz.conftest import TALLY
from tests.services.api import ApiServer, serve

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0"))
PARSER_EXAMPLES = EXAMPLES or 200
SLOW_EXAMPLES = EXAMPLES or 40
SCHEMA = json.loads(
    (Path(__file__).parents[2] / "docs" / "schema" / "ledger-event.schema.json").read_text()
)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())

ODD_CHARACTERS = ["\x00", "\x07", "\x0b", "\x1b", "\x7f", "\x85", "\u200b", "\u200d",
                  "\u202e", "\u2066", "\u2028", "\u2029", "\ufeff", "\udcff", "é", "²",
                  "🙂"]  # fmt: skip
ODD_TIMES = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "0", "1773238200",
             "2026-03-11_14:10:00Z", "2026-03-11T14:10:00", "2026-02-30T00:00:00Z",
             "2026-03-11T14:10:00.123456789Z", "2026-03-11T24:00:00Z", "", "now"]  # fmt: skip
ODD_NUMBERS = [2**63, 2**64, -(2**63) - 1, 10**100, -1, 0, 1.5, float("inf"), True, "3"]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


def valid_event(kind: str) -> dict[str, Any]:
    return event_dict(kind, event_id=str(uuid.uuid4()))


@st.composite
def mutation(draw: st.DrawFn, event: dict[str, Any]) -> tuple[str, Any]:
    """One change to ``event``: (what was done, for the tally; the changed event or raw
    text when the change is below the JSON level)."""
    fields = sorted(event)
    how = draw(st.sampled_from(["value", "odd_time", "odd_number", "odd_char", "drop",
                                "extra", "duplicate", "nest", "bytes", "none"]))  # fmt: skip
    if how == "value":
        event[draw(st.sampled_from(fields))] = draw(JSON_VALUES)
    elif how == "odd_time":
        event[draw(st.sampled_from(["occurred_at", "recorded_at"]))] = draw(
            st.sampled_from(ODD_TIMES)
        )
    elif how == "odd_number":
        field = draw(st.sampled_from([f for f in fields if f != "kind"] + ["generation"]))
        number = draw(st.sampled_from(ODD_NUMBERS))
        event[field] = number if number != float("inf") else 1e308
    elif how == "odd_char":
        field = draw(st.sampled_from([f for f in fields if isinstance(event[f], str)]))
        at = draw(st.integers(0, len(event[field])))
        event[field] = event[field][:at] + draw(st.sampled_from(ODD_CHARACTERS)) + event[field][at:]
    elif how == "drop":
        del event[draw(st.sampled_from(fields))]
    elif how == "extra":
        event[draw(st.text(min_size=1, max_size=12))] = draw(JSON_VALUES)
    elif how == "duplicate":
        field = draw(st.sampled_from(fields))
        text = json.dumps(event)
        return how, text[:-1] + f", {json.dumps(field)}: {json.dumps(draw(JSON_VALUES))}}}"
    elif how == "nest":
        depth = draw(st.integers(50, 5_000))
        return how, "[" * depth + "]" * depth
    elif how == "bytes":
        return how, draw(st.binary(min_size=1, max_size=200).filter(lambda b: b"\n" not in b))
    return how, event


@st.composite
def fuzzed_line(draw: st.DrawFn) -> tuple[str, bytes]:
    """A line made from a valid event of a random kind by zero to three mutations."""
    event = valid_event(draw(st.sampled_from(sorted(KINDS))))
    done: list[str] = []
    result: Any = event
    for _ in range(draw(st.integers(0, 3))):
        how, result = draw(mutation(event))
        done.append(how)
        if not isinstance(result, dict):
            break
    if isinstance(result, dict):
        try:
            result = json.dumps(result, allow_nan=False)
        except (ValueError, UnicodeEncodeError):
            result = json.dumps(result)
    raw = result if isinstance(result, bytes) else result.encode("utf-8", "surrogatepass")
    return "+".join(done) or "valid", raw


def check_accepted(raw: bytes, stored: dict[str, Any]) -> None:
    """What the ledger accepted is what its published schema describes."""
    errors = sorted(VALIDATOR.iter_errors(stored), key=str)
    assert not errors, f"accepted {raw[:200]!r} but the schema says: {errors[0].message}"


@settings(max_examples=PARSER_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
@given(fuzzed_line())
def test_the_parser_refuses_or_accepts_and_never_crashes(line: tuple[str, bytes]) -> None:
    how, raw = line
    parsed = parse_line(7, raw)  # any exception fails the test
    if isinstance(parsed, list):
        TALLY[("parser", "refused")] += 1
        assert parsed, f"{how}: refused without saying why"
        for error in parsed:
            assert error.line == 7
            assert error.reason, f"{how}: an error without a reason"
    else:
        TALLY[("parser", "accepted")] += 1
        check_accepted(raw, parsed.model_dump(mode="json"))


@pytest.fixture
def seeded(ledger_url: str) -> str:
    runner = CliRunner()
    assert runner.invoke(root, ["--ledger", ledger_url, "init"]).exit_code == 0
    return ledger_url


def test_ingest_refuses_or_stores_and_never_crashes(seeded: str) -> None:
    runner = CliRunner()
    ledger = Ledger(locate(seeded))

    @settings(max_examples=SLOW_EXAMPLES, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
    @given(st.lists(fuzzed_line(), min_size=1, max_size=3))
    def ingest(lines: list[tuple[str, bytes]]) -> None:
        before = ledger.count()
        data = b"\n".join(raw for _, raw in lines) + b"\n"
        result = runner.invoke(root, ["--ledger", seeded, "ingest", "-"], input=data)
        assert "Traceback" not in result.output
        assert result.exit_code in (0, 2), (lines, result.output)
        if result.exit_code == 2:
            TALLY[("ledger ingest", "refused")] += 1
            assert ledger.count() == before, "a refused file stored something"
            if "invalid; nothing was stored" in result.output:
                assert "line " in result.output, result.output
        else:
            TALLY[("ledger ingest", "accepted")] += 1

    ingest()
    assert ledger.verify().intact
    for fact in ledger.facts():
        check_accepted(b"(stored)", dict(fact.event))
    ledger.close()


@pytest.fixture
def server(seeded: str) -> Iterator[ApiServer]:
    yield from serve(seeded)


def test_the_api_refuses_with_a_4xx_and_never_fails(server: ApiServer) -> None:
    headers = {**server.headers("writer"), "Content-Type": "application/json"}

    @settings(max_examples=SLOW_EXAMPLES, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
    @given(fuzzed_line())
    def post(line: tuple[str, bytes]) -> None:
        how, raw = line
        before = server.ledger.count()
        response = httpx.post(server.base + "/api/events", headers=headers, content=raw,
                              timeout=30)  # fmt: skip
        assert response.status_code < 500, (how, raw[:200], response.text)
        if response.status_code >= 400:
            TALLY[("POST /api/events", "refused")] += 1
            assert server.ledger.count() == before, "a refused body stored something"
            body = response.json()
            assert set(body) == {"error", "message", "details"}, body
            assert body["message"], body
        else:
            TALLY[("POST /api/events", "accepted")] += 1

    post()
