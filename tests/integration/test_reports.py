"""Host reports, drift and reconstruction, on both backends: the reports view keeps each
host's latest snapshot (by when it was taken), drift compares it with the current
generation, and a reconstruction turns the reports into a generation."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.errors import EventConflict, InvalidInput, UnknownName
from projections.drift import drift
from projections.reconstruct import reconstruction
from projections.runner import Views
from tests.story import Story, build_id, minute


def entry(host: str, service: str, build: str, **fields: Any) -> dict[str, Any]:
    return {"host": host, "service": service, "build_id": build, **fields}


def report(s: Story, host: str, *services: tuple[str, str], at: float | None = None) -> None:
    s.add("host_reported", at, host=host, manifest=[entry(host, svc, b) for svc, b in services])


def reports(views: Views) -> dict[str, list[tuple[str, str]]]:
    """Each host's kept report: its (service, build) pairs."""
    kept: dict[str, list[tuple[str, str]]] = {
        r["host"]: [] for r in views.query("SELECT host FROM host_report_times")
    }
    for row in views.query("SELECT host, service, build_id FROM host_reports ORDER BY service"):
        kept[row["host"]].append((row["service"], row["build_id"]))
    return kept


def caught_up(ledger: Ledger, s: Story) -> Views:
    s.record(ledger)
    views = Views(ledger)
    views.catch_up()
    return views


API1, API2, WEB1 = build_id("api", "1.0"), build_id("api", "2.0"), build_id("web", "1.0")


# --- the reports view ------------------------------------------------------------------


def test_a_newer_report_replaces_the_host_and_an_empty_one_counts(ledger: Ledger) -> None:
    s = Story()
    report(s, "h1", ("api", API1), ("web", WEB1))
    report(s, "h2", ("api", API1))
    views = caught_up(ledger, s)
    report(s, "h1", ("api", API2))
    report(s, "h2")  # the agent found nothing running
    s.record(ledger)
    views.catch_up()
    assert reports(views) == {"h1": [("api", API2)], "h2": []}
    times = {r["host"]: r for r in views.query("SELECT * FROM host_report_times")}
    assert times["h2"]["entries"] == 0
    assert times["h1"]["entries"] == 1


def test_a_late_report_does_not_put_an_older_state_back(ledger: Ledger) -> None:
    """Reports are snapshots: the one taken last wins, whenever it reaches the ledger;
    of two taken at the same moment, the later in the stream."""
    s = Story()
    report(s, "h1", ("api", API2), at=10)
    views = caught_up(ledger, s)
    report(s, "h1", ("api", API1), at=5)  # taken before, uploaded after
    s.record(ledger)
    views.catch_up()
    assert reports(views) == {"h1": [("api", API2)]}
    report(s, "h1", ("api", API1), ("web", WEB1), at=10)  # same moment, later position
    s.record(ledger)
    views.catch_up()
    assert reports(views) == {"h1": [("api", API1), ("web", WEB1)]}
    incremental = views.dump("reports")
    views.rebuild(["reports"])
    assert views.dump("reports") == incremental


def test_a_late_report_in_the_same_batch_changes_nothing_either(ledger: Ledger) -> None:
    s = Story()
    report(s, "h1", ("api", API2), at=10)
    report(s, "h1", ("api", API1), at=5)
    views = caught_up(ledger, s)
    assert reports(views) == {"h1": [("api", API2)]}


def test_a_service_listed_twice_keeps_the_first_entry(ledger: Ledger) -> None:
    s = Story()
    report(s, "h1", ("api", API1), ("api", API2))
    views = caught_up(ledger, s)
    assert reports(views) == {"h1": [("api", API1)]}


def test_envs_are_kept_apart(ledger: Ledger) -> None:
    s, staging = Story(), Story("staging")
    report(s, "h1", ("api", API1))
    report(staging, "h1", ("api", API2))
    s.events += staging.events
    views = caught_up(ledger, s)
    rows = views.query("SELECT env, build_id FROM host_reports ORDER BY env")
    assert [(r["env"], r["build_id"]) for r in rows] == [("production", API1), ("staging", API2)]


# --- drift ---------------------------------------------------------------------------------


@pytest.fixture
def drifted(ledger: Ledger) -> Views:
    """Generation 2 wants api 2.0 on h1-h3 and web on h1. h1 reported after it: api
    matches, web missing. h2 reported before it (stale): still api 1.0, plus a stray
    web. h3 never reported; h4, in no generation, reports nothing running."""
    s = Story()
    s.plan(1, {("h1", "api"): API1, ("h2", "api"): API1, ("h3", "api"): API1})
    report(s, "h2", ("api", API1), ("web", WEB1))
    s.plan(2, {("h1", "api"): API2, ("h2", "api"): API2, ("h3", "api"): API2,
               ("h1", "web"): WEB1})  # fmt: skip
    report(s, "h1", ("api", API2))
    report(s, "h4")
    return caught_up(ledger, s)


def problems(views: Views, **filters: str) -> list[tuple[Any, ...]]:
    return [
        (p["host"], p["service"], p["problem"], p["desired_build"], p["reported_build"], p["stale"])
        for p in drift(views, **filters).problems
    ]


def test_drift_names_every_kind_of_difference(drifted: Views) -> None:
    assert problems(drifted) == [
        ("h1", "web", "missing", WEB1, None, False),
        ("h2", "api", "different build", API2, API1, True),
        ("h2", "web", "unexpected", None, WEB1, True),
        ("h3", None, "no report", None, None, False),
    ]
    (summary,) = drift(drifted).envs
    assert summary == {
        "env": "production",
        "generation": 2,
        "hosts": 4,
        "reported": 3,
        "matching": 1,  # h4: nothing desired, nothing running
        "drifted": 2,
        "unreported": 1,
        "stale": 1,
    }
    row = drift(drifted).problems[0]
    assert row["reported_at"] == "2026-03-01T00:04:00Z"
    assert row["generation"] == 2


def test_drift_of_one_host_and_of_a_host_that_matches(drifted: Views, ledger: Ledger) -> None:
    assert problems(drifted, host="h3") == [("h3", None, "no report", None, None, False)]
    s = Story()
    report(s, "h1", ("api", API2), ("web", WEB1), at=30)
    s.record(ledger)
    drifted.catch_up()
    assert problems(drifted, host="h1") == []
    assert drift(drifted, host="h1").envs[0]["matching"] == 1
    with pytest.raises(UnknownName, match="'staging' is not in the ledger"):
        drift(drifted, env="staging")  # never seen: an error, not an empty answer


def test_drift_in_an_env_without_generations(ledger: Ledger) -> None:
    s = Story("pr-1234")
    report(s, "h1", ("api", API1))
    views = caught_up(ledger, s)
    assert problems(views) == [("h1", "api", "unexpected", None, API1, False)]
    assert drift(views).envs[0]["generation"] is None


# --- reconstruction ------------------------------------------------------------------------


def test_reconstruction_is_the_union_of_the_reports(drifted: Views) -> None:
    plan = reconstruction(drifted, "production")
    assert plan.parent == 2
    assert plan.number == 3
    assert [(e.host, e.service, e.build_id) for e in plan.manifest] == [
        ("h1", "api", API2),
        ("h2", "api", API1),
        ("h2", "web", WEB1),
    ]
    assert plan.reported_hosts == 3
    assert plan.unreported == ["h3"]
    assert plan.stale == ["h2"]
    assert [(c["host"], c["service"], c["change"]) for c in plan.changes] == [
        ("h1", "web", "removed"),
        ("h2", "api", "changed"),
        ("h2", "web", "added"),
        ("h3", "api", "removed"),
    ]
    event = plan.event("alice@sre", datetime(2026, 3, 2, tzinfo=UTC))
    assert (event.number, event.parent, event.reason) == (3, 2, "reconstruct")
    assert event.manifest == plan.manifest


def test_reconstruction_keeps_artifacts_and_dependencies(ledger: Ledger) -> None:
    s = Story()
    artifact = f"/nix/store/{API1}-api-1.0"
    api = entry("h1", "api", API1, artifact=artifact, depends_on=["auth", "db"])
    s.add("host_reported", host="h1", manifest=[api])
    views = caught_up(ledger, s)
    plan = reconstruction(views, "production")
    assert plan.parent is None
    assert plan.number == 1
    (found,) = plan.manifest
    assert (found.artifact, found.depends_on) == (artifact, ("auth", "db"))
    assert [c["change"] for c in plan.changes] == ["added"]


def test_a_reconstruction_recorded_becomes_the_current_generation(drifted: Views) -> None:
    plan = reconstruction(drifted, "production")
    drifted.ledger.append([plan.event("alice@sre", minute(40))])
    drifted.catch_up()
    assert drift(drifted).envs[0]["generation"] == 3
    # What is left: the host that never reported is no longer in the manifest.
    assert problems(drifted) == []
    # A second one planned from the same, now outdated, plan is refused.
    with pytest.raises(EventConflict, match="the next number is 4"):
        drifted.ledger.append([plan.event("bob@sre", minute(41))])


def test_reconstruction_needs_a_report(drifted: Views) -> None:
    with pytest.raises(InvalidInput, match="no host of staging has reported"):
        reconstruction(drifted, "staging")
