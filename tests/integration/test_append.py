"""Appending: positions, idempotency, generation numbers, concurrent writers — on both
backends (the ``ledger`` fixture is parametrised over SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.errors import EventConflict, StoreNotInitialised
from ledger.events import KINDS
from ledger.store import locate
from tests.factories import make_event


def test_every_kind_is_stored_and_read_back_in_order(ledger: Ledger) -> None:
    events = [make_event(kind) for kind in KINDS]
    results = ledger.append(events, source="file")
    assert [r.position for r in results] == list(range(1, len(KINDS) + 1))
    assert all(r.new for r in results)
    facts = list(ledger.facts())
    assert [f.event["kind"] for f in facts] == list(KINDS)
    assert [f.event["event_id"] for f in facts] == [str(e.event_id) for e in events]
    assert all(f.event["source"] == "file" and f.event["recorded_at"] for f in facts)


def test_kind_filter_reads_only_those_kinds(ledger: Ledger) -> None:
    ledger.append([make_event(kind) for kind in KINDS])
    facts = list(ledger.facts(kinds=["activation_failed", "health_reported"]))
    assert sorted(f.event["kind"] for f in facts) == ["activation_failed", "health_reported"]


def test_recording_a_stored_event_id_again_is_a_no_op(ledger: Ledger) -> None:
    event = make_event("activation_completed")
    first = ledger.append([make_event("health_reported"), event])[1]
    again = ledger.append([event])[0]
    assert (again.position, again.new) == (first.position, False)
    assert ledger.count() == 2


def test_a_batch_with_the_same_event_twice_stores_it_once(ledger: Ledger) -> None:
    event = make_event("drain_started")
    results = ledger.append([event, event])
    assert [(r.position, r.new) for r in results] == [(1, True), (1, False)]
    assert ledger.count() == 1


def test_same_event_id_with_other_content_is_refused_and_nothing_is_stored(
    ledger: Ledger,
) -> None:
    original = make_event("activation_completed")
    ledger.append([original])
    clash = make_event("activation_completed", event_id=str(original.event_id), host="web-002")
    with pytest.raises(EventConflict, match="already stored at position 1 with different"):
        ledger.append([make_event("health_reported"), clash])
    assert ledger.count() == 1


def test_generations_are_numbered_per_env_without_gaps(ledger: Ledger) -> None:
    results = ledger.append(
        [
            make_event("generation_planned", env="production"),
            make_event("generation_planned", env="staging"),
            make_event("generation_planned", env="production", parent=1),
            make_event("generation_planned", env="production", number=3, parent=2),
        ]
    )
    numbers = {
        (f.event["env"], f.event["number"]) for f in ledger.facts(kinds=["generation_planned"])
    }
    assert numbers == {("production", 1), ("staging", 1), ("production", 2), ("production", 3)}
    assert all(r.new for r in results)


@pytest.mark.parametrize("number", [1, 3])
def test_a_generation_number_that_is_not_the_next_is_refused(ledger: Ledger, number: int) -> None:
    ledger.append([make_event("generation_planned")])
    with pytest.raises(EventConflict, match="the next number is 2"):
        ledger.append([make_event("generation_planned", number=number)])
    assert ledger.count() == 1


def test_reading_a_store_that_was_never_initialised_says_so(ledger_url: str) -> None:
    with pytest.raises(StoreNotInitialised, match="ledger init"):
        Ledger(locate(ledger_url))


def test_init_is_idempotent_and_keeps_events(ledger: Ledger, ledger_url: str) -> None:
    ledger.append([make_event("health_reported")])
    again = Ledger(locate(ledger_url), create=True)
    assert again.count() == 1
    assert again.verify().intact


def _concurrently(workers: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``workers`` threads released at the same moment, each with its
    own ledger connection; re-raise the first failure."""
    barrier = threading.Barrier(workers)
    results: list[Any] = [None] * workers
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def test_concurrent_writers_of_the_same_events_store_each_once(ledger_url: str) -> None:
    Ledger(locate(ledger_url), create=True).close()
    events = [make_event("activation_completed", host=f"web-{i:03}") for i in range(20)]

    def write(i: int) -> list[int]:
        app = Ledger(locate(ledger_url))
        try:
            # Each writer sends the same events, in a different order and batching.
            mine = events[i:] + events[:i]
            return [r.position for r in app.append(mine[:10]) + app.append(mine[10:])]
        finally:
            app.close()

    _concurrently(6, write)
    check = Ledger(locate(ledger_url))
    assert check.count() == 20
    assert sorted(f.event["event_id"] for f in check.facts()) == sorted(
        str(e.event_id) for e in events
    )
    assert check.verify().intact


@pytest.mark.postgres
def test_concurrent_planners_get_gapless_distinct_generation_numbers(postgres_url: str) -> None:
    Ledger(locate(postgres_url), create=True).close()
    writers, plans_each = 8, 5

    def plan(i: int) -> list[int]:
        app = Ledger(locate(postgres_url))
        try:
            positions = []
            for _ in range(plans_each):
                # Interleave other facts so the chain head moves between plans too.
                app.append([make_event("health_reported", host=f"web-{i:03}")])
                positions.append(app.append([make_event("generation_planned")])[0].position)
            return positions
        finally:
            app.close()

    _concurrently(writers, plan)
    check = Ledger(locate(postgres_url))
    planned = list(check.facts(kinds=["generation_planned"]))
    numbers = [f.event["number"] for f in planned]
    assert numbers == list(range(1, writers * plans_each + 1)), "in chain order, no gap or repeat"
    assert check.count() == 2 * writers * plans_each
    assert check.verify().intact


def test_concurrent_planners_on_sqlite_also_get_distinct_numbers(sqlite_url: str) -> None:
    Ledger(locate(sqlite_url), create=True).close()

    def plan(_: int) -> None:
        app = Ledger(locate(sqlite_url))
        try:
            for _ in range(5):
                app.append([make_event("generation_planned")])
        finally:
            app.close()

    _concurrently(4, plan)
    numbers = [
        f.event["number"] for f in Ledger(locate(sqlite_url)).facts(kinds=["generation_planned"])
    ]
    assert numbers == list(range(1, 21))


@pytest.mark.timeout(120)
def test_a_batch_of_several_megabytes_is_stored(ledger: Ledger) -> None:
    """Large closures make large batches: psycopg's pipeline mode used to hang on them."""
    closure = [
        {
            "name": f"lib{i}",
            "version": "1.0",
            "store_path": f"/nix/store/{i:032d}-lib{i}-1.0",
            "hash": f"sha256:{i:064x}",
        }
        for i in range(3000)
    ]
    builds = [make_event("build_recorded", closure=closure) for _ in range(8)]
    results = ledger.append(builds)
    assert [r.position for r in results] == list(range(1, 9))
    assert ledger.verify().intact


def test_the_store_returns_the_notification_ids_of_the_rows_it_inserted(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Followers read notifications in id order: each append's rows get ids above every
    earlier one, in position order, and the store reports exactly those (on PostgreSQL
    they are read back after a COPY, which returns none)."""
    returned: list[list[int]] = []
    insert = ledger.recorder.insert_events

    def recording_insert(*args: Any, **kwargs: Any) -> Any:
        ids = insert(*args, **kwargs)
        returned.append(list(ids or []))
        return ids

    monkeypatch.setattr(ledger.recorder, "insert_events", recording_insert)
    for size in (5, 1, 3):
        ledger.append([make_event("health_reported") for _ in range(size)])
    notifications = ledger.recorder.select_notifications(None, 100)
    assert [n.originator_version for n in notifications] == list(range(1, 10))
    ids = [n.id for n in notifications]
    assert ids == sorted(set(ids))
    assert returned == [ids[:5], ids[5:6], ids[6:]]
