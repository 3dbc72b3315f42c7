"""Commands for auditors: where a package is deployed (now or then), a host's history,
and what failed or contradicts the stream."""

from __future__ import annotations

from typing import Any

import click

from cli import output
from cli.params import COUNT, GENERATION, env_option, json_option, timestamp
from cli.session import Session, pass_session
from projections import queries
from projections.versions import parse_range


@click.command()
@click.argument("name")
@click.option(
    "--version", help="Only this exact version (e.g. 1.0.1p; every output of it: out, dev…)."
)
@click.option(
    "--version-range",
    metavar="RANGE",
    help="Only versions in this range, e.g. '>=1.0.1,<1.0.2', compared in the package's "
    "ecosystem's order: Nix's builtins.compareVersions for Nix packages (1.0.10 > 1.0.9, "
    "1.0.1p > 1.0.1, 3.0.13-rc1 > 3.0.13), PEP 440 for PyPI, Debian's for deb, semver for npm.",
)
@click.option("--at", "at_", metavar="TIME", help="What was active at that moment instead.")
@click.option(
    "--known-at",
    metavar="TIME",
    help="As the ledger knew it at that moment: facts recorded later are left out "
    "(default: everything recorded).",
)
@click.option(
    "--generation",
    "generation_number",
    type=GENERATION,
    help="In the desired manifest of this generation instead.",
)
@env_option
@click.option("--summary", is_flag=True, help="Only the summary per version, not every host.")
@click.option(
    "--timeline",
    is_flag=True,
    help="The versions over time instead: per env and version, when it first ran, when it "
    "last ran (or how many hosts run it now); --json adds every change of host counts.",
)
@json_option
@pass_session
def where(
    session: Session,
    name: str,
    version: str | None,
    version_range: str | None,
    at_: str | None,
    known_at: str | None,
    generation_number: int | None,
    env: str | None,
    summary: bool,
    timeline: bool,
    as_json: bool,
) -> None:
    """Show every host and service whose active closure holds package NAME.

    NAME is a package name, found in every ecosystem by its rules (pygments finds
    PyPI's Pygments), or a purl for one ecosystem (pkg:pypi/pygments,
    pkg:nix/openssl@3.0.13). Each row: the placement, its build, the package's
    version, the outputs of it the closure holds (Nix: out, bin, dev…) and its store
    path, and since when it has been active. A package no closure ever held, or an
    unknown --env, is an error (exit 2), never an empty answer.

    By default the answer is for now; --at TIME answers for any past moment (add
    --known-at TIME for what the ledger knew then: facts and builds recorded later are
    left out), and --generation N for the desired manifest of a past generation.
    TIME is a date or an ISO 8601 time with timezone.

    \b
    Example:
      ledger where openssl
      ledger where openssl --version-range '>=1.0.1,<1.0.2' --env production
      ledger where openssl --at 2026-01-10T12:00:00Z --summary
      ledger where pkg:pypi/pygments --version-range '>=2.15'
      ledger where zlib --generation 12 --env production --json
      ledger where openssl --timeline --env production
    """
    if version and version_range:
        raise click.UsageError("give --version or --version-range, not both")
    if timeline:
        if version or version_range or at_ or known_at or generation_number or summary:
            raise click.UsageError("--timeline takes only NAME, --env and --json")
        _timeline(session, name, env, as_json)
        return
    at = timestamp(at_, "--at")
    known = timestamp(known_at, "--known-at")
    if generation_number is not None and (at or known):
        raise click.UsageError("give --generation or --at/--known-at, not both")
    options: dict[str, Any] = {
        "version": version,
        "version_range": parse_range(version_range) if version_range else None,
        "env": env,
    }
    views = session.views()
    if summary and generation_number is None:
        # Counted in the database: no need to fetch every placement.
        counts = queries.where_counts(views, name, at=at, known_at=known, **options)
        if as_json:
            output.print_json(counts)
        else:
            output.where_summary(counts)
        return
    found = queries.where(
        views, name, at=at, known_at=known, generation_number=generation_number, **options
    )
    if as_json:
        output.print_json(queries.where_summary(found) if summary else [f.row() for f in found])
        return
    if not summary:
        output.rows_table(
            [f.row() for f in found],
            [
                ("env", "env"),
                ("host", "host"),
                ("service", "service"),
                ("build_id", "build"),
                ("version", "version"),
                ("outputs", "outputs"),
                ("store_path", "store path"),
                ("since", "since (UTC)"),
                ("generation", "gen"),
            ],
            empty=f"no active closure holds {name}",
        )
    if found:
        # A closure may hold two versions of a package: count placements, not rows.
        placements = len({(f.env, f.host, f.service, f.build_id) for f in found})
        hosts = len({(f.env, f.host) for f in found})
        if output.plain():
            # A pipe gets rows only (the summary's with --summary); totals go to stderr.
            output.note(f"{name}: {placements} placements on {hosts} hosts")
            if summary:
                output.where_summary(queries.where_summary(found))
            return
        gap = "" if summary else "\n"
        output.console().print(
            f"{gap}[bold]{output.escape(name)}[/bold]: {placements} placements on {hosts} hosts"
        )
        output.where_summary(queries.where_summary(found))
    elif summary:
        output.console().print(f"[dim]no active closure holds {output.escape(name)}[/dim]")


@click.command()
@click.option("--host", required=True, help="The host.")
@click.option("--service", help="Only this service (host-level health stays out).")
@env_option
@click.option(
    "--limit",
    type=COUNT,
    default=None,
    help="Only the last N entries (default: all).",
)
@json_option
@pass_session
def history(
    session: Session,
    host: str,
    service: str | None,
    env: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """Show everything that happened on a host, in time order, with who reported it.

    Distributions, activations, drains, deactivations, host reports and health changes
    (repeated reports of an unchanged state are left out); facts that happened at the
    same moment in ledger order.

    \b
    Example:
      ledger history --host web-001
      ledger history --host web-001 --service api --limit 20
    """
    rows = queries.history(session.views(), host, service, env)
    if limit:
        rows = rows[-limit:]
    output.answer(
        rows,
        [
            ("position", "pos"),
            ("occurred_at", "occurred (UTC)"),
            ("env", "env"),
            ("service", "service"),
            ("kind", "kind"),
            ("build_id", "build"),
            ("generation", "gen"),
            ("actor", "actor"),
            ("detail", "detail"),
        ],
        as_json=as_json,
        empty=f"nothing recorded for host {host}",
        style=lambda row: "red" if output.failed_kind(row["kind"]) else None,
    )


@click.command()
@env_option
@click.option(
    "--generation",
    type=GENERATION,
    help="Only failures recorded as part of this generation (activations, the generation).",
)
@click.option("--anomalies", is_flag=True, help="Only facts that contradict the stream.")
@json_option
@pass_session
def failures(
    session: Session, env: str | None, generation: int | None, anomalies: bool, as_json: bool
) -> None:
    """Show failures and anomalies, in ledger order.

    Failed builds, distributions, activations and generations, drains that timed out,
    and facts that contradict the stream: an activation of a build never distributed
    to that host, a deactivation of a build never activated there.

    \b
    Example:
      ledger failures --env production
      ledger failures --env production --generation 42
      ledger failures --anomalies --json
    """
    rows = queries.failures(session.views(), env)
    if generation is not None:
        rows = [row for row in rows if row["generation"] == generation]
    if anomalies:
        rows = [row for row in rows if row["problem"] == "anomaly"]
    output.answer(
        rows,
        [
            ("position", "pos"),
            ("occurred_at", "occurred (UTC)"),
            ("env", "env"),
            ("problem", "problem"),
            ("host", "host"),
            ("service", "service"),
            ("build_id", "build"),
            ("generation", "gen"),
            ("reason", "reason"),
        ],
        as_json=as_json,
        empty="no failures recorded",
        style=lambda row: "yellow" if row["problem"] == "anomaly" else "red",
    )


def _timeline(session: Session, name: str, env: str | None, as_json: bool) -> None:
    from projections.timeline import versions_over_time

    answer = versions_over_time(session.views(), name, env)
    if as_json:
        output.print_json(answer)
        return
    output.rows_table(
        [
            {
                **v,
                "first_run": output.when(v["first_run"]),
                "now": f"on {v['hosts_now']} hosts"
                if v["hosts_now"]
                else f"gone since {output.when(v['last_run'])}",
            }
            for v in answer["versions"]
        ],
        [
            ("env", "env"),
            ("version", "version"),
            ("first_run", "first ran (UTC)"),
            ("now", "now"),
        ],
        empty=f"no placement ever held {name}",
    )
