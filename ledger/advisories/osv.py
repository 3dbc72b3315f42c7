"""OSV records (https://ossf.github.io/osv-schema/, schema 1.7) as the content of
``advisory_recorded`` events.

What is kept, and how:

- ``id``, ``modified`` (both required by the schema), ``published``, ``withdrawn``,
  ``aliases``; the summary is ``summary``, or the start of ``details`` when there is none,
  1,000 characters at most.
- Severity: the CVSS vectors (``CVSS_V2``, ``CVSS_V3``, ``CVSS_V4``) of the record and of
  its ``affected[]`` entries, each vector once; OSV gives no base score with them. Other
  types (``Ubuntu``'s priorities) are left out: they are not CVSS.
- Affected: each ``affected[].package`` becomes a package whose ecosystem is a purl type:
  the type of its ``purl`` when it has one, else its OSV ecosystem's (the part before the
  first ``:``, so ``Debian:12`` is Debian, hence ``deb``); ``source_ecosystem`` keeps the
  ecosystem as written and the name is kept as written (Maven ``group:artifact``, npm
  ``@scope/name``, a Go module path). ``ECOSYSTEM`` and ``SEMVER`` ranges are kept with
  their events as given, in order, and so are ``versions``. A range without the
  ``introduced`` event the schema requires is kept too (it covers no version, which
  ``ledger advisories show`` says) rather than refusing a whole osv.dev archive over it.
- What cannot be matched is said in ``unmatched``, not guessed: ``GIT`` ranges (commits,
  which closures do not hold), packages of an ecosystem that has no purl type here
  (Android, Linux, OSS-Fuzz, …), and entries that name no package.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from packageurl import PackageURL

from ledger.advisories import (
    Content,
    RecordProblem,
    items_at,
    json_type,
    object_at,
    summary,
    text_at,
)

PURL_TYPES: Mapping[str, str] = {
    "AlmaLinux": "rpm",
    "Alpaquita": "apk",
    "Alpine": "apk",
    "Azure Linux": "rpm",
    "Bitnami": "bitnami",
    "Chainguard": "apk",
    "ConanCenter": "conan",
    "CRAN": "cran",
    "crates.io": "cargo",
    "Debian": "deb",
    "GitHub Actions": "github",
    "Go": "golang",
    "Hackage": "hackage",
    "Hex": "hex",
    "Mageia": "rpm",
    "Maven": "maven",
    "MinimOS": "apk",
    "npm": "npm",
    "NuGet": "nuget",
    "opam": "opam",
    "openEuler": "rpm",
    "openSUSE": "rpm",
    "Packagist": "composer",
    "Photon OS": "rpm",
    "Pub": "pub",
    "PyPI": "pypi",
    "Red Hat": "rpm",
    "Rocky Linux": "rpm",
    "RubyGems": "gem",
    "SUSE": "rpm",
    "SwiftURL": "swift",
    "Ubuntu": "deb",
    "VSCode": "vscode-extension",
    "Wolfi": "apk",
}
"""The purl type of each OSV ecosystem (schema 1.7's list) whose packages are named as a
purl of that type names them. Left out, so ``unmatched``: Android (git projects), GHC,
Linux (the kernel), OSS-Fuzz (project names), Kubernetes (Kubernetes releases of Go
modules), Julia, Bioconductor, FreeBSD, Root, TuxCare, Echo, CleanStart, Docker and
BellSoft hardened images (no purl type of their own, or packages of more than one
kind); a record that gives a ``purl`` is matched by it whatever its ecosystem."""

_CVSS = ("CVSS_V2", "CVSS_V3", "CVSS_V4")
_MATCHABLE_RANGES = ("ECOSYSTEM", "SEMVER")
_RANGE_TYPES = (*_MATCHABLE_RANGES, "GIT")


def content(record: Any) -> Content:
    """The event fields of one OSV record; raises ``RecordProblem`` naming the field that
    cannot be read."""
    if not isinstance(record, dict):
        raise RecordProblem("", f"expected an OSV record (an object), found {json_type(record)}")
    sources: dict[str, str] = {"advisory_id": "id", "summary": "summary"}
    text = text_at("summary", record.get("summary"))
    if not text:
        text = text_at("details", record.get("details")) or ""
        sources["summary"] = "details"
    aliases = items_at("aliases", record.get("aliases"))
    for index in range(len(aliases)):
        sources[f"aliases[{index}]"] = f"aliases[{index}]"
    fields: dict[str, Any] = {
        "advisory_id": text_at("id", record.get("id"), required=True),
        "database": "osv",
        "aliases": aliases,
        "published": text_at("published", record.get("published")),
        "modified": text_at("modified", record.get("modified"), required=True),
        "withdrawn": text_at("withdrawn", record.get("withdrawn")),
        "summary": summary(text),
    }
    severity: list[dict[str, Any]] = []
    _severity("severity", record.get("severity"), severity, sources)
    affected: list[dict[str, Any]] = []
    unmatched: list[str] = []
    for index, given in enumerate(items_at("affected", record.get("affected"))):
        path = f"affected[{index}]"
        entry = object_at(path, given)
        _severity(f"{path}.severity", entry.get("severity"), severity, sources)
        package = _package(path, entry, unmatched, sources, len(affected))
        if package is not None:
            affected.append(package)
    fields["severity"] = severity
    fields["affected"] = affected
    fields["unmatched"] = unmatched
    return Content(fields, sources)


def _severity(
    path: str, given: Any, severity: list[dict[str, Any]], sources: dict[str, str]
) -> None:
    for index, item in enumerate(items_at(path, given)):
        entry_path = f"{path}[{index}]"
        entry = object_at(entry_path, item)
        kind = text_at(f"{entry_path}.type", entry.get("type"), required=True)
        vector = text_at(f"{entry_path}.score", entry.get("score"), required=True)
        if kind not in _CVSS or any(known["vector"] == vector for known in severity):
            continue
        sources[f"severity[{len(severity)}]"] = entry_path
        severity.append({"type": kind, "vector": vector})


def _package(
    path: str,
    entry: Mapping[str, Any],
    unmatched: list[str],
    sources: dict[str, str],
    position: int,
) -> dict[str, Any] | None:
    """The affected package of one ``affected[]`` entry, or None when it goes (said
    plainly) to ``unmatched``."""
    ranges: list[dict[str, Any]] = []
    for index, item in enumerate(items_at(f"{path}.ranges", entry.get("ranges"))):
        range_path = f"{path}.ranges[{index}]"
        given = object_at(range_path, item)
        kind = text_at(f"{range_path}.type", given.get("type"), required=True)
        if kind not in _RANGE_TYPES:
            raise RecordProblem(
                f"{range_path}.type", f"{kind!r} is none of {', '.join(_RANGE_TYPES)}"
            )
        events = items_at(f"{range_path}.events", given.get("events"))
        if kind == "GIT":
            repo = text_at(f"{range_path}.repo", given.get("repo")) or "an unnamed repository"
            unmatched.append(f"{path}: a GIT range of {repo}: commits, which closures do not hold")
            continue
        sources[f"affected[{position}].ranges[{len(ranges)}]"] = range_path
        ranges.append({"type": kind, "events": events})
    versions = items_at(f"{path}.versions", entry.get("versions"))
    if "package" not in entry or entry["package"] is None:
        if versions:
            unmatched.append(
                f"{path}: {len(versions)} versions of no named package, which the ledger "
                "cannot match"
            )
        return None
    package = object_at(f"{path}.package", entry["package"])
    ecosystem = text_at(f"{path}.package.ecosystem", package.get("ecosystem"), required=True)
    name = text_at(f"{path}.package.name", package.get("name"), required=True)
    purl = text_at(f"{path}.package.purl", package.get("purl"))
    assert ecosystem is not None
    kind = PURL_TYPES.get(ecosystem.split(":", 1)[0])
    if purl is not None:
        try:
            kind = PackageURL.from_string(purl).type.lower()
        except ValueError as error:
            raise RecordProblem(f"{path}.package.purl", f"not a package URL ({error})") from None
    if kind is None:
        unmatched.append(
            f"{path}: {name} of the {ecosystem} ecosystem, for which the ledger knows no "
            "package URL type"
        )
        return None
    target = f"affected[{position}]"
    sources[target] = path
    sources[f"{target}.name"] = f"{path}.package.name"
    sources[f"{target}.source_ecosystem"] = f"{path}.package.ecosystem"
    sources[f"{target}.purl"] = f"{path}.package.purl"
    sources[f"{target}.versions"] = f"{path}.versions"
    for index in range(len(versions)):
        sources[f"{target}.versions[{index}]"] = f"{path}.versions[{index}]"
    return {
        "ecosystem": kind,
        "name": name,
        "source_ecosystem": ecosystem,
        "purl": purl,
        "ranges": ranges,
        "versions": versions,
    }
