"""The host agent (``ledger agent run``): Nix profiles read as a manifest, reports over
HTTP to a real ``ledger serve`` and over Kafka to the ingest workers, and an outage of
the server retried with the same event."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from api.app import ServerSettings
from cli.main import root
from collectors.host_agent import HostAgent, HttpReporter, profile_manifest, run_agent
from ledger.application import Ledger
from ledger.errors import InvalidInput
from tests.services.api import ApiServer, api_server_fixture, serve  # noqa: F401 (fixture)
from tests.services.kafka import free_port

API = "/nix/store/0c9w2k7q0mbw4a1q2x5lq9lq0pb1jr4x-api-2.4.1"
WEB = "/nix/store/1d8x3l6r1ncx5b2r3y6mr8mr1qc2ks5y-nginx-1.25.3"


def profiles(tmp_path: Path) -> Path:
    """Per-service profiles as Nix makes them: name → name-N-link → store path."""
    directory = tmp_path / "per-service"
    directory.mkdir()
    for service, path, generation in (("api", API, 7), ("web", WEB, 2)):
        (directory / f"{service}-{generation}-link").symlink_to(path)
        (directory / f"{service}-{generation - 1}-link").symlink_to(path.replace("0c9", "9c0"))
        (directory / service).symlink_to(f"{service}-{generation}-link")
    return directory


def test_profiles_are_read_as_the_active_builds(tmp_path: Path) -> None:
    entries = profile_manifest("web-001", profiles(tmp_path))
    assert [(e.service, e.build_id, e.artifact) for e in entries] == [
        ("api", "0c9w2k7q0mbw4a1q2x5lq9lq0pb1jr4x", API),
        ("web", "1d8x3l6r1ncx5b2r3y6mr8mr1qc2ks5y", WEB),
    ]
    (tmp_path / "per-service" / "broken").symlink_to("/etc/hostname")
    with pytest.raises(InvalidInput, match="does not lead to a Nix store path"):
        profile_manifest("web-001", tmp_path / "per-service")


def test_agent_reports_over_http(api_server: ApiServer, ledger: Ledger, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(api_server.tokens["writer"] + "\n")
    result = CliRunner().invoke(
        root,
        ["agent", "run", "web-001", "--env", "production", "--profiles",
         str(profiles(tmp_path)), "--http", api_server.base, "--token-file", str(token),
         "--once"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [fact] = list(ledger.facts())
    event = fact.event
    assert (event["kind"], event["host"], event["actor"]) == (
        "host_reported", "web-001", "test-writer",
    )  # fmt: skip
    assert [entry["service"] for entry in event["manifest"]] == ["api", "web"]


def test_agent_refuses_bad_arguments(tmp_path: Path) -> None:
    runner = CliRunner()
    both = runner.invoke(root, ["agent", "run", "h", "--env", "e", "--manifest", "m.json",
                                "--http", "http://x", "--kafka", "k:9092"])  # fmt: skip
    assert both.exit_code == 2
    assert "either --http URL or --kafka" in both.output
    no_token = runner.invoke(
        root, ["agent", "run", "h", "--env", "e", "--profiles", str(profiles(tmp_path)),
               "--http", "http://x", "--once"],
        env={"LEDGER_TOKEN": ""},
    )  # fmt: skip
    assert no_token.exit_code == 2
    assert "needs a writer's token" in no_token.output


def test_an_outage_is_retried_with_the_same_event(ledger: Ledger, tmp_path: Path) -> None:
    """The server is down at first: the agent keeps the undelivered finding (same
    event_id) and delivers it once the server is up; the ledger holds it once."""
    port = free_port()
    directory = profiles(tmp_path)
    settings = ServerSettings(stream_interval=0.05)
    secret = {"value": "dl_not-yet"}
    agent = HostAgent(
        "web-001", "production", "agent", lambda: profile_manifest("web-001", directory),
        # The token is only known once the server is up: looked up at each attempt.
        lambda event: HttpReporter(f"http://127.0.0.1:{port}", secret["value"], 5)(event),  # noqa: PLW0108
    )  # fmt: skip
    stop = threading.Event()
    for _ in range(3):  # nothing listens: each attempt fails
        with pytest.raises(Exception, match="could not reach"):
            agent.tick()
    assert agent.pending is not None
    first_id = agent.pending.event_id
    server = ApiServer(ledger.location.url, settings, port=port).start()
    try:
        secret["value"] = server.tokens["writer"]
        thread = threading.Thread(target=run_agent, args=(agent,),
                                  kwargs={"every": 0.2, "stop": stop, "once": True})  # fmt: skip
        thread.start()
        thread.join(30)
        assert not thread.is_alive()
    finally:
        stop.set()
        server.stop()
    facts = list(ledger.facts())
    assert [f.event["event_id"] for f in facts] == [str(first_id)]
