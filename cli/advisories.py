"""Commands for advisories: import NVD and OSV files, list and show what the ledger knows,
and the two questions after an advisory — ``exposure ID`` (where, from when to when) and
``vulns`` (every advisory affecting what runs, most severe first)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli import output
from cli.params import default_actor, env_option, json_option, timestamp
from cli.session import Session, pass_session

if TYPE_CHECKING:
    from projections.matching import CpeMap

CPE_MAP_VARIABLE = "LEDGER_CPE_MAP"

at_option = click.option(
    "--at", "at_", metavar="TIME", help="At that moment instead of now (a date or ISO 8601 time)."
)
known_at_option = click.option(
    "--known-at",
    metavar="TIME",
    help="As the ledger knew it then: advisories, builds and facts recorded later are left out.",
)
cpe_map_option = click.option(
    "--cpe-map",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar=CPE_MAP_VARIABLE,
    show_envvar=True,
    help="NVD products named otherwise than their packages: lines 'vendor:product name' "
    "(e.g. 'linux:linux_kernel linux'). Without it, a product matches components of the "
    "same name, ignoring case.",
)


def _cpe_map(path: Path | None) -> CpeMap:
    from projections.matching import CpeMap

    return CpeMap.EMPTY if path is None else CpeMap.load(path)


@click.group()
def advisories() -> None:
    """Import vulnerability advisories and look at what the ledger holds.

    \b
    Example:
      ledger advisories import nvdcve-2.0-2014.json.gz osv-PyPI.zip
      ledger advisories list
      ledger advisories show CVE-2014-0160
    """


@advisories.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--actor", default=default_actor, show_default="user@host", help="Who records them.")
@json_option
@pass_session
def import_(session: Session, files: tuple[Path, ...], actor: str, as_json: bool) -> None:
    """Record the advisories in FILES: NVD CVE JSON 2.0 feeds (nvdcve-2.0-YYYY.json, .gz
    too) or CVE API 2.0 answers, and OSV records (one, a list, a folder, or the
    per-ecosystem .zip osv.dev publishes). Works offline on what you downloaded.

    Every record is checked before anything is stored: a bad one refuses the import with
    its file, record and reason. A record the ledger already holds (same id, same
    modified time, same content) is skipped; an updated one is a new fact, so what the
    ledger knew when stays answerable (exposure --known-at).

    \b
    Example:
      ledger advisories import nvdcve-2.0-2024.json.gz
      ledger advisories import ~/osv/PyPI.zip ~/osv/Debian.zip --json
    """
    from ledger.advisories.record import checked_advisories, import_size

    ledger = session.open()
    with (
        output.progress_bar("checking", import_size(files), unit="bytes") as checking,
        checked_advisories(ledger, files, actor=actor, progress=checking) as checked,
        output.progress_bar("storing", checked.records, unit="records") as storing,
    ):
        report = checked.store(ledger, storing)
    if as_json:
        output.print_json(report.__dict__)
        return
    stored = f"stored at positions {report.first}-{report.last}" if report.first is not None else ""
    output.console().print(
        f"{report.records} advisory records read: {report.stored} new, "
        f"{report.skipped} already recorded" + (f"; {stored}" if stored else "")
    )


def _when(micros: int | None) -> str | None:
    from projections.queries import iso

    return iso(micros)


@advisories.command("list")
@click.option("--known-at", metavar="TIME", help="As the ledger knew them then.")
@json_option
@pass_session
def list_(session: Session, known_at: str | None, as_json: bool) -> None:
    """List the advisories recorded (the latest version of each), most recently
    modified first.

    \b
    Example:
      ledger advisories list
      ledger advisories list --json | jq '.[] | select(.severity == "critical")'
    """
    from projections.advisories import all_latest

    with session.views().read() as tx:
        records = all_latest(tx, timestamp(known_at, "--known-at"))
    records.sort(key=lambda r: (-r.modified, r.advisory_id))
    rows = [
        {
            "id": r.advisory_id,
            "database": r.database,
            "modified": _when(r.modified),
            "severity": r.severity,
            "score": r.score,
            "packages": len(r.affected),
            "aliases": list(r.aliases),
            "withdrawn": _when(r.withdrawn),
        }
        for r in records
    ]
    output.answer(
        rows,
        [
            ("id", "id"),
            ("database", "db"),
            ("modified", "modified (UTC)"),
            ("severity", "severity"),
            ("score", "score"),
            ("packages", "packages"),
            ("withdrawn", "withdrawn"),
        ],
        as_json=as_json,
        empty="no advisories recorded yet (ledger advisories import FILE)",
    )


@advisories.command("show")
@click.argument("advisory_id", metavar="ID")
@json_option
@pass_session
def show(session: Session, advisory_id: str, as_json: bool) -> None:
    """Show what the ledger holds about advisory ID and its aliases: each database's
    record, the packages and versions it names, what cannot be matched (GIT ranges,
    platform-only configurations), and every version recorded.

    \b
    Example:
      ledger advisories show CVE-2014-0160
      ledger advisories show GHSA-jfh8-c2jp-5v3q --json
    """
    from projections.advisories import describe, group, versions_of

    with session.views().read() as tx:
        records = group(tx, advisory_id)
        history = versions_of(tx, advisory_id)
    data = [
        {
            "id": r.advisory_id,
            "database": r.database,
            "aliases": list(r.aliases),
            "published": _when(r.published),
            "modified": _when(r.modified),
            "recorded_at": _when(r.recorded_at),
            "withdrawn": _when(r.withdrawn),
            "score": r.score,
            "severity": r.severity,
            "cvss": list(r.cvss),
            "summary": r.summary,
            "affected": [{**p, "covers": describe(p)} for p in r.affected],
            "unmatched": list(r.unmatched),
            "versions": [
                {"modified": _when(v.modified), "recorded_at": _when(v.recorded_at)}
                for v in history
                if (v.database, v.advisory_id) == (r.database, r.advisory_id)
            ],
        }
        for r in records
    ]
    if as_json:
        output.print_json(data)
        return
    console = output.console()
    for index, record in enumerate(data):
        if index:
            console.print()
        _show_record(record)


def _show_record(record: dict[str, Any]) -> None:
    console = output.console()
    esc = output.escape
    title = f"[bold]{esc(record['id'])}[/bold] ({record['database']})"
    if record["withdrawn"]:
        title += f" [red]withdrawn {output.when(record['withdrawn'])}[/red]"
    console.print(title)
    if record["aliases"]:
        console.print(f"  also: {esc(', '.join(record['aliases']))}")
    score = "" if record["score"] is None else f"{record['score']:.1f} {record['severity']}"
    console.print(
        f"  published {output.when(record['published']) or '-'}, modified "
        f"{output.when(record['modified'])}, recorded {output.when(record['recorded_at'])}"
        + (f"; CVSS {score}" if score else "")
    )
    if record["summary"]:
        text = textwrap.fill(" ".join(record["summary"].split()), width=96)
        console.print(textwrap.indent(esc(text), "  "))
    for package in record["affected"]:
        console.print(f"  affects {esc(package['covers'])}")
    for text in record["unmatched"]:
        console.print(f"  [yellow]not matched:[/yellow] {esc(text)}")
    if len(record["versions"]) > 1:
        console.print(f"  {len(record['versions'])} versions recorded")


@click.command()
@click.argument("advisory_id", metavar="ID")
@env_option
@at_option
@known_at_option
@cpe_map_option
@json_option
@pass_session
def exposure(
    session: Session,
    advisory_id: str,
    env: str | None,
    at_: str | None,
    known_at: str | None,
    cpe_map: Path | None,
    as_json: bool,
) -> None:
    """Show which hosts advisory ID exposed, and from when to when.

    ID is a CVE, GHSA, OSV… id or any alias of one. First the hosts and services whose
    active closure is affected now (or --at TIME, as the ledger knew it --known-at TIME),
    with the component, its version and the fixed version; then per host and service the
    windows it was exposed, the host-hours in all, and the part after the advisory was
    published and after the ledger recorded it (time to remediate once known).

    An ID no advisory in the ledger has is an error (exit 2), never an empty answer.

    \b
    Example:
      ledger exposure CVE-2014-0160
      ledger exposure CVE-2014-0160 --env production --at 2014-04-20
      ledger exposure GHSA-jfh8-c2jp-5v3q --known-at 2024-06-01 --json
    """
    from projections.exposure import exposure as exposure_of
    from projections.exposure import exposure_json

    answer = exposure_of(
        session.views(),
        advisory_id,
        env=env,
        at=timestamp(at_, "--at"),
        known_at=timestamp(known_at, "--known-at"),
        cpe_map=_cpe_map(cpe_map),
    )
    data = exposure_json(answer)
    if as_json:
        output.print_json(data)
        return
    console = output.console()
    esc = output.escape
    moment = "now" if at_ is None else f"at {output.when(data['horizon'])}"
    console.print(
        f"[bold]{esc(', '.join(data['ids']))}[/bold]: published "
        f"{output.when(data['published']) or 'unknown'}, recorded {output.when(data['recorded'])}"
    )
    if data["withdrawn"]:
        console.print(f"[yellow]withdrawn: {esc(', '.join(data['withdrawn']))}[/yellow]")
    output.rows_table(
        data["affected"],
        [
            ("env", "env"),
            ("host", "host"),
            ("service", "service"),
            ("build_id", "build"),
            ("name", "package"),
            ("version", "version"),
            ("fixed", "fixed in"),
        ],
        empty=f"no active closure is affected {moment}",
    )
    if data["windows"]:
        output.rows_table(
            [
                {
                    **w,
                    "first_exposed": output.when(w["first_exposed"]),
                    "last_exposed": output.when(w["last_exposed"]) or "still exposed",
                    "hours": f"{w['hours']:.1f}",
                }
                for w in data["windows"]
            ],
            [
                ("env", "env"),
                ("host", "host"),
                ("service", "service"),
                ("first_exposed", "first exposed (UTC)"),
                ("last_exposed", "until (UTC)"),
                ("hours", "hours"),
            ],
            empty="",
        )
    after = data["host_hours_after_published"]
    output.note(
        f"{data['hosts_exposed']} hosts ({data['services_exposed']} services) exposed {moment}; "
        f"{data['host_hours']:.1f} host-hours exposed in all"
        + ("" if after is None else f", {after:.1f} after publication")
        + f", {data['host_hours_after_recorded']:.1f} after the ledger recorded it"
    )
    for text in data["unmatched"]:
        output.note(f"not matched: {text}")


@click.command()
@env_option
@at_option
@known_at_option
@click.option(
    "--min-severity",
    type=click.Choice(["low", "medium", "high", "critical"]),
    help="Only advisories scored at least this (CVSS base score).",
)
@cpe_map_option
@json_option
@pass_session
def vulns(
    session: Session,
    env: str | None,
    at_: str | None,
    known_at: str | None,
    min_severity: str | None,
    cpe_map: Path | None,
    as_json: bool,
) -> None:
    """List every advisory affecting what runs, most severe first.

    What runs now, or --at TIME (as known --known-at TIME): one row per vulnerability
    (the records of several databases joined by aliases), ranked by CVSS base score, then
    by hosts exposed, with the package versions affected and what fixes them.

    \b
    Example:
      ledger vulns
      ledger vulns --env production --min-severity high
      ledger vulns --at 2014-04-10 --json
    """
    from projections.vulns import vulns as vulns_of

    rows = vulns_of(
        session.views(),
        env=env,
        at=timestamp(at_, "--at"),
        known_at=timestamp(known_at, "--known-at"),
        min_severity=min_severity,
        cpe_map=_cpe_map(cpe_map),
    )
    if as_json:
        output.print_json(rows)
        return
    output.rows_table(
        [
            {
                **row,
                "score": "" if row["score"] is None else f"{row['score']:.1f}",
                "packages": ", ".join(
                    f"{p['name']} {p['version']}" + (f" (fixed {p['fixed']})" if p["fixed"] else "")
                    for p in row["packages"]
                ),
            }
            for row in rows
        ],
        [
            ("id", "advisory"),
            ("severity", "severity"),
            ("score", "score"),
            ("hosts", "hosts"),
            ("services", "services"),
            ("packages", "packages"),
        ],
        empty="no recorded advisory affects what runs" + ("" if at_ is None else f" at {at_}"),
    )
