"""``ledger replay`` end to end through click's runner, on both backends."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.main import root
from ledger.application import Ledger
from ledger.store import locate
from tests.story import api_upgrade, build_id

OLD, NEW = build_id("api", "1.0"), build_id("api", "1.1")


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(root, ["--ledger", url, *args])


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def url(ledger_url: str) -> str:
    """api 1.0 on h1 and h2 (generation 1, minutes 3-8), then 1.1 (generation 2: h1 at
    minute 14, h2 at minute 19); the live views are caught up."""
    ledger = Ledger(locate(ledger_url), create=True)
    api_upgrade().record(ledger)
    ledger.close()
    assert run(ledger_url, "project").exit_code == 0
    return ledger_url


def placements(rows: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(r["host"], r["build_id"], r["generation"]) for r in rows]


def test_replay_to_a_generation(url: str) -> None:
    status = as_json(run(url, "projections", "status", "--json"))
    first = as_json(run(url, "replay", "--to-generation", "1", "--json"))
    assert placements(first["topology"]) == [("h1", OLD, 1), ("h2", OLD, 1)]
    assert [g["number"] for g in first["generations"]] == [1]
    assert first["point"]["until_position"] == 8
    assert first["point"]["moment"] == "2026-03-01T00:09:00Z"
    latest = as_json(run(url, "replay", "--to-generation", "2", "--env", "production", "--json"))
    assert placements(latest["topology"]) == [("h1", NEW, 2), ("h2", NEW, 2)]
    assert as_json(run(url, "projections", "status", "--json")) == status  # untouched
    table = run(url, "replay", "--to-generation", "1")
    assert table.exit_code == 0, table.output
    assert (
        "production as generation 1 left it (replayed 8 events: positions 1 to 8)" in table.output
    )
    assert "Generations then" in table.output


def test_replay_until_a_moment_shows_a_host_manifest(url: str) -> None:
    between = as_json(run(url, "replay", "--until", "2026-03-01T00:16:30Z", "--json"))
    assert placements(between["topology"]) == [("h1", NEW, 2), ("h2", OLD, 1)]
    h2 = as_json(run(url, "replay", "--until", "2026-03-01T00:16:30Z", "--host", "h2", "--json"))
    assert [(s["service"], s["build_id"]) for s in h2["manifest"]] == [("api", OLD)]
    assert h2["manifest"][0]["closure"][0]["version"] == "1.0.1p"
    header = run(url, "replay", "--until", "2026-03-01T00:16:30Z")
    assert header.exit_code == 0, header.output
    replayed = between["point"]["replayed_events"]
    assert 0 < replayed < Ledger(locate(url)).count()
    assert f"(replayed the {replayed} events recorded by then, of positions 1 to " in " ".join(
        header.output.split()
    )
    # Before the first event was recorded: said so, not an empty fleet.
    before = run(url, "replay", "--until", "2026-03-01", "--host", "h2")
    assert before.exit_code == 0, before.output
    assert "Nothing had been recorded by 2026-03-01 00:00:00Z; the ledger was empty then: its " in (
        " ".join(before.output.split())
    )
    assert "first event was recorded at 2026-03-01 00:0" in " ".join(before.output.split())
    assert (
        as_json(run(url, "replay", "--until", "2026-03-01", "--json"))["point"]["replayed_events"]
        == 0
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give --until TIME or --to-generation N"),
        (["--until", "2026-03-01", "--to-generation", "1"], "not both"),
        (["--until", "2026-03-01T00:00:00"], "has no timezone"),
        (["--to-generation", "9"], "production has no generation 9 (it has 1 to 2)"),
        (["--to-generation", "1", "--env", "staging"], "environment 'staging' has no"),
    ],
)
def test_replay_refuses_bad_options_clearly(url: str, args: list[str], message: str) -> None:
    result = run(url, "replay", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
