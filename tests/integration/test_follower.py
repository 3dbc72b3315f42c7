"""A collector's follower: its own durable position in the ledger's database."""

from __future__ import annotations

from collectors.follower import Follower
from ledger.application import Ledger
from ledger.store import locate
from projections.runner import Views
from tests.story import Story, api_upgrade


def test_reads_after_its_position_and_resumes_where_it_confirmed(ledger: Ledger) -> None:
    api_upgrade().record(ledger)
    follower = Follower(ledger, "test", batch=5)
    assert follower.position() == 0
    first = follower.read(follower.position())
    assert [f.position for f in first] == [1, 2, 3, 4, 5]
    follower.confirm(first[-1].notification_id)
    follower.close()

    again = Follower(Ledger(locate(ledger.location.url)), "test", batch=100)
    rest = again.read(again.position())
    assert [f.position for f in rest] == list(range(6, 21))
    other = Follower(ledger, "other")
    assert other.position() == 0, "each collector has a position of its own"


def test_reads_only_its_kinds(ledger: Ledger) -> None:
    api_upgrade().record(ledger)
    follower = Follower(ledger, "failures", kinds=["generation_completed"])
    assert [f.kind for f in follower.read(0)] == ["generation_completed"] * 2


def test_its_position_is_not_a_view_and_survives_a_views_rebuild(ledger: Ledger) -> None:
    api_upgrade().record(ledger)
    follower = Follower(ledger, "test")
    facts = follower.read(0)
    follower.confirm(facts[-1].notification_id)
    views = Views(ledger)
    views.rebuild()
    assert follower.position() == facts[-1].notification_id
    s = Story()
    s.add("generation_failed", number=2, reason="late")
    s.record(ledger)
    assert [f.kind for f in follower.read(follower.position())] == ["generation_failed"]
