"""Drift: where what the hosts report differs from what the current generation wants.

An environment's **current generation** is its highest-numbered one: the latest desired
manifest, whether or not its rollout completed. Each host's latest report (the
``reports`` view) is compared with that manifest, placement by placement:

- ``different build``: the host runs another build of a service than the one desired;
- ``missing``: a desired service the host did not report (only for hosts that reported);
- ``unexpected``: a service the host reported that is not desired on it;
- ``no report``: a host of the desired manifest that has never reported (one row).

A report made before the current generation was planned is **stale**: the host may have
been switched since, and only its next report tells. Stale rows are kept (the report
is all the ledger knows) but marked, and counted in the summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from projections.generations import manifest_entries
from projections.queries import Row, env_clause, iso, require_env
from projections.runner import Views
from projections.store import Tx

DIFFERENT, MISSING, UNEXPECTED, NO_REPORT = "different build", "missing", "unexpected", "no report"


@dataclass(frozen=True)
class DriftReport:
    """``envs``: one summary row per environment; ``problems``: one row per drifted
    placement or unreported host, by env, host and service."""

    envs: list[Row]
    problems: list[Row]


def current_generations(tx: Tx, env: str | None = None) -> dict[str, tuple[int, int]]:
    """Each environment's current generation: its number and when it was planned (µs)."""
    clause, params = env_clause(env, "g.env")
    rows = tx.query(
        "SELECT g.env, g.number, g.planned_at FROM generations g "
        "JOIN (SELECT env, MAX(number) AS number FROM generations GROUP BY env) c "
        f"ON c.env = g.env AND c.number = g.number WHERE 1 = 1{clause}",
        params,
    )
    return {r["env"]: (r["number"], r["planned_at"]) for r in rows}


def latest_reports(
    tx: Tx, env: str, host: str | None = None
) -> tuple[dict[str, int], dict[tuple[str, str], dict[str, Any]]]:
    """The env's latest report per host: when each host reported (µs), and its entries
    by (host, service)."""
    clause, params = (" AND host = ?", [env, host]) if host else ("", [env])
    times = {
        r["host"]: r["occurred_at"]
        for r in tx.query(
            f"SELECT host, occurred_at FROM host_report_times WHERE env = ?{clause}", params
        )
    }
    entries = {
        (r["host"], r["service"]): r
        for r in tx.query(
            "SELECT host, service, build_id, artifact, depends_on FROM host_reports "
            f"WHERE env = ?{clause} ORDER BY host, service",
            params,
        )
    }
    return times, entries


def drift(views: Views, env: str | None = None, host: str | None = None) -> DriftReport:
    """Every environment with a generation or a host report (or just ``env``), each host
    (or just ``host``) compared with the env's current generation."""
    clause, params = env_clause(env)
    envs, problems = [], []
    with views.read() as tx:
        require_env(tx, env)
        current = current_generations(tx, env)
        reporting = tx.query(
            f"SELECT DISTINCT env FROM host_report_times WHERE 1 = 1{clause}", params
        )
        for name in sorted(current.keys() | {r["env"] for r in reporting}):
            number, planned_at = current.get(name, (None, None))
            entries = manifest_entries(tx, name, number, host) if number else None
            desired = {(e["host"], e["service"]): e["build_id"] for e in entries or []}
            times, reported = latest_reports(tx, name, host)
            summary, rows = _compare(name, number, planned_at, desired, times, reported)
            envs.append(summary)
            problems += rows
    return DriftReport(envs, problems)


def _compare(
    env: str,
    number: int | None,
    planned_at: int | None,
    desired: dict[tuple[str, str], str],
    times: dict[str, int],
    reported: dict[tuple[str, str], dict[str, Any]],
) -> tuple[Row, list[Row]]:
    stale = {h for h, at in times.items() if planned_at is not None and at < planned_at}

    def row(host: str, problem: str, service: str | None = None) -> Row:
        found = reported.get((host, service)) if service else None
        return {
            "env": env,
            "host": host,
            "service": service,
            "problem": problem,
            "desired_build": desired.get((host, service)) if service else None,
            "reported_build": found["build_id"] if found else None,
            "reported_at": iso(times.get(host)),
            "stale": host in stale,
            "generation": number,
        }

    rows = []
    desired_hosts = {h for h, _ in desired}
    for host in sorted(desired_hosts - times.keys()):
        rows.append(row(host, NO_REPORT))
    for key in sorted(desired.keys() | reported.keys()):
        host, service = key
        if host not in times:
            continue
        if key not in reported:
            rows.append(row(host, MISSING, service))
        elif key not in desired:
            rows.append(row(host, UNEXPECTED, service))
        elif reported[key]["build_id"] != desired[key]:
            rows.append(row(host, DIFFERENT, service))
    rows.sort(key=lambda r: (r["host"], r["service"] or ""))
    hosts = desired_hosts | times.keys()
    drifted = {r["host"] for r in rows if r["problem"] != NO_REPORT}
    unreported = desired_hosts - times.keys()
    summary = {
        "env": env,
        "generation": number,
        "hosts": len(hosts),
        "reported": len(times),
        "matching": len(hosts) - len(drifted) - len(unreported),
        "drifted": len(drifted),
        "unreported": len(unreported),
        "stale": len(stale),
    }
    return summary, rows
