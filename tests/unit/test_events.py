"""The event models: what they accept, what they refuse, and the published schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from ledger.chain import content_digest, entry_hash
from ledger.events import KINDS, describe_error, json_schema, parse_event, to_json_dict
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
