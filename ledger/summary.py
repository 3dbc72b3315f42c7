"""A one-screen summary of what a ledger holds, read by scanning the stream.

This is what ``ledger demo`` prints; the projections will answer richer questions.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ledger.application import Ledger


@dataclass
class EnvSummary:
    hosts: set[str] = field(default_factory=set)
    services: set[str] = field(default_factory=set)
    generations: int = 0
    completed: int = 0
    failed: int = 0
    rollbacks: int = 0
    failed_activations: int = 0


@dataclass
class LedgerSummary:
    events: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    envs: dict[str, EnvSummary] = field(default_factory=dict)
    builds: int = 0

    @property
    def hosts(self) -> int:
        return len(set().union(*(e.hosts for e in self.envs.values())))

    @property
    def services(self) -> int:
        return len(set().union(*(e.services for e in self.envs.values())))


def summarise(ledger: Ledger) -> LedgerSummary:
    summary = LedgerSummary()
    for fact in ledger.facts():
        event = fact.event
        kind = event["kind"]
        summary.events += 1
        summary.kinds[kind] += 1
        env = summary.envs.setdefault(event["env"], EnvSummary())
        if "host" in event:
            env.hosts.add(event["host"])
        if event.get("service"):
            env.services.add(event["service"])
        if kind == "build_recorded":
            summary.builds += 1
        elif kind == "generation_planned":
            env.generations += 1
            env.rollbacks += event["reason"] == "rollback"
            for entry in event["manifest"]:
                env.hosts.add(entry["host"])
                env.services.add(entry["service"])
        elif kind == "generation_completed":
            env.completed += 1
        elif kind == "generation_failed":
            env.failed += 1
        elif kind == "activation_failed":
            env.failed_activations += 1
    return summary
