"""The runner's promises: a crash mid-batch neither skips nor repeats an event,
concurrent runners do not double-apply, views in another database give the same
answers, the library's one-event interface agrees with the runner, and a rebuilt view
equals the incrementally maintained one row for row (property test)."""

from __future__ import annotations

import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import Tracking
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application import Ledger
from ledger.domain import CHAIN_ID
from ledger.events import Envelope, GenerationPlanned
from ledger.store import locate
from projections import queries
from projections.history import HistoryView
from projections.runner import VIEW_NAMES, Stop, Views
from projections.store import tracking_name
from tests.conftest import with_query
from tests.story import Story, build_id, openssl, zlib

Dump = dict[str, dict[str, list[tuple[Any, ...]]]]


def dump(views: Views) -> Dump:
    return {name: views.dump(name) for name in VIEW_NAMES}


def busy_story(rounds: int = 3) -> Story:
    s = Story()
    builds = {}
    for number in range(1, rounds + 1):
        builds[number] = s.build("api", f"1.{number}", openssl(f"3.0.{number}"), zlib("1.3"))
        s.plan(number, {(f"h{i}", "api"): builds[number] for i in range(4)})
        for i in range(4):
            if number == 1:
                s.activate(f"h{i}", "api", builds[1], 1)
            else:
                s.replace(f"h{i}", "api", builds[number - 1], builds[number], number)
            s.add("health_reported", host=f"h{i}", state="warning" if i % 2 else "ok")
        s.add("generation_completed", number=number)
    return s


def test_a_crash_mid_batch_keeps_nothing_of_it(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    events = busy_story(3).events
    ledger.append(events[:20])
    views = Views(ledger, batch=7, commit_events=7)  # a transaction per batch
    views.catch_up()
    before, positions = dump(views), views.positions()
    ledger.append(events[20:])

    original = HistoryView.apply
    calls = 0

    def crash_on_second_batch(self: HistoryView, tx: Any, facts: Any) -> None:
        nonlocal calls
        calls += 1
        original(self, tx, facts)  # rows written in the transaction ...
        if calls == 2:
            raise RuntimeError("power cut")  # ... and then the process dies

    monkeypatch.setattr(HistoryView, "apply", crash_on_second_batch)
    with pytest.raises(RuntimeError, match="power cut"):
        views.catch_up()
    monkeypatch.undo()

    # The first batch committed (every view, with its tracking); the second left no trace.
    after_crash = views.positions()
    assert len(set(after_crash.values())) == 1
    assert after_crash["history"] == positions["history"] + 7
    # Exactly what the committed events make: the same view built one event at a time,
    # through the library's interface, from the events up to the committed position.
    reference = Views(ledger, locate(str(tmp_path / "reference.db")))
    for notification in ledger.recorder.select_notifications(
        None, 10_000, stop=after_crash["history"]
    ):
        reference.views["history"].process_event(
            ledger.mapper.to_domain_event(notification),
            Tracking(tracking_name("history"), notification.id),
        )
    assert views.dump("history") == reference.dump("history")
    assert views.dump("history") != before["history"]  # the first batch did land

    views.catch_up()  # restart: picks up exactly where the committed batch ended
    incremental = dump(views)
    views.rebuild()
    assert dump(views) == incremental


def test_concurrent_runners_apply_each_event_once(ledger: Ledger) -> None:
    story = busy_story(6)
    events = story.events
    first = Views(ledger, batch=5)
    second = Views(Ledger(ledger.location), batch=3)
    errors: list[BaseException] = []

    def run(views: Views) -> None:
        try:
            for _ in range(20):
                views.catch_up()
        except BaseException as error:
            errors.append(error)

    for chunk in range(0, len(events), 10):
        ledger.append(events[chunk : chunk + 10])
        threads = [threading.Thread(target=run, args=(v,)) for v in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    first.catch_up()
    together = dump(first)
    assert dump(second) == together
    first.rebuild()
    assert dump(first) == together


def test_views_in_another_database_answer_the_same(
    ledger: Ledger, postgres_url: str, tmp_path: Path
) -> None:
    busy_story().record(ledger)
    local = Views(ledger)
    local.catch_up()
    answers = queries.where(local, "openssl"), queries.generations(local)
    for views_url in (postgres_url, str(tmp_path / "views.db")):
        elsewhere = Views(ledger, locate(views_url))
        elsewhere.catch_up()
        assert (queries.where(elsewhere, "openssl"), queries.generations(elsewhere)) == answers
        assert dump(elsewhere) == dump(local)


def test_the_library_projection_interface_gives_the_same_rows(
    ledger: Ledger, tmp_path: Path
) -> None:
    """``Projection.process_event(event, tracking)``, as eventsourcing's runner calls
    it, one event at a time, builds the same view as the batching runner."""
    busy_story().record(ledger)
    runner = Views(ledger)
    runner.catch_up()
    library = Views(ledger, locate(str(tmp_path / "library.db")))
    view = library.views["placements"]
    for notification in ledger.recorder.select_notifications(None, 10_000):
        assert notification.originator_id == CHAIN_ID
        entry = ledger.mapper.to_domain_event(notification)
        view.process_event(entry, Tracking(tracking_name("placements"), notification.id))
    assert library.dump("placements") == runner.dump("placements")


# --- rebuild == incremental, for random streams ---------------------------------------

HOSTS = ("h1", "h2", "h3")
SERVICES = ("api", "web")
VERSIONS = ("1.0", "1.1", "2.0")
OPENSSL = ("1.0.1p", "1.0.2d", "3.0.13")
STEPS = (
    "build", "plan", "finish", "tag", "dist", "activate", "deactivate", "fail", "drain", "health",
    "report",
)  # fmt: skip


@st.composite
def streams(draw: st.DrawFn) -> list[Envelope]:
    """A random, often contradictory, stream of every kind the views read."""
    stories = {env: Story(env) for env in ("production", "staging")}
    numbers = dict.fromkeys(stories, 0)
    steps = draw(st.integers(min_value=1, max_value=60))
    for _ in range(steps):
        env = draw(st.sampled_from(sorted(stories)))
        s = stories[env]
        s.clock = draw(st.floats(min_value=0, max_value=500))  # not in order
        late = draw(st.sampled_from((0, 0, 5, 120)))
        host, service = draw(st.sampled_from(HOSTS)), draw(st.sampled_from(SERVICES))
        build = build_id(service, draw(st.sampled_from(VERSIONS)))
        step = draw(st.sampled_from(STEPS))
        at = s.clock
        if step == "build":
            version = build.split("-")[1].replace("_", ".")
            s.build(service, version, openssl(draw(st.sampled_from(OPENSSL))))
        elif step == "plan":
            numbers[env] += 1
            hosts = draw(st.lists(st.sampled_from(HOSTS), max_size=3, unique=True))
            rollback = numbers[env] > 1 and draw(st.booleans())
            s.plan(
                numbers[env],
                {(h, service): build for h in hosts},
                parent=draw(st.sampled_from((None, *range(1, numbers[env])))),
                reason="rollback" if rollback else "deploy",
                target=draw(st.integers(1, numbers[env] - 1)) if rollback else None,
            )
        elif step in ("finish", "tag") and numbers[env]:
            number = draw(st.integers(1, numbers[env]))
            if step == "tag":
                s.add("generation_tagged", at, late=late, number=number, tags=["t"])
            elif draw(st.booleans()):
                s.add("generation_completed", at, late=late, number=number)
            else:
                s.add("generation_failed", at, late=late, number=number, reason="x")
        elif step == "dist":
            s.add("distribution_completed", at, late=late, host=host, service=service,
                  build_id=build)  # fmt: skip
        elif step == "activate":
            s.add("activation_completed", at, late=late, host=host, service=service,
                  build_id=build, generation=max(numbers[env], 1))  # fmt: skip
        elif step == "deactivate":
            s.add("deactivated", at, late=late, host=host, service=service, build_id=build)
        elif step == "fail":
            s.add("activation_failed", at, late=late, host=host, service=service,
                  build_id=build, generation=max(numbers[env], 1))  # fmt: skip
        elif step == "drain":
            s.add("drain_timed_out", at, late=late, host=host, service=service, build_id=build)
        elif step == "health":
            s.add("health_reported", at, late=late, host=host,
                  service=draw(st.sampled_from((None, service))),
                  state=draw(st.sampled_from(("ok", "warning", "critical"))))  # fmt: skip
        elif step == "report":  # out of order, late, or taken at the same moment as another
            services = draw(st.lists(st.sampled_from(SERVICES), max_size=3))  # repeats too
            s.add("host_reported", draw(st.sampled_from((at, 100.0))), late=late, host=host,
                  manifest=[{"host": host, "service": name, "build_id": build}
                            for name in services])  # fmt: skip
    # Generation events of one env must reach the ledger in number order.
    events = [e for story in stories.values() for e in story.events]
    order = draw(st.permutations(range(len(events))))
    shuffled = [events[i] for i in order]
    planned = [e for e in shuffled if isinstance(e, GenerationPlanned)]
    planned.sort(key=lambda e: (e.env, e.number or 0))
    queue = iter(planned)
    return [next(queue) if isinstance(e, GenerationPlanned) else e for e in shuffled]


def rebuild_equals_incremental(
    url: str, events: list[Envelope], chunks: list[int], batch: int
) -> None:
    ledger = Ledger(locate(url), create=True)
    views = Views(ledger, batch=batch, commit_events=batch * (1 + len(chunks) % 3))
    sizes = iter(chunks)
    start = 0
    while start < len(events):
        size = next(sizes, len(events))
        ledger.append(events[start : start + size])
        views.catch_up()
        start += size
    incremental = dump(views)
    views.rebuild()
    assert dump(views) == incremental
    ledger.close()


COMMON = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@settings(COMMON, max_examples=40)
@given(
    events=streams(),
    chunks=st.lists(st.integers(1, 12), max_size=20),
    batch=st.integers(1, 8),
)
def test_rebuild_equals_incremental_sqlite(
    events: list[Envelope], chunks: list[int], batch: int
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        rebuild_equals_incremental(str(Path(folder) / "ledger.db"), events, chunks, batch)


@pytest.mark.postgres
@settings(COMMON, max_examples=8)
@given(
    events=streams(),
    chunks=st.lists(st.integers(1, 12), max_size=20),
    batch=st.integers(1, 8),
)
def test_rebuild_equals_incremental_postgres(
    postgres_server_url: str, events: list[Envelope], chunks: list[int], batch: int
) -> None:
    schema = f"prop_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        rebuild_equals_incremental(
            with_query(postgres_server_url, schema=schema), events, chunks, batch
        )
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_lag_is_the_slowest_views(ledger: Ledger) -> None:
    busy_story(1).record(ledger)
    views = Views(ledger)
    views.catch_up()
    assert views.lag() == 0
    views.reset(["history"])  # as if the history view were new
    head, _ = ledger.head()
    assert views.lag() == head
    lags = {s.name: s.lag for s in views.status()}
    assert lags == {name: head if name == "history" else 0 for name in VIEW_NAMES}
    views.catch_up()
    assert views.lag() == 0


OLD_PLACEMENTS = (  # the placements table as the first version of the view made it
    "CREATE TABLE placements (id BIGINT PRIMARY KEY, env TEXT NOT NULL, host TEXT NOT NULL, "
    "service TEXT NOT NULL, build_id TEXT NOT NULL, generation BIGINT NOT NULL, "
    "valid_from BIGINT NOT NULL, recorded_from BIGINT NOT NULL, end_position BIGINT, "
    "valid_to BIGINT, recorded_to BIGINT, ended_by TEXT)"
)


def test_views_made_by_older_code_are_rebuilt_when_opened(ledger: Ledger) -> None:
    """An upgrade that changes a view's tables needs no manual step: opening the views
    drops the outdated one and forgets its position, and catching up rebuilds it."""
    ledger.append(busy_story(2).events)
    views = Views(ledger)
    views.catch_up()
    current = dump(views)
    with views.recorder.transaction(commit=True) as tx:
        tx.execute("DROP TABLE placements")
        tx.execute(OLD_PLACEMENTS)
        tx.execute("CREATE TABLE history_health (env TEXT, host TEXT, service TEXT)")
        tx.execute("UPDATE view_schemas SET version = 1 WHERE name IN ('placements', 'history')")
    reopened = Views(ledger)
    positions = reopened.positions()
    assert positions["placements"] == positions["history"] == 0  # forgotten
    assert positions["builds"] > 0  # untouched
    exists = (
        "SELECT to_regclass('history_health') IS NOT NULL AS found"
        if reopened.recorder.postgres
        else "SELECT COUNT(*) > 0 AS found FROM sqlite_master WHERE name = 'history_health'"
    )
    assert not reopened.query(exists)[0]["found"]  # a former table goes too
    reopened.catch_up()
    assert dump(reopened) == current


def index_names(views: Views) -> set[str]:
    with views.read() as tx:
        if tx.postgres:
            rows = tx.tuples("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
        else:
            rows = tx.tuples("SELECT name FROM sqlite_master WHERE type = 'index'")
    return {name for (name,) in rows}


def read_indexes(views: Views) -> set[str]:
    """The names of the indexes only queries read (``View.read_ddl``)."""
    names = {s.split(" ON ")[0].split()[-1] for v in views.views.values() for s in v.read_ddl}
    assert {"placements_now", "placements_build", "host_history_time"} <= names
    return names


def test_a_rebuild_makes_the_query_indexes_after_the_replay(ledger: Ledger) -> None:
    """A rebuild replays into tables without the indexes only queries read, then makes
    them; a rebuild that stops half-way leaves them to the next ``Views`` opened."""
    ledger.append(busy_story(2).events)
    views = Views(ledger)
    wanted = read_indexes(views)
    assert wanted <= index_names(views)
    views.rebuild()
    assert wanted <= index_names(views), "made after the replay"

    views.reset(reading=False)  # as a rebuild leaves them when it stops mid-replay
    assert not wanted & index_names(views)
    views.catch_up()
    reopened = Views(ledger)
    assert wanted <= index_names(reopened)
    assert dump(reopened) == dump(views)


def test_the_fast_decoder_reads_what_the_librarys_mapper_reads(ledger: Ledger) -> None:
    """The runner reads events straight from the stored JSON; the facts must be exactly
    those the library's mapper gives."""
    busy_story(2).record(ledger)
    views = Views(ledger)
    assert views._plain_state
    batch = views._select(0, Stop())
    fast = views._decode(batch, Stop())
    views._plain_state = False
    slow = views._decode(batch, Stop())
    assert fast == slow
    assert len(fast) == ledger.count()
