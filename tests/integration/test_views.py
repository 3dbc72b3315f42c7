"""What the views answer, on both backends, for a small fleet history with a failed
generation, its rollback, a late-recorded fact and a few anomalies."""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Any

import pytest

from ledger.application import Ledger
from ledger.errors import InvalidInput, UnknownName
from projections import queries
from projections.diff import describe_change, diff
from projections.metrics import metrics
from projections.runner import Views
from projections.versions import parse_range
from tests.story import Story, build_id, minute, openssl, zlib


@dataclass
class Fleet:
    views: Views
    api1: str
    api2: str
    api3: str
    web1: str
    during_gen1: float
    during_gen3: float
    rollback_at: float


@pytest.fixture
def fleet(ledger: Ledger) -> Fleet:
    s = Story()
    api1 = s.build("api", "1.0", openssl("1.0.1p"), zlib("1.2.11"))
    web1 = s.build("web", "2.0", openssl("3.0.13"))
    s.plan(1, {("h1", "api"): api1, ("h2", "api"): api1, ("h1", "web"): web1}, tags=["first"])
    s.activate("h1", "api", api1, 1)
    s.activate("h2", "api", api1, 1)
    s.activate("h1", "web", web1, 1)
    s.add("generation_completed", number=1)
    during_gen1 = s.clock + 0.5

    api2 = s.build("api", "1.1", openssl("1.0.2d"), zlib("1.2.11"))
    s.plan(2, {("h1", "api"): api2, ("h2", "api"): api2, ("h1", "web"): web1})
    s.replace("h1", "api", api1, api2, 2)
    s.replace("h2", "api", api1, api2, 2)
    s.add("generation_completed", number=2)

    api3 = s.build("api", "1.2", openssl("3.0.13"))
    s.plan(3, {("h1", "api"): api3, ("h2", "api"): api3, ("h1", "web"): web1})
    s.replace("h1", "api", api2, api3, 3)
    s.add("activation_failed", host="h2", service="api", build_id=api3, generation=3, reason="boom")
    s.add("generation_failed", number=3, reason="h2 failed")
    during_gen3 = s.clock + 0.5

    s.plan(4, {("h1", "api"): api2, ("h2", "api"): api2, ("h1", "web"): web1},
           reason="rollback", target=2, parent=3, actor="alice@sre")  # fmt: skip
    s.replace("h1", "api", api3, api2, 4, late=60)  # recorded an hour after it happened
    rollback_at = s.clock
    s.add("generation_completed", number=4)
    for state in ("critical", "critical", "ok"):
        s.add("health_reported", host="h1", service="api", state=state)
    # Facts that contradict the stream: the ledger keeps them, the failures view flags them.
    s.add("deactivated", host="h2", service="web", build_id=web1)
    s.add("activation_completed", host="h3", service="web", build_id=web1, generation=4)
    s.record(ledger)
    views = Views(ledger)
    views.catch_up()
    return Fleet(views, api1, api2, api3, web1, during_gen1, during_gen3, rollback_at)


def placements(found: list[queries.Found]) -> set[tuple[str, str, str]]:
    return {(f.host, f.service, f.build_id) for f in found}


def test_topology_shows_the_active_build_its_generation_and_health(fleet: Fleet) -> None:
    rows = {(r["host"], r["service"]): r for r in queries.topology(fleet.views)}
    assert set(rows) == {("h1", "api"), ("h2", "api"), ("h1", "web"), ("h3", "web")}
    assert rows[("h1", "api")]["build_id"] == fleet.api2
    assert rows[("h1", "api")]["generation"] == 4  # the rollback put it back
    assert rows[("h1", "api")]["version"] == "1.1"
    # The last report said ok with a 60 s ttl, months ago: it is stale by now.
    assert rows[("h1", "api")]["health"] == "ok (stale)"
    assert rows[("h1", "api")]["since"] == minute(fleet.rollback_at).isoformat().replace(
        "+00:00", "Z"
    )
    assert rows[("h2", "api")]["generation"] == 2  # its generation 3 activation failed
    assert rows[("h1", "web")]["generation"] == 1
    with pytest.raises(UnknownName, match=r"'staging' is not in the ledger \(known: production\)"):
        queries.topology(fleet.views, env="staging")  # never seen: an error, not "nothing"


def test_manifest_holds_closures_and_dependencies(fleet: Fleet) -> None:
    services = {s["service"]: s for s in queries.manifest(fleet.views, "h1")}
    assert set(services) == {"api", "web"}
    assert [c["name"] for c in services["api"]["closure"]] == ["openssl", "zlib"]
    assert services["api"]["closure"][0]["version"] == "1.0.2d"
    assert services["api"]["artifact"].endswith("-api-1.1")
    assert queries.manifest(fleet.views, "nowhere") == []


def test_where_answers_now(fleet: Fleet) -> None:
    rows = queries.where(fleet.views, "openssl")
    assert placements(rows) == {
        ("h1", "api", fleet.api2),
        ("h2", "api", fleet.api2),
        ("h1", "web", fleet.web1),
        ("h3", "web", fleet.web1),
    }
    assert {f.version for f in rows if f.service == "api"} == {"1.0.2d"}
    assert rows[0].row()["since"].endswith("Z")
    with pytest.raises(UnknownName, match="ever held a package called 'libressl'"):
        queries.where(fleet.views, "libressl")  # "nowhere" must not stand for "misspelt"
    with pytest.raises(UnknownName, match="did you mean 'openssl'"):
        queries.where(fleet.views, "opensll")
    with pytest.raises(UnknownName, match="'prod' is not in the ledger; did you mean 'production'"):
        queries.where(fleet.views, "openssl", env="prod")
    summary = queries.where_summary(rows)
    assert [(s["version"], s["hosts"]) for s in summary] == [("1.0.2d", 2), ("3.0.13", 2)]


def test_where_leaves_the_garbage_collector_as_it_found_it(fleet: Fleet) -> None:
    """``where`` pauses the collector while it makes a large answer: it must be running
    again afterwards, also after an error, and stay off when the caller had it off."""
    assert gc.isenabled()
    assert queries.where(fleet.views, "openssl")
    assert gc.isenabled()
    with pytest.raises(UnknownName):
        queries.where(fleet.views, "openssl", env="prod")
    assert gc.isenabled()
    gc.disable()
    try:
        assert queries.where(fleet.views, "openssl")
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_where_with_versions(fleet: Fleet) -> None:
    old = queries.where(fleet.views, "openssl", version_range=parse_range(">=1.0.1,<1.0.2"))
    assert old == []
    then = queries.where(
        fleet.views,
        "openssl",
        version_range=parse_range(">=1.0.1,<1.0.2"),
        at=minute(fleet.during_gen1),
    )
    assert placements(then) == {("h1", "api", fleet.api1), ("h2", "api", fleet.api1)}
    exact = queries.where(fleet.views, "openssl", version="3.0.13")
    assert {f.service for f in exact} == {"web"}


def test_where_at_a_past_moment(fleet: Fleet) -> None:
    rows = queries.where(fleet.views, "openssl", at=minute(fleet.during_gen3), env="production")
    assert placements(rows) == {
        ("h1", "api", fleet.api3),  # generation 3 reached h1 ...
        ("h2", "api", fleet.api2),  # ... but failed on h2
        ("h1", "web", fleet.web1),
    }
    before_anything = queries.where(fleet.views, "openssl", at=minute(0))
    assert before_anything == []


def test_where_as_the_ledger_knew_it(fleet: Fleet) -> None:
    """The rollback on h1 was recorded an hour late: asked as of right after it
    happened, the ledger did not know yet and h1 still ran build 3."""
    moment = minute(fleet.rollback_at + 1)
    known_now = queries.where(fleet.views, "openssl", at=moment)
    known_then = queries.where(fleet.views, "openssl", at=moment, known_at=moment)
    assert ("h1", "api", fleet.api2) in placements(known_now)
    assert ("h1", "api", fleet.api3) in placements(known_then)
    later = queries.where(
        fleet.views, "openssl", at=moment, known_at=minute(fleet.rollback_at + 61)
    )
    assert placements(later) == placements(known_now)


def test_where_in_a_past_generation(fleet: Fleet) -> None:
    rows = queries.where(fleet.views, "openssl", generation_number=3)
    assert placements(rows) == {
        ("h1", "api", fleet.api3),
        ("h2", "api", fleet.api3),
        ("h1", "web", fleet.web1),
    }
    assert {f.generation for f in rows} == {3}


def test_generations_tree_status_and_badness(fleet: Fleet) -> None:
    rows = {g["number"]: g for g in queries.generations(fleet.views)}
    assert [rows[n]["status"] for n in (1, 2, 3, 4)] == [
        "completed",
        "completed",
        "rolled back",
        "completed",
    ]
    assert [n for n, g in rows.items() if g["bad"]] == [3]
    assert rows[3]["rolled_back_by"] == 4
    assert rows[3]["failure"] == "h2 failed"
    assert (rows[4]["reason"], rows[4]["target"], rows[4]["parent"]) == ("rollback", 2, 3)
    assert rows[1]["tags"] == ["first"]
    detail = queries.generation(fleet.views, 4)
    assert len(detail["manifest"]) == 3
    assert detail["actor"] == "alice@sre"
    with pytest.raises(InvalidInput, match="no generation 9"):
        queries.generation(fleet.views, 9)


def test_rollback_to_an_older_ancestor_marks_every_generation_it_undoes(
    ledger: Ledger,
) -> None:
    s = Story()
    for number in (1, 2, 3):
        s.plan(number, {})
        s.add("generation_completed", number=number)
    s.plan(4, {}, reason="rollback", target=1, parent=3)
    s.record(ledger)
    views = Views(ledger)
    views.catch_up()
    status = {g["number"]: g["status"] for g in queries.generations(views)}
    assert status == {1: "completed", 2: "rolled back", 3: "rolled back", 4: "planned"}


def test_diff_lists_service_and_closure_changes(fleet: Fleet) -> None:
    result = diff(fleet.views, 1, 2)
    assert result["services"] == [
        {
            "service": "api",
            "change": "changed",
            "from_build": fleet.api1,
            "to_build": fleet.api2,
            "hosts": 2,
        }
    ]
    assert [describe_change(c) for c in result["closure_changes"]] == [
        "openssl 1.0.1p → 1.0.2d in 1 service on 2 hosts"
    ]  # zlib did not change, so it is not listed
    back = diff(fleet.views, 2, 3)
    assert [describe_change(c) for c in back["closure_changes"]] == [
        "openssl 1.0.2d → 3.0.13 in 1 service on 2 hosts",
        "zlib 1.2.11 → ∅ in 1 service on 2 hosts",
    ]
    assert diff(fleet.views, 2, 4)["services"] == []
    with pytest.raises(InvalidInput, match="no generation 7"):
        diff(fleet.views, 1, 7)


def test_history_is_in_order_and_keeps_only_health_changes(fleet: Fleet) -> None:
    rows = queries.history(fleet.views, "h1", service="api")
    kinds = [r["kind"] for r in rows]
    assert kinds[:2] == ["distribution_completed", "activation_completed"]
    assert kinds.count("health_reported") == 2  # critical, (critical again: no), ok
    health = [r["detail"] for r in rows if r["kind"] == "health_reported"]
    assert health == ["critical (2.5)", "ok (2.5)"]
    order = [(r["occurred_at"], r["position"]) for r in rows]
    assert order == sorted(order)
    assert all(r["host"] == "h1" and r["service"] == "api" for r in rows)
    assert {r["service"] for r in queries.history(fleet.views, "h1")} == {"api", "web"}


def test_failures_list_failures_and_anomalies(fleet: Fleet) -> None:
    rows = queries.failures(fleet.views)
    problems = [(r["problem"], r["host"], r["service"]) for r in rows]
    assert problems == [
        ("activation failed", "h2", "api"),
        ("generation failed", None, None),
        ("anomaly", "h2", "web"),
        ("anomaly", "h3", "web"),
    ]
    reasons = [r["reason"] for r in rows if r["problem"] == "anomaly"]
    assert reasons == [
        "deactivated a build never activated on this host",
        "activated a build never distributed to this host",
    ]


def test_metrics(fleet: Fleet) -> None:
    rows = {(r["env"], r["service"]): r for r in metrics(fleet.views)}
    api = rows[("production", "api")]
    assert api["deployments"] == 4  # generations 1, 2, 3 (on h1) and 4
    assert api["change_failure_rate"] == 0.25  # generation 3 of 4
    # Generation 3 failed at its generation_failed; generation 4 restored it.
    assert api["time_to_restore_hours"] > 0
    assert api["lead_time_hours"] > 0
    assert rows[("production", "web")]["change_failure_rate"] == 0.0


def test_env_must_be_named_when_there_are_several(fleet: Fleet) -> None:
    staging = Story(env="staging")
    staging.plan(1, {})
    staging.record(fleet.views.ledger)
    fleet.views.catch_up()
    with pytest.raises(InvalidInput, match=r"several environments \(production, staging\)"):
        queries.generation(fleet.views, 1)
    assert queries.generation(fleet.views, 1, env="staging")["placements"] == 0


def test_counts_in_the_database_agree_with_the_rows(fleet: Fleet) -> None:
    options: dict[str, Any]
    for options in (
        {},
        {"env": "production"},
        {"at": minute(fleet.during_gen3)},
        {"at": minute(fleet.rollback_at + 1), "known_at": minute(fleet.rollback_at + 1)},
        {"version_range": parse_range(">=1.0.1,<1.0.2"), "at": minute(fleet.during_gen1)},
        {"version_range": parse_range(">=9.9")},
    ):
        rows = queries.where(fleet.views, "openssl", **options)
        counts = queries.where_counts(fleet.views, "openssl", **options)
        assert counts == queries.where_summary(rows), options
    assert queries.where_counts(fleet.views, "openssl")[0]["services"] == ["api"]
    with pytest.raises(UnknownName, match=r"ever held openssl 9\.9 "):
        queries.where_counts(fleet.views, "openssl", version="9.9")  # never held: an error


def test_a_placement_listed_twice_counts_once(ledger: Ledger) -> None:
    s = Story()
    first, second = build_id("api", "1.0"), build_id("api", "2.0")
    s.add(
        "generation_planned",
        number=1,
        manifest=[
            {"host": "h1", "service": "api", "build_id": first},
            {"host": "h1", "service": "api", "build_id": second},
            {"host": "h2", "service": "api", "build_id": first},
        ],
    )
    s.record(ledger)
    views = Views(ledger)
    views.catch_up()
    detail = queries.generation(views, 1)
    assert detail["placements"] == 2
    assert [(e["host"], e["build_id"]) for e in detail["manifest"]] == [
        ("h1", first),
        ("h2", first),
    ]


def test_one_placement_holding_a_package_in_two_ecosystems_is_in_order(ledger: Ledger) -> None:
    """A closure with Nix's pygments and PyPI's Pygments: both answers of the placement
    come in ecosystem order (nix before pypi), as the database orders its pages, though
    as tuples "Pygments" sorts before "pygments"."""
    s = Story()
    api = s.build(
        "api", "1.0",
        {"name": "pygments", "version": "2.17.2",
         "store_path": f"/nix/store/{'p' * 32}-pygments-2.17.2"},
        {"name": "Pygments", "version": "2.15.1", "purl": "pkg:pypi/pygments@2.15.1"},
    )  # fmt: skip
    s.activate("h1", "api", api, 1)
    s.activate("h2", "api", api, 1)
    s.record(ledger)
    views = Views(ledger)
    views.catch_up()
    rows = queries.where(views, "pygments")
    assert [(f.host, f.ecosystem, f.name, f.version) for f in rows] == [
        ("h1", "nix", "pygments", "2.17.2"),
        ("h1", "pypi", "Pygments", "2.15.1"),
        ("h2", "nix", "pygments", "2.17.2"),
        ("h2", "pypi", "Pygments", "2.15.1"),
    ]
    page, total = queries.where_page(views, "pygments", limit=100)
    assert (page, total) == (rows, 4)


def test_where_page_is_where_cut_in_pages(fleet: Fleet) -> None:
    """The HTTP API's pages come from the database; put together they are ``where``."""
    asks: list[dict[str, Any]] = [
        {},
        {"at": minute(fleet.during_gen3), "env": "production"},
        {"at": minute(fleet.rollback_at + 1), "known_at": minute(fleet.rollback_at + 1)},
        {"version_range": parse_range(">=1.0.1,<1.0.2"), "at": minute(fleet.during_gen1)},
        {"version": "3.0.13"},
    ]
    for ask in asks:
        whole = queries.where(fleet.views, "openssl", **ask)
        assert whole, ask
        for size in (1, 2, 3, 100):
            pages, offset = [], 0
            while True:
                found, total = queries.where_page(
                    fleet.views, "openssl", limit=size, offset=offset, **ask
                )
                assert total == len(whole)
                pages += found
                offset += size
                if offset >= total:
                    break
            assert pages == whole, (ask, size)
    with pytest.raises(UnknownName):
        queries.where_page(fleet.views, "libressl", limit=10)
