"""report-host, drift and reconstruct end to end through click's runner, on both backends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.main import root
from ledger.application import Ledger
from ledger.store import locate
from tests.factories import event_dict, jsonl
from tests.story import Story, build_id, openssl

OLD, NEW, WEB = build_id("api", "1.0"), build_id("api", "1.1"), build_id("web", "2.0")


def run(url: str, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(root, ["--ledger", url, *args], input=stdin)


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def count(url: str) -> int:
    return Ledger(locate(url)).count()


@pytest.fixture
def url(ledger_url: str) -> str:
    """Generation 2 wants api 1.1 on h1 and h2; no host has reported yet."""
    ledger = Ledger(locate(ledger_url), create=True)
    s = Story()
    old = s.build("api", "1.0", openssl("1.0.1p"))
    new = s.build("api", "1.1", openssl("1.0.2d"))
    s.plan(1, {("h1", "api"): old, ("h2", "api"): old})
    s.plan(2, {("h1", "api"): new, ("h2", "api"): new})
    s.record(ledger)
    ledger.close()
    if "postgresql" in ledger_url:  # queries do not catch PostgreSQL views up
        assert run(ledger_url, "project").exit_code == 0
    return ledger_url


def manifest_file(tmp_path: Path, name: str, entries: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(entries))
    return str(path)


def test_report_host_then_drift_then_no_drift(url: str, tmp_path: Path) -> None:
    h1 = manifest_file(tmp_path, "h1.json", [{"service": "api", "build_id": NEW}])
    recorded = run(url, "report-host", "h1", "--env", "production", "--manifest", h1)
    assert recorded.exit_code == 0, recorded.output
    assert "Recorded the report of h1 in production: 1 service active (position 5)" in (
        recorded.output
    )
    h2 = [
        {"host": "h2", "service": "api", "build_id": OLD},
        {"service": "web", "build_id": WEB, "depends_on": ["api"]},
    ]
    from_stdin = run(
        url,
        *("report-host", "h2", "--env", "production", "--manifest", "-", "--json"),
        *("--at", "2026-03-02T10:00:00Z", "--actor", "agent@h2"),
        stdin=json.dumps({"manifest": h2}),
    )
    assert as_json(from_stdin)["position"] == 6

    table = run(url, "drift")
    assert table.exit_code == 0, table.output
    assert "different build" in table.output
    assert "unexpected" in table.output
    assert "production: 1 of 2 hosts drifted from generation 2, 0 never reported, 1 match" in (
        table.output
    )
    report = as_json(run(url, "drift", "--json"))
    assert [(p["host"], p["service"], p["problem"]) for p in report["problems"]] == [
        ("h2", "api", "different build"),
        ("h2", "web", "unexpected"),
    ]
    assert report["problems"][0]["reported_at"] == "2026-03-02T10:00:00Z"
    assert report["envs"][0]["drifted"] == 1
    assert as_json(run(url, "drift", "--host", "h1", "--json"))["problems"] == []

    fixed = manifest_file(tmp_path, "h2.json", [{"service": "api", "build_id": NEW}])
    assert run(url, "report-host", "h2", "--env", "production", "--manifest", fixed).exit_code == 0
    clean = run(url, "drift")
    assert "production: no drift: 2 hosts match generation 2" in clean.output


def test_drift_lists_hosts_that_never_reported(url: str) -> None:
    result = run(url, "drift")
    assert result.exit_code == 0, result.output
    assert "no report" in result.output
    assert "0 of 2 hosts drifted from generation 2, 2 never reported" in result.output
    unknown = run(url, "drift", "--env", "staging")  # never seen: an error, not "nothing"
    assert unknown.exit_code == 2, unknown.output
    assert "environment 'staging' is not in the ledger (known: production)" in unknown.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON at line 1"),
        ('{"services": []}', "expected a JSON list of manifest entries"),
        ('[{"service": "api"}]', "manifest[0].build_id: Field required"),
        (f'[{{"service": "api", "build_id": "{NEW}"}}, 3]', "manifest[1]: expected an object"),
        (f'[{{"host": "h9", "service": "api", "build_id": "{NEW}"}}]',
         "manifest[0].host: names host 'h9', not the reporting host 'h1'"),
        ('[{"service": "api", "build_id": "x"}]', "manifest[0].build_id: expected a hash"),
        (f'[{{"service": "api", "build_id": "{NEW}"}}, {{"service": "api", "build_id": "{OLD}"}}]',
         "manifest[1] places api on h1 again (manifest[0] did)"),
        (f'[{{"service": "api", "build_id": "{NEW}", "service": "web"}}]',
         "the key 'service' is given twice in one object (at [0])"),
        (f'{{"manifest": [], "manifest": [{{"service": "api", "build_id": "{NEW}"}}]}}',
         "the key 'manifest' is given twice in one object (at the top level)"),
    ],
)  # fmt: skip
def test_report_host_refuses_a_bad_file_and_stores_nothing(
    url: str, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    before = count(url)
    result = run(url, "report-host", "h1", "--env", "production", "--manifest", str(path))
    assert result.exit_code == 2, result.output
    assert f"{path}: " in result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert count(url) == before


def test_report_host_refuses_a_missing_file_and_a_bad_host(url: str, tmp_path: Path) -> None:
    before = count(url)
    missing = run(url, "report-host", "h1", "--env", "production", "--manifest", "nope.json")
    assert missing.exit_code == 2
    assert "nope.json: cannot read it" in missing.output
    good = manifest_file(tmp_path, "ok.json", [])
    bad_host = run(url, "report-host", "h 1 ", "--env", "production", "--manifest", good)
    assert bad_host.exit_code == 2
    assert "host: leading or trailing whitespace is not allowed" in bad_host.output
    assert count(url) == before


def test_a_host_report_over_ingest_counts_the_same(url: str, tmp_path: Path) -> None:
    event = event_dict(
        "host_reported",
        host="h1",
        manifest=[{"host": "h1", "service": "api", "build_id": OLD}],
        occurred_at="2026-03-02T09:00:00Z",
    )
    path = tmp_path / "reports.jsonl"
    path.write_bytes(jsonl(event))
    ingested = run(url, "ingest", str(path))
    assert ingested.exit_code == 0, ingested.output
    assert run(url, "project").exit_code == 0  # PostgreSQL views are not caught up by queries
    problems = as_json(run(url, "drift", "--host", "h1", "--json"))["problems"]
    assert [(p["problem"], p["reported_build"], p["reported_at"]) for p in problems] == [
        ("different build", OLD, "2026-03-02T09:00:00Z")
    ]


def test_reconstruct_records_what_the_hosts_report(url: str, tmp_path: Path) -> None:
    refused = run(url, "reconstruct", "--env", "production")
    assert refused.exit_code == 2
    assert "no host of production has reported what it runs" in refused.output
    entry = {"service": "api", "build_id": OLD, "depends_on": ["db"]}
    h1 = manifest_file(tmp_path, "h1.json", [entry])
    assert run(url, "report-host", "h1", "--env", "production", "--manifest", h1).exit_code == 0
    before = count(url)

    dry = run(url, "reconstruct", "--env", "production", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "Dry run, nothing recorded: would record production generation 3" in dry.output
    assert "Compared with generation 2: 0 added, 1 removed, 1 changed." in dry.output
    assert (
        "1 host of generation 2 never reported, so their placements are left out: h2" in dry.stderr
    )
    assert count(url) == before

    done = as_json(run(url, "reconstruct", "--env", "production", "--actor", "a@sre", "--json"))
    assert (done["number"], done["parent"], done["recorded"]) == (3, 2, True)
    assert done["position"] == before + 1
    assert done["unreported"] == ["h2"]
    changes = [(c["host"], c["change"]) for c in done["changes"]]
    assert changes == [("h1", "changed"), ("h2", "removed")]
    generation = as_json(run(url, "generation", "3", "--json"))
    assert (generation["reason"], generation["parent"]) == ("reconstruct", 2)
    assert generation["actor"] == "a@sre"
    assert generation["manifest"] == [
        {"host": "h1", "service": "api", "build_id": OLD, "artifact": None, "depends_on": ["db"]}
    ]
    assert "production: no drift: 1 host matches generation 3" in run(url, "drift").output
