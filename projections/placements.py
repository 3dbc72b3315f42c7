"""The placements view: which build of which service is active on which host, and when.

**Valid time is time order.** For each (env, host, service) the view keeps every
activation and deactivation (``placement_facts``) and derives its *timeline*: the facts
sorted by ``occurred_at``, ties by ledger position, walked from the start:

- an activation of build B when B is active changes nothing (B keeps its "since");
- an activation of B when another build (or nothing) is active ends that interval at
  the activation's time and opens B's;
- a deactivation of B ends B's interval when B is the build active at that moment;
  a deactivation of anything else changes nothing (it is an anomaly, see ``failures``).

Intervals are half-open, ``[valid_from, valid_to)``, so at any moment at most one
build of a service is active on a host. A fact that arrives late (an agent offline for
hours) is put into its place in the timeline: it may open, split, shorten or close
intervals, and what follows it is recomputed.

**Transaction time is kept too**, so "what did the ledger know at K" needs no replay.
A row is one *version* of an interval: ``recorded_from`` is when that version became
known (the ``recorded_at`` of the fact whose arrival made it), ``recorded_to`` when its
end became known (an open interval that is closed later keeps its row: before
``recorded_to`` it was known as open), and ``retired_at``/``retired_by`` when a late
fact replaced the version by another (its row stays, for questions about the past).
"What was active at T as known at K" is then::

    recorded_from <= K and (retired_at is null or retired_at > K)
    and valid_from <= T and not (valid_to <= T and recorded_to <= K)

and "now" is the rows neither ended nor retired. The view also keeps the health of
every host and service: the report with the latest ``occurred_at`` (ties: position).

Rows are keyed by positions (``id``: the activation that opened the interval,
``revision``: the fact that made this version), so a rebuild equals the incrementally
maintained view row for row, whatever the batch boundaries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from projections.store import WITHOUT_ROWID, Tx, to_micros
from projections.view import Fact, View, rows_for_hosts

PLACEMENT_COLUMNS = (
    "id",
    "revision",
    "env",
    "host",
    "service",
    "build_id",
    "generation",
    "valid_from",
    "recorded_from",
    "end_position",
    "valid_to",
    "recorded_to",
    "ended_by",
    "retired_by",
    "retired_at",
)
FACT_COLUMNS = (
    "env",
    "host",
    "service",
    "occurred_at",
    "position",
    "kind",
    "build_id",
    "generation",
)
HEALTH_COLUMNS = (
    "env",
    "host",
    "service",
    "state",
    "metric",
    "description",
    "ttl_s",
    "occurred_at",
    "position",
)

Key = tuple[str, str, str]
"""(env, host, service)"""


@dataclass(frozen=True, order=True)
class Move:
    """An activation or deactivation, in timeline order: (occurred_at, position)."""

    occurred_at: int
    position: int
    kind: str
    build_id: str
    generation: int | None


@dataclass(frozen=True)
class Interval:
    """One interval of a timeline, as the facts known so far make it."""

    id: int  # the position of the activation that opened it
    build_id: str
    generation: int
    valid_from: int
    end_position: int | None = None
    valid_to: int | None = None
    ended_by: str | None = None


def step(active: Interval | None, move: Move) -> tuple[Interval | None, Interval | None]:
    """One fact of the walk (the module docstring's rules): the interval it ends (the
    active one, now with its end) and the one it opens; (None, None) when it changes
    nothing."""
    if move.kind == "deactivated":
        if active is not None and active.build_id == move.build_id:
            return _ended(active, move, "deactivated"), None
        return None, None
    if active is not None and active.build_id == move.build_id:
        return None, None  # activated again: it has been active all along
    ended = None if active is None else _ended(active, move, "replaced")
    opened = Interval(move.position, move.build_id, move.generation or 0, move.occurred_at)
    return ended, opened


def timeline(moves: Iterable[Move]) -> list[Interval]:
    """The intervals that ``moves`` (of one env, host and service) make, walked in
    (occurred_at, position) order."""
    intervals: list[Interval] = []
    active: Interval | None = None
    for move in sorted(moves):
        ended, opened = step(active, move)
        if ended is not None:
            intervals.append(ended)
            active = None
        if opened is not None:
            active = opened
    if active is not None:
        intervals.append(active)
    return intervals


def _ended(interval: Interval, move: Move, how: str) -> Interval:
    return Interval(
        interval.id,
        interval.build_id,
        interval.generation,
        interval.valid_from,
        move.position,
        move.occurred_at,
        how,
    )


@dataclass
class Version:
    """A row of ``placements``: one version of an interval (see the module docstring)."""

    interval: Interval
    revision: int
    recorded_from: int
    recorded_to: int | None = None
    retired_by: int | None = None
    retired_at: int | None = None
    changed: bool = False  # a row read from the table that must be updated

    def row(self, key: Key) -> tuple[Any, ...]:
        i = self.interval
        return (
            i.id,
            self.revision,
            *key,
            i.build_id,
            i.generation,
            i.valid_from,
            self.recorded_from,
            i.end_position,
            i.valid_to,
            self.recorded_to,
            i.ended_by,
            self.retired_by,
            self.retired_at,
        )


@dataclass
class KeyState:
    """What one batch knows of one (env, host, service)."""

    last: tuple[int, int] | None  # the latest (occurred_at, position) of its facts
    current: dict[int, Version]  # versions not retired, by interval id (open ones at first)
    moves: list[Move] | None = None  # every fact of the key, once a late one needs them
    pending: list[Move] = field(default_factory=list)  # this batch's facts of the key
    stored: dict[tuple[int, int], Version] = field(default_factory=dict)  # rows read
    made: list[Version] = field(default_factory=list)  # versions this batch inserts

    def keep(self, version: Version) -> None:
        """A row read from the table, unless this batch already holds it."""
        ident = (version.interval.id, version.revision)
        if ident not in self.stored:
            self.stored[ident] = version
            self.current[version.interval.id] = version


class PlacementsView(View):
    name = "placements"
    description = "activation intervals and health (topology, manifest, where, metrics)"
    schema_version = 2  # 2: time-ordered, bitemporal versions
    kinds = frozenset({"activation_completed", "deactivated", "health_reported"})
    tables = ("placements", "placement_facts", "health", "placement_envs")
    ddl = (
        "CREATE TABLE IF NOT EXISTS placements ("
        "id BIGINT NOT NULL, revision BIGINT NOT NULL, env TEXT NOT NULL, "
        "host TEXT NOT NULL, service TEXT NOT NULL, build_id TEXT NOT NULL, "
        "generation BIGINT NOT NULL, valid_from BIGINT NOT NULL, recorded_from BIGINT NOT NULL, "
        "end_position BIGINT, valid_to BIGINT, recorded_to BIGINT, ended_by TEXT, "
        "retired_by BIGINT, retired_at BIGINT, PRIMARY KEY (id, revision))" + WITHOUT_ROWID,
        "CREATE UNIQUE INDEX IF NOT EXISTS placements_open ON placements (host, service, env) "
        "WHERE end_position IS NULL AND retired_by IS NULL",
        "CREATE INDEX IF NOT EXISTS placements_key ON placements (host, service, env) "
        "WHERE retired_by IS NULL",
        "CREATE TABLE IF NOT EXISTS placement_facts ("
        "env TEXT NOT NULL, host TEXT NOT NULL, service TEXT NOT NULL, "
        "occurred_at BIGINT NOT NULL, position BIGINT NOT NULL, kind TEXT NOT NULL, "
        "build_id TEXT NOT NULL, generation BIGINT, "
        "PRIMARY KEY (host, service, env, occurred_at, position))" + WITHOUT_ROWID,
        "CREATE TABLE IF NOT EXISTS health ("
        "env TEXT NOT NULL, host TEXT NOT NULL, service TEXT NOT NULL, state TEXT NOT NULL, "
        "metric DOUBLE PRECISION, description TEXT NOT NULL, ttl_s DOUBLE PRECISION, "
        "occurred_at BIGINT NOT NULL, position BIGINT NOT NULL, "
        "PRIMARY KEY (env, host, service))" + WITHOUT_ROWID,
        # Every env an activation, deactivation or health report named: the envs a
        # question may name (an unknown one is an error, not an empty answer).
        "CREATE TABLE IF NOT EXISTS placement_envs (env TEXT PRIMARY KEY)" + WITHOUT_ROWID,
    )
    read_ddl = (
        # Covering indexes for `where`: now (open intervals only) and at a moment.
        # (SQLite reads a partial index as covering only when it holds the columns its
        # condition names too.)
        "CREATE INDEX IF NOT EXISTS placements_now ON placements "
        "(build_id, env, host, service, valid_from, generation, end_position, retired_by) "
        "WHERE end_position IS NULL AND retired_by IS NULL",
        "CREATE INDEX IF NOT EXISTS placements_build ON placements "
        "(build_id, valid_from, valid_to, recorded_from, recorded_to, retired_at, "
        "env, host, service, generation)",
    )

    def apply(self, tx: Tx, facts: Sequence[Fact]) -> None:
        moves = [f for f in facts if f.kind != "health_reported"]
        if moves:
            self._apply_moves(tx, moves)
        self._apply_health(tx, [f for f in facts if f.kind == "health_reported"])
        envs = sorted({f.event["env"] for f in facts})
        tx.insert("placement_envs", ("env",), [(env,) for env in envs], ignore="env")

    # --- activations and deactivations ------------------------------------------------

    def _apply_moves(self, tx: Tx, facts: Sequence[Fact]) -> None:
        states = _load(tx, facts)
        stored: list[tuple[Any, ...]] = []
        for fact in facts:
            event = fact.event
            key = (event["env"], event["host"], event["service"])
            move = Move(
                to_micros(event["occurred_at"]),
                fact.position,
                fact.kind,
                event["build_id"],
                event.get("generation"),
            )
            stored.append((*key, *_fact_row(move)))
            state = states[key]
            recorded = to_micros(event["recorded_at"])
            if state.last is None or (move.occurred_at, move.position) > state.last:
                _append(state, move, recorded)
            else:
                _insert_late(tx, key, state, move, recorded)
            state.pending.append(move)
            state.last = max(state.last or (0, 0), (move.occurred_at, move.position))
        tx.insert("placement_facts", FACT_COLUMNS, stored)
        changed, made = [], []
        for key, state in states.items():
            changed += [v.row(key) for v in state.stored.values() if v.changed]
            made += [v.row(key) for v in state.made]
        # Retire and close before inserting: at most one open row per (host, service, env).
        tx.update(
            "placements",
            ("id", "revision"),
            ("end_position", "valid_to", "recorded_to", "ended_by", "retired_by", "retired_at"),
            [(*r[:2], *r[9:]) for r in changed],
        )
        tx.insert("placements", PLACEMENT_COLUMNS, made)

    def _apply_health(self, tx: Tx, facts: Sequence[Fact]) -> None:
        """The latest report by ``occurred_at`` (ties: position) wins, whatever came first."""
        health: dict[Key, tuple[Any, ...]] = {}
        for fact in facts:
            event = fact.event
            key = (event["env"], event["host"], event.get("service") or "")
            row = (
                *key,
                event["state"],
                event.get("metric"),
                event.get("description", ""),
                event.get("ttl_s"),
                to_micros(event["occurred_at"]),
                fact.position,
            )
            if key not in health or row[7:] > health[key][7:]:
                health[key] = row
        tx.insert(
            "health",
            HEALTH_COLUMNS,
            list(health.values()),
            update_on="env, host, service",
            update_if="excluded.occurred_at > health.occurred_at OR (excluded.occurred_at = "
            "health.occurred_at AND excluded.position > health.position)",
        )


def _fact_row(move: Move) -> tuple[Any, ...]:
    return (move.occurred_at, move.position, move.kind, move.build_id, move.generation)


def _load(tx: Tx, facts: Sequence[Fact]) -> dict[Key, KeyState]:
    """Each key's latest fact and its open interval, read in a few queries."""
    hosts = {f.event["host"] for f in facts}
    services = {f.event["service"] for f in facts}
    keys = {(f.event["env"], f.event["host"], f.event["service"]) for f in facts}
    states = {key: KeyState(None, {}) for key in keys}
    for row in rows_for_hosts(
        tx,
        "SELECT env, host, service, MAX(occurred_at) AS last FROM placement_facts",
        hosts,
        services=services,
        group_by="env, host, service",
    ):
        key = (row["env"], row["host"], row["service"])
        if key in states:
            # Any position of the stored facts is below this batch's: occurred_at decides.
            states[key].last = (row["last"], 0)
    for row in rows_for_hosts(
        tx,
        f"SELECT {', '.join(PLACEMENT_COLUMNS)} FROM placements",
        hosts,
        services=services,
        condition="end_position IS NULL AND retired_by IS NULL",
    ):
        key = (row["env"], row["host"], row["service"])
        if key in states:
            states[key].keep(_stored_version(row))
    return states


def _stored_version(row: dict[str, Any]) -> Version:
    return Version(
        Interval(
            row["id"],
            row["build_id"],
            row["generation"],
            row["valid_from"],
            row["end_position"],
            row["valid_to"],
            row["ended_by"],
        ),
        row["revision"],
        row["recorded_from"],
        row["recorded_to"],
        row["retired_by"],
        row["retired_at"],
    )


def _append(state: KeyState, move: Move, recorded: int) -> None:
    """A fact later than every other of its key: only the open interval can change."""
    if state.moves is not None:
        state.moves.append(move)
    active = next((v for v in state.current.values() if v.interval.end_position is None), None)
    ended, opened = step(None if active is None else active.interval, move)
    if active is not None and ended is not None:
        _close(active, ended, recorded)
    if opened is not None:
        _make(state, opened, move.position, recorded)


def _insert_late(tx: Tx, key: Key, state: KeyState, move: Move, recorded: int) -> None:
    """A fact that happened before others of its key already known: recompute the
    key's timeline and change only the versions that differ."""
    if state.moves is None:
        state.moves = [
            Move(occurred, position, kind, build, generation)
            for occurred, position, kind, build, generation in tx.tuples(
                "SELECT occurred_at, position, kind, build_id, generation FROM placement_facts "
                "WHERE host = ? AND service = ? AND env = ?",
                (key[1], key[2], key[0]),
            )
        ] + state.pending  # this batch's earlier facts are not in the table yet
        for row in tx.query(
            f"SELECT {', '.join(PLACEMENT_COLUMNS)} FROM placements "
            "WHERE host = ? AND service = ? AND env = ? AND retired_by IS NULL",
            (key[1], key[2], key[0]),
        ):
            state.keep(_stored_version(row))
    state.moves.append(move)
    wanted = {interval.id: interval for interval in timeline(state.moves)}
    for interval_id, version in list(state.current.items()):
        interval = wanted.pop(interval_id, None)
        if interval == version.interval:
            continue
        if (
            interval is not None
            and version.interval.end_position is None
            and interval.end_position is not None
            and interval.build_id == version.interval.build_id
            and interval.valid_from == version.interval.valid_from
        ):
            _close(version, interval, recorded)  # known open until now, ended from now on
            continue
        version.retired_by, version.retired_at = move.position, recorded
        version.changed = True
        del state.current[interval_id]
        if interval is not None:
            _make(state, interval, move.position, recorded)
    for interval in wanted.values():
        _make(state, interval, move.position, recorded)


def _close(version: Version, ended: Interval, recorded: int) -> None:
    version.interval = ended
    version.recorded_to = recorded
    version.changed = True


def _make(state: KeyState, interval: Interval, revision: int, recorded: int) -> None:
    version = Version(
        interval,
        revision,
        recorded,
        recorded if interval.end_position is not None else None,
    )
    state.current[interval.id] = version
    state.made.append(version)
