"""A package's versions over time (``projections.timeline``, ``GET /api/where/timeline``,
``ledger where NAME --timeline``), checked against the auditor of test_audit_truth.py: at
every moment the step function changes, and just before it, its host counts per (env,
version) are the auditor's ``where_counts`` at that moment, on random late-arriving streams,
on both backends."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings

from cli.main import root
from ledger.application import Ledger
from ledger.errors import UnknownName
from ledger.store import locate
from projections.runner import Views
from projections.timeline import versions_over_time
from tests.integration.test_audit_truth import (
    NAME,
    Auditor,
    FreshLedger,
    Scenario,
    fresh_ledger,  # noqa: F401 (the `fresh_ledger` fixture)
    scenarios,
    when,
)
from tests.story import Story, api_upgrade, minute, openssl

Counts = dict[tuple[str, str], int]


def steps_at(answer: dict[str, object], moment: datetime) -> Counts:
    """The step function's host counts per (env, version) at ``moment``."""
    counts: Counts = {}
    for change in answer["changes"]:  # type: ignore[attr-defined]
        if when(change["at"]) > moment:
            break
        counts[change["env"], change["version"]] = change["hosts"]
    return {key: hosts for key, hosts in counts.items() if hosts}


def auditor_at(auditor: Auditor, moment: datetime) -> Counts:
    return {(env, version): hosts for env, version, hosts, _ in
            auditor.where_counts(NAME, at=moment)}  # fmt: skip


@pytest.mark.timeout(900)
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_versions_over_time_agree_with_the_auditor(
    fresh_ledger: FreshLedger,  # noqa: F811
    scenario: Scenario,
) -> None:
    with fresh_ledger() as ledger:
        ledger.append(scenario.events)
        views = Views(ledger)
        try:
            views.catch_up()
            auditor = Auditor(list(ledger.facts()))
            try:
                answer = versions_over_time(views, NAME)
            except UnknownName:
                assert not auditor.closures(), "a package some closure holds is unknown"
                return
        finally:
            views.recorder.datastore.close()
    moments = {when(c["at"]) for c in answer["changes"]} | set(scenario.ats)
    for moment in sorted(moments):
        for probe in (moment - timedelta(microseconds=1), moment):
            assert steps_at(answer, probe) == auditor_at(auditor, probe), probe
    now: Counts = defaultdict(int)
    for env, version, hosts, _ in auditor.where_counts(NAME):
        now[env, version] = hosts
    assert {(v["env"], v["version"]): v["hosts_now"] for v in answer["versions"] if
            v["hosts_now"]} == dict(now)  # fmt: skip


def test_a_version_replaced_everywhere_is_gone_with_its_last_day(ledger_url: str) -> None:
    """The issue's example: "openssl 1.0.1p gone from production on …". The story's
    1.0.1p ran on h1 from minute 5 and h2 from minute 7; h1 dropped it at 13, h2 at 18."""
    ledger = Ledger(locate(ledger_url), create=True)
    api_upgrade().record(ledger)
    ledger.close()
    assert CliRunner().invoke(root, ["--ledger", ledger_url, "project"]).exit_code == 0
    result = CliRunner().invoke(
        root, ["--ledger", ledger_url, "where", "openssl", "--timeline", "--json"]
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    iso = {n: minute(n).isoformat().replace("+00:00", "Z") for n in (5, 7, 13, 14, 18, 19)}
    versions = {v["version"]: v for v in answer["versions"]}
    assert versions["1.0.1p"]["first_run"] == iso[5]
    assert versions["1.0.1p"]["last_run"] == iso[18]
    assert versions["1.0.1p"]["hosts_now"] == 0
    assert versions["1.0.2d"]["last_run"] is None
    assert [(c["at"], c["version"], c["hosts"]) for c in answer["changes"]] == [
        (iso[5], "1.0.1p", 1), (iso[7], "1.0.1p", 2), (iso[13], "1.0.1p", 1),
        (iso[14], "1.0.2d", 1), (iso[18], "1.0.1p", 0), (iso[19], "1.0.2d", 2),
    ]  # fmt: skip
    table = CliRunner().invoke(root, ["--ledger", ledger_url, "where", "openssl", "--timeline"])
    assert table.exit_code == 0, table.output
    assert "gone since" in table.output


def test_two_services_of_a_host_holding_one_version_count_one_host(ledger_url: str) -> None:
    """Hosts are counted, not placements: api and worker on h1 both hold openssl 1.0.1p."""
    story = Story()
    api = story.build("api", "1.0", openssl("1.0.1p"))
    worker = story.build("worker", "1.0", openssl("1.0.1p"))
    story.plan(1, {("h1", "api"): api, ("h1", "worker"): worker})
    story.activate("h1", "api", api, 1)  # minutes 4-5
    story.activate("h1", "worker", worker, 1)  # minutes 6-7
    story.add("deactivated", host="h1", service="api", build_id=api)  # minute 8
    ledger = Ledger(locate(ledger_url), create=True)
    story.record(ledger)
    views = Views(ledger)
    try:
        views.catch_up()
        answer = versions_over_time(views, "openssl")
    finally:
        views.recorder.datastore.close()
        ledger.close()
    assert [(c["version"], c["hosts"]) for c in answer["changes"]] == [("1.0.1p", 1)]
    assert answer["versions"][0]["hosts_now"] == 1
