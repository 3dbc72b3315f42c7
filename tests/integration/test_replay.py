"""Replays on both backends: views rebuilt in a scratch store as of a generation or of a
moment show the fleet as it was then, and the live views are left as they were."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pytest

from ledger.application import Ledger
from ledger.errors import InvalidInput
from projections import queries
from projections.replay import ReplayPoint, as_recorded_at, before_next_generation, replayed
from projections.runner import VIEW_NAMES, Views
from tests.story import Story, minute, openssl

Placements = set[tuple[str, str, str]]


@dataclass
class History:
    views: Views
    api: list[str]  # api builds 1.0, 1.1, 1.2
    web: str
    between_h1_and_h2: float  # gen 2 reached h1, not yet h2
    late_activation: float  # gen 4's activation on h1 happened then, recorded an hour later


@pytest.fixture
def history(ledger: Ledger) -> History:
    """Four generations: 1 and 2 complete, 3 fails on h2, 4 rolls back to 2 (its
    activation on h1 is recorded an hour after it happened); then a host report.
    Generation 3's plan is recorded 5 minutes after it was made."""
    s = Story()
    api = [s.build("api", f"1.{n}", openssl(f"3.0.{n}")) for n in range(3)]
    web = s.build("web", "2.0", openssl("3.0.13"))
    s.plan(1, {("h1", "api"): api[0], ("h2", "api"): api[0], ("h1", "web"): web})
    s.activate("h1", "api", api[0], 1)
    s.activate("h2", "api", api[0], 1)
    s.activate("h1", "web", web, 1)
    s.add("generation_completed", number=1)
    s.plan(2, {("h1", "api"): api[1], ("h2", "api"): api[1], ("h1", "web"): web})
    s.replace("h1", "api", api[0], api[1], 2)
    between = s.clock + 0.5
    s.replace("h2", "api", api[0], api[1], 2)
    s.add("generation_completed", number=2)
    s.plan(3, {("h1", "api"): api[2], ("h2", "api"): api[2], ("h1", "web"): web}, late=5)
    s.replace("h1", "api", api[1], api[2], 3)
    s.add("activation_failed", host="h2", service="api", build_id=api[2], generation=3,
          reason="boom")  # fmt: skip
    s.add("generation_failed", number=3)
    s.plan(4, {("h1", "api"): api[1], ("h2", "api"): api[1], ("h1", "web"): web},
           reason="rollback", target=2, parent=3)  # fmt: skip
    s.replace("h1", "api", api[2], api[1], 4, late=60)
    late = s.clock
    s.add("generation_completed", number=4)
    s.add("host_reported", host="h1", manifest=[])
    s.record(ledger)
    views = Views(ledger)
    views.catch_up()
    return History(views, api, web, between, late)


def topology(views: Views) -> Placements:
    return {(r["host"], r["service"], r["build_id"]) for r in queries.topology(views)}


def replay_topology(ledger: Ledger, point: ReplayPoint) -> Placements:
    with replayed(ledger, point) as scratch:
        return topology(scratch)


def active_at(views: Views, point: ReplayPoint) -> Placements:
    """What the live views' interval tables say was active at the replayed moment, as
    the ledger knew it then (``where --at T --known-at T``; every build holds openssl)."""
    found = queries.where(views, "openssl", at=point.moment, known_at=point.moment)
    return {(f.host, f.service, f.build_id) for f in found}


def test_replay_to_each_generation_shows_what_it_left_active(history: History) -> None:
    ledger, (a0, a1, a2), web = history.views.ledger, history.api, history.web
    expected = {
        1: {("h1", "api", a0), ("h2", "api", a0)},
        2: {("h1", "api", a1), ("h2", "api", a1)},
        3: {("h1", "api", a2), ("h2", "api", a1)},  # generation 3 failed on h2
        4: {("h1", "api", a1), ("h2", "api", a1)},
    }
    for number, api in expected.items():
        point = before_next_generation(ledger, number, "production")
        assert replay_topology(ledger, point) == api | {("h1", "web", web)}, number
        assert replay_topology(ledger, point) == active_at(history.views, point), number
    last = before_next_generation(ledger, 4)
    assert (last.until, last.moment) == (ledger.head()[0], None)  # the whole stream


def test_replay_to_a_generation_replays_the_views_up_to_its_successor(
    history: History,
) -> None:
    ledger = history.views.ledger
    point = before_next_generation(ledger, 2)
    planned_3 = next(
        f for f in ledger.facts(kinds=["generation_planned"]) if f.event["number"] == 3
    )
    assert point.until == planned_3.position - 1
    # Then is when generation 3 was planned (it was recorded 5 minutes later).
    assert point.moment == datetime.fromisoformat(planned_3.event["occurred_at"])
    with replayed(ledger, point) as scratch:
        assert {s.position for s in scratch.status()} == {point.until}
        generations = queries.generations(scratch)
        assert [(g["number"], g["status"]) for g in generations] == [
            (1, "completed"),
            (2, "completed"),
        ]


def test_replay_until_a_moment_between_two_activations(history: History) -> None:
    ledger, (a0, a1, _), web = history.views.ledger, history.api, history.web
    point = as_recorded_at(ledger, minute(history.between_h1_and_h2))
    assert replay_topology(ledger, point) == {
        ("h1", "api", a1),
        ("h2", "api", a0),  # generation 2 had not reached h2 yet
        ("h1", "web", web),
    }
    assert replay_topology(ledger, point) == active_at(history.views, point)


def test_replay_until_leaves_out_what_was_recorded_later(history: History) -> None:
    """Gen 4's activation on h1 was recorded an hour late; events after it in the
    stream were recorded on time. A minute after it happened the ledger had recorded
    those later events but not it: h1 still ran build 1.2."""
    ledger, (_, a1, a2) = history.views.ledger, history.api
    soon = as_recorded_at(ledger, minute(history.late_activation + 1))
    with replayed(ledger, soon) as scratch:
        placements = topology(scratch)
        assert ("h1", "api", a2) in placements
        assert ("h1", "api", a1) not in placements
        assert [g["status"] for g in queries.generations(scratch)][-1] == "completed"
        assert placements == active_at(history.views, soon)
    later = as_recorded_at(ledger, minute(history.late_activation + 61))
    assert ("h1", "api", a1) in replay_topology(ledger, later)
    assert replay_topology(ledger, as_recorded_at(ledger, minute(0))) == set()


def test_replay_leaves_the_live_views_as_they_were(history: History) -> None:
    views, ledger = history.views, history.views.ledger
    s = Story()
    s.add("health_reported", 100, host="h1", state="critical")
    s.record(ledger)  # the live views are now one event behind
    positions = views.positions()
    rows = {name: views.dump(name) for name in VIEW_NAMES}
    with replayed(ledger, before_next_generation(ledger, 1)) as scratch:
        assert topology(scratch) != topology(views)
    replay_topology(ledger, as_recorded_at(ledger, minute(200)))
    assert views.positions() == positions
    assert {name: views.dump(name) for name in VIEW_NAMES} == rows
    assert views.lag() == 1


def test_replay_refuses_a_generation_the_ledger_does_not_hold(history: History) -> None:
    ledger = history.views.ledger
    with pytest.raises(InvalidInput, match="production has no generation 9"):
        before_next_generation(ledger, 9)
    with pytest.raises(InvalidInput, match="environment 'staging' has no generations"):
        before_next_generation(ledger, 1, "staging")


def test_replay_health_is_judged_at_the_replayed_moment(history: History) -> None:
    ledger = history.views.ledger
    s = Story()
    s.add("health_reported", 100, host="h2", service="api", state="warning")
    s.record(ledger)
    point = as_recorded_at(ledger, minute(100.5))  # 30 s into its 60 s ttl
    with replayed(ledger, point) as scratch:
        for now, health in ((point.moment, "warning"), (None, "warning (stale)")):
            rows = queries.topology(scratch, now=now)
            assert {(r["host"], r["service"]): r["health"] for r in rows}[("h2", "api")] == health
