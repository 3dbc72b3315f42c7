"""Advisory files as people download them: gzipped feeds, osv.dev's zips, folders, what is
refused and where, progress, and memory that stays bounded on a large feed."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from ledger.advisories.files import read_advisories, total_bytes
from ledger.events import to_json_dict
from ledger.importers.base import ImportRefused

FIXTURES = Path(__file__).parent.parent / "fixtures" / "advisories"
HEARTBLEED = FIXTURES / "nvdcve-2.0-heartbleed.json"
OSV = FIXTURES / "osv"


def forms(path: Path) -> list[dict[str, Any]]:
    return [to_json_dict(event) for event in read_advisories(path, actor="tester")]


def gzipped(source: Path, target: Path) -> Path:
    target.write_bytes(gzip.compress(source.read_bytes()))
    return target


def zipped(folder: Path, target: Path, *extra: tuple[str, str]) -> Path:
    """FOLDER's files as members, in reverse order (the reader sorts them), plus EXTRA."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.iterdir(), reverse=True):
            archive.write(file, file.name)
        for name, text in extra:
            archive.writestr(name, text)
    return target


def test_gzipped_feed_reads_as_the_plain_one_with_compressed_progress(tmp_path: Path) -> None:
    path = gzipped(HEARTBLEED, tmp_path / "nvdcve-2.0-2014.json.gz")
    seen: list[int] = []
    events = [to_json_dict(e) for e in read_advisories(path, actor="tester", progress=seen.append)]
    assert events == forms(HEARTBLEED)
    assert total_bytes(path) == path.stat().st_size < HEARTBLEED.stat().st_size
    assert seen == sorted(seen)
    assert seen[-1] == total_bytes(path)


def test_progress_is_reported_as_a_large_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "nvdcve-2.0-2024.json"
    write_large_feed(path, 2_000)  # about 6 MB
    seen: list[int] = []
    for _ in read_advisories(path, actor="tester", progress=seen.append):
        pass
    assert len(set(seen)) > 50  # a step every 64 KiB at most
    assert seen == sorted(seen)
    assert seen[-1] == path.stat().st_size


def test_osv_zip_reads_its_json_members_in_sorted_order(tmp_path: Path) -> None:
    path = zipped(OSV, tmp_path / "all.zip", ("README.txt", "not an advisory"))
    seen: list[int] = []
    events = [to_json_dict(e) for e in read_advisories(path, actor="tester", progress=seen.append)]
    assert events == forms(OSV)
    assert seen == sorted(seen)
    assert seen[-1] == total_bytes(path) == path.stat().st_size


def test_folder_read_recursively_in_sorted_order(tmp_path: Path) -> None:
    folder = tmp_path / "advisories"
    (folder / "b-osv").mkdir(parents=True)
    gzipped(HEARTBLEED, folder / "a-nvdcve-2.0-2014.json.gz")
    zipped(OSV, folder / "b-osv" / "PyPI.zip")
    shutil.copy(OSV / "GO-2020-0001.json", folder / "c-GO-2020-0001.json")
    (folder / "README.md").write_text("# not read")
    seen: list[int] = []
    ids = [e.advisory_id for e in read_advisories(folder, actor="tester", progress=seen.append)]
    assert ids == ["CVE-2014-0160", *(e["advisory_id"] for e in forms(OSV)), "GO-2020-0001"]
    files = [
        folder / "a-nvdcve-2.0-2014.json.gz",
        folder / "b-osv" / "PyPI.zip",
        folder / "c-GO-2020-0001.json",
    ]
    assert total_bytes(folder) == sum(file.stat().st_size for file in files)
    assert seen == sorted(seen)
    assert seen[-1] == total_bytes(folder)


def test_a_file_is_known_by_its_content_not_its_name(tmp_path: Path) -> None:
    path = gzipped(HEARTBLEED, tmp_path / "download")
    assert forms(path) == forms(HEARTBLEED)


def refusal(path: Path) -> ImportRefused:
    with pytest.raises(ImportRefused) as refused:
        list(read_advisories(path, actor="tester"))
    return refused.value


def test_missing_and_unreadable_paths_are_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nvdcve-2.0-2031.json"
    refused = refusal(missing)
    assert (refused.file, refused.reason) == (str(missing), "no such file or folder")
    with pytest.raises(ImportRefused):
        total_bytes(missing)
    (tmp_path / "folder.json").mkdir()  # a folder named like a file is a folder, left alone
    assert list(read_advisories(tmp_path, actor="tester")) == []


def test_truncated_feed_is_refused_after_the_last_whole_record(tmp_path: Path) -> None:
    text = HEARTBLEED.read_text()
    path = tmp_path / "nvdcve-2.0-2014.json"
    doubled = text.replace(
        '"vulnerabilities": [', '"vulnerabilities": [' + _first_item(text) + ",", 1
    )
    path.write_text(doubled[: len(doubled) - 2000])
    refused = refusal(path)
    assert refused.file == str(path)
    assert refused.position == "after record 0 (CVE-2014-0160)"
    assert "not valid JSON" in refused.reason


def _first_item(text: str) -> str:
    return json.dumps(json.loads(text)["vulnerabilities"][0])


def test_truncated_gzip_is_refused(tmp_path: Path) -> None:
    path = gzipped(HEARTBLEED, tmp_path / "feed.json.gz")
    path.write_bytes(path.read_bytes()[:-100])
    refused = refusal(path)
    assert refused.file == str(path)
    assert "cannot be read" in refused.reason or "not valid JSON" in refused.reason


def test_corrupt_zip_member_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "osv.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.write(OSV / "GO-2020-0001.json", "GO-2020-0001.json")
    data = path.read_bytes()
    at = data.index(b"gin-gonic")  # inside the stored member: its CRC no longer checks out
    path.write_bytes(data[:at] + b"GIN" + data[at + 3 :])
    refused = refusal(path)
    assert refused.file == str(path)
    assert refused.position.startswith("member GO-2020-0001.json")
    assert "cannot be read (Bad CRC-32" in refused.reason


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ({"bomFormat": "CycloneDX", "vulnerabilities": []}, "an SBOM, not an advisory file"),
        (
            {"format": "CVE_RECORD", "vulnerabilities": []},
            "format 'CVE_RECORD' is not NVD CVE JSON",
        ),
        ({"name": "something else"}, "neither NVD CVE JSON 2.0"),
    ],
)
def test_what_is_not_an_advisory_file_is_refused(tmp_path: Path, content: Any, reason: str) -> None:
    path = tmp_path / "file.json"
    path.write_text(json.dumps(content))
    refused = refusal(path)
    assert (refused.file, refused.position) == (str(path), "")
    assert reason in refused.reason


def test_bad_zip_member_is_named(tmp_path: Path) -> None:
    bad = json.dumps({"id": "GHSA-xxxx-yyyy-zzzz", "summary": "no modified"})
    path = zipped(OSV, tmp_path / "osv.zip", ("ZZZ/GHSA-xxxx-yyyy-zzzz.json", bad))
    refused = refusal(path)
    assert refused.file == str(path)
    assert refused.position == "member ZZZ/GHSA-xxxx-yyyy-zzzz.json, record 0 (GHSA-xxxx-yyyy-zzzz)"
    assert refused.reason == "modified: missing"


def test_bad_file_in_a_folder_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "osv"
    shutil.copytree(OSV, folder)
    bad = folder / "PYSEC-2026-9.json"
    bad.write_text(json.dumps({"id": "PYSEC-2026-9", "modified": "not a time"}))
    refused = refusal(folder)
    assert refused.file == str(bad)
    assert refused.position == "record 0 (PYSEC-2026-9)"
    assert refused.reason.startswith("modified: ")


# --- memory -------------------------------------------------------------------------

RECORDS = 20_000


def write_large_feed(path: Path, records: int) -> None:
    """An NVD feed of RECORDS generated CVEs shaped like real ones (descriptions, two CVSS
    metrics, configurations, references), written piece by piece."""
    with path.open("w") as out:
        out.write(f'{{"resultsPerPage": {records}, "startIndex": 0, "totalResults": {records}, ')
        out.write('"format": "NVD_CVE", "version": "2.0", "timestamp": "2026-01-01T00:00:00.000",')
        out.write(' "vulnerabilities": [')
        for index in range(records):
            if index:
                out.write(",")
            out.write(json.dumps({"cve": generated_cve(index)}))
        out.write("]}")


def generated_cve(index: int) -> dict[str, Any]:
    product = f"product{index % 997}"
    cpe = f"cpe:2.3:a:vendor{index % 101}:{product}"
    return {
        "id": f"CVE-2024-{index + 10000}",
        "sourceIdentifier": "cve@mitre.org",
        "published": "2024-03-01T12:00:00.000",
        "lastModified": "2024-06-01T12:00:00.000",
        "vulnStatus": "Analyzed",
        "descriptions": [
            {"lang": "en", "value": f"A buffer overflow in {product} before 2.{index % 50} " * 4},
            {"lang": "es", "value": f"Un desbordamiento de búfer en {product} " * 4},
        ],
        "metrics": {
            "cvssMetricV31": [
                {
                    "source": "nvd@nist.gov",
                    "type": "Primary",
                    "cvssData": {
                        "version": "3.1",
                        "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                        "baseScore": 9.8,
                        "baseSeverity": "CRITICAL",
                    },
                    "exploitabilityScore": 3.9,
                    "impactScore": 5.9,
                }
            ],
            "cvssMetricV2": [
                {
                    "source": "nvd@nist.gov",
                    "type": "Primary",
                    "cvssData": {
                        "version": "2.0",
                        "vectorString": "AV:N/AC:L/Au:N/C:P/I:P/A:P",
                        "baseScore": 7.5,
                    },
                }
            ],
        },
        "weaknesses": [
            {
                "source": "nvd@nist.gov",
                "type": "Primary",
                "description": [{"lang": "en", "value": "CWE-787"}],
            }
        ],
        "configurations": [
            {
                "nodes": [
                    {
                        "operator": "OR",
                        "negate": False,
                        "cpeMatch": [
                            {
                                "vulnerable": True,
                                "criteria": f"{cpe}:*:*:*:*:*:*:*:*",
                                "versionStartIncluding": "1.0",
                                "versionEndExcluding": f"2.{index % 50}",
                                "matchCriteriaId": "9EE79AC6-5484-4A53-8333-373DAD1B5649",
                            },
                            {
                                "vulnerable": True,
                                "criteria": f"{cpe}:0.9:*:*:*:*:*:*:*",
                                "matchCriteriaId": "9EE79AC6-5484-4A53-8333-373DAD1B5650",
                            },
                        ],
                    }
                ]
            }
        ],
        "references": [
            {
                "url": f"https://example.org/advisories/{index}/{n}",
                "source": "cve@mitre.org",
                "tags": ["Third Party Advisory"],
            }
            for n in range(12)
        ],
    }


# Runs in a child process so that its peak RSS is this reading's alone.
_MEASURE = """
import sys
from pathlib import Path
from ledger.advisories.files import read_advisories
def peak():  # VmHWM: this process's own peak RSS (ru_maxrss keeps the parent's across exec)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
before = peak()
count = sum(1 for _ in read_advisories(Path(sys.argv[1]), actor="bench"))
after = peak()
print(count, before * 1024, after * 1024)
"""


@pytest.mark.slow
def test_a_large_feed_is_read_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "nvdcve-2.0-2024.json"
    write_large_feed(path, RECORDS)
    size = path.stat().st_size
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)], capture_output=True, text=True, check=True
    )
    count, before, after = (int(word) for word in done.stdout.split())
    assert count == RECORDS
    # Reading the whole document into memory (json.load) would take several times its size.
    assert after - before < size / 10, (size, before, after)
