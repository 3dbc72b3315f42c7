"""Issue 15's strict-event regressions through ``ledger ingest FILE``, on both backends:
each hostile line is refused with exit 2, the message names its line and field, and
nothing is stored — never an "unexpected" crash with exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import root
from ledger.application import Ledger
from ledger.store import locate
from tests.factories import event_dict, jsonl

GOOD = json.dumps(event_dict("health_reported", host="web-000")).encode()


def health(**overrides: object) -> bytes:
    return json.dumps(event_dict("health_reported", **overrides)).encode()


def with_duplicate(line: bytes, extra: str) -> bytes:
    """``line`` with ``extra`` (``"key": value``) added as its last member."""
    return line[:-1] + b", " + extra.encode() + b"}"


# (bad line, the field the message must name ("" for the whole line), words it must hold)
CASES: dict[str, tuple[bytes, str, str]] = {
    "late after UTC": (health(occurred_at="9999-12-31T23:59:59-14:00"), "occurred_at", "range"),
    "early after UTC": (health(occurred_at="0001-01-01T00:00:00+14:00"), "occurred_at", "range"),
    "recorded_at late": (
        health(recorded_at="9999-12-31T23:59:59-14:00"),
        "recorded_at",
        "range",
    ),
    "zero": (health(occurred_at="0"), "occurred_at", "RFC 3339"),
    "epoch seconds text": (health(occurred_at="1773238200"), "occurred_at", "RFC 3339"),
    "epoch seconds number": (health(occurred_at=1773238200), "occurred_at", "RFC 3339"),
    "underscore": (health(occurred_at="2026-03-11_14:10:00Z"), "occurred_at", "RFC 3339"),
    "no seconds": (health(occurred_at="2026-03-11T14:10Z"), "occurred_at", "RFC 3339"),
    "space": (health(occurred_at="2026-03-11 14:10:00Z"), "occurred_at", "RFC 3339"),
    "no offset": (health(occurred_at="2026-03-11T14:10:00"), "occurred_at", "timezone-aware"),
    "bool version": (health(schema_version=True), "schema_version", "integer 1"),
    "float version": (health(schema_version=1.0), "schema_version", "integer 1"),
    "bool count": (
        json.dumps(event_dict("drain_started", in_flight=True)).encode(),
        "in_flight",
        "integer",
    ),
    "bool seconds": (health(ttl_s=True), "ttl_s", "number"),
    "urn uuid": (
        health(event_id="urn:uuid:6f1c3a7e-0000-4000-8000-000000000001"),
        "event_id",
        "canonical",
    ),
    "braced uuid": (
        health(event_id="{6f1c3a7e-0000-4000-8000-000000000001}"),
        "event_id",
        "canonical",
    ),
    "uuid without dashes": (
        health(event_id="6f1c3a7e000040008000000000000001"),
        "event_id",
        "canonical",
    ),
    "upper-case uuid": (
        health(event_id="6F1C3A7E-0000-4000-8000-00000000000A"),
        "event_id",
        "canonical",
    ),
    "duplicate env": (
        with_duplicate(health(env="production"), '"env": "evil-env"'),
        "env",
        "duplicate key 'env'",
    ),
    "duplicate nested key": (
        json.dumps(event_dict("build_recorded"))
        .replace('"name": "openssl"', '"name": "openssl", "name": "libressl"')
        .encode(),
        "closure[0].name",
        "duplicate key 'name'",
    ),
    "duplicate of an invalid value": (
        with_duplicate(health(), '"host": 5'),
        "host",
        "duplicate key 'host'",
    ),
    "vertical tab first": (b"\x0b" + health(), "", "\\x0b"),
    "form feed last": (health() + b"\x0c", "", "\\x0c"),
    "right-to-left override": (health(host="web-\u202e100"), "host", "U+202E"),
    "zero-width space": (health(service="api\u200b"), "service", "U+200B"),
    "line separator": (health(env="prod\u2028uction"), "env", "U+2028"),
    "left-to-right isolate": (health(actor="\u2066ci"), "actor", "U+2066"),
    "byte order mark in a name": (health(host="web\ufeff001"), "host", "U+FEFF"),
    "no kind": (
        json.dumps(
            {k: v for k, v in event_dict("health_reported").items() if k != "kind"}
        ).encode(),
        "kind",
        "every event needs a kind",
    ),
}


def ingest(url: str, path: Path) -> Result:
    return CliRunner().invoke(root, ["--ledger", url, "ingest", str(path)])


@pytest.fixture
def url(ledger_url: str) -> str:
    assert CliRunner().invoke(root, ["--ledger", ledger_url, "init"]).exit_code == 0
    return ledger_url


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_line_is_refused_naming_line_and_field(
    url: str, tmp_path: Path, case: str
) -> None:
    bad, field, words = CASES[case]
    path = tmp_path / "events.jsonl"
    path.write_bytes(GOOD + b"\n" + bad + b"\n")
    result = ingest(url, path)
    assert result.exit_code == 2, result.output
    assert "nothing was stored" in result.output
    assert "unexpected" not in result.output
    where = "line 2" + (f", field {field}:" if field else ":")
    assert where in result.output
    assert words in result.output
    assert Ledger(locate(url)).count() == 0


def test_the_forms_rfc_3339_allows_are_stored_in_utc(url: str, tmp_path: Path) -> None:
    sent = {
        "2026-03-11T14:10:00Z": "2026-03-11T14:10:00Z",
        "2026-03-11T15:10:00+01:00": "2026-03-11T14:10:00Z",
        "2026-03-11T14:10:00.25Z": "2026-03-11T14:10:00.250000Z",
        "2026-03-11T16:10:00.123456789+02:00": "2026-03-11T14:10:00.123456Z",
        "2026-03-11t14:10:00z": "2026-03-11T14:10:00Z",
        "2026-03-11T14:10:00-00:00": "2026-03-11T14:10:00Z",
        "9998-12-31T23:59:59Z": "9998-12-31T23:59:59Z",
        "1970-01-01T01:00:00+01:00": "1970-01-01T00:00:00Z",
    }
    events = [event_dict("health_reported", occurred_at=when) for when in sent]
    path = tmp_path / "events.jsonl"
    path.write_bytes(jsonl(*events))
    result = ingest(url, path)
    assert result.exit_code == 0, result.output
    stored = [fact.event["occurred_at"] for fact in Ledger(locate(url)).facts()]
    assert stored == list(sent.values())


def test_a_string_holding_quote_colon_is_not_taken_for_a_duplicate(
    url: str, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(health(description='he said "env": "evil" :', env="production") + b"\n")
    assert ingest(url, path).exit_code == 0
    assert [fact.event["env"] for fact in Ledger(locate(url)).facts()] == ["production"]
