"""Gauges of each environment, from the views: what a fleet dashboard plots.

- ``hosts generation N``: hosts whose latest activation (among what is active on them
  now) was part of generation N — one gauge per generation that has hosts;
- ``hosts not on current generation``: hosts where what is active differs from the
  current (highest-numbered) generation's manifest — a service with another build,
  missing, or not wanted there;
- ``activations failed last hour``: failed activations that occurred in the hour
  before now (0 included, so the gauge comes back down);
- ``drift hosts``: hosts whose latest report differs from the current generation
  (``projections.drift``; unreported and stale hosts as attributes);
- ``seconds since deployment``: since the env's latest completed generation finished.

Gauges are computed, not tracked: each round says the state of the views at that
moment. Views embedded in a SQLite file are brought up to date first, in a thread of
their own (``ViewsCatchUp``).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from eventsourcing.persistence import PersistenceError

from ledger.application import Ledger
from ledger.store import StoreLocation
from projections.drift import current_generations, drift
from projections.generations import manifest_entries
from projections.runner import Views
from projections.store import Tx

log = logging.getLogger("ledger.collect")

HOUR_MICROS = 3_600 * 1_000_000


@dataclass(frozen=True)
class Gauge:
    env: str
    name: str
    metric: int | float
    state: str = "ok"
    description: str = ""
    attributes: dict[str, str] = field(default_factory=dict)


def gauges(views: Views, now: float) -> list[Gauge]:
    """Every gauge of every environment, as of ``now`` (epoch seconds)."""
    found: list[Gauge] = []
    with views.read() as tx:
        found += hosts_per_generation(tx)
        found += hosts_not_on_current(tx)
        found += failed_activations(tx, now)
        found += since_deployment(tx, now)
    found += drifted(views)
    return sorted(found, key=lambda g: (g.env, g.name))


def hosts_per_generation(tx: Tx) -> list[Gauge]:
    rows = tx.tuples(
        "SELECT env, host, MAX(generation) FROM placements "
        "WHERE end_position IS NULL AND retired_by IS NULL "
        "GROUP BY env, host"
    )
    counts = Counter((env, generation) for env, _, generation in rows)
    return [
        Gauge(
            env,
            f"hosts generation {generation}",
            count,
            description=f"{count} hosts last activated in generation {generation}",
            attributes={"generation": str(generation)},
        )
        for (env, generation), count in sorted(counts.items())
    ]


def hosts_not_on_current(tx: Tx) -> list[Gauge]:
    active: dict[str, dict[str, dict[str, str]]] = defaultdict(lambda: defaultdict(dict))
    for env, host, service, build_id in tx.tuples(
        "SELECT env, host, service, build_id FROM placements "
        "WHERE end_position IS NULL AND retired_by IS NULL"
    ):
        active[env][host][service] = build_id
    found = []
    for env, (number, _) in sorted(current_generations(tx).items()):
        desired: dict[str, dict[str, str]] = defaultdict(dict)
        for entry in manifest_entries(tx, env, number) or []:
            desired[entry["host"]][entry["service"]] = entry["build_id"]
        running = active.get(env, {})
        hosts = desired.keys() | running.keys()
        behind = sum(1 for host in hosts if desired.get(host, {}) != running.get(host, {}))
        found.append(
            Gauge(
                env,
                "hosts not on current generation",
                behind,
                state="ok" if behind == 0 else "warning",
                description=f"{behind} of {len(hosts)} hosts differ from generation {number}",
                attributes={"generation": str(number), "hosts": str(len(hosts))},
            )
        )
    return found


def failed_activations(tx: Tx, now: float) -> list[Gauge]:
    since = int(now * 1_000_000) - HOUR_MICROS
    counts = dict(
        tx.tuples(
            "SELECT env, COUNT(*) FROM failures WHERE kind = 'activation_failed' "
            "AND occurred_at >= ? GROUP BY env",
            (since,),
        )
    )
    envs = {env for (env,) in tx.tuples("SELECT DISTINCT env FROM generations")}
    return [
        Gauge(
            env,
            "activations failed last hour",
            int(counts.get(env, 0)),
            state="ok" if not counts.get(env) else "warning",
            description=f"{counts.get(env, 0)} activations failed in the last hour",
        )
        for env in sorted(envs | counts.keys())
    ]


def since_deployment(tx: Tx, now: float) -> list[Gauge]:
    rows = tx.tuples(
        "SELECT g.env, g.number, g.finished_at FROM generations g JOIN ("
        "SELECT env, MAX(finished_at) AS finished_at FROM generations "
        "WHERE status = 'completed' GROUP BY env) last "
        "ON last.env = g.env AND last.finished_at = g.finished_at "
        "WHERE g.status = 'completed'"
    )
    latest: dict[str, tuple[int, int]] = {}
    for env, number, finished_at in rows:
        latest[env] = max(latest.get(env, (0, 0)), (number, finished_at))
    return [
        Gauge(
            env,
            "seconds since deployment",
            max(0.0, now - finished_at / 1_000_000),
            description=f"generation {number} completed last",
            attributes={"generation": str(number)},
        )
        for env, (number, finished_at) in sorted(latest.items())
    ]


def drifted(views: Views) -> list[Gauge]:
    return [
        Gauge(
            row["env"],
            "drift hosts",
            row["drifted"],
            state="ok" if row["drifted"] == 0 else "warning",
            description=(
                f"{row['drifted']} hosts report something else than generation "
                f"{row['generation']}; {row['unreported']} never reported"
            ),
            attributes={
                "generation": str(row["generation"]),
                "unreported": str(row["unreported"]),
                "stale": str(row["stale"]),
                "reported": str(row["reported"]),
            },
        )
        for row in drift(views).envs
    ]


class ViewsCatchUp:
    """Brings embedded views up to date in a thread of its own.

    A catch-up of SQLite views takes the file's write lock; while the ledger's writers
    are busy it can take seconds (it starts over whenever a writer got in first). In a
    thread, the collector's deliveries go on meanwhile. One catch-up at a time.
    """

    def __init__(self, ledger: Ledger, location: StoreLocation | None) -> None:
        self.ledger = ledger
        self.location = location
        self.views: Views | None = None  # the thread's own: connections stay per thread
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if not self.running():
            self.thread = threading.Thread(target=self._run, name="views-catch-up", daemon=True)
            self.thread.start()

    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _run(self) -> None:
        try:
            if self.views is None:
                self.views = Views(self.ledger, self.location)
            self.views.catch_up()
        except PersistenceError as error:  # gauges then come from the views as they are
            log.warning("gauges: could not bring the views up to date: %s", error)

    def close(self) -> None:
        if self.thread is not None:
            self.thread.join()
        if self.views is not None:
            self.views.recorder.datastore.close()
