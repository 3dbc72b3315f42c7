"""Groups: when alerts become messages — Alertmanager's grouping and timing — and what
``ledger alerts`` shows of the alert state.

- **Groups.** The alerts of one generation of one env form a group (health alerts: one
  group per env; advisory alerts: one group per vulnerability, across envs), and a
  group is one message: the first after ``group_wait``, a changed
  group (an alert new, grown, shrunk or resolved) at most every ``group_interval``, an
  unchanged firing alert again only after ``repeat_interval``.
- **Silences** (``collectors.silences``) mute matching alerts while active: silenced
  alerts are kept and tracked but not sent; still firing when the silence ends, they are
  sent (after ``group_wait``/``group_interval`` as usual). An alert that resolved before
  anyone was told it fired is dropped without a message.

Times for the intervals are wall-clock seconds from an injectable clock; fact times are
only shown.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from collectors.alert_tables import COLLECTOR, AlertRow, iso, lock
from collectors.alerts import STALE
from collectors.exposure_state import stored_packages, stored_vulnerabilities
from collectors.fleet import Fleet
from collectors.kinds import ADVISORY, FIRING, HEALTH_KINDS, RESOLVED
from collectors.messages import AdvisoryNotice, AlertNotice, GroupNotice, summarise
from collectors.silences import Silence, read_silences
from ledger.application import batched
from projections.store import AnyViewRecorder, Tx
from projections.view import IN_LIST

_TO_TELL = "(status = 'firing' OR (version <> notified_version AND status <> 'stale'))"
"""Alerts a message may be about: firing, or changed since Slack was told. Stale alerts
(``collectors.alerts.STALE``) never are."""

Enqueue = Callable[[Tx, GroupNotice, float], int]
"""Puts a message about a group in the outbox (same transaction); returns its id."""


@dataclass(frozen=True)
class Timing:
    """Alertmanager's intervals, in seconds."""

    group_wait: float = 30.0
    group_interval: float = 300.0
    repeat_interval: float = 4 * 3600.0


@dataclass(frozen=True)
class _Plan:
    """What to do about one group now."""

    group_key: str
    due: float | None
    """When a message is due (None: nothing to say)."""
    send: tuple[AlertRow, ...]
    resolved: tuple[AlertRow, ...]
    drop: tuple[AlertRow, ...]
    """Resolved before anyone was told they fired: marked as told, no message."""
    closes: bool
    """Nothing left firing or untold after this: the group's episode ends."""
    first: bool
    """No message yet in the group's episode: the first waits out ``group_wait``."""


class AlertGroups:
    """The groups of alerts in the ledger's database: time turns them into messages."""

    def __init__(self, fleet: Fleet, timing: Timing) -> None:
        self.fleet = fleet
        self.timing = timing

    def due(self, tx: Tx, now: float) -> bool:
        """Whether an evaluation now would send or drop anything (reads only)."""
        return any(p.drop or (p.due is not None and p.due <= now) for p in self._plans(tx, now))

    def pending(self, tx: Tx, now: float) -> bool:
        """Whether a group has a message due now or waits out its ``group_wait`` (reads
        only). A changed group held back by ``group_interval``, or an unchanged firing
        alert waiting for ``repeat_interval``, is not pending: those waits are long."""
        return any(p.due is not None and (p.due <= now or p.first) for p in self._plans(tx, now))

    def evaluate(self, tx: Tx, now: float, enqueue: Enqueue) -> list[int]:
        """Turn the groups that are due into messages (``enqueue``d in this
        transaction) and record what was told; returns the messages' ids."""
        lock(tx, now)
        sent: list[int] = []
        for plan in self._plans(tx, now):
            for alert in plan.drop:
                tx.execute(
                    "UPDATE alerts SET notified_version = ? WHERE fingerprint = ?",
                    (alert.version, alert.fingerprint),
                )
            if plan.due is not None and plan.due <= now:
                notice = self._notice(tx, plan)
                sent.append(enqueue(tx, notice, now))
                tx.execute_many(
                    "UPDATE alerts SET notified_version = ?, notified_status = ?, "
                    "notified_at = ? WHERE fingerprint = ?",
                    [
                        (a.version, a.status, now, a.fingerprint)
                        for a in (*plan.send, *plan.resolved)
                    ],
                )
                tx.execute(
                    "UPDATE alert_groups SET last_sent_at = ? WHERE group_key = ?",
                    (now, plan.group_key),
                )
                closes = plan.closes
            else:
                closes = plan.closes and plan.due is None
            if closes:
                tx.execute(
                    "UPDATE alert_groups SET started_at = NULL, last_sent_at = NULL "
                    "WHERE group_key = ?",
                    (plan.group_key,),
                )
        return sent

    def _plans(self, tx: Tx, now: float) -> list[_Plan]:
        rows = tx.query(
            f"SELECT * FROM alerts WHERE {_TO_TELL} ORDER BY group_key, kind, service, fingerprint"
        )
        if not rows:
            return []
        groups = {
            row["group_key"]: row
            for row in tx.query(
                "SELECT * FROM alert_groups WHERE group_key IN "
                f"(SELECT DISTINCT group_key FROM alerts WHERE {_TO_TELL})"
            )
        }
        active = [s for s in read_silences(tx, now) if s.active(now)]
        by_group: dict[str, list[AlertRow]] = {}
        for row in rows:
            by_group.setdefault(row["group_key"], []).append(AlertRow(**row))
        ids = advisory_ids(tx, [AlertRow(**row) for row in rows])
        return [
            self._plan(groups.get(key, {}), key, alerts, active, now, ids)
            for key, alerts in by_group.items()
        ]

    def _plan(
        self,
        group: dict[str, Any],
        key: str,
        alerts: list[AlertRow],
        active: list[Silence],
        now: float,
        ids: dict[str, tuple[str, ...]],
    ) -> _Plan:
        t = self.timing
        drop = tuple(
            a for a in alerts if a.status == RESOLVED and a.changed and a.notified_status != FIRING
        )
        live = [a for a in alerts if a not in drop]
        visible = [a for a in live if not muted(a, active, ids)]
        changed = [a for a in visible if a.changed]
        repeat = [
            a
            for a in visible
            if a.status == FIRING
            and not a.changed
            and a.notified_at is not None
            and now >= a.notified_at + t.repeat_interval
        ]
        started, last_sent = group.get("started_at"), group.get("last_sent_at")
        due: float | None = None
        if changed or repeat:
            if last_sent is None:
                due = now if started is None else started + t.group_wait
            else:
                due = last_sent + t.group_interval
        untold = [a for a in live if a.changed]
        return _Plan(
            group_key=key,
            due=due,
            send=tuple(a for a in visible if a.status == FIRING),
            resolved=tuple(a for a in changed if a.status == RESOLVED),
            drop=drop,
            closes=not any(a.status == FIRING for a in live) and all(a in changed for a in untold),
            first=last_sent is None,
        )

    def _notice(self, tx: Tx, plan: _Plan) -> GroupNotice:
        alerts = (*plan.send, *plan.resolved)
        hosts: dict[str, list[dict[str, Any]]] = {}
        for batch in batched([a.fingerprint for a in alerts], IN_LIST):
            for row in tx.query(
                "SELECT fingerprint, host, build_id, reason FROM alert_hosts "
                f"WHERE fingerprint IN ({', '.join('?' * len(batch))}) ORDER BY host",
                batch,
            ):
                hosts.setdefault(row["fingerprint"], []).append(row)
        versions = self.fleet.versions(row["build_id"] for rows in hosts.values() for row in rows)

        def notice(alert: AlertRow) -> AlertNotice:
            mine = hosts.get(alert.fingerprint, [])
            builds = sorted({row["build_id"] for row in mine} - {""})
            return AlertNotice(
                fingerprint=alert.fingerprint,
                env=alert.env,
                service=alert.service,
                generation=alert.generation,
                kind=alert.kind,
                status=alert.status,
                hosts=tuple(row["host"] for row in mine),
                total_hosts=alert.total_hosts,
                builds=tuple((build, versions.get(build)) for build in builds),
                reasons=tuple(Counter(row["reason"] for row in mine).most_common()),
                detail=alert.detail,
                resolution=alert.resolution,
                new=alert.notified_status != FIRING,
                packages=(
                    tuple(stored_packages(tx, COLLECTOR, alert.detail, alert.env))
                    if alert.kind == ADVISORY and alert.status == FIRING
                    else ()
                ),
            )

        first = alerts[0]
        group_generation = 0 if first.kind in HEALTH_KINDS.values() else first.generation
        advisory = None
        if first.kind == ADVISORY:
            known = stored_vulnerabilities(tx, COLLECTOR, [first.detail]).get(first.detail)
            advisory = AdvisoryNotice(
                first.detail,
                known.ids if known else (first.detail,),
                known.score if known else None,
                known.severity if known else None,
                known.summary if known else "",
            )
        return GroupNotice(
            plan.group_key,
            first.env,
            group_generation,
            tuple(map(notice, plan.send)),
            tuple(map(notice, plan.resolved)),
            advisory,
        )


def advisory_ids(tx: Tx, alerts: list[AlertRow]) -> dict[str, tuple[str, ...]]:
    """Fingerprint → the ids of an advisory alert's vulnerability (what silences match)."""
    keys = {a.detail for a in alerts if a.kind == ADVISORY}
    known = stored_vulnerabilities(tx, COLLECTOR, keys) if keys else {}
    return {
        a.fingerprint: known[a.detail].ids if a.detail in known else (a.detail,)
        for a in alerts
        if a.kind == ADVISORY
    }


def muted(alert: AlertRow, active: list[Silence], ids: dict[str, tuple[str, ...]]) -> bool:
    """Whether an active silence mutes the alert (by its vulnerability's ids too)."""
    names = ids.get(alert.fingerprint, ())
    return any(s.matches(alert.env, alert.service, alert.kind, names) for s in active)


# --- reading the state (ledger alerts) -----------------------------------------------


def alert_rows(
    store: AnyViewRecorder, now: float, *, env: str | None = None, resolved: bool = False
) -> list[dict[str, Any]]:
    """The alerts: firing ones, stale ones (known only from health reports whose ttl had
    run out when read: never sent) and those not yet told resolved (every one with
    ``resolved``), with whether a silence mutes them now and when they were sent."""
    with store.transaction(commit=False) as tx:
        clause = (
            ""
            if resolved
            else " AND (status IN ('firing', 'stale') OR version <> notified_version)"
        )
        params: list[Any] = []
        if env:
            clause += " AND env = ?"
            params.append(env)
        rows = tx.query(
            f"SELECT * FROM alerts WHERE 1 = 1{clause} ORDER BY env, generation, kind, service",
            params,
        )
        counts = dict(
            tx.tuples("SELECT fingerprint, COUNT(*) FROM alert_hosts GROUP BY fingerprint")
        )
        active = [s for s in read_silences(tx, now) if s.active(now)]
        ids = advisory_ids(tx, [AlertRow(**row) for row in rows])
    found = []
    for row in rows:
        alert = AlertRow(**row)
        names = ids.get(alert.fingerprint, ())
        muted = [s.id for s in active if s.matches(alert.env, alert.service, alert.kind, names)]
        hosts = int(counts.get(alert.fingerprint, 0))
        summary = summarise(
            alert.kind, alert.env, alert.service, alert.generation, hosts,
            alert.total_hosts, alert.service, alert.detail,
        )  # fmt: skip
        if alert.status == STALE:
            summary += " (stale: the ttl ran out before the collector read it; not paged)"
        found.append(
            {
                "fingerprint": alert.fingerprint,
                "env": alert.env,
                "generation": alert.generation or None,
                "service": alert.service or None,
                "kind": alert.kind,
                "status": alert.status,
                "hosts": hosts,
                "total_hosts": alert.total_hosts or None,
                "summary": summary,
                "resolution": alert.resolution,
                "since": iso(alert.started_at),
                "silenced_by": muted,
                "notified": alert.notified_status if not alert.changed else None,
                "notified_at": iso(alert.notified_at),
            }
        )
    return found
