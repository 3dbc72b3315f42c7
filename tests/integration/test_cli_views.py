"""The view commands end to end through click's runner, on both backends."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result

from cli.main import root
from ledger.application import Ledger
from ledger.store import locate
from tests.conftest import with_query
from tests.story import api_upgrade


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(root, ["--ledger", url, *args])


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def url(ledger_url: str) -> str:
    """A ledger with two generations of api on two hosts: openssl 1.0.1p, then 1.0.2d."""
    ledger = Ledger(locate(ledger_url), create=True)
    api_upgrade().record(ledger)
    ledger.close()
    if "postgresql" in ledger_url:  # queries do not catch PostgreSQL views up
        assert run(ledger_url, "project").exit_code == 0
    return ledger_url


def test_project_then_status_shows_no_lag(url: str) -> None:
    result = run(url, "project")
    assert result.exit_code == 0, result.output
    assert "Views up to date:" in result.output
    status = as_json(run(url, "projections", "status", "--json"))
    assert {s["name"] for s in status} == {
        "builds", "placements", "generations", "history", "failures", "reports", "advisories"
    }  # fmt: skip
    assert all(s["lag"] == 0 and s["position"] == 20 for s in status)


def test_where_lists_hosts_and_sums_up(url: str) -> None:
    table = run(url, "where", "openssl")
    assert table.exit_code == 0, table.output
    assert "h1" in table.output
    assert "openssl: 2 placements on 2 hosts" in table.output
    rows = as_json(run(url, "where", "openssl", "--json"))
    assert [(r["host"], r["version"]) for r in rows] == [("h1", "1.0.2d"), ("h2", "1.0.2d")]
    summary = as_json(run(url, "where", "openssl", "--summary", "--json"))
    assert summary == [
        {"env": "production", "ecosystem": "nix", "name": "openssl", "version": "1.0.2d",
         "outputs": ["out"], "hosts": 2, "services": ["api"]}
    ]  # fmt: skip
    first_generation = as_json(run(url, "where", "openssl", "--generation", "1", "--json"))
    assert {r["version"] for r in first_generation} == {"1.0.1p"}
    back_then = as_json(run(url, "where", "openssl", "--at", "2026-03-01T00:07:30Z", "--json"))
    assert {(r["host"], r["version"]) for r in back_then} == {("h1", "1.0.1p"), ("h2", "1.0.1p")}
    nothing = run(url, "where", "openssl", "--version-range", ">=3")
    assert nothing.exit_code == 0
    assert "no active closure holds openssl" in nothing.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--version", "1", "--version-range", ">1"], "give --version or --version-range"),
        (["--version-range", "=>1.0"], "unknown operator '=>'"),
        (["--at", "2026-03-01T00:00:00"], "has no timezone"),
        (["--generation", "9"], "production has no generation 9"),
        (["--generation", "1", "--at", "2026-03-01"], "give --generation or --at"),
    ],
)
def test_where_refuses_bad_options_clearly(url: str, args: list[str], message: str) -> None:
    result = run(url, "where", "openssl", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_generations_tag_and_generation(url: str) -> None:
    tagged = run(url, "tag", "1", "known-good", "audited", "--actor", "alice@sre")
    assert tagged.exit_code == 0, tagged.output
    assert "Tagged production generation 1 with known-good, audited" in tagged.output
    generations = as_json(run(url, "generations", "--json"))
    assert [(g["number"], g["status"], g["tags"]) for g in generations] == [
        (1, "completed", ["release-1", "audited", "known-good"]),
        (2, "completed", ["release-1"]),
    ]
    table = run(url, "generations")
    assert "release-1, audited, known-good" in table.output
    one = as_json(run(url, "generation", "2", "--json"))
    assert [(e["host"], e["service"]) for e in one["manifest"]] == [("h1", "api"), ("h2", "api")]
    before = Ledger(locate(url)).count()
    missing = run(url, "tag", "7", "x")
    assert missing.exit_code == 2
    assert "production has no generation 7" in missing.output
    assert Ledger(locate(url)).count() == before  # nothing recorded


def test_diff_shows_the_closure_change(url: str) -> None:
    result = run(url, "diff", "1", "2")
    assert result.exit_code == 0, result.output
    assert "openssl 1.0.1p → 1.0.2d in 1 service on 2 hosts" in result.output
    data = as_json(run(url, "diff", "1", "2", "--json"))
    assert data["services"][0]["hosts"] == 2


def test_topology_manifest_history_failures_metrics(url: str) -> None:
    topology = as_json(run(url, "topology", "--json"))
    assert [(t["host"], t["version"], t["generation"]) for t in topology] == [
        ("h1", "1.1", 2), ("h2", "1.1", 2)
    ]  # fmt: skip
    assert "h2" not in run(url, "topology", "--host", "h1").output
    manifest = as_json(run(url, "manifest", "h1", "--json"))
    assert manifest[0]["closure"][0]["name"] == "openssl"
    assert "openssl" in run(url, "manifest", "h1", "--closure").output
    history = as_json(run(url, "history", "--host", "h1", "--json"))
    assert [h["kind"] for h in history][:2] == ["distribution_completed", "activation_completed"]
    assert len(as_json(run(url, "history", "--host", "h1", "--limit", "2", "--json"))) == 2
    assert as_json(run(url, "failures", "--json")) == []
    assert "no failures recorded" in run(url, "failures").output
    metrics = as_json(run(url, "metrics", "--json"))
    assert metrics[0]["deployments"] == 2
    assert metrics[0]["change_failure_rate"] == 0.0


def test_rebuild_names_unknown_views(url: str) -> None:
    result = run(url, "projections", "rebuild", "nosuch")
    assert result.exit_code == 2
    assert "no view named 'nosuch'" in result.output
    rebuilt = run(url, "projections", "rebuild", "history")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "Rebuilt history: 20 events replayed" in rebuilt.output


def test_views_in_another_database(url: str, tmp_path: Path) -> None:
    elsewhere = str(tmp_path / "views.db")
    result = CliRunner().invoke(root, ["--ledger", url, "--views", elsewhere, "topology", "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 2
    assert Path(elsewhere).exists()


def test_postgres_views_warn_when_behind(url: str, postgres_server_url: str) -> None:
    """Views on PostgreSQL are not caught up by queries: they say they are behind."""
    schema = f"views_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    args = ["--ledger", url, "--views", with_query(postgres_server_url, schema=schema)]
    behind = CliRunner().invoke(root, [*args, "topology", "--json"])
    assert behind.exit_code == 0, behind.output
    assert json.loads(behind.stdout) == []
    assert "the views are 20 events behind the ledger" in behind.stderr
    assert CliRunner().invoke(root, [*args, "project"]).exit_code == 0
    caught_up = CliRunner().invoke(root, [*args, "topology", "--json"])
    assert len(json.loads(caught_up.stdout)) == 2
    assert caught_up.stderr == ""
