"""OSV records as advisory events: records from the OSV schema repository's own test data
(tests/fixtures/advisories/README.md says which), and small records for each rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ledger.advisories.files import read_advisories
from ledger.events import AdvisoryRecorded, OsvRange, RangeEvent
from ledger.importers.base import ImportRefused

FIXTURES = Path(__file__).parent.parent / "fixtures" / "advisories"
OSV = FIXTURES / "osv"


def read(name: str) -> AdvisoryRecorded:
    (event,) = read_advisories(OSV / name, actor="tester")
    return event


def write(tmp_path: Path, record: Any, name: str = "record.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(record))
    return path


def record(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "schema_version": "1.7.0",
        "id": "GHSA-aaaa-bbbb-cccc",
        "modified": "2026-01-02T03:04:05Z",
        "published": "2026-01-01T00:00:00Z",
        "summary": "A flaw",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "Requests"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}
                ],
            }
        ],
    }
    base.update(fields)
    return base


@pytest.mark.parametrize("name", sorted(path.name for path in OSV.iterdir()))
def test_fixtures_follow_the_published_schema(name: str) -> None:
    """Every OSV fixture validates against the schema repository's validation/schema.json
    (copied as osv-schema.json), so the parser is tested on what the schema allows."""
    schema = json.loads((FIXTURES / "osv-schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    assert [
        error.message for error in validator.iter_errors(json.loads((OSV / name).read_text()))
    ] == []


def test_schema_repository_records_all_read() -> None:
    events = list(read_advisories(OSV, actor="tester"))
    assert [event.advisory_id for event in events] == [
        "CVE-2018-5407",
        "CVE-2023-41045",
        "DSA-2896-1",
        "GHSA-35c4-f3rq-f9g3",
        "GHSA-mr95-9rr4-668f",
        "GO-2020-0001",
        "PYSEC-2023-74",
        "RHSA-2024:4546",
    ]
    assert {event.database for event in events} == {"osv"}


def test_pypi_record_with_git_and_ecosystem_ranges() -> None:
    event = read("PYSEC-2023-74.json")
    (package,) = event.affected
    assert (package.ecosystem, package.name, package.source_ecosystem) == (
        "pypi",
        "requests",
        "PyPI",
    )
    assert package.purl == "pkg:pypi/requests"
    assert package.ranges == (
        OsvRange(
            type="ECOSYSTEM", events=(RangeEvent(introduced="2.3.0"), RangeEvent(fixed="2.31.0"))
        ),
    )
    assert "2.30.0" in package.versions
    assert event.unmatched == (
        "affected[0]: a GIT range of https://github.com/psf/requests: commits, which closures "
        "do not hold",
    )
    assert event.modified == datetime(2023, 6, 5, 1, 13, 0, 534973, tzinfo=UTC)


def test_go_semver_range_and_aliases() -> None:
    event = read("GO-2020-0001.json")
    assert event.aliases == ("CVE-2020-36567", "GHSA-6vm3-jj99-7229")
    (package,) = event.affected
    assert (package.ecosystem, package.name) == ("golang", "github.com/gin-gonic/gin")
    assert package.ranges[0].type == "SEMVER"
    assert event.summary == "Arbitrary log line injection in github.com/gin-gonic/gin"


def test_maven_names_kept_as_written() -> None:
    names = {(p.ecosystem, p.name) for p in read("GHSA-mr95-9rr4-668f.json").affected}
    assert all(ecosystem == "maven" and ":" in name for ecosystem, name in names)


def test_purl_gives_the_type_and_details_give_the_summary() -> None:
    event = read("CVE-2018-5407.json")
    alpine = event.affected[0]
    assert (alpine.ecosystem, alpine.source_ecosystem) == ("apk", "Alpine:v3.3")
    assert alpine.purl == "pkg:apk/alpine/openssl?arch=source"
    assert event.summary.startswith("Simultaneous Multi-threading (SMT)")
    assert event.severity[0].type == "CVSS_V3"
    assert event.severity[0].score is None


def test_heartbleed_in_debian() -> None:
    event = read("DSA-2896-1.json")
    (package,) = event.affected
    assert (package.ecosystem, package.name, package.source_ecosystem) == (
        "deb",
        "openssl",
        "Debian:7",
    )
    assert package.ranges[0].events[-1] == RangeEvent(fixed="1.0.1e-2+deb7u5")


def test_red_hat_and_withdrawn_records() -> None:
    assert {p.ecosystem for p in read("RHSA-2024_4546.json").affected} == {"rpm"}
    withdrawn = read("GHSA-35c4-f3rq-f9g3.json")
    assert withdrawn.withdrawn == datetime(2018, 10, 11, 17, 29, 49, tzinfo=UTC)
    assert withdrawn.affected[0].ecosystem == "gem"


def test_git_only_record_without_package_matches_nothing() -> None:
    event = read("CVE-2023-41045.json")
    assert event.affected == ()
    assert event.unmatched == (
        "affected[0]: a GIT range of https://github.com/graylog2/graylog2-server: commits, "
        "which closures do not hold",
    )


def test_unknown_ecosystem_and_non_cvss_severity(tmp_path: Path) -> None:
    given = record(
        severity=[
            {"type": "Ubuntu", "score": "high"},
            {
                "type": "CVSS_V4",
                "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
            },
        ],
        affected=[
            {"package": {"ecosystem": "Linux", "name": "Kernel"}, "versions": ["6.1"]},
            {"package": {"ecosystem": "npm", "name": "@scope/name"}, "versions": ["1.0.0"]},
        ],
    )
    (event,) = read_advisories(write(tmp_path, given), actor="tester")
    assert [s.type for s in event.severity] == ["CVSS_V4"]
    assert [(p.ecosystem, p.name, p.versions) for p in event.affected] == [
        ("npm", "@scope/name", ("1.0.0",))
    ]
    assert event.unmatched == (
        "affected[0]: Kernel of the Linux ecosystem, for which the ledger knows no package URL "
        "type",
    )


def test_a_range_without_introduced_is_kept_for_show_to_explain(tmp_path: Path) -> None:
    ranges = [{"type": "SEMVER", "events": [{"fixed": "1.0.0"}]}]
    given = record(affected=[{"package": {"ecosystem": "npm", "name": "x"}, "ranges": ranges}])
    (event,) = read_advisories(write(tmp_path, given), actor="tester")
    assert event.affected[0].ranges == (
        OsvRange(type="SEMVER", events=(RangeEvent(fixed="1.0.0"),)),
    )


def test_a_list_of_records(tmp_path: Path) -> None:
    records = [
        record(id="PYSEC-2026-1"),
        record(id="PYSEC-2026-2", summary="", details="Long\nstory"),
    ]
    events = list(read_advisories(write(tmp_path, records), actor="tester"))
    assert [event.advisory_id for event in events] == ["PYSEC-2026-1", "PYSEC-2026-2"]
    assert events[1].summary == "Long\nstory"


@pytest.mark.parametrize(
    ("given", "field", "reason"),
    [
        (record(modified=None), "modified", "missing"),
        (record(modified="2026-01-02"), "modified", "RFC 3339"),
        (
            record(
                affected=[
                    {
                        "package": {"ecosystem": "PyPI", "name": "x"},
                        "ranges": [
                            {"type": "ECOSYSTEM", "events": [{"introduced": "0", "fixed": "1"}]}
                        ],
                    }
                ]
            ),
            "affected[0].ranges[0] (the event's affected[0].ranges[0].events[0])",
            "exactly one of introduced, fixed",
        ),
        (
            record(
                affected=[
                    {
                        "package": {"ecosystem": "PyPI", "name": "x"},
                        "ranges": [{"type": "DATE", "events": []}],
                    }
                ]
            ),
            "affected[0].ranges[0].type",
            "'DATE' is none of ECOSYSTEM, SEMVER, GIT",
        ),
        (
            record(affected=[{"package": {"ecosystem": "PyPI", "name": "x", "purl": "pypi/x"}}]),
            "affected[0].package.purl",
            "not a package URL",
        ),
        (record(aliases="CVE-2026-1"), "aliases", "expected a list"),
    ],
)
def test_refusal_names_file_record_and_field(
    tmp_path: Path, given: dict[str, Any], field: str, reason: str
) -> None:
    path = write(tmp_path, [record(id="PYSEC-2026-0"), given])
    with pytest.raises(ImportRefused) as refused:
        list(read_advisories(path, actor="tester"))
    assert refused.value.file == str(path)
    assert refused.value.position == "record 1 (GHSA-aaaa-bbbb-cccc)"
    assert refused.value.reason.startswith(f"{field}: ")
    assert reason in refused.value.reason
