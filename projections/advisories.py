"""The advisories view: every version of every advisory the ledger recorded, and how to
find the records that speak of one vulnerability.

An advisory is recorded again each time its database changes it (a new ``modified``), so
the view keeps one row per recorded version (``advisories``, keyed by position) and
answers "what did the ledger know at K" by taking, per (database, id), the latest
``modified`` among the versions recorded by K (ties: the later position).

Records about one vulnerability are joined by their ids and aliases (``advisory_names``):
CVE-2014-0160 in NVD, the GHSA and the distributions' OSV records that alias it. The
packages each version names are indexed by the key components are looked up by
(``advisory_keys``: purl type and match name for OSV, ``cpe`` and the lower-case product
for NVD), so "which advisories could touch what runs" is a join, not a scan.

Severity is scored here, once, with the ``cvss`` library: the base score of the newest
CVSS version the record carries (v4.0, else v3.x, else v2), the highest if it carries
several; a vector the library cannot read falls back to the score the database gave.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from ledger.ecosystems import lookup_name, parse_purl
from ledger.errors import InvalidInput, UnknownName
from projections.store import WITHOUT_ROWID, Tx, to_micros
from projections.view import Fact, View

CPE = "cpe"
"""The ecosystem of NVD products: matched against component names of every ecosystem."""

ADVISORY_COLUMNS = (
    "position",
    "advisory_id",
    "database",
    "modified",
    "recorded_at",
    "published",
    "withdrawn",
    "score",
    "severity",
    "summary",
    "record",
)
_RANKS = {"CVSS_V4": 3, "CVSS_V3": 2, "CVSS_V2": 1}
SEVERITIES = ("none", "low", "medium", "high", "critical")


def severity_of(score: float | None) -> str | None:
    """The qualitative rating of a CVSS base score (the v3.x/v4.0 scale)."""
    if score is None:
        return None
    if score == 0:
        return "none"
    if score < 4:
        return "low"
    if score < 7:
        return "medium"
    if score < 9:
        return "high"
    return "critical"


def base_score(severity: Sequence[dict[str, Any]]) -> float | None:
    """The score a record is ranked by (see the module docstring)."""
    from cvss import CVSS2, CVSS3, CVSS4
    from cvss.exceptions import CVSSError

    best: tuple[int, float] | None = None
    for entry in severity:
        rank = _RANKS[entry["type"]]
        score: float | None
        try:
            if rank == 3:
                score = float(CVSS4(entry["vector"]).base_score)
            elif rank == 2:
                score = float(CVSS3(entry["vector"]).scores()[0])
            else:
                score = float(CVSS2(entry["vector"]).scores()[0])
        except (CVSSError, ValueError, KeyError, IndexError, TypeError):
            score = entry.get("score")
        if score is not None and (best is None or (rank, score) > best):
            best = (rank, float(score))
    return None if best is None else best[1]


def package_key(package: dict[str, Any]) -> tuple[str, str]:
    """(ecosystem, key) of an affected package: what candidate components are selected
    by. An unreadable purl falls back to the ecosystem and name as written."""
    if package["ecosystem"] == CPE:
        return CPE, package["name"].lower()
    if purl := package.get("purl"):
        try:
            ref = parse_purl(purl)
        except InvalidInput:
            pass
        else:
            return ref.ecosystem, ref.match_name
    ecosystem = package["ecosystem"]
    return ecosystem, lookup_name(ecosystem, package["name"])


class AdvisoriesView(View):
    name = "advisories"
    description = "advisories, their versions, aliases and packages (exposure, vulns)"
    kinds = frozenset({"advisory_recorded"})
    tables = ("advisories", "advisory_names", "advisory_keys")
    ddl = (
        "CREATE TABLE IF NOT EXISTS advisories ("
        "position BIGINT PRIMARY KEY, advisory_id TEXT NOT NULL, database TEXT NOT NULL, "
        "modified BIGINT NOT NULL, recorded_at BIGINT NOT NULL, published BIGINT, "
        "withdrawn BIGINT, score DOUBLE PRECISION, severity TEXT, summary TEXT NOT NULL, "
        "record TEXT NOT NULL)" + WITHOUT_ROWID,
        "CREATE TABLE IF NOT EXISTS advisory_names ("
        "name TEXT NOT NULL, position BIGINT NOT NULL, "
        "PRIMARY KEY (name, position))" + WITHOUT_ROWID,
        "CREATE TABLE IF NOT EXISTS advisory_keys ("
        "ecosystem TEXT NOT NULL, key TEXT NOT NULL, position BIGINT NOT NULL, "
        "PRIMARY KEY (ecosystem, key, position))" + WITHOUT_ROWID,
    )
    read_ddl = (
        "CREATE INDEX IF NOT EXISTS advisories_id ON advisories (advisory_id, database)",
        "CREATE INDEX IF NOT EXISTS advisory_names_position ON advisory_names (position)",
    )

    def apply(self, tx: Tx, facts: Sequence[Fact]) -> None:
        advisories: list[tuple[Any, ...]] = []
        names: set[tuple[str, int]] = set()
        keys: set[tuple[str, str, int]] = set()
        for fact in facts:
            event = fact.event
            score = base_score(event.get("severity", ()))
            record = {
                "aliases": event.get("aliases", []),
                "severity": event.get("severity", []),
                "affected": event.get("affected", []),
                "unmatched": event.get("unmatched", []),
            }
            advisories.append(
                (
                    fact.position,
                    event["advisory_id"],
                    event["database"],
                    to_micros(event["modified"]),
                    to_micros(event["recorded_at"]),
                    to_micros(event["published"]) if event.get("published") else None,
                    to_micros(event["withdrawn"]) if event.get("withdrawn") else None,
                    score,
                    severity_of(score),
                    event.get("summary", ""),
                    orjson.dumps(record).decode(),
                )
            )
            names |= {(n, fact.position) for n in (event["advisory_id"], *record["aliases"])}
            keys |= {(*package_key(p), fact.position) for p in record["affected"]}
        tx.insert("advisories", ADVISORY_COLUMNS, advisories)
        tx.insert("advisory_names", ("name", "position"), sorted(names))
        tx.insert("advisory_keys", ("ecosystem", "key", "position"), sorted(keys))


# --- reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AdvisoryRecord:
    """One version of an advisory, as the view keeps it."""

    position: int
    advisory_id: str
    database: str
    modified: int
    recorded_at: int
    published: int | None
    withdrawn: int | None
    score: float | None
    severity: str | None
    summary: str
    aliases: tuple[str, ...]
    cvss: tuple[dict[str, Any], ...]
    affected: tuple[dict[str, Any], ...]
    unmatched: tuple[str, ...]

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> AdvisoryRecord:
        """A row of ``SELECT_ADVISORIES``: the columns, then the JSON record."""
        (position, advisory_id, database, modified, recorded_at, published, withdrawn,
         score, severity, summary, record) = row  # fmt: skip
        data = orjson.loads(record)
        return cls(
            position, advisory_id, database, modified, recorded_at, published, withdrawn,
            score, severity, summary, aliases=tuple(data["aliases"]),
            cvss=tuple(data["severity"]), affected=tuple(data["affected"]),
            unmatched=tuple(data["unmatched"]),
        )  # fmt: skip


SELECT_ADVISORIES = f"SELECT {', '.join(ADVISORY_COLUMNS)} FROM advisories"


def _known(known_at: datetime | None) -> tuple[str, list[Any]]:
    if known_at is None:
        return "", []
    return " AND recorded_at <= ?", [to_micros(known_at)]


def key_of(names: Iterable[str]) -> str:
    """What a vulnerability is called (``vulns`` rows, alerts): its first CVE id among its
    records' ids and aliases, else the smallest of them."""
    return min(names, key=lambda name: (not name.startswith("CVE-"), name))


def latest(records: Iterable[AdvisoryRecord]) -> list[AdvisoryRecord]:
    """The latest version of each (database, id) among ``records``: the greatest
    ``modified``, ties by the later position."""
    best: dict[tuple[str, str], AdvisoryRecord] = {}
    for record in records:
        key = (record.database, record.advisory_id)
        held = best.get(key)
        if held is None or (record.modified, record.position) > (held.modified, held.position):
            best[key] = record
    return sorted(best.values(), key=lambda r: (r.advisory_id, r.database))


def group(tx: Tx, advisory_id: str, known_at: datetime | None = None) -> list[AdvisoryRecord]:
    """The latest version (as known at ``known_at``) of every record about the same
    vulnerability as ``advisory_id``: joined through the ids and aliases of those latest
    versions, transitively (an alias a record has since dropped joins nothing). An id no
    record names is UnknownName, and so is one recorded only after ``known_at`` (the
    message says when it was recorded)."""
    recorded, params = _known(known_at)
    found: dict[tuple[str, str], AdvisoryRecord] = {}
    seen: set[str] = set()
    todo = {advisory_id}
    while todo:
        seen |= todo
        marks = ", ".join("?" * len(todo))
        # Every record with a version naming one of these, then its latest version.
        keys = {
            (database, record_id)
            for database, record_id in tx.tuples(
                "SELECT DISTINCT a.database, a.advisory_id FROM advisory_names n JOIN advisories a "
                f"ON a.position = n.position WHERE n.name IN ({marks}){recorded}",
                [*sorted(todo), *params],
            )
        } - found.keys()
        names = todo
        todo = set()
        for record in _latest_of(tx, keys, known_at):
            if names & {record.advisory_id, *record.aliases}:
                found[record.database, record.advisory_id] = record
                todo |= {record.advisory_id, *record.aliases} - seen
    if not found:
        raise _unknown(tx, advisory_id, known_at)
    return sorted(found.values(), key=lambda r: (r.advisory_id, r.database))


def _latest_of(
    tx: Tx, keys: Iterable[tuple[str, str]], known_at: datetime | None
) -> list[AdvisoryRecord]:
    """The latest version (as known at ``known_at``) of each (database, id) of ``keys``."""
    ids = sorted({record_id for _, record_id in keys})
    if not ids:
        return []
    recorded, params = _known(known_at)
    marks = ", ".join("?" * len(ids))
    wanted = set(keys)
    return [
        record
        for record in latest(
            AdvisoryRecord.from_row(row)
            for row in tx.tuples(
                f"{SELECT_ADVISORIES} WHERE advisory_id IN ({marks}){recorded}", [*ids, *params]
            )
        )
        if (record.database, record.advisory_id) in wanted
    ]


def _unknown(tx: Tx, advisory_id: str, known_at: datetime | None) -> UnknownName:
    first = tx.tuples(
        "SELECT MIN(a.recorded_at) FROM advisory_names n JOIN advisories a "
        "ON a.position = n.position WHERE n.name = ?",
        [advisory_id],
    )
    if known_at is not None and first and first[0][0] is not None:
        from projections.queries import iso

        return UnknownName(
            f"advisory {advisory_id!r} was first recorded at {iso(first[0][0])}, "
            f"after --known-at {iso(to_micros(known_at))}"
        )
    return UnknownName(
        f"advisory {advisory_id!r} is not in the ledger: no record has it as its id or an "
        "alias (import the database's file with `ledger advisories import FILE`)"
    )


def first_recorded(
    tx: Tx, records: Sequence[AdvisoryRecord], known_at: datetime | None = None
) -> int:
    """When the ledger first recorded any version of ``records`` (as known at
    ``known_at``): since then it knew of the vulnerability, whatever changed later."""
    recorded, params = _known(known_at)
    ids = sorted({r.advisory_id for r in records})
    marks = ", ".join("?" * len(ids))
    [(first,)] = tx.tuples(
        f"SELECT MIN(recorded_at) FROM advisories WHERE advisory_id IN ({marks}){recorded}",
        [*ids, *params],
    )
    return int(first)


def versions_of(tx: Tx, advisory_id: str) -> list[AdvisoryRecord]:
    """Every recorded version of every record of ``advisory_id``'s group, oldest first."""
    records = group(tx, advisory_id)
    ids = sorted({r.advisory_id for r in records})
    marks = ", ".join("?" * len(ids))
    rows = tx.tuples(
        f"{SELECT_ADVISORIES} WHERE advisory_id IN ({marks}) ORDER BY recorded_at, position", ids
    )
    return [AdvisoryRecord.from_row(row) for row in rows]


def all_latest(tx: Tx, known_at: datetime | None = None) -> list[AdvisoryRecord]:
    """The latest version of every advisory recorded (by ``known_at``)."""
    recorded, params = _known(known_at)
    return latest(
        AdvisoryRecord.from_row(row)
        for row in tx.tuples(f"{SELECT_ADVISORIES} WHERE 1 = 1{recorded}", params)
    )


def describe(package: dict[str, Any]) -> str:
    """An affected package and the versions it covers, for people:
    ``openssl (NVD openssl:openssl) >=1.0.1,<1.0.1g`` or
    ``pypi jinja2: introduced 0, fixed 2.11.3``."""
    if package["ecosystem"] == CPE:
        who = f"{package['name']} (NVD {package.get('vendor') or '*'}:{package['name']})"
    else:
        written = package.get("source_ecosystem") or package["ecosystem"]
        who = f"{package['ecosystem']} {package['name']} ({written})"
    parts: list[str] = []
    for bound in package.get("bounds", ()):
        clauses = []
        if bound.get("start") is not None:
            clauses.append((">" if bound.get("start_excluding") else ">=") + bound["start"])
        if bound.get("end") is not None:
            clauses.append(("<=" if bound.get("end_including") else "<") + bound["end"])
        parts.append(",".join(clauses) or "every version")
    for range_ in package.get("ranges", ()):
        events = ", ".join(f"{k} {v}" for event in range_["events"] for k, v in event.items())
        parts.append(f"{events} ({range_['type']})")
    if versions := package.get("versions"):
        shown = ", ".join(versions[:10]) + (
            f" and {len(versions) - 10} more" if len(versions) > 10 else ""
        )
        parts.append(f"versions {shown}")
    return f"{who}: {'; '.join(parts) or 'no versions given'}"
