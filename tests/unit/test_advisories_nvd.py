"""NVD CVE JSON 2.0 records as advisory events: the Heartbleed record as NVD serves it,
and small records for each rule the parser applies."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid5

import pytest

from ledger.advisories.files import read_advisories
from ledger.advisories.nvd import Cpe, parse_cpe
from ledger.chain import content_digest
from ledger.events import AdvisoryRecorded, CpeBounds, to_json_dict
from ledger.importers.base import EVENT_ID_NAMESPACE, ImportRefused

FIXTURES = Path(__file__).parent.parent / "fixtures" / "advisories"
HEARTBLEED = FIXTURES / "nvdcve-2.0-heartbleed.json"


def feed(tmp_path: Path, *cves: dict[str, Any], name: str = "nvdcve-2.0-2014.json") -> Path:
    """An NVD feed document holding CVES, written to TMP_PATH."""
    path = tmp_path / name
    document = {
        "resultsPerPage": len(cves),
        "startIndex": 0,
        "totalResults": len(cves),
        "format": "NVD_CVE",
        "version": "2.0",
        "timestamp": "2026-01-02T03:04:05.678",
        "vulnerabilities": [{"cve": cve} for cve in cves],
    }
    path.write_text(json.dumps(document))
    return path


def cve(identifier: str = "CVE-2026-0001", **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": identifier,
        "sourceIdentifier": "cve@mitre.org",
        "published": "2026-01-01T10:00:00.000",
        "lastModified": "2026-01-02T11:00:00.000",
        "vulnStatus": "Analyzed",
        "descriptions": [{"lang": "en", "value": "A flaw."}],
    }
    record.update(fields)
    return record


def configuration(*matches: dict[str, Any], negate: bool = False) -> dict[str, Any]:
    return {"nodes": [{"operator": "OR", "negate": negate, "cpeMatch": list(matches)}]}


def match(criteria: str, *, vulnerable: bool = True, **bounds: str) -> dict[str, Any]:
    return {"vulnerable": vulnerable, "criteria": criteria, **bounds, "matchCriteriaId": "X"}


def only(path: Path) -> AdvisoryRecorded:
    (event,) = read_advisories(path, actor="tester")
    return event


def test_heartbleed_as_nvd_serves_it() -> None:
    event = only(HEARTBLEED)
    assert event.advisory_id == "CVE-2014-0160"
    assert event.database == "nvd"
    assert event.env == "*"
    assert event.source == "import"
    # NVD's times have no offset and are UTC
    assert event.published == datetime(2014, 4, 7, 22, 55, 3, 893000, tzinfo=UTC)
    assert event.modified == datetime(2025, 10, 21, 20, 16, 9, 947000, tzinfo=UTC)
    assert event.occurred_at == event.modified
    assert event.withdrawn is None
    assert event.summary.startswith("The (1) TLS and (2) DTLS implementations in OpenSSL")
    # NVD's own v3.1 score, its v2 score; the secondary source's identical v3.1 vector once
    assert [(s.type, s.vector, s.score) for s in event.severity] == [
        ("CVSS_V3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5),
        ("CVSS_V2", "AV:N/AC:L/Au:N/C:P/I:N/A:N", 5.0),
    ]
    openssl = event.affected[0]
    assert (openssl.ecosystem, openssl.vendor, openssl.name) == ("cpe", "openssl", "openssl")
    assert openssl.bounds == (CpeBounds(start="1.0.1", end="1.0.1g"),)
    assert openssl.versions == ()
    by_name = {package.name: package for package in event.affected}
    assert by_name["micollab"].versions == ("6.0", "7.0", "7.1", "7.2", "7.3", "7.3.0.104")
    assert by_name["s9922l_firmware"].versions == ("16.10.3(3794)",)  # \( and \) unescaped
    assert by_name["filezilla_server"].bounds == (CpeBounds(end="0.9.44"),)
    assert not any(package.name == "application_processing_engine" for package in event.affected)
    assert (
        "configurations[2]: siemens:application_processing_engine_firmware only when running on "
        "cpe:2.3:h:siemens:application_processing_engine:-:*:*:*:*:*:*:*"
    ) in event.unmatched
    assert len(event.unmatched) == 7  # the seven AND configurations with a hardware platform


def test_rejected_record_is_withdrawn_at_its_last_modification(tmp_path: Path) -> None:
    event = only(feed(tmp_path, cve(vulnStatus="Rejected")))
    assert event.withdrawn == datetime(2026, 1, 2, 11, tzinfo=UTC)


def test_english_description_cut_to_a_thousand_characters(tmp_path: Path) -> None:
    long = "word " * 400
    event = only(
        feed(
            tmp_path,
            cve(descriptions=[{"lang": "es", "value": "Un fallo."}, {"lang": "en", "value": long}]),
        )
    )
    assert len(event.summary) == 1000
    assert event.summary.endswith("…")
    assert event.summary.startswith("word word")


def test_severity_primary_first_each_vector_once(tmp_path: Path) -> None:
    v4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
    v30 = "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"

    def metric(kind: str, vector: str, score: float) -> dict[str, Any]:
        return {
            "source": "x",
            "type": kind,
            "cvssData": {"vectorString": vector, "baseScore": score},
        }

    metrics = {
        "cvssMetricV40": [metric("Secondary", v4, 9.3)],
        "cvssMetricV30": [metric("Primary", v30, 9.8), metric("Secondary", v30, 9.8)],
    }
    event = only(feed(tmp_path, cve(metrics=metrics)))
    assert [(s.type, s.vector, s.score) for s in event.severity] == [
        ("CVSS_V3", v30, 9.8),
        ("CVSS_V4", v4, 9.3),
    ]


def test_versions_updates_and_wildcards(tmp_path: Path) -> None:
    configurations = [
        configuration(
            match("cpe:2.3:a:openssl:openssl:1.0.1:beta1:*:*:*:*:*:*"),
            match("cpe:2.3:a:openssl:openssl:1.0.1a:*:*:*:*:*:*:*"),
            match("cpe:2.3:a:openssl:openssl:1.0.1a:-:*:*:*:*:*:*"),  # the same version again
            match("cpe:2.3:a:zlib:zlib:-:*:*:*:*:*:*:*"),
            match(
                "cpe:2.3:a:gnu:glibc:*:*:*:*:*:*:*:*",
                versionStartExcluding="2.0",
                versionEndIncluding="2.3",
            ),
            match("cpe:2.3:o:linux:linux_kernel:*:*:*:*:*:*:*:*"),
            match("cpe:2.3:h:cisco:router:1.0:*:*:*:*:*:*:*"),
            match("cpe:2.3:a:*:*:*:*:*:*:*:*:*:*"),
        )
    ]
    event = only(feed(tmp_path, cve(configurations=configurations)))
    by_name = {package.name: package for package in event.affected}
    assert list(by_name) == ["openssl", "zlib", "glibc", "linux_kernel"]
    assert by_name["openssl"].versions == ("1.0.1-beta1", "1.0.1a")
    assert by_name["zlib"].bounds == (CpeBounds(),)  # '-': every version
    assert by_name["glibc"].bounds == (
        CpeBounds(start="2.0", start_excluding=True, end="2.3", end_including=True),
    )
    assert by_name["linux_kernel"].bounds == (CpeBounds(),)  # no bound at all: every version
    assert event.unmatched == (
        "cpe:2.3:h:cisco:router:1.0:*:*:*:*:*:*:*: hardware, which closures do not hold",
        "cpe:2.3:a:*:*:*:*:*:*:*:*:*:*: no single product to match by name",
    )


def test_negated_nodes_and_platforms_are_said_not_matched(tmp_path: Path) -> None:
    configurations = [
        configuration(match("cpe:2.3:a:vendor:app:*:*:*:*:*:*:*:*"), negate=True),
        {
            "operator": "AND",
            "nodes": [
                {
                    "operator": "OR",
                    "negate": False,
                    "cpeMatch": [match("cpe:2.3:a:acme:agent:2.0:*:*:*:*:*:*:*")],
                },
                {
                    "operator": "OR",
                    "negate": False,
                    "cpeMatch": [
                        match("cpe:2.3:o:microsoft:windows:-:*:*:*:*:*:*:*", vulnerable=False),
                        match("cpe:2.3:o:apple:macos:-:*:*:*:*:*:*:*", vulnerable=False),
                    ],
                },
            ],
        },
    ]
    event = only(feed(tmp_path, cve(configurations=configurations)))
    assert [package.name for package in event.affected] == ["agent"]
    assert event.unmatched == (
        "configurations[0]: not when cpe:2.3:a:vendor:app:*:*:*:*:*:*:*:* (a negated "
        "configuration node, which the ledger does not evaluate)",
        "configurations[1]: acme:agent only when running on "
        "cpe:2.3:o:microsoft:windows:-:*:*:*:*:*:*:* or cpe:2.3:o:apple:macos:-:*:*:*:*:*:*:*",
    )


def test_criteria_not_vulnerable_outside_an_and_are_said_so(tmp_path: Path) -> None:
    configurations = [
        configuration(
            match("cpe:2.3:a:acme:agent:*:*:*:*:*:*:*:*", versionEndExcluding="2.0"),
            match("cpe:2.3:a:acme:agent:1.5:*:*:*:*:*:*:*", vulnerable=False),
        )
    ]
    event = only(feed(tmp_path, cve(configurations=configurations)))
    assert event.unmatched == (
        "configurations[0]: not vulnerable: cpe:2.3:a:acme:agent:1.5:*:*:*:*:*:*:*",
    )


def test_parse_cpe_undoes_escapes() -> None:
    assert parse_cpe(r"cpe:2.3:a:foo\:bar:prod\\uct:1.0\+1:*:*:*:*:*:*:*") == Cpe(
        "a", "foo:bar", "prod\\uct", "1.0+1", "*"
    )
    with pytest.raises(ValueError, match=r"not a CPE 2\.3 name"):
        parse_cpe("cpe:/a:openssl:openssl:1.0.1")


def test_same_record_same_event_id_and_changed_record_new_one(tmp_path: Path) -> None:
    first = only(feed(tmp_path, cve(), name="a.json"))
    again = next(iter(read_advisories(feed(tmp_path, cve(), name="b.json"), actor="someone-else")))
    changed = only(
        feed(tmp_path, cve(descriptions=[{"lang": "en", "value": "Another."}]), name="c.json")
    )
    assert first.event_id == again.event_id
    assert changed.event_id != first.event_id
    assert changed.modified == first.modified


def test_event_id_is_derived_from_database_id_modified_and_content() -> None:
    event = only(HEARTBLEED)
    form = to_json_dict(event)
    envelope = ("event_id", "occurred_at", "recorded_at", "actor", "source", "schema_version")
    digest = content_digest({key: value for key, value in form.items() if key not in envelope})
    name = f"advisory/nvd/CVE-2014-0160/2025-10-21T20:16:09.947000Z/{digest}"
    assert event.event_id == uuid5(EVENT_ID_NAMESPACE, name)


@pytest.mark.parametrize(
    ("record", "field", "reason"),
    [
        (cve(lastModified=None), "cve.lastModified", "missing"),
        (cve(published="yesterday"), "cve.published", "RFC 3339"),
        (
            cve(configurations=[configuration(match("cpe:2.3:a:openssl"))]),
            "cve.configurations[0].nodes[0].cpeMatch[0].criteria",
            "not a CPE 2.3 name",
        ),
        (
            cve(
                configurations=[configuration(match("cpe:2.3:a:evil:bad\x07name:1:*:*:*:*:*:*:*"))]
            ),
            "cve.configurations[0].nodes[0].cpeMatch[0].criteria",
            "control character '\\x07'",
        ),
        (cve(id="not an id"), "cve.id", "not allowed"),
        (
            cve(metrics={"cvssMetricV31": [{"type": "Primary", "cvssData": {"baseScore": 5}}]}),
            "cve.metrics.cvssMetricV31[0].cvssData.vectorString",
            "missing",
        ),
    ],
)
def test_refusal_names_file_record_and_field(
    tmp_path: Path, record: dict[str, Any], field: str, reason: str
) -> None:
    path = feed(tmp_path, cve("CVE-2026-0000"), record)
    with pytest.raises(ImportRefused) as refused:
        list(read_advisories(path, actor="tester"))
    assert refused.value.file == str(path)
    assert refused.value.position == f"record 1 ({record['id']})"
    assert refused.value.reason.startswith(f"{field}: ")
    assert reason in refused.value.reason


def test_a_configuration_with_hundreds_of_platforms_stays_one_readable_sentence(
    tmp_path: Path,
) -> None:
    platforms = [
        match(f"cpe:2.3:h:intel:core_i7-{model}:-:*:*:*:*:*:*:*", vulnerable=False)
        for model in range(500)
    ]
    configurations = [
        {
            "operator": "AND",
            "nodes": [
                {
                    "operator": "OR",
                    "negate": False,
                    "cpeMatch": [match("cpe:2.3:o:intel:microcode:*:*:*:*:*:*:*:*")],
                },
                {"operator": "OR", "negate": False, "cpeMatch": platforms},
            ],
        }
    ]
    (sentence,) = only(feed(tmp_path, cve(configurations=configurations))).unmatched
    assert sentence.startswith(
        "configurations[0]: intel:microcode only when running on "
        "cpe:2.3:h:intel:core_i7-0:-:*:*:*:*:*:*:* or cpe:2.3:h:intel:core_i7-1:"
    )
    assert sentence.endswith("cpe:2.3:h:intel:core_i7-19:-:*:*:*:*:*:*:* and 480 more")
