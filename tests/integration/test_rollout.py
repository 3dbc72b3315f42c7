"""deploy and rollback end to end: plans from the real topology, steps run as real shell
commands, outcomes recorded as events, failures stopped and resumed — on both backends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.main import root
from ledger.application import Ledger
from ledger.store import locate
from tests.story import Story, build_id

DEPENDS = {"api": ["db"]}


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(root, ["--ledger", url, *args])


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def kinds(url: str) -> list[str]:
    return [json.loads(line)["kind"] for line in run(url, "log", "--json").stdout.splitlines()]


@pytest.fixture
def url(ledger_url: str) -> str:
    """Generation 1 (db d1, api a1 on h1 and h2) completed; generation 2 (api a2) was
    activated on h1 and failed on h2, so h1 runs a2 and h2 still runs a1."""
    ledger = Ledger(locate(ledger_url), create=True)
    s = Story()
    d1, a1, a2 = s.build("db", "1"), s.build("api", "1"), s.build("api", "2")
    s.plan(1, {(h, svc): b for h in ("h1", "h2") for svc, b in (("db", d1), ("api", a1))},
           depends=DEPENDS)  # fmt: skip
    for host in ("h1", "h2"):
        s.activate(host, "db", d1, 1)
        s.activate(host, "api", a1, 1)
    s.add("generation_completed", number=1)
    s.plan(2, {("h1", "db"): d1, ("h2", "db"): d1, ("h1", "api"): a2, ("h2", "api"): a2},
           depends=DEPENDS)  # fmt: skip
    s.replace("h1", "api", a1, a2, 2)
    s.add("distribution_completed", host="h2", service="api", build_id=a2)
    s.add("activation_failed", host="h2", service="api", build_id=a2, generation=2, reason="boom")
    s.add("generation_failed", number=2, reason="api failed on h2")
    s.record(ledger)
    ledger.close()
    if "postgresql" in ledger_url:  # queries do not catch PostgreSQL views up
        assert run(ledger_url, "project").exit_code == 0
    return ledger_url


def log_template(log: Path) -> str:
    return f"echo {{step}} {{host}} {{service}} {{build_id}} {{generation}} >> {log}"


def test_dry_run_plans_from_what_is_active_and_records_nothing(url: str) -> None:
    before = kinds(url)
    plan = as_json(run(url, "rollback", "--env", "production", "--to", "1", "--dry-run", "--json"))
    assert kinds(url) == before
    assert plan["recorded"] is False
    assert (plan["generation"], plan["parent"], plan["target"]) == (3, 2, 1)
    # Only h1 changed (h2 never left a1): one activation, one drain, one deactivation.
    steps = [
        (s["wave"], s["step"], s["host"], s["service"], s["build_id"][:5]) for s in plan["steps"]
    ]
    assert steps == [
        (1, "activate", "h1", "api", "api-1"),
        (2, "drain", "h1", "api", "api-2"),
        (3, "deactivate", "h1", "api", "api-2"),
    ]
    assert plan["minimal_steps"] == 3
    assert plan["unchanged"] == 3


def test_rollback_executes_steps_and_records_each_outcome(url: str, tmp_path: Path) -> None:
    log = tmp_path / "steps.log"
    result = run(
        url, "rollback", "--env", "production", "--to", "1", "--execute", log_template(log)
    )
    assert result.exit_code == 0, result.output
    assert "Generation 3 completed: 3 steps done" in result.output
    assert log.read_text().splitlines() == [
        f"activate h1 api {build_id('api', '1')} 3",
        f"drain h1 api {build_id('api', '2')} 3",
        f"deactivate h1 api {build_id('api', '2')} 3",
    ]
    assert kinds(url)[-6:] == [
        "generation_planned",
        "activation_completed",
        "drain_started",
        "drain_completed",
        "deactivated",
        "generation_completed",
    ]
    generations = {g["number"]: g for g in as_json(run(url, "generations", "--json"))}
    assert generations[3]["reason"] == "rollback"
    assert generations[3]["target"] == 1
    assert generations[3]["status"] == "completed"
    assert generations[2]["status"] == "rolled back"
    topology = as_json(run(url, "topology", "--json"))
    assert {(r["host"], r["service"], r["build_id"][:5]) for r in topology} == {
        ("h1", "db", "db-1-"), ("h2", "db", "db-1-"), ("h1", "api", "api-1"), ("h2", "api", "api-1")
    }  # fmt: skip
    # Nothing is left to do, and generation 2's manifest is now refused without --force.
    again = as_json(run(url, "rollback", "--env", "production", "--to", "1", "--dry-run", "--json"))
    assert again["steps"] == []


def test_a_failure_stops_and_resume_does_not_repeat_finished_steps(
    url: str, tmp_path: Path
) -> None:
    # A new manifest: api a2 everywhere and a new cache service; h2 cannot take a2 yet.
    manifest = as_json(run(url, "generation", "2", "--json"))
    manifest["manifest"] += [
        {"host": h, "service": "cache", "build_id": "cache-7-000000000000000000000000",
         "artifact": "/nix/store/cache-7", "depends_on": []}
        for h in ("h1", "h2")
    ]  # fmt: skip
    path = tmp_path / "release.json"
    path.write_text(json.dumps(manifest))
    log, stop = tmp_path / "steps.log", tmp_path / "stop-h2"
    stop.touch()
    template = f"if [ {{step}} = activate ] && [ -e {tmp_path}/stop-{{host}} ]; then " \
               f"echo 'port 443 in use' >&2; exit 4; fi; {log_template(log)}"  # fmt: skip
    args = ["--env", "production", "--execute", template, "--parallel", "activate=1"]

    failed = run(url, "deploy", "--manifest", str(path), *args)
    assert failed.exit_code == 1, failed.output
    assert "Generation 3 failed" in failed.output
    assert "exited with 4: port 443 in use" in failed.output
    assert "ledger deploy --env production --resume --execute" in failed.output
    generation = as_json(run(url, "generation", "3", "--json"))
    assert generation["status"] == "failed"
    assert "exited with 4" in generation["failure"]
    failures = as_json(run(url, "failures", "--json"))
    assert any(f["kind"] == "activation_failed" and f["generation"] == 3 for f in failures)
    first_run = log.read_text().splitlines()
    # Distributions first, then activations; h2's failed one stopped the rest.
    assert [line.split()[0] for line in first_run] == ["distribute", "distribute", "activate"]

    stop.unlink()
    resumed = run(url, "deploy", "--resume", *args)
    assert resumed.exit_code == 0, resumed.output
    assert "Generation 3 completed" in resumed.output
    lines = log.read_text().splitlines()
    assert lines[: len(first_run)] == first_run
    assert Counter(lines).most_common(1)[0][1] == 1, "a finished step ran twice"
    assert as_json(run(url, "generation", "3", "--json"))["status"] == "completed"
    topology = as_json(run(url, "topology", "--json"))
    wanted = (("db", "db-1-"), ("api", "api-2"), ("cache", "cache"))
    assert {(r["host"], r["service"], r["build_id"][:5]) for r in topology} == {
        (h, s, b) for h in ("h1", "h2") for s, b in wanted
    }
    nothing = run(url, "deploy", "--env", "production", "--resume")
    assert nothing.exit_code == 2
    assert "completed: there is nothing to resume" in nothing.output


def test_a_manifest_marked_bad_is_refused_unless_forced(url: str, tmp_path: Path) -> None:
    path = tmp_path / "gen2.json"
    path.write_text(run(url, "generation", "2", "--json").stdout)
    before = kinds(url)
    refused = run(url, "deploy", "--env", "production", "--manifest", str(path))
    assert refused.exit_code == 2
    assert "generation 2, which is marked bad" in refused.output
    assert "--force" in refused.output
    assert kinds(url) == before
    forced = run(url, "deploy", "--env", "production", "--manifest", str(path), "--force")
    assert forced.exit_code == 0, forced.output
    assert "recorded" in forced.output
    assert kinds(url) == [*before, "generation_planned"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rollback", "--to", "9"], "production has no generation 9"),
        (["rollback", "--to", "2"], "generation 2 is already the current generation"),
        (["rollback", "--to", "1", "--execute", "echo {hots}"], "uses {hots}; known fields"),
        (["rollback", "--to", "1", "--on", "reboot=true"], "expected KIND=TEMPLATE"),
        (["rollback", "--to", "1", "--parallel", "activate=0"], "expected KIND=N"),
        (["rollback", "--to", "1", "--parallel", "activate=²"], "expected KIND=N"),
        (["rollback", "--to", "1", "--parallel", "activate=99999999999999999999"], "1 to 10000"),
        (
            ["rollback", "--to", "1", "--on", "activate=true"],
            "no command for the deactivate, drain",
        ),
        (["rollback", "--to", "1", "--resume"], "drop --to"),
        (["deploy", "--manifest", "/nonexistent.json"], "cannot read it"),
    ],
)
def test_bad_requests_are_refused_and_record_nothing(
    url: str, args: list[str], message: str
) -> None:
    before = kinds(url)
    result = run(url, *args[:1], "--env", "production", *args[1:])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert kinds(url) == before


def test_a_drain_that_outlives_its_timeout_is_recorded_and_stops(url: str) -> None:
    template = "if [ {step} = drain ]; then sleep 5; fi"
    result = run(
        url, "rollback", "--env", "production", "--to", "1",
        "--execute", template, "--drain-timeout", "0.3",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "drain api" in result.output
    assert "timed out" in result.output
    assert kinds(url)[-3:] == ["drain_started", "drain_timed_out", "generation_failed"]


def test_parallelism_is_bounded_per_step_kind(url: str, tmp_path: Path) -> None:
    manifest = [
        {"host": f"n{i}", "service": "api", "build_id": "api-9-000000000000000000000000"}
        for i in range(6)
    ]
    path = tmp_path / "wide.json"
    path.write_text(json.dumps(manifest))
    log = tmp_path / "overlap.log"
    template = f"echo + >> {log}; sleep 0.2; echo - >> {log}"
    result = run(
        url, "deploy", "--env", "staging", "--manifest", str(path),
        "--execute", template, "--parallel", "distribute=2", "--parallel", "activate=3",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    running, most = 0, []
    for mark in log.read_text().split():
        running += 1 if mark == "+" else -1
        most.append(running)
    distribute, activate = most[:12], most[12:]
    assert max(distribute) <= 2
    assert max(activate) <= 3


def test_a_manifest_placing_a_service_twice_on_a_host_is_refused(url: str, tmp_path: Path) -> None:
    twice = [
        {"host": "h1", "service": "api", "build_id": build_id("api", "1")},
        {"host": "h1", "service": "api", "build_id": build_id("api", "2")},
    ]
    path = tmp_path / "twice.json"
    path.write_text(json.dumps(twice))
    before = kinds(url)
    result = run(url, "deploy", "--env", "production", "--manifest", str(path))
    assert result.exit_code == 2
    assert "manifest[1] places api on h1 again (manifest[0] did)" in result.output
    assert kinds(url) == before


def test_rolling_back_to_a_bad_generation_needs_force(url: str) -> None:
    assert run(url, "rollback", "--env", "production", "--to", "1").exit_code == 0
    refused = run(url, "rollback", "--env", "production", "--to", "2", "--dry-run")
    assert refused.exit_code == 2
    assert "generation 2 is marked bad" in refused.output
    forced = run(url, "rollback", "--env", "production", "--to", "2", "--dry-run", "--force")
    assert forced.exit_code == 0, forced.output


def test_dry_run_with_a_template_shows_each_command_quoted(url: str) -> None:
    plan = as_json(
        run(
            url, "rollback", "--env", "production", "--to", "1", "--dry-run", "--json",
            "--execute", "ssh {host} switch {service} {artifact}",
        )
    )  # fmt: skip
    assert plan["steps"][0]["command"] == (
        f"ssh h1 switch api /nix/store/{build_id('api', '1')}-api-1"
    )


def test_a_coordinator_killed_mid_rollout_resumes_from_the_ledger(url: str, tmp_path: Path) -> None:
    """SIGKILL while a step runs: nothing recorded is lost, and resume repeats only the
    step that was in flight (its outcome was never recorded)."""
    manifest = [
        {"host": f"n{i}", "service": "api", "build_id": build_id("api", "9")} for i in range(4)
    ]
    path = tmp_path / "release.json"
    path.write_text(json.dumps(manifest))
    log, done = tmp_path / "steps.log", tmp_path / "done"
    template = (
        f"echo {{step}} {{host}} >> {log}; "
        f"if [ {{host}} = n2 ] && [ {{step}} = activate ] && [ ! -e {done} ]; then sleep 60; fi"
    )
    command = [sys.executable, "-c", "from cli.main import main; main()", "--ledger", url,
               "deploy", "--env", "staging", "--manifest", str(path), "--execute", template,
               "--parallel", "activate=1"]  # fmt: skip
    coordinator = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while "activate n2" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "the rollout never reached n2"
        assert coordinator.poll() is None, "the coordinator ended early"
        time.sleep(0.05)
    os.killpg(coordinator.pid, signal.SIGKILL)
    coordinator.wait()
    assert run(url, "project").exit_code == 0  # PostgreSQL views follow explicitly
    assert as_json(run(url, "generation", "1", "--env", "staging", "--json"))["status"] == "planned"

    done.touch()
    resumed = run(url, "deploy", "--env", "staging", "--resume", "--execute", template)
    assert resumed.exit_code == 0, resumed.output
    lines = log.read_text().splitlines()
    repeated = {line for line, count in Counter(lines).items() if count > 1}
    assert repeated == {"activate n2"}
    assert sorted(set(lines)) == sorted(
        [f"distribute n{i}" for i in range(4)] + [f"activate n{i}" for i in range(4)]
    )
    assert as_json(run(url, "generation", "1", "--env", "staging", "--json"))["status"] == (
        "completed"
    )


def test_resume_retires_what_the_stopped_run_had_already_replaced(url: str, tmp_path: Path) -> None:
    """Activating a build replaces the old one in the topology, but the old one still
    runs until it is drained and deactivated: a resume must finish that too."""
    d2, a3 = build_id("db", "2"), build_id("api", "3")
    manifest = [
        {"host": h, "service": s, "build_id": b, "depends_on": d}
        for h in ("h1", "h2")
        for s, b, d in (("db", d2, []), ("api", a3, ["db"]))
    ]
    path = tmp_path / "release.json"
    path.write_text(json.dumps(manifest))
    log, stop = tmp_path / "steps.log", tmp_path / "stop-h2"
    stop.touch()
    template = (
        f"if [ {{step}} = activate ] && [ {{service}} = api ] && [ -e {tmp_path}/stop-{{host}} ]; "
        f"then exit 4; fi; echo {{step}} {{host}} {{service}} {{build_id}} >> {log}"
    )
    args = ["--env", "production", "--execute", template, "--parallel", "activate=1"]
    assert run(url, "deploy", "--manifest", str(path), *args).exit_code == 1
    first = log.read_text().splitlines()
    assert f"activate h1 db {d2}" in first
    assert f"activate h1 api {a3}" in first
    assert not [line for line in first if line.startswith(("drain", "deactivate"))]

    stop.unlink()
    resumed = run(url, "deploy", "--resume", *args)
    assert resumed.exit_code == 0, resumed.output
    lines = log.read_text().splitlines()
    assert Counter(lines).most_common(1)[0][1] == 1, "a finished step ran twice"
    retired = [line for line in lines[len(first) :] if line.startswith(("drain", "deactivate"))]
    old = {("h1", "db"): build_id("db", "1"), ("h2", "db"): build_id("db", "1"),
           ("h1", "api"): build_id("api", "2"), ("h2", "api"): build_id("api", "1")}  # fmt: skip
    assert sorted(retired) == sorted(
        f"{step} {h} {s} {b}" for (h, s), b in old.items() for step in ("drain", "deactivate")
    )
    # api depends on db: every api build is retired before any db build.
    services = [line.split()[2] for line in retired]
    assert services == sorted(services, key=lambda s: s != "api")


def test_an_interrupted_rollout_lets_running_steps_finish_and_records_why(
    url: str, tmp_path: Path
) -> None:
    manifest = [
        {"host": f"n{i}", "service": "api", "build_id": build_id("api", "9")} for i in range(3)
    ]
    path = tmp_path / "release.json"
    path.write_text(json.dumps(manifest))
    log = tmp_path / "steps.log"
    template = (
        f"echo start {{step}} {{host}} >> {log}; sleep 1; echo end {{step}} {{host}} >> {log}"
    )
    command = [sys.executable, "-c", "from cli.main import main; main()", "--ledger", url,
               "deploy", "--env", "staging", "--manifest", str(path), "--execute", template,
               "--parallel", "distribute=1"]  # fmt: skip
    coordinator = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while "start distribute n0" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "the rollout never started"
        time.sleep(0.05)
    coordinator.send_signal(signal.SIGINT)  # Ctrl-C, to the coordinator only
    output, _ = coordinator.communicate(timeout=60)
    assert coordinator.returncode == 1, output
    assert b"steps done" in output
    # The step that was running finished and was recorded; no other step started.
    assert log.read_text().splitlines() == ["start distribute n0", "end distribute n0"]
    assert run(url, "project").exit_code == 0
    generation = as_json(run(url, "generation", "1", "--env", "staging", "--json"))
    assert generation["status"] == "failed"
    assert generation["failure"] == "interrupted by the operator after 1 of 6 steps"
    assert kinds(url)[-2:] == ["distribution_completed", "generation_failed"]
