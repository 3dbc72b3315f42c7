"""NVD CVE JSON 2.0 records (feed files ``nvdcve-2.0-YYYY.json`` and CVE API 2.0 answers:
``{"format": "NVD_CVE", "version": "2.0", "vulnerabilities": [{"cve": {…}}, …]}``) as the
content of ``advisory_recorded`` events.

What is kept, and how:

- ``published`` and ``lastModified`` are written by NVD in UTC without an offset
  (``2014-04-07T22:55:03.893``) and are read as UTC; ``lastModified`` is the event's
  ``modified``. A ``Rejected`` record is withdrawn at its ``lastModified``.
- The summary is the English description, cut to 1,000 characters.
- Severity: every ``cvssData`` of ``metrics.cvssMetricV40``, ``V31``, ``V30`` and ``V2``
  (CVSS_V4, CVSS_V3, CVSS_V3, CVSS_V2) with its base score; each vector once, NVD's own
  (``Primary``) scores first.
- Affected: every ``cpeMatch`` marked ``vulnerable`` whose CPE part is ``a``
  (application) or ``o`` (operating system), grouped per (vendor, product) into one
  ``cpe`` package. A criterion whose version is ``*`` (any) or ``-`` (not applicable:
  the product has no versions, so every version of a component of that name is taken as
  affected) gives a ``CpeBounds`` from ``versionStart…``/``versionEnd…`` (none given: every
  version); a specific version is listed in ``versions``, with the CPE update appended as
  ``VERSION-UPDATE`` when it is neither ``*`` nor ``-`` (``1.0.1-beta1``). CPE 2.3
  backslash escapes are undone (``16.10.3\\(3794\\)`` is ``16.10.3(3794)``). Edition,
  language and target software are not kept: a product matches by name and version.
- What cannot be matched is said in ``unmatched``, not guessed: hardware (part ``h``),
  the platforms of an AND configuration (``vulnerable: false``: "… only when running on
  cpe:2.3:o:…"), criteria marked not vulnerable elsewhere, negated nodes, and criteria
  whose product is a wildcard. A configuration naming hundreds of platforms is said in
  one sentence that lists the first 20 and counts the rest.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ledger.advisories import (
    Content,
    RecordProblem,
    items_at,
    json_type,
    object_at,
    summary,
    text_at,
)

FORMAT = "NVD_CVE"
"""The ``format`` of every NVD CVE JSON 2.0 document."""

_METRICS = (
    ("cvssMetricV40", "CVSS_V4"),
    ("cvssMetricV31", "CVSS_V3"),
    ("cvssMetricV30", "CVSS_V3"),
    ("cvssMetricV2", "CVSS_V2"),
)
_MATCHABLE_PARTS = ("a", "o")
_ANY, _NOT_APPLICABLE = "*", "-"
_LISTED = 20
_CPE_FIELDS = 13  # cpe, 2.3, part, vendor, product, version, update, edition, … other
_UNESCAPED_COLON = re.compile(r"(?<!\\)((?:\\\\)*):")
_ESCAPE = re.compile(r"\\(.)")
_OFFSET = re.compile(r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})$")
_EVERY_VERSION = {"start": None, "start_excluding": False, "end": None, "end_including": False}


@dataclass(frozen=True)
class Cpe:
    """The parts of a CPE 2.3 formatted string the ledger uses, unescaped; ``*`` and
    ``-`` stay as written, since they mean "any" and "not applicable"."""

    part: str
    vendor: str
    product: str
    version: str
    update: str


def parse_cpe(criteria: str) -> Cpe:
    """``cpe:2.3:a:openssl:openssl:1.0.1:beta1:…`` as its parts; ValueError if it is not
    a CPE 2.3 formatted string."""
    fields = _split(criteria)
    if len(fields) != _CPE_FIELDS or fields[0] != "cpe" or fields[1] != "2.3":
        raise ValueError(
            f"not a CPE 2.3 name (cpe:2.3:part:vendor:product:version:update:edition:"
            f"language:sw_edition:target_sw:target_hw:other): {criteria!r}"
        )
    part, vendor, product, version, update = (_unescape(value) for value in fields[2:7])
    if part not in ("a", "o", "h", _ANY):
        raise ValueError(f"CPE part {part!r} is none of a, o, h: {criteria!r}")
    return Cpe(part, vendor, product, version, update)


def _split(criteria: str) -> list[str]:
    if "\\" not in criteria:  # nearly every criterion: nothing escaped
        return criteria.split(":")
    fields: list[str] = []
    start = 0
    for match in _UNESCAPED_COLON.finditer(criteria):
        end = match.end() - 1  # the colon itself
        fields.append(criteria[start:end])
        start = match.end()
    fields.append(criteria[start:])
    return fields


def _unescape(value: str) -> str:
    return _ESCAPE.sub(r"\1", value) if "\\" in value else value


def timestamp(path: str, value: Any, *, required: bool = False) -> str | None:
    """NVD's UTC time without an offset, with the ``Z`` that says so (left to the event
    model to check further); a time that has an offset is kept as it is."""
    text = text_at(path, value, required=required)
    if text is None or _OFFSET.search(text):
        return text
    return text + "Z"


def content(item: Any) -> Content:
    """The event fields of one ``vulnerabilities[]`` item (``{"cve": {…}}``); raises
    ``RecordProblem`` naming the field (a path from the item) that cannot be read."""
    if not isinstance(item, dict):
        raise RecordProblem("", f"expected an object, found {json_type(item)}")
    if "cve" not in item:
        raise RecordProblem("cve", "missing")
    cve = object_at("cve", item["cve"])
    sources: dict[str, str] = {
        "advisory_id": "cve.id",
        "published": "cve.published",
        "modified": "cve.lastModified",
        "withdrawn": "cve.lastModified",
        "summary": "cve.descriptions",
    }
    modified = timestamp("cve.lastModified", cve.get("lastModified"), required=True)
    fields: dict[str, Any] = {
        "advisory_id": text_at("cve.id", cve.get("id"), required=True),
        "database": "nvd",
        "published": timestamp("cve.published", cve.get("published")),
        "modified": modified,
        "withdrawn": modified if cve.get("vulnStatus") == "Rejected" else None,
        "summary": summary(_english(cve)),
        "severity": _severity(cve, sources),
    }
    affected, unmatched = _configurations(cve, sources)
    fields["affected"] = affected
    fields["unmatched"] = unmatched
    return Content(fields, sources)


def _english(cve: Mapping[str, Any]) -> str:
    for index, given in enumerate(items_at("cve.descriptions", cve.get("descriptions"))):
        path = f"cve.descriptions[{index}]"
        description = object_at(path, given)
        if description.get("lang") == "en":
            return text_at(f"{path}.value", description.get("value")) or ""
    return ""


def _severity(cve: Mapping[str, Any], sources: dict[str, str]) -> list[dict[str, Any]]:
    metrics = object_at("cve.metrics", cve.get("metrics"))
    found: list[tuple[bool, str, dict[str, Any]]] = []
    for key, kind in _METRICS:
        for index, given in enumerate(items_at(f"cve.metrics.{key}", metrics.get(key))):
            path = f"cve.metrics.{key}[{index}]"
            metric = object_at(path, given)
            data = object_at(f"{path}.cvssData", metric.get("cvssData"))
            vector = text_at(f"{path}.cvssData.vectorString", data.get("vectorString"))
            if vector is None:
                raise RecordProblem(f"{path}.cvssData.vectorString", "missing")
            score = data.get("baseScore")
            if score is not None and (
                isinstance(score, bool) or not isinstance(score, int | float)
            ):
                raise RecordProblem(
                    f"{path}.cvssData.baseScore", f"expected a number, found {json_type(score)}"
                )
            entry: dict[str, Any] = {"type": kind, "vector": vector, "score": score}
            found.append((metric.get("type") != "Primary", path, entry))
    severity: list[dict[str, Any]] = []
    seen: set[str] = set()
    for _, path, entry in sorted(found, key=lambda found: found[0]):  # stable: Primary first
        if entry["vector"] in seen:
            continue
        seen.add(entry["vector"])
        sources[f"severity[{len(severity)}]"] = f"{path}.cvssData"
        severity.append(entry)
    return severity


@dataclass
class _Product:
    """One (vendor, product) of the record's configurations, as it is being gathered."""

    vendor: str
    name: str
    source: str
    bounds: list[dict[str, Any]] = field(default_factory=list)
    bound_sources: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)
    version_sources: list[str] = field(default_factory=list)


def _configurations(
    cve: Mapping[str, Any], sources: dict[str, str]
) -> tuple[list[dict[str, Any]], list[str]]:
    products: dict[tuple[str, str], _Product] = {}
    unmatched: list[str] = []
    configurations = items_at("cve.configurations", cve.get("configurations"))
    for c_index, given in enumerate(configurations):
        c_path = f"cve.configurations[{c_index}]"
        configuration = object_at(c_path, given)
        vulnerable_names: list[str] = []
        platforms: list[str] = []
        for n_index, given_node in enumerate(
            items_at(f"{c_path}.nodes", configuration.get("nodes"))
        ):
            n_path = f"{c_path}.nodes[{n_index}]"
            node = object_at(n_path, given_node)
            negated = node.get("negate") is True
            for m_index, match in _criteria(n_path, node):
                m_path = f"{n_path}.cpeMatch[{m_index}]"
                criteria = text_at(f"{m_path}.criteria", match.get("criteria"), required=True)
                assert criteria is not None
                if negated:
                    unmatched.append(
                        f"configurations[{c_index}]: not when {criteria} (a negated "
                        "configuration node, which the ledger does not evaluate)"
                    )
                elif match.get("vulnerable") is not True:
                    platforms.append(criteria)
                else:
                    name = _affected(products, unmatched, match, m_path, criteria)
                    if name and name not in vulnerable_names:
                        vulnerable_names.append(name)
        if platforms and configuration.get("operator") == "AND":
            what = _listed(vulnerable_names, ", ") if vulnerable_names else "the record's products"
            unmatched.append(
                f"configurations[{c_index}]: {what} only when running on "
                + _listed(platforms, " or ")
            )
        elif platforms:  # outside an AND, a criterion NVD says is not vulnerable
            unmatched.append(
                f"configurations[{c_index}]: not vulnerable: " + _listed(platforms, ", ")
            )
    affected: list[dict[str, Any]] = []
    for index, product in enumerate(products.values()):
        path = f"affected[{index}]"
        sources[path] = product.source
        sources[f"{path}.name"] = product.source
        sources[f"{path}.vendor"] = product.source
        for position, source in enumerate(product.bound_sources):
            sources[f"{path}.bounds[{position}]"] = source
        for position, source in enumerate(product.version_sources):
            sources[f"{path}.versions[{position}]"] = source
        affected.append(
            {
                "ecosystem": "cpe",
                "name": product.name,
                "vendor": product.vendor,
                "bounds": product.bounds,
                "versions": product.versions,
            }
        )
    return affected, unmatched


def _listed(items: list[str], separator: str) -> str:
    """ITEMS joined, the first ``_LISTED`` of them: a configuration can name hundreds of
    platforms (every CPU model of a microcode advisory), and a sentence must stay one."""
    shown = separator.join(items[:_LISTED])
    more = len(items) - _LISTED
    return f"{shown} and {more} more" if more > 0 else shown


def _criteria(n_path: str, node: Mapping[str, Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    for index, match in enumerate(items_at(f"{n_path}.cpeMatch", node.get("cpeMatch"))):
        yield index, object_at(f"{n_path}.cpeMatch[{index}]", match)


def _affected(
    products: dict[tuple[str, str], _Product],
    unmatched: list[str],
    match: Mapping[str, Any],
    path: str,
    criteria: str,
) -> str | None:
    """Adds one vulnerable criterion to its product; returns ``vendor:product``, or None
    when the criterion went to ``unmatched``."""
    try:
        cpe = parse_cpe(criteria)
    except ValueError as error:
        raise RecordProblem(f"{path}.criteria", str(error)) from None
    if cpe.part == "h":
        unmatched.append(f"{criteria}: hardware, which closures do not hold")
        return None
    if cpe.part not in _MATCHABLE_PARTS or _ANY in (cpe.vendor, cpe.product):
        unmatched.append(f"{criteria}: no single product to match by name")
        return None
    key = (cpe.vendor, cpe.product)
    product = products.get(key)
    if product is None:
        product = products[key] = _Product(cpe.vendor, cpe.product, f"{path}.criteria")
    bounds = _bounds(match, path)
    if cpe.version in (_ANY, _NOT_APPLICABLE):
        bounds = bounds or dict(_EVERY_VERSION)
    else:
        version = cpe.version
        if cpe.update not in (_ANY, _NOT_APPLICABLE, ""):
            version = f"{version}-{cpe.update}"
        if version not in product.versions:
            product.versions.append(version)
            product.version_sources.append(f"{path}.criteria")
    if bounds and bounds not in product.bounds:
        product.bounds.append(bounds)
        product.bound_sources.append(path)
    return f"{cpe.vendor}:{cpe.product}"


def _bounds(match: Mapping[str, Any], path: str) -> dict[str, Any] | None:
    """``CpeBounds`` fields from ``versionStart…``/``versionEnd…``, or None if none given."""
    given = {
        key: text_at(f"{path}.{key}", match.get(key))
        for key in (
            "versionStartIncluding",
            "versionStartExcluding",
            "versionEndIncluding",
            "versionEndExcluding",
        )
    }
    if not any(value is not None for value in given.values()):
        return None
    for side in ("Start", "End"):
        both = (given[f"version{side}Including"], given[f"version{side}Excluding"])
        if None not in both:
            raise RecordProblem(
                f"{path}.version{side}Excluding",
                f"given with version{side}Including: a bound is either included or excluded",
            )
    start_excluding = given["versionStartExcluding"] is not None
    end_including = given["versionEndIncluding"] is not None
    return {
        "start": given["versionStartExcluding" if start_excluding else "versionStartIncluding"],
        "start_excluding": start_excluding,
        "end": given["versionEndIncluding" if end_including else "versionEndExcluding"],
        "end_including": end_including,
    }
