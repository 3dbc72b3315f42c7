"""``ledger exposure``, ``ledger vulns`` and ``ledger advisories`` end to end: click's runner
and the HTTP API, on both backends, on the api upgrade story (openssl 1.0.1p, then 1.0.2d).

The answers themselves are checked against an independent auditor on random streams in
test_exposure_truth.py; here the figures are worked out by hand from the story:
h1 ran 1.0.1p from minute 5 to 13, h2 from minute 7 to 18 (tests/story.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from cli.main import root
from ledger.application import Ledger
from ledger.store import locate
from tests.services.api import ApiServer, serve
from tests.story import Story, api_upgrade, minute, openssl

CVE = "CVE-2099-0001"
GHSA = "GHSA-aaaa-bbbb-cccc"


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(root, ["--ledger", url, *args])


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def advisory(story: Story, at: float, **fields: Any) -> None:
    """An NVD record of CVE (openssl 1.0.1 up to 1.0.2, excluded), published at minute 10,
    recorded at minute ``at``."""
    record: dict[str, Any] = {
        "advisory_id": CVE,
        "database": "nvd",
        "aliases": [],
        "published": minute(10).isoformat(),
        "modified": minute(at).isoformat(),
        "summary": "A made-up flaw in openssl 1.0.1.",
        "severity": [{"type": "CVSS_V3", "vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}],
        "affected": [
            {
                "ecosystem": "cpe",
                "name": "openssl",
                "vendor": "openssl",
                "bounds": [{"start": "1.0.1", "end": "1.0.2"}],
            }
        ],
        "unmatched": [],
        **fields,
    }
    story.add("advisory_recorded", at, env="*", **record)


@pytest.fixture
def url(ledger_url: str) -> str:
    story = api_upgrade()
    advisory(story, 30)
    ledger = Ledger(locate(ledger_url), create=True)
    story.record(ledger)
    ledger.close()
    if "postgresql" in ledger_url:  # queries do not catch PostgreSQL views up
        assert run(ledger_url, "project").exit_code == 0
    return ledger_url


def test_exposure_gives_windows_host_hours_and_time_after_publication(url: str) -> None:
    data = as_json(run(url, "exposure", CVE, "--json"))
    assert data["ids"] == [CVE]
    assert data["affected"] == []  # both hosts run 1.0.2d now
    assert data["hosts_exposed"] == 0
    windows = {(w["host"], w["service"]): w for w in data["windows"]}
    assert windows["h1", "api"]["intervals"] == [
        [
            minute(5).isoformat().replace("+00:00", "Z"),
            minute(13).isoformat().replace("+00:00", "Z"),
        ]
    ]
    assert windows["h2", "api"]["hours"] == pytest.approx(11 / 60, abs=1e-6)
    assert data["host_hours"] == pytest.approx(19 / 60, abs=1e-6)
    assert data["host_hours_after_published"] == pytest.approx((3 + 8) / 60, abs=1e-6)
    assert data["host_hours_after_recorded"] == 0  # recorded at minute 30, long fixed


def test_exposure_at_a_moment_lists_the_affected_placements(url: str) -> None:
    data = as_json(run(url, "exposure", CVE, "--at", minute(8).isoformat(), "--json"))
    assert [(a["host"], a["name"], a["version"], a["fixed"]) for a in data["affected"]] == [
        ("h1", "openssl", "1.0.1p", "1.0.2"),
        ("h2", "openssl", "1.0.1p", "1.0.2"),
    ]
    assert data["hosts_exposed"] == 2
    assert data["host_hours"] == pytest.approx((3 + 1) / 60, abs=1e-6)  # minutes 5-8 and 7-8
    table = run(url, "exposure", CVE, "--at", minute(8).isoformat())
    assert table.exit_code == 0, table.output
    assert "1.0.1p" in table.output
    assert "2 hosts (2 services) exposed" in table.output


def test_an_unknown_advisory_is_an_error_not_an_empty_answer(url: str) -> None:
    result = run(url, "exposure", "CVE-2099-9999")
    assert result.exit_code == 2
    assert "advisory 'CVE-2099-9999' is not in the ledger" in result.output


def test_known_at_before_the_advisory_was_recorded_says_when_it_was(url: str) -> None:
    result = run(url, "exposure", CVE, "--known-at", minute(20).isoformat())
    assert result.exit_code == 2
    assert "was first recorded at 2026-03-01T00:30:00Z" in result.output


def test_vulns_ranks_what_runs_and_forgets_what_was_replaced(url: str) -> None:
    assert as_json(run(url, "vulns", "--json")) == []
    rows = as_json(run(url, "vulns", "--at", minute(8).isoformat(), "--json"))
    assert [(r["id"], r["severity"], r["score"], r["hosts"]) for r in rows] == [
        (CVE, "high", 7.5, 2)
    ]
    assert rows[0]["packages"] == [{"name": "openssl", "version": "1.0.1p", "fixed": "1.0.2"}]
    assert as_json(run(url, "vulns", "--at", minute(8).isoformat(), "--min-severity", "critical",
                       "--json")) == []  # fmt: skip


def test_aliases_join_records_of_two_databases(ledger_url: str) -> None:
    story = api_upgrade()
    advisory(story, 30)
    story.add(
        "advisory_recorded", 31, env="*", advisory_id=GHSA, database="osv", aliases=[CVE],
        modified=minute(31).isoformat(), severity=[], unmatched=[],
        affected=[{"ecosystem": "cpe", "name": "zlib", "bounds": [{}]}],
    )  # fmt: skip
    ledger = Ledger(locate(ledger_url), create=True)
    story.record(ledger)
    ledger.close()
    assert run(ledger_url, "project").exit_code == 0
    for asked in (CVE, GHSA):
        assert as_json(run(ledger_url, "exposure", asked, "--json"))["ids"] == [CVE, GHSA]
    shown = as_json(run(ledger_url, "advisories", "show", GHSA, "--json"))
    assert [r["id"] for r in shown] == [CVE, GHSA]
    assert "openssl (NVD openssl:openssl): >=1.0.1,<1.0.2" in shown[0]["affected"][0]["covers"]


def test_an_updated_advisory_is_a_new_fact_and_known_at_sees_the_old_one(
    ledger_url: str,
) -> None:
    story = api_upgrade()
    advisory(story, 30)
    # Re-scored at minute 40: every openssl before 1.0.2e now.
    advisory(story, 40, affected=[{"ecosystem": "cpe", "name": "openssl", "vendor": "openssl",
                                   "bounds": [{"end": "1.0.2e"}]}])  # fmt: skip
    ledger = Ledger(locate(ledger_url), create=True)
    story.record(ledger)
    ledger.close()
    assert run(ledger_url, "project").exit_code == 0
    now = as_json(run(ledger_url, "exposure", CVE, "--json"))
    assert now["hosts_exposed"] == 2  # 1.0.2d is affected by the update
    then = as_json(run(ledger_url, "exposure", CVE, "--known-at", minute(35).isoformat(),
                       "--json"))  # fmt: skip
    assert then["hosts_exposed"] == 0
    shown = as_json(run(ledger_url, "advisories", "show", CVE, "--json"))
    assert len(shown[0]["versions"]) == 2


@pytest.fixture
def server(url: str) -> Iterator[ApiServer]:
    yield from serve(url)


def get(server: ApiServer, path: str, role: str | None = "reader", **params: str) -> Any:
    headers = server.headers(role) if role else {}
    return httpx.get(server.base + path, headers=headers, params=params, timeout=30)


def test_the_api_answers_exposure_and_vulns_to_readers(server: ApiServer) -> None:
    found = get(server, "/api/exposure", id=CVE, at=minute(8).isoformat())
    assert found.status_code == 200, found.text
    assert found.json()["hosts_exposed"] == 2
    assert get(server, "/api/exposure", role=None, id=CVE).status_code == 401
    missing = get(server, "/api/exposure", id="CVE-2099-9999")
    assert missing.status_code == 404
    assert "not in the ledger" in missing.text
    ranked = get(server, "/api/vulns", at=minute(8).isoformat())
    assert ranked.status_code == 200, ranked.text
    assert [r["id"] for r in ranked.json()] == [CVE]
    assert get(server, "/api/vulns", min_severity="severe").status_code == 422


def test_the_tour_files_import_and_the_cpe_map_names_curl(ledger_url: str) -> None:
    """The README tour's real NVD records (docs/examples): curl is haxx:libcurl in NVD, so
    only the CPE map makes CVE-2023-38545 hit a Nix curl; a second import stores nothing."""
    examples = Path(__file__).parents[2] / "docs" / "examples"
    story = Story()
    build = story.build("api", "1.0", {
        "name": "curl", "version": "8.1.1",
        "store_path": f"/nix/store/{'c' * 32}-curl-8.1.1",
    })  # fmt: skip
    story.plan(1, {("h1", "api"): build})
    story.activate("h1", "api", build, 1)
    ledger = Ledger(locate(ledger_url), create=True)
    story.record(ledger)
    ledger.close()
    feed = str(examples / "nvdcve-2.0-fleet.json")
    first = as_json(run(ledger_url, "advisories", "import", feed, "--json"))
    assert (first["records"], first["stored"]) == (3, 3)
    again = as_json(run(ledger_url, "advisories", "import", feed, "--json"))
    assert (again["stored"], again["skipped"]) == (0, 3)
    assert run(ledger_url, "project").exit_code == 0
    assert as_json(run(ledger_url, "vulns", "--json")) == []
    mapped = as_json(run(ledger_url, "vulns", "--cpe-map", str(examples / "cpe-map.txt"), "--json"))
    assert [(r["id"], r["score"], r["packages"]) for r in mapped] == [
        ("CVE-2023-38545", 9.8, [{"name": "curl", "version": "8.1.1", "fixed": "8.4.0"}])
    ]


def test_a_bad_advisory_file_is_refused_whole(ledger_url: str, tmp_path: Path) -> None:
    feed = json.loads(
        (Path(__file__).parents[2] / "docs/examples/nvdcve-2.0-fleet.json").read_text()
    )
    del feed["vulnerabilities"][2]["cve"]["lastModified"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(feed))
    Ledger(locate(ledger_url), create=True).close()
    result = run(ledger_url, "advisories", "import", str(bad))
    assert result.exit_code == 2, result.output
    assert "CVE-2023-45853" in result.output
    assert "lastModified" in result.output
    assert "nothing was recorded" in result.output
    stored = run(ledger_url, "log", "--json")
    assert stored.exit_code == 0, stored.output
    assert stored.stdout == ""  # JSON lines: none


def test_heartbleed_from_nvds_own_record_hits_1_0_1f_not_1_0_1g(ledger_url: str) -> None:
    """CVE-2014-0160 as NVD serves it (tests/fixtures/advisories): openssl 1.0.1 to 1.0.1f
    affected, fixed in 1.0.1g, whatever else its 28 products name."""
    fixture = Path(__file__).parents[1] / "fixtures/advisories/nvdcve-2.0-heartbleed.json"
    story = Story()
    hosts = {"web-1": "1.0.1", "web-2": "1.0.1f", "web-3": "1.0.1g", "web-4": "1.0.0"}
    builds = {v: story.build("api", v, openssl(v)) for v in hosts.values()}
    story.plan(1, {(h, "api"): builds[v] for h, v in hosts.items()})
    for host, version in hosts.items():
        story.activate(host, "api", builds[version], 1)
    ledger = Ledger(locate(ledger_url), create=True)
    story.record(ledger)
    ledger.close()
    assert run(ledger_url, "advisories", "import", str(fixture)).exit_code == 0
    assert run(ledger_url, "project").exit_code == 0
    data = as_json(run(ledger_url, "exposure", "CVE-2014-0160", "--json"))
    assert [(a["host"], a["version"], a["fixed"]) for a in data["affected"]] == [
        ("web-1", "1.0.1", "1.0.1g"),
        ("web-2", "1.0.1f", "1.0.1g"),
    ]
    assert data["hosts_exposed"] == 2
    shown = as_json(run(ledger_url, "advisories", "show", "CVE-2014-0160", "--json"))
    assert shown[0]["unmatched"], "the record's platform-only configurations are listed"


def test_vulns_names_a_vulnerability_by_its_cve_as_the_alerts_do(ledger_url: str) -> None:
    """A GHSA record alone, aliasing a CVE: the row is the CVE's, the GHSA an alias."""
    story = api_upgrade()
    advisory(story, 30, advisory_id=GHSA, database="osv", aliases=[CVE])
    ledger = Ledger(locate(ledger_url), create=True)
    story.record(ledger)
    ledger.close()
    assert run(ledger_url, "project").exit_code == 0
    rows = as_json(run(ledger_url, "vulns", "--at", minute(8).isoformat(), "--json"))
    assert [(r["id"], r["aliases"], r["hosts"]) for r in rows] == [(CVE, [GHSA], 2)]
