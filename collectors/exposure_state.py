"""Exposure to advisories as the ledger knew it at a position: what the advisory alerts
(Slack) and the advisory events (Riemann) say.

A **vulnerability** is an advisory group: the records that name one another by id or
alias (CVE-2014-0160 in NVD, the GHSA and the distributions' OSV records), each taken at
its latest version. Its **key** is the group's first CVE id (any id of a record or an
alias), else its smallest id: a GHSA record that aliases a CVE is keyed by the CVE from
the start, so the key rarely changes when more records arrive. A placement is
**exposed** while it runs a build whose closure holds a package version one of the
group's live (not withdrawn) records affects (``projections.exposure.affected_builds``).

**Views at the fact's position.** Collectors follow the stream themselves; the views
are kept by another loop (or another process, on PostgreSQL) and may stand *past* the
fact being handled. Every view read here is therefore bounded by the fact's ledger
position: advisory records, builds and placement facts with ``position <= P`` only, and
a placement's state is the timeline (``projections.placements.timeline``) of its facts up
to P. The collector only hands over facts the views have reached (never beyond), so the
answer is the same however far the views are, and replaying the stream gives the same
changes, fact by fact.

**Incremental.** Which placements each vulnerability exposes is kept per collector
(``tracker``) in ``exposures``, changed in the transaction that confirms the facts:

- ``advisory_recorded``: its group is evaluated afresh (every placement ever running an
  affected build, at P); a group whose key changed leaves its old key empty;
- ``activation_completed``, ``deactivated``: that placement only — the vulnerabilities
  affecting what it runs at P, and those it was listed under;
- ``build_recorded``: the placements running that build at P (a build recorded after
  its activation).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from ledger.application import Ledger, batched
from ledger.domain import TOPICS
from projections.advisories import (
    CPE,
    SELECT_ADVISORIES,
    AdvisoryRecord,
    key_of,
    latest,
    severity_of,
)
from projections.exposure import HeldVersion, affected_builds
from projections.matching import CpeMap
from projections.placements import Move, timeline
from projections.runner import Views
from projections.store import WITHOUT_ROWID, AnyViewRecorder, Tx
from projections.view import IN_LIST, Fact

if TYPE_CHECKING:
    from collectors.settings import CollectSettings

PLACEMENT_KINDS = frozenset({"activation_completed", "deactivated"})
EXPOSURE_KINDS = PLACEMENT_KINDS | {"advisory_recorded", "build_recorded"}
"""The kinds of fact that can change what an advisory exposes."""

Key = tuple[str, str, str]
"""(env, host, service)"""

DDL = (
    "CREATE TABLE IF NOT EXISTS exposures ("
    "tracker TEXT NOT NULL, vulnerability TEXT NOT NULL, env TEXT NOT NULL, "
    "host TEXT NOT NULL, service TEXT NOT NULL, build_id TEXT NOT NULL, "
    "packages TEXT NOT NULL, "
    "PRIMARY KEY (tracker, vulnerability, env, host, service))" + WITHOUT_ROWID,
    "CREATE INDEX IF NOT EXISTS exposures_placement ON exposures (tracker, host, service, env)",
    "CREATE TABLE IF NOT EXISTS exposure_vulnerabilities ("
    "tracker TEXT NOT NULL, vulnerability TEXT NOT NULL, ids TEXT NOT NULL, "
    "score DOUBLE PRECISION, severity TEXT, summary TEXT NOT NULL, "
    "PRIMARY KEY (tracker, vulnerability))" + WITHOUT_ROWID,
)


def create_tables(store: AnyViewRecorder) -> None:
    with store.transaction(commit=True) as tx:
        for statement in DDL:
            tx.execute(statement)


@dataclass(frozen=True)
class Vulnerability:
    """An advisory group as known at a position (see the module docstring)."""

    key: str
    ids: tuple[str, ...]
    """Every id of the group: its records' and their aliases, the key first."""
    score: float | None
    severity: str | None
    summary: str
    records: tuple[AdvisoryRecord, ...] = field(default=(), compare=False)
    """Its live records (the latest version of each, not withdrawn)."""

    @property
    def withdrawn(self) -> bool:
        return not self.records


@dataclass(frozen=True)
class Exposed:
    """A placement running an affected build, and the affected package versions it holds:
    (name, version, fixed version or None)."""

    env: str
    host: str
    service: str
    build_id: str
    packages: tuple[tuple[str, str, str | None], ...]


@dataclass(frozen=True)
class Change:
    """What one vulnerability exposes in one env after ``fact`` (every placement)."""

    vulnerability: Vulnerability
    env: str
    exposed: tuple[Exposed, ...]
    fact: Fact
    why: str
    """Why it changed, for a resolution: ``no host runs an affected build``…"""
    touched: Mapping[str, tuple[Exposed, ...]] | None = None
    """The hosts whose rows changed, with their rows now (none: the host is no longer
    exposed); None: any host may have changed."""

    @property
    def hosts(self) -> int:
        return len({e.host for e in self.exposed})


class AdvisoryWatch:
    """Whether the ledger holds any advisory up to a notification: until it does, no
    fact exposes anything, and a collector skips the work (and the views' catch-up).
    Each notification is looked at once: the search resumes where it stopped."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.checked = 0
        self.found = False

    def seen(self, notification_id: int) -> bool:
        if not self.found and notification_id > self.checked:
            self.found = bool(
                self.ledger.recorder.select_notifications(
                    self.checked,
                    1,
                    stop=notification_id,
                    topics=(TOPICS["advisory_recorded"],),
                    inclusive_of_start=False,
                )
            )
            self.checked = notification_id
        return self.found


class ExposureBook:
    """The placements each vulnerability exposes, for one collector (``tracker``)."""

    def __init__(self, tracker: str, views: Views, cpe_map: CpeMap = CpeMap.EMPTY) -> None:
        self.tracker = tracker
        self.views = views
        self.cpe_map = cpe_map
        self._rows: dict[str, dict[Key, Exposed]] = {}
        self._stored: dict[str, dict[Key, Exposed]] = {}
        self._info: dict[str, Vulnerability] = {}
        self._dirty: set[str] = set()
        self._clear_caches()

    def _clear_caches(self) -> None:
        # Derived from advisory records (which change only with an advisory fact) and
        # builds (which never change once recorded): valid until the next advisory fact
        # or until the views move on (builds recorded since are not in them).
        self._groups: dict[str, Vulnerability | None] = {}
        self._affected: dict[str, dict[str, tuple[int, list[HeldVersion]]]] = {}
        self._build_vulnerabilities: dict[str, list[str]] = {}

    # --- facts ------------------------------------------------------------------------

    def apply(self, tx: Tx, facts: Sequence[Fact]) -> list[Change]:
        """The changes these facts make, in order (``tx``: the collector's store, read
        only; ``write`` stores them). The views must have reached every fact."""
        self._rows, self._stored, self._info, self._dirty = {}, {}, {}, set()
        self._clear_caches()
        changes: list[Change] = []
        with self.views.read() as views:
            for fact in facts:
                if fact.kind == "advisory_recorded":
                    changes += self._on_advisory(tx, views, fact)
                elif fact.kind in PLACEMENT_KINDS:
                    e = fact.event
                    key = (e["env"], e["host"], e["service"])
                    changes += self._refresh(tx, views, fact, [key])
                elif fact.kind == "build_recorded":
                    self._build_vulnerabilities.pop(fact.event["build_id"], None)
                    keys = self._keys_running(views, {fact.event["build_id"]}, fact.position)
                    changes += self._refresh(tx, views, fact, sorted(keys))
        return changes

    def write(self, tx: Tx) -> None:
        """Store what ``apply`` changed (in the transaction that confirms the facts):
        only the rows that differ from those read."""
        columns = ("tracker", "vulnerability", "env", "host", "service", "build_id", "packages")
        for name in sorted(self._dirty):
            old, new = self._stored.get(name, {}), self._rows[name]
            tx.execute_many(
                "DELETE FROM exposures WHERE tracker = ? AND vulnerability = ? AND env = ? "
                "AND host = ? AND service = ?",
                [(self.tracker, name, *key) for key in sorted(old.keys() - new.keys())],
            )
            changed = [
                (self.tracker, name, *key, row.build_id, orjson.dumps(row.packages).decode())
                for key, row in sorted(new.items())
                if old.get(key) != row
            ]
            tx.insert(
                "exposures",
                columns,
                changed,
                update_on="tracker, vulnerability, env, host, service",
            )
            info = self._info[name]
            tx.insert(
                "exposure_vulnerabilities",
                ("tracker", "vulnerability", "ids", "score", "severity", "summary"),
                [(self.tracker, name, " ".join(info.ids), info.score, info.severity,
                  info.summary)],
                update_on="tracker, vulnerability",
            )  # fmt: skip
        self._dirty = set()

    def _on_advisory(self, tx: Tx, views: Tx, fact: Fact) -> list[Change]:
        self._clear_caches()
        found = self._group(views, fact.event["advisory_id"], fact.position)
        assert found is not None  # the fact's own record is in the views
        # Keys the group's ids had before (a record that joins a group may change its key).
        names = sorted(set(found.ids) - {found.key})
        former = [
            name
            for batch in batched(names, IN_LIST)
            for (name,) in tx.tuples(
                "SELECT vulnerability FROM exposure_vulnerabilities WHERE tracker = ? "
                f"AND vulnerability IN ({', '.join('?' * len(batch))})",
                [self.tracker, *batch],
            )
        ]
        changes: list[Change] = []
        for name in sorted(former):
            why = f"now reported as {found.key}"
            changes += self._set(tx, name, {}, fact, why, everywhere=True)
        exposed = self._evaluate(views, found, fact.position)
        why = "withdrawn" if found.withdrawn else "no host runs an affected build"
        return changes + self._set(tx, found.key, exposed, fact, why, everywhere=True, info=found)

    def _refresh(self, tx: Tx, views: Tx, fact: Fact, keys: Sequence[Key]) -> list[Change]:
        """Re-evaluate these placements at the fact's position."""
        position = fact.position
        running = self._running(views, keys, position)
        touched: dict[str, dict[Key, Exposed | None]] = defaultdict(dict)
        for key in keys:
            for name in self._listing(tx, key):
                touched[name][key] = None
            build = running.get(key)
            if build is None:
                continue
            for name in self._vulnerabilities_of(views, build, position):
                held = self._affected_at(views, name, position).get(build)
                if held is not None:
                    touched[name][key] = _exposed(key, build, held)
        changes: list[Change] = []
        for name, placements in sorted(touched.items()):
            rows = dict(self._load(tx, name))
            for key, row in placements.items():
                if row is None:
                    rows.pop(key, None)
                else:
                    rows[key] = row
            changes += self._set(tx, name, rows, fact, "no host runs an affected build")
        return changes

    def _set(
        self,
        tx: Tx,
        name: str,
        rows: dict[Key, Exposed],
        fact: Fact,
        why: str,
        *,
        everywhere: bool = False,
        info: Vulnerability | None = None,
    ) -> list[Change]:
        """``name`` now exposes ``rows``: a change per env whose rows differ (per env it
        exposed or exposes, with ``everywhere``)."""
        before = self._load(tx, name)
        known = self._info.get(name) or self._stored_info(tx, name)
        info = info or known
        if rows != before or info != known:
            self._dirty.add(name)
        self._rows[name], self._info[name] = rows, info
        envs = {key[0] for key in (*before, *rows)}
        changes = []
        for env in sorted(envs):
            old = {k: v for k, v in before.items() if k[0] == env}
            new = {k: v for k, v in rows.items() if k[0] == env}
            if everywhere or old != new:
                exposed = tuple(v for _, v in sorted(new.items()))
                touched = None
                if not everywhere:
                    hosts = {k[1] for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
                    touched = {h: tuple(e for e in exposed if e.host == h) for h in hosts}
                changes.append(Change(info, env, exposed, fact, why, touched))
        return changes

    # --- the state (this collector's tables, and this batch's changes) ------------------

    def _load(self, tx: Tx, name: str) -> dict[Key, Exposed]:
        if name not in self._rows:
            self._stored[name] = self._rows[name] = {
                (env, host, service): Exposed(
                    env, host, service, build, tuple(map(tuple, orjson.loads(packages)))
                )
                for env, host, service, build, packages in tx.tuples(
                    "SELECT env, host, service, build_id, packages FROM exposures "
                    "WHERE tracker = ? AND vulnerability = ?",
                    (self.tracker, name),
                )
            }
        return self._rows[name]

    def _listing(self, tx: Tx, key: Key) -> set[str]:
        """The vulnerabilities that list this placement as exposed."""
        stored = {
            name
            for (name,) in tx.tuples(
                "SELECT vulnerability FROM exposures WHERE tracker = ? AND host = ? "
                "AND service = ? AND env = ?",
                (self.tracker, key[1], key[2], key[0]),
            )
        }
        changed = {name for name in self._rows if name in self._dirty}
        return (stored - changed) | {name for name in changed if key in self._rows[name]}

    def _stored_info(self, tx: Tx, name: str) -> Vulnerability:
        rows = tx.tuples(
            "SELECT ids, score, severity, summary FROM exposure_vulnerabilities "
            "WHERE tracker = ? AND vulnerability = ?",
            (self.tracker, name),
        )
        if not rows:
            return self._groups_by_key(name)
        ids, score, severity, summary = rows[0]
        return Vulnerability(name, tuple(ids.split()), score, severity, summary)

    def _groups_by_key(self, name: str) -> Vulnerability:
        for found in self._groups.values():
            if found is not None and found.key == name:
                return found
        return Vulnerability(name, (name,), None, None, "")

    # --- the views, at a position ------------------------------------------------------

    def _group(self, views: Tx, advisory_id: str, position: int) -> Vulnerability | None:
        """The group of ``advisory_id`` from the records at or before ``position``,
        joined as ``projections.advisories.group`` joins them: through the ids and
        aliases of each record's latest version, transitively."""
        if advisory_id in self._groups:
            return self._groups[advisory_id]
        found: dict[tuple[str, str], AdvisoryRecord] = {}
        seen: set[str] = set()
        todo = {advisory_id}
        while todo:
            seen |= todo
            keys: set[tuple[str, str]] = set()
            for names_batch in batched(sorted(todo), IN_LIST):
                keys |= set(
                    views.tuples(
                        "SELECT DISTINCT a.database, a.advisory_id FROM advisory_names n "
                        "JOIN advisories a ON a.position = n.position WHERE a.position <= ? "
                        f"AND n.name IN ({', '.join('?' * len(names_batch))})",
                        [position, *names_batch],
                    )
                )
            names, todo = todo, set()
            for record in self._latest_of(views, keys - found.keys(), position):
                if names & {record.advisory_id, *record.aliases}:
                    found[record.database, record.advisory_id] = record
                    todo |= {record.advisory_id, *record.aliases} - seen
        if not found:
            self._groups[advisory_id] = None
            return None
        records = sorted(found.values(), key=lambda r: (r.advisory_id, r.database))
        live = tuple(r for r in records if r.withdrawn is None)
        ids = {r.advisory_id for r in records} | {a for r in records for a in r.aliases}
        key = key_of(ids)
        scores = [r.score for r in live if r.score is not None]
        score = max(scores) if scores else None
        vulnerability = Vulnerability(
            key,
            (key, *sorted(ids - {key})),
            score,
            severity_of(score),
            next((r.summary for r in (*live, *records) if r.summary), ""),
            live,
        )
        for name in ids | {advisory_id}:
            self._groups[name] = vulnerability
        return vulnerability

    @staticmethod
    def _latest_of(views: Tx, keys: set[tuple[str, str]], position: int) -> list[AdvisoryRecord]:
        """The latest version at or before ``position`` of each (database, id)."""
        rows: list[AdvisoryRecord] = []
        for ids_batch in batched(sorted({record_id for _, record_id in keys}), IN_LIST):
            rows += [
                AdvisoryRecord.from_row(row)
                for row in views.tuples(
                    f"{SELECT_ADVISORIES} WHERE position <= ? "
                    f"AND advisory_id IN ({', '.join('?' * len(ids_batch))})",
                    [position, *ids_batch],
                )
            ]
        return [r for r in latest(rows) if (r.database, r.advisory_id) in keys]

    def _affected_at(self, views: Tx, name: str, position: int) -> dict[str, list[HeldVersion]]:
        """Build id → affected versions it holds, for builds recorded by ``position``."""
        if name not in self._affected:
            found = self._group(views, name, position)
            held = affected_builds(views, found.records, None, self.cpe_map) if found else {}
            recorded: dict[str, int] = {}
            for batch in batched(sorted(held), IN_LIST):
                recorded.update(
                    views.tuples(
                        "SELECT build_id, position FROM builds "
                        f"WHERE build_id IN ({', '.join('?' * len(batch))})",
                        batch,
                    )
                )
            self._affected[name] = {b: (recorded[b], v) for b, v in held.items() if b in recorded}
        return {b: v for b, (p, v) in self._affected[name].items() if p <= position}

    def _vulnerabilities_of(self, views: Tx, build: str, position: int) -> list[str]:
        """Keys of the vulnerabilities whose records name a package the build holds
        (candidates: ``_affected_at`` says whether its version is affected)."""
        if build in self._build_vulnerabilities:
            return self._build_vulnerabilities[build]
        keys: dict[str, set[str]] = defaultdict(set)
        for ecosystem, match_name, name in views.tuples(
            "SELECT p.ecosystem, p.match_name, p.name FROM build_packages p "
            "JOIN builds b ON b.build_id = p.build_id WHERE p.build_id = ? AND b.position <= ?",
            (build, position),
        ):
            keys[ecosystem].add(match_name)
            if name.isascii():
                keys[CPE].add(name.lower())
        mapped = {n.lower(): product for (_, product), n in self.cpe_map.names.items()}
        keys[CPE] |= {mapped[n] for n in keys[CPE] if n in mapped}
        ids: set[str] = set()
        for ecosystem, wanted in keys.items():
            for batch in batched(sorted(wanted), IN_LIST):
                ids |= {
                    advisory_id
                    for (advisory_id,) in views.tuples(
                        "SELECT DISTINCT a.advisory_id FROM advisory_keys k JOIN advisories a "
                        "ON a.position = k.position WHERE a.position <= ? AND k.ecosystem = ? "
                        f"AND k.key IN ({', '.join('?' * len(batch))})",
                        [position, ecosystem, *batch],
                    )
                }
        names = sorted(
            {found.key for i in ids if (found := self._group(views, i, position)) is not None}
        )
        self._build_vulnerabilities[build] = names
        return names

    def _evaluate(self, views: Tx, found: Vulnerability, position: int) -> dict[Key, Exposed]:
        """Every placement the vulnerability exposes at ``position``."""
        held = self._affected_at(views, found.key, position)
        keys = self._keys_running(views, set(held), position)
        running = self._running(views, sorted(keys), position)
        return {
            key: _exposed(key, build, held[build])
            for key, build in running.items()
            if build in held
        }

    @staticmethod
    def _keys_running(views: Tx, builds: set[str], position: int) -> set[Key]:
        """Placements that ran one of ``builds`` at some time by ``position`` (a superset
        of those running one at ``position``)."""
        keys: set[Key] = set()
        for batch in batched(sorted(builds), IN_LIST):
            keys |= set(
                views.tuples(
                    "SELECT DISTINCT env, host, service FROM placements WHERE id <= ? "
                    f"AND build_id IN ({', '.join('?' * len(batch))})",
                    [position, *batch],
                )
            )
        return keys

    @staticmethod
    def _running(views: Tx, keys: Sequence[Key], position: int) -> dict[Key, str]:
        """The build each placement runs at ``position`` (none: left out): the end of
        the timeline of its activations and deactivations recorded by then."""
        wanted = set(keys)
        moves: dict[Key, list[Move]] = defaultdict(list)
        for batch in batched(sorted({key[1] for key in wanted}), IN_LIST):
            for env, host, service, occurred, at, kind, build, generation in views.tuples(
                "SELECT env, host, service, occurred_at, position, kind, build_id, generation "
                f"FROM placement_facts WHERE host IN ({', '.join('?' * len(batch))}) "
                "AND position <= ?",
                [*batch, position],
            ):
                if (env, host, service) in wanted:
                    moves[env, host, service].append(Move(occurred, at, kind, build, generation))
        running: dict[Key, str] = {}
        for key, found in moves.items():
            intervals = timeline(found)
            if intervals and intervals[-1].end_position is None:
                running[key] = intervals[-1].build_id
        return running


def _exposed(key: Key, build: str, held: Iterable[HeldVersion]) -> Exposed:
    packages = tuple(sorted({(v.name, v.version, v.fixed) for v in held}, key=lambda p: p[:2]))
    return Exposed(*key, build, packages)


def stored_vulnerabilities(tx: Tx, tracker: str, names: Iterable[str]) -> dict[str, Vulnerability]:
    """What the collector last knew of these vulnerabilities (for messages)."""
    found: dict[str, Vulnerability] = {}
    for batch in batched(sorted(set(names)), IN_LIST):
        for name, ids, score, severity, summary in tx.tuples(
            "SELECT vulnerability, ids, score, severity, summary FROM exposure_vulnerabilities "
            f"WHERE tracker = ? AND vulnerability IN ({', '.join('?' * len(batch))})",
            [tracker, *batch],
        ):
            found[name] = Vulnerability(name, tuple(ids.split()), score, severity, summary)
    return found


def stored_packages(tx: Tx, tracker: str, name: str, env: str) -> list[tuple[str, str, Any]]:
    """The affected package versions a vulnerability's exposed placements in ``env`` hold."""
    found: set[tuple[str, str, Any]] = set()
    for (packages,) in tx.tuples(
        "SELECT packages FROM exposures WHERE tracker = ? AND vulnerability = ? AND env = ?",
        (tracker, name, env),
    ):
        found |= {tuple(p) for p in orjson.loads(packages)}
    return sorted(found, key=lambda p: (p[0], p[1]))


def cpe_map_of(settings: CollectSettings) -> CpeMap:
    """The collectors' CPE map (``--cpe-map``, ``LEDGER_CPE_MAP``), or none."""
    return CpeMap.EMPTY if settings.cpe_map is None else CpeMap.load(settings.cpe_map)
