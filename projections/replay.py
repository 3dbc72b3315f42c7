"""Replay: every view rebuilt as of a past point of the stream, in a scratch store.

The live views are neither read nor written: the stream is replayed from the start into
views in a temporary SQLite file, which are queried like the live ones and deleted
afterwards. Two points can be replayed to:

- **a moment** (``as_recorded_at``): every event the ledger had recorded by then, that
  is whose ``recorded_at`` is not later. The ledger sets ``recorded_at`` when it stores
  an event, so normally it grows with the position; but a copied or restored ledger keeps
  the original ``recorded_at`` of each event (``docs/events.md``), and writers' clocks
  may disagree. So the whole stream is read and each event is kept or left out by its
  own ``recorded_at``, rather than stopping at the first later one.
- **a generation** (``before_next_generation``): the stream up to just before the
  environment's next generation was planned — the fleet as generation N left it, its
  rollout, failures and reports included; the whole stream when N is the latest.

Either way the replayed views answer for that point, health included: a health report
is stale or not as judged at the replayed moment (``ReplayPoint.moment``): the moment
asked for, or when the next generation was planned (its ``occurred_at``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ledger.application import Ledger
from ledger.errors import InvalidInput
from ledger.store import locate
from projections.queries import choose_env
from projections.runner import Progress, Views


@dataclass(frozen=True)
class ReplayPoint:
    """Where a replay stops: no event past position ``until``, and with ``known_at``
    none recorded after it. ``moment`` is the time the replayed views describe (None:
    now); ``env`` and ``generation`` are set for a replay to a generation."""

    until: int
    known_at: datetime | None = None
    moment: datetime | None = None
    env: str | None = None
    generation: int | None = None


def as_recorded_at(ledger: Ledger, moment: datetime) -> ReplayPoint:
    """Every event the ledger had recorded at ``moment``."""
    head, _ = ledger.head()
    return ReplayPoint(until=head, known_at=moment, moment=moment)


def before_next_generation(ledger: Ledger, number: int, env: str | None = None) -> ReplayPoint:
    """The stream up to just before generation ``number + 1`` of ``env`` (or of the only
    environment there is) was planned, as of when it was planned; refuses a generation
    the ledger does not hold."""
    head, _ = ledger.head()
    planned: dict[str, dict[int, tuple[int, datetime]]] = {}
    for fact in ledger.facts(kinds=("generation_planned",)):
        event = fact.event
        occurred_at = datetime.fromisoformat(event["occurred_at"])
        planned.setdefault(event["env"], {})[event["number"]] = (fact.position, occurred_at)
    env = choose_env(sorted(planned), env)
    numbers = planned[env]
    if number not in numbers:
        raise InvalidInput(f"{env} has no generation {number} (it has 1 to {max(numbers)})")
    following = numbers.get(number + 1)
    if following is None:
        return ReplayPoint(until=head, env=env, generation=number)
    position, planned_at = following
    return ReplayPoint(until=position - 1, moment=planned_at, env=env, generation=number)


@contextmanager
def replayed(
    ledger: Ledger, point: ReplayPoint, progress: Progress | None = None
) -> Iterator[Views]:
    """Every view, replayed up to ``point`` into a scratch SQLite store that is deleted
    on exit. Works whatever the ledger's backend."""
    with tempfile.TemporaryDirectory(prefix="ledger-replay-") as folder:
        views = Views(ledger, locate(str(Path(folder) / "views.db")))
        try:
            views.catch_up(progress, until=point.until, known_at=point.known_at)
            yield views
        finally:
            views.recorder.datastore.close()
