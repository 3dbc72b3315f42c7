"""The demo fleet: deterministic, realistic, and consistent enough to be queried.

Auditors and operators will run real queries against this history, so beyond "it yields
valid events" these tests replay each environment and check that the story holds
together: generation numbers, rollbacks, drains of the build that was really active,
host reports that match what was activated.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from itertools import islice

import pytest

from ledger.demo import (
    MAX_HOSTS,
    NIX_BASE32,
    demo_fleet,
    kind_counts,
    production_hosts,
    recorded_demo_fleet,
    service_names,
    staging_hosts,
)
from ledger.events import (
    ActivationCompleted,
    ActivationFailed,
    BuildFailed,
    BuildRecorded,
    Deactivated,
    DistributionCompleted,
    DistributionFailed,
    DrainCompleted,
    DrainStarted,
    DrainTimedOut,
    Envelope,
    GenerationCompleted,
    GenerationFailed,
    GenerationPlanned,
    HealthReported,
    HostReported,
    ManifestEntry,
    parse_event,
)

ENVS = ("staging", "production")
NIX_HASH = re.compile(f"^[{NIX_BASE32}]{{32}}$")
STORE_PATH = re.compile(f"^/nix/store/[{NIX_BASE32}]{{32}}-(.+)$")
GIT_SHA = re.compile(r"^[0-9a-f]{40}$")


@pytest.fixture(scope="module")
def default_fleet() -> list[Envelope]:
    return list(demo_fleet())


@pytest.fixture(scope="module")
def small_fleet() -> list[Envelope]:
    return list(demo_fleet(hosts=5, services=3))


@pytest.fixture(scope="module")
def seven() -> list[Envelope]:
    """A fleet small enough to generate twice and round-trip whole."""
    return list(demo_fleet(hosts=12, services=6, seed=7))


def of_env(events: Sequence[Envelope], env: str) -> list[Envelope]:
    return [e for e in events if e.env == env]


# --- determinism --------------------------------------------------------------------------


def test_same_arguments_give_byte_identical_events(seven: list[Envelope]) -> None:
    again = [e.model_dump_json() for e in demo_fleet(hosts=12, services=6, seed=7)]
    assert [e.model_dump_json() for e in seven] == again


def test_another_seed_gives_another_history(seven: list[Envelope]) -> None:
    other = list(demo_fleet(hosts=12, services=6, seed=8))
    assert [e.model_dump_json() for e in seven] != [e.model_dump_json() for e in other]
    assert not {e.event_id for e in seven} & {e.event_id for e in other}


def test_default_size_is_realistic(default_fleet: list[Envelope]) -> None:
    assert 15_000 <= len(default_fleet) <= 40_000
    counts = kind_counts(default_fleet)
    assert set(counts) == {
        "activation_completed", "activation_failed", "build_failed", "build_recorded",
        "deactivated", "distribution_completed", "distribution_failed", "drain_completed",
        "drain_started", "drain_timed_out", "generation_completed", "generation_failed",
        "generation_planned", "health_reported", "host_reported",
    }  # fmt: skip
    assert sum(counts.values()) == len(default_fleet)


def test_events_are_produced_lazily() -> None:
    first = list(islice(demo_fleet(hosts=MAX_HOSTS, services=30), 5))
    assert len(first) == 5


@pytest.mark.parametrize(("hosts", "services"), [(0, 3), (MAX_HOSTS + 1, 3), (5, 0)])
def test_arguments_out_of_range_are_refused(hosts: int, services: int) -> None:
    with pytest.raises(ValueError, match="must be between"):
        next(demo_fleet(hosts=hosts, services=services))


# --- envelopes and ordering ------------------------------------------------------------


@pytest.mark.parametrize("fleet", ["default_fleet", "small_fleet"])
def test_time_never_goes_backwards(fleet: str, request: pytest.FixtureRequest) -> None:
    events: list[Envelope] = request.getfixturevalue(fleet)
    times = [e.occurred_at for e in events]
    assert times == sorted(times)
    assert times[0].isoformat().startswith("2026-01-05T")


def test_envelopes_are_left_for_the_ledger_to_complete(default_fleet: list[Envelope]) -> None:
    assert {e.env for e in default_fleet} == set(ENVS)
    assert all(e.recorded_at is None and e.source is None for e in default_fleet)
    assert len({e.event_id for e in default_fleet}) == len(default_fleet)
    actors = {e.actor for e in default_fleet}
    assert {"ci@buildkite", "deploy-bot", "agent@web-001"} <= actors
    for event in default_fleet:
        if isinstance(event, BuildRecorded | BuildFailed):
            assert event.actor == "ci@buildkite"
        if isinstance(event, HostReported):
            assert event.actor == f"agent@{event.host}"


def test_every_event_round_trips(seven: list[Envelope]) -> None:
    for event in seven:
        assert parse_event(event.model_dump_json()) == event


def test_every_kind_round_trips_at_full_size(default_fleet: list[Envelope]) -> None:
    seen: dict[str, int] = defaultdict(int)
    for event in default_fleet:
        kind = str(getattr(event, "kind", ""))
        if seen[kind] < 25:
            seen[kind] += 1
            assert parse_event(event.model_dump_json()) == event
    assert len(seen) == 15


# --- fleet shape ---------------------------------------------------------------------------


def test_hosts_and_roles() -> None:
    assert [h for h, _ in staging_hosts(300)][:2] == ["stg-001", "stg-002"]
    assert len(staging_hosts(300)) == 30
    assert len(staging_hosts(5)) == 2
    hosts = production_hosts(300)
    assert len(hosts) == 300
    assert {role for _, role in hosts} == {"web", "app", "worker", "db", "cache"}
    assert {"web-001", "db-003", "cache-012"} <= {h for h, _ in hosts}
    assert len(production_hosts(1)) == 1


def test_service_names() -> None:
    assert service_names(3) == ["api", "auth", "billing"]
    names = service_names(45)
    assert len(set(names)) == 45
    assert {"search", "frontend", "worker-email"} <= set(names)
    assert names[-1] == "service-045"


@pytest.mark.parametrize(("fleet", "hosts", "services"), [
    ("default_fleet", 300, 30), ("small_fleet", 5, 3),
])  # fmt: skip
def test_every_host_and_service_takes_part(
    fleet: str, hosts: int, services: int, request: pytest.FixtureRequest
) -> None:
    events: list[Envelope] = request.getfixturevalue(fleet)
    names = set(service_names(services))
    for env in ENVS:
        planned = [e for e in of_env(events, env) if isinstance(e, GenerationPlanned)]
        manifest = planned[0].manifest
        expected_hosts = production_hosts(hosts) if env == "production" else staging_hosts(hosts)
        assert {m.host for m in manifest} == {h for h, _ in expected_hosts}
        assert {m.service for m in manifest} == names
        per_host: dict[str, int] = defaultdict(int)
        for entry in manifest:
            per_host[entry.host] += 1
        assert min(per_host.values()) >= min(3, services)
        built = {e.service for e in of_env(events, env) if isinstance(e, BuildRecorded)}
        assert built == names


def test_dependencies_form_a_dag(default_fleet: list[Envelope]) -> None:
    first = next(e for e in default_fleet if isinstance(e, GenerationPlanned))
    order = {name: i for i, name in enumerate(service_names(30))}
    deps = {m.service: m.depends_on for m in first.manifest}
    assert any(deps.values())
    for service, needs in deps.items():
        assert len(needs) <= 3
        assert all(order[d] < order[service] for d in needs)


# --- builds and closures ------------------------------------------------------------------


def test_builds_look_like_nix_builds(default_fleet: list[Envelope]) -> None:
    builds = [e for e in default_fleet if isinstance(e, BuildRecorded)]
    store: dict[tuple[str, str], tuple[str | None, str]] = {}
    versions: dict[str, set[str]] = defaultdict(set)
    for build in builds:
        assert NIX_HASH.match(build.build_id)
        assert build.artifact == f"/nix/store/{build.build_id}-{build.service}-{build.version}"
        assert re.match(r"^\d+\.\d+\.\d+$", build.version)
        assert GIT_SHA.match(build.source_revision)
        assert 50 <= len(build.closure) <= 300
        names = [c.name for c in build.closure]
        assert len(set(names)) == len(names)
        assert {"glibc", "openssl", "zlib"} <= set(names)
        for c in build.closure:
            assert c.store_path is not None
            assert c.hash is not None
            match = STORE_PATH.match(c.store_path)
            assert match is not None
            assert match.group(1) == f"{c.name}-{c.version}"
            assert re.match(r"^sha256:[0-9a-f]{64}$", c.hash)
            # A real Nix store shares a path between every closure that holds it.
            assert store.setdefault((c.name, c.version), (c.store_path, c.hash)) == (
                c.store_path,
                c.hash,
            )
            versions[c.name].add(c.version)
    assert len({b.build_id for b in builds}) == len(builds)
    assert len(versions["openssl"]) >= 3
    assert versions["openssl"] <= {"1.0.1p", "1.0.2d", "1.1.1w", "3.0.13"}
    assert versions["zlib"] == {"1.2.13", "1.3.1"}
    assert versions["glibc"] == {"2.37-8", "2.38-44"}
    assert len(versions) > 300  # a shared pool, not one package list per build


def test_some_builds_fail(default_fleet: list[Envelope]) -> None:
    for env in ENVS:
        failed = [e for e in of_env(default_fleet, env) if isinstance(e, BuildFailed)]
        assert failed
        assert all(f.reason and GIT_SHA.match(f.source_revision) for f in failed)


# --- generations, rollouts and rollbacks ----------------------------------------------------


def check_history(events: Sequence[Envelope], env: str) -> dict[str, int]:
    """Replay one environment and check that its story holds together.

    Returns a few counts for the caller to assert on.
    """
    active: dict[tuple[str, str], str] = {}
    manifests: dict[int, tuple[ManifestEntry, ...]] = {}
    outcome: dict[int, str] = {}
    builds: dict[str, BuildRecorded] = {}
    numbers: list[int] = []
    current: GenerationPlanned | None = None
    distributed: set[tuple[str, str, str]] = set()
    pending_copy: set[tuple[str, str, str]] = set()
    counts: dict[str, int] = defaultdict(int)
    last_generation_event = 0
    drifted: list[int] = []  # reports of hand-made changes
    for index, event in enumerate(of_env(events, env)):
        if isinstance(event, GenerationPlanned | GenerationCompleted | GenerationFailed):
            last_generation_event = index
        if isinstance(event, BuildRecorded):
            builds[event.build_id] = event
        elif isinstance(event, GenerationPlanned):
            assert current is None, "a generation was planned before the last one ended"
            assert event.number is not None
            numbers.append(event.number)
            assert event.number == len(numbers)
            assert event.parent == (event.number - 1 if event.number > 1 else None)
            assert GIT_SHA.match(event.source_revision)
            for entry in event.manifest:
                build = builds[entry.build_id]  # built before it was planned
                assert (build.service, build.artifact) == (entry.service, entry.artifact)
            if event.reason == "rollback":
                counts["rollbacks"] += 1
                assert event.target is not None
                assert outcome[event.number - 1] == "failed"
                good = [n for n, o in outcome.items() if o == "completed"]
                assert event.target == max(good)
                assert event.manifest == manifests[event.target]
            else:
                assert event.reason == "deploy"
                assert event.target is None
            manifests[event.number] = event.manifest
            current = event
        elif isinstance(event, DistributionFailed):
            pending_copy.add((event.host, event.service, event.build_id))
            counts["copy_failures"] += 1
        elif isinstance(event, DistributionCompleted):
            assert current is not None
            pending_copy.discard((event.host, event.service, event.build_id))
            distributed.add((event.host, event.service, event.build_id))
        elif isinstance(event, DrainStarted | DrainCompleted | DrainTimedOut | Deactivated):
            assert active.get((event.host, event.service)) == event.build_id
            if isinstance(event, Deactivated):
                assert current is not None
                assert event.generation == current.number
                del active[(event.host, event.service)]
        elif isinstance(event, ActivationCompleted | ActivationFailed):
            assert current is not None
            assert event.generation == current.number
            assert (event.host, event.service) not in active, "activated over a running build"
            assert (event.host, event.service, event.build_id) in distributed
            if isinstance(event, ActivationCompleted):
                active[(event.host, event.service)] = event.build_id
            else:
                assert event.reason
                assert event.log_excerpt
                assert event.exit_code
                counts["activation_failures"] += 1
        elif isinstance(event, GenerationCompleted | GenerationFailed):
            assert current is not None
            assert event.number == current.number
            completed = isinstance(event, GenerationCompleted)
            outcome[event.number] = "completed" if completed else "failed"
            if isinstance(event, GenerationCompleted):
                desired = {(m.host, m.service): m.build_id for m in current.manifest}
                assert active == desired, "a completed generation left the fleet elsewhere"
            else:
                counts["generation_failures"] += 1
            current = None
        elif isinstance(event, HostReported):
            assert all(m.host == event.host for m in event.manifest)
            reported = {(m.host, m.service): m.build_id for m in event.manifest}
            if reported != {k: v for k, v in active.items() if k[0] == event.host}:
                drifted.append(index)
        elif isinstance(event, HealthReported):
            assert event.actor == f"agent@{event.host}"
            assert event.ttl_s is not None
            counts[f"health_{event.state}"] += 1
    assert current is None
    assert not pending_copy, "a failed copy was never retried"
    assert numbers == list(range(1, len(numbers) + 1))
    # Hand-made changes show up only in the agents' sweep after the last rollout.
    assert all(index > last_generation_event for index in drifted)
    counts["generations"] = len(numbers)
    counts["drifted_reports"] = len(drifted)
    return counts


@pytest.mark.parametrize("env", ENVS)
def test_default_history_holds_together(env: str, default_fleet: list[Envelope]) -> None:
    counts = check_history(default_fleet, env)
    assert counts["generations"] >= 20
    assert counts["activation_failures"] >= 1
    assert counts["generation_failures"] >= 1
    assert counts["rollbacks"] == counts["generation_failures"]
    assert counts["copy_failures"] >= 1
    assert counts["health_ok"] > counts["health_warning"] > 0
    assert counts["health_critical"] > 0
    assert counts["drifted_reports"] == (2 if env == "production" else 0)


@pytest.mark.parametrize("env", ENVS)
def test_small_history_holds_together(env: str, small_fleet: list[Envelope]) -> None:
    counts = check_history(small_fleet, env)
    assert counts["generations"] >= 20
    assert counts["rollbacks"] >= 1


def test_other_seeds_hold_together() -> None:
    for seed in (1, 2):
        events = list(demo_fleet(hosts=20, services=45, seed=seed))
        for env in ENVS:
            assert check_history(events, env)["rollbacks"] >= 1


def test_later_generations_change_a_few_services(default_fleet: list[Envelope]) -> None:
    for env in ENVS:
        planned = [e for e in of_env(default_fleet, env) if isinstance(e, GenerationPlanned)]
        deploys = [p for p in planned[1:] if p.reason == "deploy"]
        previous = {p.number: p for p in planned}
        changed_counts = []
        for plan in deploys:
            assert plan.parent is not None
            before = {(m.host, m.service): m.build_id for m in previous[plan.parent].manifest}
            after = {(m.host, m.service): m.build_id for m in plan.manifest}
            assert before.keys() == after.keys()
            changed = {key[1] for key, build_id in after.items() if before[key] != build_id}
            changed_counts.append(len(changed))
        assert min(changed_counts) >= 1
        assert max(changed_counts) < 30  # not a redeploy of everything
        assert any(p.tags for p in deploys)


@pytest.mark.parametrize("env", ENVS)
def test_the_story_ends_with_every_agent_reporting(env: str, default_fleet: list[Envelope]) -> None:
    events = of_env(default_fleet, env)
    first = next(e for e in events if isinstance(e, GenerationPlanned))
    hosts = {m.host for m in first.manifest}
    sweep = events[-len(hosts) :]
    assert all(isinstance(e, HostReported) for e in sweep)
    assert {e.host for e in sweep if isinstance(e, HostReported)} == hosts


def test_the_recorded_demo_arrives_in_recorded_order_with_a_few_late_facts() -> None:
    events = list(recorded_demo_fleet())
    assert sorted(e.event_id for e in events) == sorted(e.event_id for e in demo_fleet())
    recorded = [e.recorded_at for e in events if e.recorded_at is not None]
    assert len(recorded) == len(events)
    assert recorded == sorted(recorded)  # stored in the order the ledger received them
    delays = [(r - e.occurred_at).total_seconds() for e, r in zip(events, recorded, strict=True)]
    assert min(delays) >= 0.05
    late = [e for e, delay in zip(events, delays, strict=True) if delay > 60]
    # Three offline production agents: their spooled facts arrive hours late, after
    # facts that happened later (so the views must put them in their place in time).
    assert {e.env for e in late} == {"production"}
    assert len({getattr(e, "host", None) for e in late}) == 3
    assert any(isinstance(e, ActivationCompleted) for e in late)
    first_late = events.index(late[0])
    assert any(e.occurred_at > late[0].occurred_at for e in events[:first_late])
    # Each source (a host, or an env's coordinator) sends its facts in the order they
    # happened, the offline agents' spooled facts included.
    by_source: dict[tuple[str, str | None], list[Envelope]] = defaultdict(list)
    for event in events:
        by_source[(event.env, getattr(event, "host", None))].append(event)
    for sent in by_source.values():
        assert [e.occurred_at for e in sent] == sorted(e.occurred_at for e in sent)
    assert [e.model_dump_json() for e in recorded_demo_fleet()] == [
        e.model_dump_json() for e in events
    ]  # deterministic
