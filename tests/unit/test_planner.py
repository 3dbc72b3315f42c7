"""The deployment planner: only what differs, in an order that keeps work in flight safe."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.events import ManifestEntry
from ledger.planner import (
    Step,
    dependency_levels,
    desired_from,
    minimal_steps,
    plan_steps,
)

BUILD = {name: name.ljust(32, "0") for name in ("a1", "a2", "d1", "d2", "w1")}


def entry(host: str, service: str, build: str, *depends_on: str) -> ManifestEntry:
    return ManifestEntry(
        host=host,
        service=service,
        build_id=BUILD[build],
        artifact=f"/nix/store/{BUILD[build]}-{service}",
        depends_on=depends_on,
    )


def active_(host: str, service: str, build_id: str) -> tuple[tuple[str, str], str]:
    return (host, service), build_id


def plan(
    active: list[tuple[tuple[str, str], str]], desired: list[ManifestEntry], *args: Any, **kw: Any
) -> list[Step]:
    return plan_steps(dict(active), desired_from(desired), *args, **kw)


def steps_of(steps: list[Step]) -> list[tuple[int, str, str, str, str]]:
    return [(s.wave, s.kind, s.host, s.service, s.build_id[:2]) for s in steps]


def test_nothing_to_do_when_every_host_runs_the_desired_build() -> None:
    desired = [entry("h1", "api", "a1"), entry("h2", "api", "a1")]
    active = [active_("h1", "api", BUILD["a1"]), active_("h2", "api", BUILD["a1"])]
    assert plan(active, desired) == []


def test_a_new_placement_is_distributed_then_activated_unless_the_host_holds_it() -> None:
    desired = [entry("h1", "api", "a1"), entry("h2", "api", "a1")]
    steps = plan([], desired, held=[("h2", BUILD["a1"])])
    assert steps_of(steps) == [
        (1, "distribute", "h1", "api", "a1"),
        (2, "activate", "h1", "api", "a1"),
        (2, "activate", "h2", "api", "a1"),
    ]
    assert steps[0].artifact == f"/nix/store/{BUILD['a1']}-api"


def test_a_replaced_build_is_drained_and_deactivated_after_the_new_one_is_active() -> None:
    steps = plan(
        [active_("h1", "api", BUILD["a1"])],
        [entry("h1", "api", "a2")],
        held=[("h1", BUILD["a2"])],
        artifacts={BUILD["a1"]: "/nix/store/old"},
    )
    assert steps_of(steps) == [
        (1, "activate", "h1", "api", "a2"),
        (2, "drain", "h1", "api", "a1"),
        (3, "deactivate", "h1", "api", "a1"),
    ]
    assert steps[0].replaces == BUILD["a1"]
    assert steps[1].artifact == "/nix/store/old"


def test_a_service_no_longer_wanted_is_drained_and_deactivated() -> None:
    active = [active_("h1", "api", BUILD["a1"]), active_("h1", "worker", BUILD["w1"])]
    assert steps_of(plan(active, [entry("h1", "api", "a1")])) == [
        (1, "drain", "h1", "worker", "w1"),
        (2, "deactivate", "h1", "worker", "w1"),
    ]


def test_dependencies_are_activated_first_and_retired_last() -> None:
    active = [active_("h1", "api", BUILD["a1"]), active_("h1", "db", BUILD["d1"])]
    desired = [entry("h1", "api", "a2", "db"), entry("h1", "db", "d2")]
    held = [("h1", BUILD["a2"]), ("h1", BUILD["d2"])]
    assert steps_of(plan(active, desired, held)) == [
        (1, "activate", "h1", "db", "d2"),
        (2, "activate", "h1", "api", "a2"),
        (3, "drain", "h1", "api", "a1"),
        (4, "deactivate", "h1", "api", "a1"),
        (5, "drain", "h1", "db", "d1"),
        (6, "deactivate", "h1", "db", "d1"),
    ]


def test_dependencies_of_dropped_services_come_from_the_graph_given() -> None:
    active = [active_("h1", "api", BUILD["a1"]), active_("h1", "db", BUILD["d1"])]
    steps = plan(active, [], graph=[("api", ("db",)), ("db", ())])
    assert [s.service for s in steps if s.kind == "drain"] == ["api", "db"]


def test_a_drain_already_completed_is_not_repeated() -> None:
    active = [active_("h1", "api", BUILD["a1"])]
    steps = plan(active, [], drained=[("h1", "api", BUILD["a1"])])
    assert steps_of(steps) == [(1, "deactivate", "h1", "api", "a1")]


def test_a_dependency_cycle_is_refused_naming_it() -> None:
    desired = [entry("h1", "api", "a1", "db"), entry("h1", "db", "d1", "api")]
    with pytest.raises(InvalidInput, match="depend on each other: api → db → api"):
        plan([], desired)


def test_levels_of_a_long_chain() -> None:
    chain = [entry("h1", f"s{i}", "a1", f"s{i + 1}") for i in range(3000)]
    levels = dependency_levels((e.service, e.depends_on) for e in chain)
    assert levels["s3000"] == 0
    assert levels["s0"] == 3000


# --- property: the plan reaches the desired state with the fewest steps, safely -------

HOSTS, SERVICES, BUILDS = ["h1", "h2", "h3"], ["api", "db", "web", "cache"], ["a1", "a2", "d1"]
DEPENDS = {"api": ("db",), "web": ("api", "cache"), "db": (), "cache": ()}
placements = st.dictionaries(
    st.tuples(st.sampled_from(HOSTS), st.sampled_from(SERVICES)), st.sampled_from(BUILDS)
)


@settings(max_examples=300, deadline=None)
@given(
    now=placements,
    want=placements,
    held=st.sets(st.tuples(st.sampled_from(HOSTS), st.sampled_from(BUILDS))),
)
def test_the_plan_reaches_the_desired_state_in_the_fewest_steps(
    now: dict[tuple[str, str], str],
    want: dict[tuple[str, str], str],
    held: set[tuple[str, str]],
) -> None:
    active = [active_(h, s, BUILD[b]) for (h, s), b in now.items()]
    desired = [entry(h, s, b, *DEPENDS[s]) for (h, s), b in want.items()]
    on_host = {(h, BUILD[b]) for h, b in held}
    steps = plan(active, desired, on_host, graph=DEPENDS.items())

    running = {key: BUILD[b] for key, b in now.items()}
    wanted = {key: BUILD[b] for key, b in want.items()}
    assert len(steps) == minimal_steps(running, wanted, on_host)

    # Replay the plan wave by wave, checking each step is safe when it runs.
    state, holds = dict(running), set(on_host)
    activated_in: dict[tuple[str, str], int] = {}
    retired_in: dict[tuple[str, str], int] = {}
    drained: set[tuple[str, str, str]] = set()
    waves = [s.wave for s in steps]
    assert waves == sorted(waves)
    for step in steps:
        key = (step.host, step.service)
        if step.kind == "distribute":
            holds.add((step.host, step.build_id))
        elif step.kind == "activate":
            assert (step.host, step.build_id) in holds, "activated before it was distributed"
            state[key] = step.build_id
            activated_in[key] = step.wave
        elif step.kind == "drain":
            drained.add((step.host, step.service, step.build_id))
        else:
            assert (step.host, step.service, step.build_id) in drained, "deactivated undrained"
            assert all(s.wave < step.wave for s in steps if s.kind == "activate")
            if state.get(key) == step.build_id:
                del state[key]
            retired_in[key] = step.wave
    assert state == wanted
    for (host, service), wave in activated_in.items():
        for dependency in DEPENDS[service]:
            if (host, dependency) in activated_in:
                assert activated_in[(host, dependency)] < wave, "dependency activated later"
    for (host, service), wave in retired_in.items():
        for dependency in DEPENDS[service]:
            if (host, dependency) in retired_in:
                assert retired_in[(host, dependency)] > wave, "dependency retired first"
