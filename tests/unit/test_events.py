"""The event models: what they accept, what they refuse, and the published schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator, FormatChecker
from pydantic import ValidationError

from cli.main import root
from ledger.chain import content_digest, entry_hash
from ledger.events import KINDS, describe_error, json_schema, parse_event, to_json_dict
from ledger.importers.jsonl import IngestRefused, LineError, parse_line, parse_lines
from tests.factories import event_dict

SCHEMA_FILE = Path(__file__).parents[2] / "docs" / "schema" / "ledger-event.schema.json"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_round_trips_through_its_json_form(kind: str) -> None:
    event = parse_event(json.dumps(event_dict(kind)))
    assert event.kind == kind
    again = parse_event(json.dumps(to_json_dict(event)))
    assert again == event


def errors_of(data: dict[str, object]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        parse_event(json.dumps(data))
    return [describe_error(e) for e in caught.value.errors()]


def test_naive_timestamps_are_refused() -> None:
    errors = errors_of(event_dict("health_reported", occurred_at="2026-03-11T14:10:00"))
    assert errors == [
        (
            "occurred_at",
            "Value error, timestamp must be timezone-aware (for example 2026-03-11T14:10:00Z)",
        )
    ]


def test_timestamps_with_an_offset_are_stored_in_utc() -> None:
    event = parse_event(
        json.dumps(event_dict("health_reported", occurred_at="2026-03-11T15:10:00+01:00"))
    )
    assert to_json_dict(event)["occurred_at"] == "2026-03-11T14:10:00Z"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "String should have at least 1 character"),
        ("x" * 254, "String should have at most 253 characters"),
        ("web\x00001", "control character '\\x00' at offset 3 is not allowed"),
        ("web\n001", "control character '\\n' at offset 3 is not allowed"),
        ("web-001\x85", "control character '\\x85' at offset 7 is not allowed"),
        (" web-001", "leading or trailing whitespace is not allowed"),
        ("web-001\u2003", "leading or trailing whitespace is not allowed"),
    ],
)
@pytest.mark.parametrize("field", ["host", "service", "env", "actor"])
def test_names_are_bounded_and_printable(field: str, value: str, reason: str) -> None:
    errors = errors_of(event_dict("activation_completed", **{field: value}))
    assert len(errors) == 1
    assert errors[0][0] == field
    assert reason in errors[0][1]


def test_strings_do_not_become_numbers() -> None:
    assert errors_of(event_dict("activation_completed", generation="42"))[0][0] == "generation"


def test_unknown_fields_are_refused() -> None:
    assert errors_of(event_dict("drain_started", colour="red")) == [
        ("colour", "Extra inputs are not permitted")
    ]


def test_a_component_needs_a_store_path_or_a_purl() -> None:
    component = {"name": "openssl", "version": "3.0.13", "hash": "sha256:" + "ab" * 32}
    errors = errors_of(event_dict("build_recorded", closure=[component]))
    assert errors == [("closure[0]", "Value error, a component needs a store_path or a purl")]
    with_purl = {**component, "purl": "pkg:nix/openssl@3.0.13"}
    assert parse_event(json.dumps(event_dict("build_recorded", closure=[with_purl])))


def test_a_host_report_only_lists_its_own_host() -> None:
    entry = {"host": "web-002", "service": "api", "build_id": "0c9w2k7q0mbw4a1q2x5lq9lq0pb1jr4x"}
    errors = errors_of(event_dict("host_reported", manifest=[entry]))
    assert "names host 'web-002', not the reporting host" in errors[0][1]


def test_the_schema_version_is_checked() -> None:
    assert errors_of(event_dict("drain_started", schema_version=2))[0][0] == "schema_version"


def test_published_json_schema_matches_the_models() -> None:
    """docs/schema is generated: regenerate with `ledger schema > docs/schema/…` on change."""
    assert json.loads(SCHEMA_FILE.read_text()) == json_schema()


def test_the_hash_covers_position_link_and_content() -> None:
    event = to_json_dict(parse_event(json.dumps(event_dict("drain_started"))))
    base = entry_hash(1, "0" * 64, event)
    assert entry_hash(2, "0" * 64, event) != base
    assert entry_hash(1, "1" * 64, event) != base
    assert entry_hash(1, "0" * 64, {**event, "in_flight": 13}) != base


def test_the_content_digest_ignores_what_the_ledger_fills_in() -> None:
    event = event_dict("generation_planned")
    stored = {**event, "recorded_at": "2026-03-11T14:10:01Z", "source": "kafka", "number": 7}
    assert content_digest(stored) == content_digest(event)
    assert content_digest({**event, "reason": "rollback"}) != content_digest(event)


def test_free_text_may_hold_newlines_but_not_other_control_characters() -> None:
    event = parse_event(json.dumps(event_dict("build_failed", reason="make: ***\n\tfailed")))
    assert "\n\t" in event.reason  # type: ignore[union-attr]
    assert errors_of(event_dict("build_failed", reason="bell\x07")) == [
        ("reason", "control character '\\x07' at offset 4 is not allowed")
    ]


def test_a_malformed_hash_says_what_a_hash_looks_like() -> None:
    errors = errors_of(event_dict("activation_completed", build_id="abc"))
    assert errors[0][0] == "build_id"
    assert errors[0][1].startswith("expected a hash such as 'sha256:")


# --- strict input (issue 15) -------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31T23:59:59-14:00",  # year 10000 in UTC: used to raise OverflowError
        "0001-01-01T00:00:00+14:00",  # year 0 in UTC
        "1969-12-31T23:59:59Z",
        "9999-01-01T00:00:00Z",
    ],
)
@pytest.mark.parametrize("field", ["occurred_at", "recorded_at"])
def test_timestamps_out_of_range_in_utc_are_refused(field: str, value: str) -> None:
    assert errors_of(event_dict("health_reported", **{field: value})) == [
        (
            field,
            "Value error, timestamp out of range: it must fall between 1970-01-01 and "
            "9998-12-31 in UTC",
        )
    ]


@pytest.mark.parametrize(
    "value",
    [
        "0",
        "1773238200",
        1773238200,
        1773238200.5,
        True,
        None,
        "2026-03-11_14:10:00Z",
        "2026-03-11 14:10:00Z",
        "2026-03-11T14:10Z",
        "2026-03-11T14:10:00+0100",
        "2026-03-11T14:10:00+01",
        "2026-03-11T14:10:00+00:19:32",
        "2026-03-11T14:10:00.Z",
        "2026-03-11T14:10:00.1234567890Z",
        "20260311T141000Z",
        "2026-03-11T14:10:00Z\n",
        "２０２６-03-11T14:10:00Z",  # fullwidth digits
        "2026-03-11",
    ],
)
def test_timestamps_are_rfc_3339_with_an_offset_and_nothing_else(value: object) -> None:
    errors = errors_of(event_dict("health_reported", occurred_at=value))
    assert [field for field, _ in errors] == ["occurred_at"]
    assert "RFC 3339" in errors[0][1]


@pytest.mark.parametrize("value", ["2026-02-30T00:00:00Z", "2026-12-31T23:59:60Z"])
def test_impossible_dates_are_refused(value: str) -> None:
    errors = errors_of(event_dict("health_reported", occurred_at=value))
    assert errors[0][0] == "occurred_at"
    assert "not a valid date and time" in errors[0][1]


@pytest.mark.parametrize(
    "value",
    [
        "urn:uuid:6f1c3a7e-0000-4000-8000-000000000001",
        "{6f1c3a7e-0000-4000-8000-000000000001}",
        "6f1c3a7e000040008000000000000001",
        "6F1C3A7E-0000-4000-8000-00000000000A",
        "6f1c3a7e-0000-4000-8000-00000000000A",
        " 6f1c3a7e-0000-4000-8000-000000000001",
    ],
)
def test_event_ids_are_canonical_uuids(value: str) -> None:
    errors = errors_of(event_dict("health_reported", event_id=value))
    assert [field for field, _ in errors] == ["event_id"]
    assert "canonical form: lower-case hex digits in groups of 8-4-4-4-12" in errors[0][1]


@pytest.mark.parametrize("value", [True, False, 1.0, "1", None])
def test_the_schema_version_is_exactly_the_integer_1(value: object) -> None:
    assert errors_of(event_dict("drain_started", schema_version=value)) == [
        ("schema_version", "Value error, expected the integer 1")
    ]


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        ("drain_started", "in_flight"),
        ("distribution_completed", "bytes"),
        ("activation_failed", "exit_code"),
        ("activation_failed", "generation"),
        ("generation_completed", "number"),
        ("drain_completed", "duration_s"),
        ("health_reported", "metric"),
        ("health_reported", "ttl_s"),
    ],
)
def test_a_boolean_is_not_a_number(kind: str, field: str) -> None:
    assert errors_of(event_dict(kind, **{field: True}))[0][0] == field


def test_whole_numbers_are_numbers_of_seconds() -> None:
    event = parse_event(json.dumps(event_dict("drain_completed", duration_s=3)))
    assert event.duration_s == 3.0  # type: ignore[union-attr]


def duplicate_errors(raw: str) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        parse_event(raw)
    return [describe_error(e) for e in caught.value.errors()]


@pytest.mark.parametrize(
    "separators", [(",", ":"), (", ", ": "), (", ", " : "), (",", "\t:"), (",\n", ":\n")]
)
def test_a_key_given_twice_is_refused_however_the_json_is_spaced(
    separators: tuple[str, str],
) -> None:
    item, key = separators
    raw = json.dumps(event_dict("health_reported"), separators=separators)
    raw = raw[:-1] + f'{item}"env"{key}"evil-env"}}'
    assert duplicate_errors(raw) == [
        ("env", "duplicate key 'env': a key may appear only once in an object")
    ]


def test_a_key_given_twice_in_a_nested_object_is_named_by_its_path() -> None:
    event = event_dict("generation_planned")
    raw = json.dumps(event).replace('"service": "api"', '"service": "api", "service": "evil"')
    assert duplicate_errors(raw) == [
        ("manifest[0].service", "duplicate key 'service': a key may appear only once in an object")
    ]


def test_a_duplicate_key_is_reported_even_when_the_last_copy_is_invalid() -> None:
    raw = json.dumps(event_dict("health_reported"))[:-1] + ', "kind": "teleported"}'
    assert duplicate_errors(raw) == [
        ("kind", "duplicate key 'kind': a key may appear only once in an object")
    ]


def test_quote_colon_inside_strings_is_not_a_duplicate() -> None:
    text = 'a "env": b, "env" : c "\\":'
    event = parse_event(json.dumps(event_dict("health_reported", description=text)))
    assert event.description == text  # type: ignore[union-attr]


INVISIBLE = [
    "\u061c", "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2028", "\u2029",
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2060", "\u2066", "\u2067",
    "\u2068", "\u2069", "\ufeff",
]  # fmt: skip


@pytest.mark.parametrize("character", INVISIBLE)
@pytest.mark.parametrize("field", ["host", "service", "env", "actor"])
def test_names_refuse_characters_that_make_them_display_as_another(
    field: str, character: str
) -> None:
    errors = errors_of(event_dict("activation_completed", **{field: f"web{character}001"}))
    assert len(errors) == 1
    assert errors[0][0] == field
    assert f"character U+{ord(character):04X} (" in errors[0][1]
    assert "at offset 3 is not allowed" in errors[0][1]


def test_tags_versions_and_artifacts_refuse_them_too() -> None:
    assert errors_of(event_dict("generation_tagged", tags=["good\u202e"]))[0][0] == "tags[0]"
    assert errors_of(event_dict("build_recorded", version="1.\u200b0"))[0][0] == "version"
    assert errors_of(event_dict("build_recorded", artifact="/nix/\u2066x"))[0][0] == "artifact"


def test_free_text_may_hold_other_scripts_and_bidi_marks() -> None:
    reason = "فشل الفحص \u200f (health check failed)"
    assert parse_event(json.dumps(event_dict("build_failed", reason=reason)))


@pytest.mark.parametrize("stray", [b"\x0b", b"\x0c", b"\x00", b"\x1f"])
def test_a_line_surrounded_by_what_json_does_not_call_whitespace_is_refused(
    stray: bytes,
) -> None:
    line = json.dumps(event_dict("health_reported")).encode()
    for raw, offset in ((stray + line, 0), (line + stray, len(line))):
        assert parse_line(7, raw) == [
            LineError(
                7,
                "",
                f"not valid JSON: byte {stray!r} at offset {offset} is not JSON whitespace "
                "(only space, tab, CR and LF may surround an event)",
            )
        ]


def test_parse_lines_strips_only_json_whitespace() -> None:
    line = json.dumps(event_dict("health_reported")).encode()
    assert len(parse_lines([b" \t" + line + b"\r\n", b"\r\n", line])) == 2
    with pytest.raises(IngestRefused, match="line 2: not valid JSON: byte b'\\\\x0b'"):
        parse_lines([line, b"\x0b" + line])
    with pytest.raises(IngestRefused, match="line 1: not valid JSON"):
        parse_lines([b"\x0c\n"])


def test_the_schema_lists_kind_as_required_for_every_kind() -> None:
    schema = json_schema()
    for kind, model in KINDS.items():
        definition = schema["$defs"][model.__name__]
        assert definition["required"][0] == "kind", kind


def test_the_published_schema_is_what_ledger_schema_prints() -> None:
    result = CliRunner().invoke(root, ["schema"])
    assert result.exit_code == 0, result.output
    assert SCHEMA_FILE.read_text() == result.output


def schema_accepts(event: dict[str, object]) -> bool:
    validator = Draft202012Validator(
        json.loads(SCHEMA_FILE.read_text()), format_checker=FormatChecker()
    )
    return validator.is_valid(event)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_schema_accepts_what_the_ledger_accepts(kind: str) -> None:
    event = event_dict(kind)
    assert schema_accepts(event)
    assert schema_accepts(to_json_dict(parse_event(json.dumps(event))))


@pytest.mark.parametrize(
    "overrides",
    [
        {"occurred_at": "1773238200"},
        {"occurred_at": "2026-03-11_14:10:00Z"},
        {"occurred_at": "2026-03-11T14:10:00"},
        {"occurred_at": 1773238200},
        {"recorded_at": "2026-03-11 14:10:00Z"},
        {"event_id": "urn:uuid:6f1c3a7e-0000-4000-8000-000000000001"},
        {"event_id": "6F1C3A7E-0000-4000-8000-00000000000A"},
        {"schema_version": True},
        {"ttl_s": True},
        {"host": "web\u202e001"},
        {"env": "prod\u2028"},
        {"service": "\ufeffapi"},
    ],
)
def test_the_schema_refuses_what_the_ledger_refuses(overrides: dict[str, object]) -> None:
    event = event_dict("health_reported", **overrides)
    assert errors_of(event)
    assert not schema_accepts(event)


def test_the_schema_refuses_an_event_without_a_kind() -> None:
    event = event_dict("health_reported")
    del event["kind"]
    assert errors_of(event) == [("kind", "missing: every event needs a kind")]
    assert not schema_accepts(event)
