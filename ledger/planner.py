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
from typing import Literal, NamedTuple, Protocol

from ledger.errors import InvalidInput

StepKind = Literal["distribute", "activate", "drain", "deactivate"]
STEP_KINDS: tuple[StepKind, ...] = ("distribute", "activate", "drain", "deactivate")


class Wanted(Protocol):
    """A desired placement, as a :class:`~ledger.events.ManifestEntry` has it."""

    @property
    def host(self) -> str: ...
    @property
    def service(self) -> str: ...
    @property
    def build_id(self) -> str: ...
    @property
    def artifact(self) -> str | None: ...
    @property
    def depends_on(self) -> tuple[str, ...]: ...


Target = tuple[str, str | None, Sequence[str]]
"""What a placement should run: (build_id, artifact, depends_on). Plain tuples, since a
large fleet's manifest has tens of thousands of them."""

Desired = Mapping[tuple[str, str], Target]
"""The desired manifest: (host, service) to its target."""

Running = Mapping[tuple[str, str], str]
"""What is active: (host, service) to the build id running there."""


def desired_from(entries: Iterable[Wanted]) -> dict[tuple[str, str], Target]:
    """A manifest's entries by host and service, the first one of each."""
    desired: dict[tuple[str, str], Target] = {}
    for e in entries:
        desired.setdefault((e.host, e.service), (e.build_id, e.artifact, e.depends_on))
    return desired


class Step(NamedTuple):
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


Dependencies = Iterable[tuple[str, Sequence[str]]]
"""(service, the services it depends on) pairs; repeats are fine."""


def dependency_levels(dependencies: Dependencies) -> dict[str, int]:
    """Each service's level: 0 when it depends on nothing, else one more than the highest
    level of what it depends on. Refuses a dependency cycle, naming it."""
    needs: dict[str, set[str]] = {}
    for service, depends_on in dependencies:
        needs.setdefault(service, set()).update(depends_on)
    for dependency in {d for wanted in needs.values() for d in wanted}:
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
    active: Running,
    desired: Desired,
    held: Iterable[tuple[str, str]] = (),
    *,
    graph: Dependencies = (),
    drained: Iterable[tuple[str, str, str]] = (),
    leftover: Iterable[tuple[str, str, str]] = (),
    artifacts: Mapping[str, str] | None = None,
) -> list[Step]:
    """The steps from ``active`` to ``desired``, in waves.

    ``held`` lists the (host, build_id) pairs whose closure the host already holds;
    ``graph`` adds dependencies that also count (those of the generation now active,
    for services the desired manifest drops). For a resumed deployment, ``leftover``
    lists the (host, service, build_id) its activations replaced but that were not
    deactivated yet, and ``drained`` those of them, or of the active builds, already
    drained. ``artifacts`` gives builds' artifacts: of the active and leftover ones,
    and of desired ones the manifest names none for.
    """
    known = artifacts or {}
    on_host = held if isinstance(held, set | frozenset) else set(held)
    done_draining = set(drained)
    levels = dependency_levels([*((service, t[2]) for (_, service), t in desired.items()), *graph])
    top = max(levels.values(), default=0)
    # Steps by wave, as (host, service, kind, build, artifact, replaces): sorted as they
    # are, since a wave never holds two steps for one build of a service on a host.
    waves: dict[int, list[tuple[str, str, StepKind, str, str | None, str | None]]] = {}

    def retire(host: str, service: str, old: str) -> None:
        # Dependents go first: the highest level drains in the first retiring wave.
        first = 2 + top + 2 * (top - levels.get(service, 0))
        artifact = known.get(old)
        if (host, service, old) not in done_draining:
            waves.setdefault(first, []).append((host, service, "drain", old, artifact, None))
        waves.setdefault(first + 1, []).append((host, service, "deactivate", old, artifact, None))

    for (host, service), (new, given, _) in desired.items():
        old = active.get((host, service))
        if old == new:
            continue
        artifact = given or known.get(new)
        if (host, new) not in on_host:
            waves.setdefault(0, []).append((host, service, "distribute", new, artifact, None))
        wave = 1 + levels.get(service, 0)
        waves.setdefault(wave, []).append((host, service, "activate", new, artifact, old))
        if old is not None:
            retire(host, service, old)
    for (host, service), old in active.items():
        if (host, service) not in desired:
            retire(host, service, old)
    for host, service, old in leftover:
        retire(host, service, old)
    # Number the waves that have steps 1, 2, 3… (the gaps are levels nobody is at).
    steps: list[Step] = []
    for number, wave in enumerate(sorted(waves), 1):
        steps += [
            Step(number, kind, host, service, build, artifact, replaces)
            for host, service, kind, build, artifact, replaces in sorted(waves[wave])
        ]
    return steps


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
