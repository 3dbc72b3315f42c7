"""Alerts: the state of every alert, as facts change it — Alertmanager's behaviour,
with its state in the ledger's database. Which facts alert: ``collectors.rules``; when
alerts become a message: ``collectors.grouping``.

- **Alerts.** An alert is identified by its fingerprint (env, service, generation, kind)
  and gathers the hosts it is about: the 12 hosts where api failed to activate in
  generation 42 are one alert. Kinds: ``collectors.kinds``. Health alerts belong to no
  generation (0); distribution failures and drain timeouts, whose events name none, to
  the env's latest planned generation.
- **Groups.** The alerts of one generation of one env form a group (health alerts: one
  group per env), and a group is one message (``collectors.grouping``).
- **Resolution.** Failures of generation N resolve when N (or a later generation)
  completes, or when a rollback undoes N; a health alert's host when that host/service
  reports another state (critical → ok); a drift alert's host when the host reports what
  the generation wants again, and the whole alert when a newer generation is planned.
- **Advisories.** An ``advisory`` alert per vulnerability (an advisory group,
  ``collectors.exposure_state``) and env fires while a host of the env runs a build it
  affects, with those hosts, and resolves when none does (an upgrade, a withdrawn
  advisory); a rollback to an affected build fires it again. Its ``detail`` holds the
  vulnerability's key (CVE-2014-0160); its group is the vulnerability's, across envs.
- **Stale health.** A health report whose ttl had already run out when the collector
  read it (a first run over months of history, a collector catching up after an outage)
  tells what *was*, not what is: it never pages. Its alert is kept with the status
  ``stale`` — listed by ``ledger alerts``, never sent — until the host reports again; a
  fresh report of the same state makes it fire as any alert. A stale report does not
  join an alert that is firing.

State changes caused by facts are written in the transaction that moves the Slack
collector's tracked position (``Follower.confirm``), so each fact changes the state
exactly once, whatever crashes. The state's times are wall-clock seconds from an
injectable clock; fact times are only shown.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from collectors.alert_tables import COLLECTOR, lock
from collectors.exposure_state import (
    EXPOSURE_KINDS,
    AdvisoryWatch,
    Change,
    Exposed,
    ExposureBook,
)
from collectors.fleet import Fleet
from collectors.follower import tracking_name
from collectors.kinds import ADVISORY, FIRING, GENERATION_KINDS, HEALTH_KINDS, RESOLVED
from collectors.rules import Rules
from ledger.application import Ledger
from ledger.domain import TOPICS
from projections.store import AnyViewRecorder, Tx, to_micros
from projections.view import Fact

FOLLOWED_KINDS = tuple(
    sorted(
        {
            "activation_failed",
            "distribution_failed",
            "drain_timed_out",
            "generation_planned",
            "generation_completed",
            "generation_failed",
            "health_reported",
            "host_reported",
            *EXPOSURE_KINDS,
        }
    )
)
"""The event kinds the Slack collector reads."""

STALE = "stale"
"""The status of a health alert known only from reports whose ttl had run out when the
collector read them: listed, never sent (its version stays its notified version)."""


def stale(event: dict[str, Any], now: float) -> bool:
    """Whether a health report's ttl had run out at ``now`` (epoch seconds). A report
    without a ttl never goes stale."""
    ttl = event.get("ttl_s")
    if ttl is None:
        return False
    ends = to_micros(event["occurred_at"]) + float(ttl) * 1_000_000
    return ends < now * 1_000_000


def never_collected(ledger: Ledger, store: AnyViewRecorder) -> bool:
    """Whether no Slack collector has confirmed anything although the ledger holds
    facts it would read: the alert state says nothing yet, whatever failed."""
    if store.max_tracking_id(tracking_name(COLLECTOR)):
        return False
    follower_topics = tuple(TOPICS[kind] for kind in FOLLOWED_KINDS)
    found = ledger.recorder.select_notifications(
        0, 1, topics=follower_topics, inclusive_of_start=False
    )
    return bool(found)


def fingerprint(env: str, service: str, generation: int, kind: str) -> str:
    """The alert's identity, as a short hex string (stable across restarts)."""
    key = "\x1f".join((env, service, str(generation), kind)).encode()
    return hashlib.sha256(key).hexdigest()[:16]


def group_of(env: str, generation: int, kind: str) -> tuple[str, int]:
    """The group an alert belongs to: its generation's, or its env's health group."""
    if kind in HEALTH_KINDS.values():
        return f"{env} health", 0
    return f"{env} generation {generation}", generation


class AlertBook:
    """The alert state in the ledger's database, as facts change it."""

    def __init__(
        self,
        rules: Rules,
        fleet: Fleet,
        exposure: ExposureBook | None = None,
        advisories: AdvisoryWatch | None = None,
    ) -> None:
        self.rules = rules
        self.fleet = fleet
        self.exposure = exposure
        self.advisories = advisories

    # --- facts ------------------------------------------------------------------------

    def apply(self, tx: Tx, facts: Sequence[Fact], now: float) -> None:
        """Change the alert state for these facts (in the caller's transaction, the
        one that confirms them)."""
        lock(tx, now)
        exposure = self.exposure
        if exposure is not None and self.advisories is not None and facts:
            # Before the first advisory nothing is exposed: no need to look.
            exposure = exposure if self.advisories.seen(facts[-1].notification_id) else None
        changes = exposure.apply(tx, facts) if exposure is not None else []
        for fact in facts:
            handler = getattr(self, f"_on_{fact.kind}", None)
            if handler is not None:
                handler(tx, fact, fact.event, now)
        for change in changes:  # advisory alerts depend on no other kind's state
            self._on_exposure(tx, change, now)
        if exposure is not None:
            exposure.write(tx)

    def _exposure_hosts(self, tx: Tx, fp: str, change: Change, now: float) -> None:
        """A firing advisory alert whose hosts ``change.touched`` changed."""
        assert change.touched is not None
        occurred = to_micros(change.fact.event["occurred_at"])
        changed = False
        for host, rows in sorted(change.touched.items()):
            entry = advisory_hosts(rows).get(host)
            held = tx.tuples(
                "SELECT build_id, reason FROM alert_hosts WHERE fingerprint = ? AND host = ?",
                (fp, host),
            )
            if entry is None and held:
                tx.execute("DELETE FROM alert_hosts WHERE fingerprint = ? AND host = ?", (fp, host))
            elif entry is not None and not held:
                tx.execute(
                    "INSERT INTO alert_hosts (fingerprint, host, build_id, reason, "
                    "occurred_at) VALUES (?, ?, ?, ?, ?)",
                    (fp, host, *entry, occurred),
                )
            elif entry is not None and tuple(held[0]) != entry:
                tx.execute(
                    "UPDATE alert_hosts SET build_id = ?, reason = ?, occurred_at = ? "
                    "WHERE fingerprint = ? AND host = ?",
                    (*entry, occurred, fp, host),
                )
            else:
                continue
            changed = True
        if changed:
            self._changed(tx, fp, change.fact, now)

    def _on_exposure(self, tx: Tx, change: Change, now: float) -> None:
        """An advisory alert fires with exactly the hosts exposed, or resolves."""
        env, name, fact = change.env, change.vulnerability.key, change.fact
        if not self.rules.alerts(env, "", ADVISORY):
            return
        fp = fingerprint(env, name, 0, ADVISORY)
        rows = tx.query("SELECT status FROM alerts WHERE fingerprint = ?", (fp,))
        if not change.exposed:
            if rows and rows[0]["status"] == FIRING:
                self._resolve(tx, fp, change.why, fact, now)
            return
        if rows and rows[0]["status"] == FIRING and change.touched is not None:
            self._exposure_hosts(tx, fp, change, now)  # a few hosts changed: only those
            return
        hosts = advisory_hosts(change.exposed)
        occurred = to_micros(fact.event["occurred_at"])
        group_key = f"advisory {name}"
        changed = False
        if not rows:
            tx.execute(
                "INSERT INTO alerts (fingerprint, env, service, generation, kind, group_key, "
                "status, total_hosts, detail, started_at, changed_at, first_occurred, "
                "position, version, notified_version) "
                "VALUES (?, ?, '', 0, ?, ?, 'firing', 0, ?, ?, ?, ?, ?, 1, 0)",
                (fp, env, ADVISORY, group_key, name, now, now, occurred, fact.position),
            )
        elif rows[0]["status"] != FIRING:  # fires again: a new episode
            tx.execute("DELETE FROM alert_hosts WHERE fingerprint = ?", (fp,))
            tx.execute(
                "UPDATE alerts SET status = 'firing', resolution = NULL, started_at = ?, "
                "first_occurred = ? WHERE fingerprint = ?",
                (now, occurred, fp),
            )
            changed = True
        if not rows or changed:
            tx.execute(
                "INSERT INTO alert_groups (group_key, env, generation) VALUES (?, '*', 0) "
                "ON CONFLICT (group_key) DO NOTHING",
                (group_key,),
            )
            tx.execute(
                "UPDATE alert_groups SET started_at = ? WHERE group_key = ? AND started_at IS NULL",
                (now, group_key),
            )
        held = {
            host: (build, reason)
            for host, build, reason in tx.tuples(
                "SELECT host, build_id, reason FROM alert_hosts WHERE fingerprint = ?", (fp,)
            )
        }
        if held != hosts:
            tx.execute("DELETE FROM alert_hosts WHERE fingerprint = ?", (fp,))
            tx.execute_many(
                "INSERT INTO alert_hosts (fingerprint, host, build_id, reason, occurred_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [(fp, host, build, reason, occurred) for host, (build, reason) in hosts.items()],
            )
            changed = changed or bool(rows)
        if changed:
            self._changed(tx, fp, fact, now)

    def _on_generation_planned(self, tx: Tx, fact: Fact, e: dict[str, Any], now: float) -> None:
        env, number = e["env"], e["number"]
        tx.execute(
            "INSERT INTO alert_generations (env, number, status, planned_at) "
            "VALUES (?, ?, 'planned', ?) ON CONFLICT (env, number) DO NOTHING",
            (env, number, to_micros(e["occurred_at"])),
        )
        for row in self._open(tx, env, ("drift",)):
            if row["generation"] < number:
                self._resolve(tx, row["fingerprint"], f"generation {number} planned", fact, now)
        if e["reason"] == "rollback":
            undone = set(self.fleet.undone_by(env, number))
            for row in self._open(tx, env, GENERATION_KINDS):
                if row["generation"] in undone:
                    why = f"generation {row['generation']} rolled back by generation {number}"
                    self._resolve(tx, row["fingerprint"], why, fact, now)

    def _on_generation_completed(self, tx: Tx, fact: Fact, e: dict[str, Any], now: float) -> None:
        env, number = e["env"], e["number"]
        tx.execute(
            "UPDATE alert_generations SET status = 'completed' WHERE env = ? AND number = ?",
            (env, number),
        )
        for row in self._open(tx, env, GENERATION_KINDS):
            if row["generation"] <= number:
                self._resolve(tx, row["fingerprint"], f"generation {number} completed", fact, now)

    def _on_generation_failed(self, tx: Tx, fact: Fact, e: dict[str, Any], now: float) -> None:
        env, number = e["env"], e["number"]
        tx.execute(
            "UPDATE alert_generations SET status = 'failed' WHERE env = ? AND number = ?",
            (env, number),
        )
        self._fire(tx, fact, now, "", number, "generation_failed", None, detail=e.get("reason"))

    def _on_activation_failed(self, tx: Tx, fact: Fact, e: dict[str, Any], now: float) -> None:
        reason = e["reason"].strip().splitlines()[0] if e["reason"].strip() else "no reason given"
        if e.get("exit_code") is not None:
            reason += f" (exit {e['exit_code']})"
        self._fire(tx, fact, now, e["service"], e["generation"], fact.kind, reason)

    def _on_distribution_failed(self, tx: Tx, fact: Fact, e: dict[str, Any], now: float) -> None:
        reason = e["reason"].strip().splitlines()[0] if e["reason"].strip() else "no reason given"
        generation = self._current(tx, e["env"])[0]
        self._fire(tx, fact, now, e["service"], generation, fact.kind, reason)

    def _on_drain_timed_out(self, tx: Tx, fact: Fact, e: dict[str, Any], now: float) -> None:
        reason = f"{e['in_flight']} still in flight after {e['timeout_s']:g} s"
        generation = self._current(tx, e["env"])[0]
        self._fire(tx, fact, now, e["service"], generation, fact.kind, reason)

    def _on_health_reported(self, tx: Tx, fact: Fact, e: dict[str, Any], now: float) -> None:
        env, host, service = e["env"], e["host"], e.get("service") or ""
        kind = HEALTH_KINDS.get(e["state"])
        open_alerts = self._open(
            tx, env, tuple(HEALTH_KINDS.values()), host=host, service=service,
            statuses=(FIRING, STALE),
        )  # fmt: skip
        for row in open_alerts:
            if row["kind"] == kind:
                continue
            why = f"{host} reports {e['state']}"
            if row["status"] == STALE:
                self._drop_stale_host(tx, row["fingerprint"], host, why)
            else:
                self._drop_host(tx, row["fingerprint"], host, why, fact, now)
        if kind is None:
            return
        lines = (e.get("description") or "").strip().splitlines()
        reason = lines[0] if lines else e["state"]
        if stale(e, now):
            self._keep_stale(tx, fact, now, service, kind, reason)
        else:
            self._fire(tx, fact, now, service, 0, kind, reason)

    def _on_host_reported(self, tx: Tx, fact: Fact, e: dict[str, Any], now: float) -> None:
        env, host = e["env"], e["host"]
        number, status, planned_at = self._current(tx, env)
        if not number:
            return
        wanted = self.fleet.placements(env, number).get(host, {})
        found = {entry["service"]: entry["build_id"] for entry in e["manifest"]}
        drifted = {
            service: _drift_reason(wanted.get(service), found.get(service), number)
            for service in sorted(wanted.keys() | found.keys())
            if wanted.get(service) != found.get(service)
        }
        for row in self._open(tx, env, ("drift",), host=host):
            if row["service"] not in drifted:
                why = f"{host} runs what generation {number} wants"
                self._drop_host(tx, row["fingerprint"], host, why, fact, now)
        # During a rollout hosts differ from the new generation by design, and a report
        # taken before the generation was planned is stale: neither is drift.
        if status != "completed" or to_micros(e["occurred_at"]) < planned_at:
            return
        for service, reason in drifted.items():
            build = found.get(service) or ""
            self._fire(tx, fact, now, service, number, "drift", reason, build_id=build)

    # --- state changes ----------------------------------------------------------------

    def _current(self, tx: Tx, env: str) -> tuple[int, str, int]:
        """The env's latest planned generation as this collector has seen it so far:
        number (0: none), status, when it was planned (µs)."""
        rows = tx.query(
            "SELECT number, status, planned_at FROM alert_generations WHERE env = ? "
            "ORDER BY number DESC LIMIT 1",
            (env,),
        )
        if not rows:
            return 0, "", 0
        return rows[0]["number"], rows[0]["status"], rows[0]["planned_at"]

    @staticmethod
    def _open(
        tx: Tx,
        env: str,
        kinds: Iterable[str],
        *,
        host: str | None = None,
        service: str | None = None,
        statuses: tuple[str, ...] = (FIRING,),
    ) -> list[dict[str, Any]]:
        """Alerts of these kinds in the env (about ``host``, for ``service``) with these
        statuses: firing ones unless told."""
        kinds = sorted(kinds)
        sql = (
            "SELECT a.fingerprint, a.generation, a.kind, a.service, a.status FROM alerts a "
            f"WHERE a.status IN ({', '.join('?' * len(statuses))}) AND a.env = ? "
            f"AND a.kind IN ({', '.join('?' * len(kinds))})"
        )
        params: list[Any] = [*statuses, env, *kinds]
        if service is not None:
            sql += " AND a.service = ?"
            params.append(service)
        if host is not None:
            sql += (
                " AND EXISTS (SELECT 1 FROM alert_hosts h "
                "WHERE h.fingerprint = a.fingerprint AND h.host = ?)"
            )
            params.append(host)
        return tx.query(sql + " ORDER BY a.fingerprint", params)

    def _fire(
        self,
        tx: Tx,
        fact: Fact,
        now: float,
        service: str,
        generation: int,
        kind: str,
        reason: str | None,
        *,
        build_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        """The alert fires (or keeps firing) — about the fact's host, when ``reason`` is
        given. A repeated failure of a host already counted changes nothing."""
        env = fact.event["env"]
        if not self.rules.alerts(env, service, kind):
            return
        fp = fingerprint(env, service, generation, kind)
        occurred = to_micros(fact.event["occurred_at"])
        rows = tx.query("SELECT status FROM alerts WHERE fingerprint = ?", (fp,))
        group_key, group_generation = group_of(env, generation, kind)
        changed = False
        if not rows:
            total = (
                0 if kind in HEALTH_KINDS.values() else self.fleet.hosts(env, generation, service)
            )
            tx.execute(
                "INSERT INTO alerts (fingerprint, env, service, generation, kind, group_key, "
                "status, total_hosts, detail, started_at, changed_at, first_occurred, "
                "position, version, notified_version) "
                "VALUES (?, ?, ?, ?, ?, ?, 'firing', ?, ?, ?, ?, ?, ?, 1, 0)",
                (fp, env, service, generation, kind, group_key, total, detail or "", now, now,
                 occurred, fact.position),
            )  # fmt: skip
        elif rows[0]["status"] in (RESOLVED, STALE):  # fires again: a new episode
            tx.execute("DELETE FROM alert_hosts WHERE fingerprint = ?", (fp,))
            tx.execute(
                "UPDATE alerts SET status = 'firing', resolution = NULL, detail = ?, "
                "started_at = ?, first_occurred = ? WHERE fingerprint = ?",
                (detail or "", now, occurred, fp),
            )
            changed = True
        if not rows or changed:
            tx.execute(
                "INSERT INTO alert_groups (group_key, env, generation) VALUES (?, ?, ?) "
                "ON CONFLICT (group_key) DO NOTHING",
                (group_key, env, group_generation),
            )
            tx.execute(
                "UPDATE alert_groups SET started_at = ? WHERE group_key = ? AND started_at IS NULL",
                (now, group_key),
            )
        if reason is not None:
            host = fact.event["host"]
            build = build_id if build_id is not None else fact.event.get("build_id", "")
            known = tx.query(
                "SELECT 1 AS found FROM alert_hosts WHERE fingerprint = ? AND host = ?", (fp, host)
            )
            if known:
                tx.execute(
                    "UPDATE alert_hosts SET build_id = ?, reason = ?, occurred_at = ? "
                    "WHERE fingerprint = ? AND host = ?",
                    (build, reason, occurred, fp, host),
                )
            else:
                tx.execute(
                    "INSERT INTO alert_hosts (fingerprint, host, build_id, reason, occurred_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (fp, host, build, reason, occurred),
                )
                changed = changed or bool(rows)
        if changed:
            self._changed(tx, fp, fact, now)

    def _keep_stale(
        self, tx: Tx, fact: Fact, now: float, service: str, kind: str, reason: str
    ) -> None:
        """A health report whose ttl had run out when read: its host is listed under a
        ``stale`` alert, which is never sent (its version is kept equal to the version
        Slack was last told of). It joins no firing alert, and does not overwrite a
        resolution Slack has not been told yet."""
        env, host = fact.event["env"], fact.event["host"]
        if not self.rules.alerts(env, service, kind):
            return
        fp = fingerprint(env, service, 0, kind)
        occurred = to_micros(fact.event["occurred_at"])
        why = "stale: its ttl ran out before the collector read it; not paged"
        rows = tx.query(
            "SELECT status, version, notified_version FROM alerts WHERE fingerprint = ?", (fp,)
        )
        if not rows:
            group_key, _ = group_of(env, 0, kind)
            tx.execute(
                "INSERT INTO alerts (fingerprint, env, service, generation, kind, group_key, "
                "status, total_hosts, detail, resolution, started_at, changed_at, "
                "first_occurred, position, version, notified_version) "
                "VALUES (?, ?, ?, 0, ?, ?, 'stale', 0, '', ?, ?, ?, ?, ?, 1, 1)",
                (fp, env, service, kind, group_key, why, now, now, occurred, fact.position),
            )
        elif rows[0]["status"] == RESOLVED and rows[0]["version"] == rows[0]["notified_version"]:
            tx.execute("DELETE FROM alert_hosts WHERE fingerprint = ?", (fp,))
            tx.execute(
                "UPDATE alerts SET status = 'stale', resolution = ?, detail = '', "
                "started_at = ?, changed_at = ?, first_occurred = ?, position = ? "
                "WHERE fingerprint = ?",
                (why, now, now, occurred, fact.position, fp),
            )
        elif rows[0]["status"] != STALE:
            return
        tx.execute(
            "INSERT INTO alert_hosts (fingerprint, host, build_id, reason, occurred_at) "
            "VALUES (?, ?, '', ?, ?) ON CONFLICT (fingerprint, host) DO UPDATE SET "
            "reason = excluded.reason, occurred_at = excluded.occurred_at",
            (fp, host, reason, occurred),
        )

    @staticmethod
    def _drop_stale_host(tx: Tx, fp: str, host: str, why: str) -> None:
        """A host of a stale alert reported another state: it leaves the alert, which
        resolves with its last host — silently, as it was never sent."""
        tx.execute("DELETE FROM alert_hosts WHERE fingerprint = ? AND host = ?", (fp, host))
        left = tx.query("SELECT 1 AS found FROM alert_hosts WHERE fingerprint = ? LIMIT 1", (fp,))
        if not left:
            tx.execute(
                "UPDATE alerts SET status = 'resolved', resolution = ? "
                "WHERE fingerprint = ? AND status = 'stale'",
                (why, fp),
            )

    @staticmethod
    def _changed(tx: Tx, fp: str, fact: Fact, now: float) -> None:
        tx.execute(
            "UPDATE alerts SET version = version + 1, changed_at = ?, position = ? "
            "WHERE fingerprint = ?",
            (now, fact.position, fp),
        )

    def _drop_host(self, tx: Tx, fp: str, host: str, why: str, fact: Fact, now: float) -> None:
        """One host of the alert recovered. The alert resolves with its last host, which
        stays listed: the resolved message says what was firing."""
        others = tx.query(
            "SELECT 1 AS found FROM alert_hosts WHERE fingerprint = ? AND host <> ? LIMIT 1",
            (fp, host),
        )
        if others:
            tx.execute("DELETE FROM alert_hosts WHERE fingerprint = ? AND host = ?", (fp, host))
            self._changed(tx, fp, fact, now)
        else:
            self._resolve(tx, fp, why, fact, now)

    def _resolve(self, tx: Tx, fp: str, why: str, fact: Fact, now: float) -> None:
        tx.execute(
            "UPDATE alerts SET status = 'resolved', resolution = ? "
            "WHERE fingerprint = ? AND status = 'firing'",
            (why, fp),
        )
        self._changed(tx, fp, fact, now)


def advisory_hosts(exposed: Iterable[Exposed]) -> dict[str, tuple[str, str]]:
    """Host → (a build, what it runs that is affected): ``api: openssl 1.0.1f``, the
    services of one host joined by ``; ``."""
    found: dict[str, list[Exposed]] = {}
    for row in exposed:
        found.setdefault(row.host, []).append(row)
    return {
        host: (
            rows[0].build_id,
            "; ".join(
                f"{row.service}: "
                + ", ".join(f"{name} {version}" for name, version, _ in row.packages)
                for row in sorted(rows, key=lambda r: r.service)
            ),
        )
        for host, rows in sorted(found.items())
    }


def _drift_reason(wanted: str | None, found: str | None, number: int) -> str:
    if wanted is None:
        return f"runs {_short(found)}, which generation {number} does not place there"
    if found is None:
        return f"does not run it; generation {number} wants {_short(wanted)}"
    return f"runs {_short(found)}; generation {number} wants {_short(wanted)}"


def _short(build_id: str | None) -> str:
    return (build_id or "")[:12]
