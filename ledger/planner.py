"""The deployment planner: the steps from what is active to a desired manifest.

A deployment, a rollback and a resumed deployment are all the same computation: given
what is *actually* active on each host (the topology view, not the last desired
manifest, which may never have been reached), which builds each host already holds,
and a desired manifest, list the steps that take the fleet from one to the other —
and only those: a placement that already runs its desired build needs nothing.

For each host and service whose build changes:

* ``distribute`` the new build's closure, unless the host already holds it;
* ``activate`` the new build;
* ``drain`` then ``deactivate`` the build it replaces, or the one no longer wanted.

Steps come in waves, in the order Disnix uses (and for the reason Erlang releases
upgrade the way they do: in-flight work completes). First every distribution (nothing
changes on a host while closures are copied), then activations with the services that
others depend on first, then drains and deactivations with the dependent services first
and the ones they depend on last. Dependencies are between services, by name, as
manifest entries' ``depends_on`` state them; a cycle is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ledger.errors import InvalidInput
from ledger.events import ManifestEntry

StepKind = Literal["distribute", "activate", "drain", "deactivate"]
STEP_KINDS: tuple[StepKind, ...] = ("distribute", "activate", "drain", "deactivate")


@dataclass(frozen=True)
class Active:
    """A build of a service active on a host, as the topology view has it."""

    host: str
    service: str
    build_id: str
    artifact: str | None = None


@dataclass(frozen=True)
class Step:
    """One action on one host. ``wave`` orders them: a wave starts when the one before
    it is done; steps of one wave may run in parallel."""

    wave: int
    kind: StepKind
    host: str
    service: str
    build_id: str
    artifact: str | None
    replaces: str | None = None
    """For an activation: the build it takes over from, if any."""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.kind, self.host, self.service, self.build_id)


def dependency_levels(entries: Iterable[ManifestEntry]) -> dict[str, int]:
    """Each service's level: 0 when it depends on nothing, else one more than the highest
    level of what it depends on. Refuses a dependency cycle, naming it."""
    needs: dict[str, set[str]] = {}
    for entry in entries:
        needs.setdefault(entry.service, set()).update(entry.depends_on)
        for dependency in entry.depends_on:
            needs.setdefault(dependency, set())
    levels: dict[str, int] = {}
    for service in sorted(needs):
        if service in levels:
            continue
        # Depth-first, iteratively (a chain of thousands of services must not overflow).
        path: list[str] = []
        stack: list[tuple[str, list[str]]] = [(service, sorted(needs[service]))]
        on_path = {service}
        path.append(service)
        while stack:
            current, pending = stack[-1]
            while pending and pending[-1] in levels:
                pending.pop()
            if pending:
                nxt = pending.pop()
                if nxt in on_path:
                    cycle = [*path[path.index(nxt) :], nxt]
                    raise InvalidInput(f"the services depend on each other: {' → '.join(cycle)}")
                stack.append((nxt, sorted(needs[nxt])))
                on_path.add(nxt)
                path.append(nxt)
                continue
            levels[current] = 1 + max((levels[d] for d in needs[current]), default=-1)
            stack.pop()
            on_path.discard(current)
            path.pop()
    return levels


def plan_steps(
    active: Iterable[Active],
    desired: Sequence[ManifestEntry],
    held: Iterable[tuple[str, str]] = (),
    *,
    graph: Iterable[ManifestEntry] = (),
    drained: Iterable[tuple[str, str, str]] = (),
) -> list[Step]:
    """The steps from ``active`` to ``desired``, in waves.

    ``held`` lists the (host, build_id) pairs whose closure the host already holds;
    ``graph`` adds manifest entries whose ``depends_on`` also count (those of the
    generation now active, for services the desired manifest drops); ``drained`` lists
    (host, service, build_id) that a resumed deployment already drained.
    """
    wanted: dict[tuple[str, str], ManifestEntry] = {}
    for placement in desired:
        wanted.setdefault((placement.host, placement.service), placement)
    now: dict[tuple[str, str], Active] = {(a.host, a.service): a for a in active}
    on_host = set(held)
    done_draining = set(drained)
    levels = dependency_levels([*wanted.values(), *graph])
    top = max(levels.values(), default=0)

    distribute: list[Step] = []
    activate: list[Step] = []
    retire: list[Step] = []  # drains and deactivations
    for key in sorted(wanted.keys() | now.keys()):
        host, service = key
        entry, running = wanted.get(key), now.get(key)
        if entry is not None and running is not None and running.build_id == entry.build_id:
            continue
        level = levels.get(service, 0)
        if entry is not None:
            if (host, entry.build_id) not in on_host:
                distribute.append(
                    Step(0, "distribute", host, service, entry.build_id, entry.artifact)
                )
            activate.append(
                Step(
                    1 + level,
                    "activate",
                    host,
                    service,
                    entry.build_id,
                    entry.artifact,
                    running.build_id if running else None,
                )
            )
        if running is not None:
            # Dependents go first: the highest level drains in the first retiring wave.
            first = 2 + top + 2 * (top - level)
            if (host, service, running.build_id) not in done_draining:
                retire.append(
                    Step(first, "drain", host, service, running.build_id, running.artifact)
                )
            retire.append(
                Step(first + 1, "deactivate", host, service, running.build_id, running.artifact)
            )
    steps = distribute + activate + retire
    steps.sort(key=lambda s: (s.wave, s.host, s.service))
    return _renumber(steps)


def _renumber(steps: list[Step]) -> list[Step]:
    """Number the waves that have steps 1, 2, 3… (the gaps are levels nobody is at)."""
    numbers = {wave: index for index, wave in enumerate(sorted({s.wave for s in steps}), 1)}
    return [
        Step(numbers[s.wave], s.kind, s.host, s.service, s.build_id, s.artifact, s.replaces)
        for s in steps
    ]


def minimal_steps(
    active: Mapping[tuple[str, str], str],
    desired: Mapping[tuple[str, str], str],
    held: set[tuple[str, str]],
) -> int:
    """The fewest steps any plan needs — only what differs — counted independently of
    :func:`plan_steps`, to check it: per changed placement one activation plus a
    distribution when the host lacks the build, per replaced or dropped one a drain and
    a deactivation. (Benchmarks and tests compare the two.)"""
    count = 0
    for key in active.keys() | desired.keys():
        old, new = active.get(key), desired.get(key)
        if old == new:
            continue
        if new is not None:
            count += 1 + ((key[0], new) not in held)
        if old is not None:
            count += 2
    return count
