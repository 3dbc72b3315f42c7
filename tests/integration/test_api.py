"""The HTTP API against a real uvicorn server on both backends: tokens and roles, every
read endpoint against the queries it serves, POST /api/events all or nothing, admin
writes, JSON errors, the OpenAPI document and the live stream."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner

from api.app import ServerSettings
from api.tokens import create_token, digest
from cli.main import root
from ledger.application import Ledger
from projections import queries
from projections.runner import Views
from tests.services.api import ApiServer, api_server_fixture, serve  # noqa: F401 (fixture)
from tests.services.kafka import free_port
from tests.story import START, Story, api_upgrade, build_id, minute, openssl

DEADLINE = 30.0


def get(server: ApiServer, path: str, role: str | None = "reader", **params: Any) -> Any:
    headers = server.headers(role) if role else {}
    return httpx.get(server.base + path, headers=headers, params=params, timeout=30)


def post(server: ApiServer, path: str, role: str, body: bytes | dict[str, Any], **kw: Any) -> Any:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = {**server.headers(role), "Content-Type": kw.pop("content_type", "application/json")}
    return httpx.post(server.base + path, headers=headers, content=content, timeout=30, **kw)


def settled(server: ApiServer) -> None:
    """Wait until the server's views include everything in the ledger."""
    deadline = time.monotonic() + DEADLINE
    while True:
        status = get(server, "/api/status").json()
        if status["views"] >= status["head"]:
            return
        assert time.monotonic() < deadline, status
        time.sleep(0.05)


def fleet(ledger: Ledger) -> Story:
    """Generation 1 and 2 of api (openssl 1.0.1p, then 1.0.2d) on h1 and h2, then a
    failed generation 3 (an activation failed on h1), rolled back to 2 as generation 4."""
    s = api_upgrade()
    bad = s.build("api", "1.2", openssl("3.0.13"))
    good = build_id("api", "1.1")
    s.plan(3, {("h1", "api"): bad, ("h2", "api"): bad})
    s.add("distribution_completed", host="h1", service="api", build_id=bad)
    s.add("activation_failed", host="h1", service="api", build_id=bad, generation=3,
          reason="health check failed", exit_code=1)  # fmt: skip
    s.add("generation_failed", number=3, reason="activation failed on h1")
    s.plan(4, {("h1", "api"): good, ("h2", "api"): good}, parent=3, reason="rollback", target=2)
    s.add("generation_completed", number=4)
    s.add("health_reported", host="h1", state="warning", metric=0.9)
    s.record(ledger)
    return s


@pytest.fixture
def story_server(ledger: Ledger) -> Iterator[ApiServer]:
    fleet(ledger)
    yield from serve(ledger.location.url, ServerSettings(stream_interval=0.05))


def views_of(server: ApiServer) -> Views:
    views = Views(server.ledger)
    views.catch_up()
    return views


# --- who may do what ------------------------------------------------------------------


def api_paths(server: ApiServer) -> list[tuple[str, str]]:
    """Every (method, path) of the API, path parameters filled in."""
    from fastapi.routing import APIRoute

    filled = {"{host}": "h1", "{number}": "1"}
    routes = []
    for route in server.app.routes:
        if isinstance(route, APIRoute) and route.path.startswith("/api"):
            path = route.path
            for name, value in filled.items():
                path = path.replace(name, value)
            routes += [(method, path) for method in route.methods or ()]
    return routes


def test_no_endpoint_answers_without_a_valid_token(api_server: ApiServer) -> None:
    routes = api_paths(api_server)
    assert len(routes) >= 15
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer dl_not-a-token"},
                        {"Authorization": "Basic dXNlcjpwdw=="}):  # fmt: skip
            response = httpx.request(method, api_server.base + path, headers=headers, timeout=30)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json()["error"] == "unauthorized"


def test_roles_reader_writer_admin(api_server: ApiServer) -> None:
    event = health("h1")
    assert get(api_server, "/api/status").json()["role"] == "reader"
    refused = post(api_server, "/api/events", "reader", event)
    assert refused.status_code == 403
    assert refused.json()["message"] == "this needs the writer role; 'test-reader' is a reader"
    assert post(api_server, "/api/events", "writer", event).status_code == 201
    rollback = {"to": 1, "dry_run": True}
    assert post(api_server, "/api/rollback", "writer", rollback).status_code == 403
    assert post(api_server, "/api/generations/1/tags", "writer", {"tags": ["x"]}).status_code == 403
    # Admins may read and write too.
    assert get(api_server, "/api/status", "admin").status_code == 200


def test_a_revoked_token_is_refused(ledger: Ledger) -> None:
    settings = ServerSettings(stream_interval=0.05, auth_cache_seconds=0)
    for server in serve(ledger.location.url, settings):
        secret = create_token(server.views.recorder, "short-lived", "reader", by="test")
        headers = {"Authorization": f"Bearer {secret}"}
        assert httpx.get(server.base + "/api/status", headers=headers).status_code == 200
        result = CliRunner().invoke(
            root, ["--ledger", ledger.location.url, "token", "revoke", "short-lived"]
        )
        assert result.exit_code == 0, result.output
        assert httpx.get(server.base + "/api/status", headers=headers).status_code == 401


def test_anonymous_reads_only_when_allowed(ledger: Ledger) -> None:
    fleet(ledger)
    settings = ServerSettings(stream_interval=0.05, allow_anonymous_read=True)
    for server in serve(ledger.location.url, settings):
        status = httpx.get(server.base + "/api/status").json()
        assert (status["role"], status["token"]) == ("reader", "anonymous")
        assert httpx.get(server.base + "/api/topology").status_code == 200
        response = httpx.post(server.base + "/api/events", content=b"{}",
                              headers={"Content-Type": "application/json"})  # fmt: skip
        assert response.status_code == 403


def test_tokens_are_stored_hashed_and_listed_without_secrets(ledger: Ledger) -> None:
    url = ledger.location.url
    created = CliRunner().invoke(root, ["--ledger", url, "token", "create", "ci", "--role",
                                        "writer", "--json"])  # fmt: skip
    assert created.exit_code == 0, created.output
    secret = orjson.loads(created.output)["token"]
    views = Views(ledger)
    rows = views.query("SELECT * FROM api_tokens")
    assert [(r["name"], r["role"], r["secret_hash"]) for r in rows] == [
        ("ci", "writer", digest(secret))
    ]
    assert secret not in str(rows)
    listed = CliRunner().invoke(root, ["--ledger", url, "token", "list", "--json"])
    assert secret not in listed.output
    assert [t["name"] for t in orjson.loads(listed.output)] == ["ci"]
    again = CliRunner().invoke(root, ["--ledger", url, "token", "create", "ci"])
    assert again.exit_code == 2
    assert "there is a token called 'ci' already" in again.output
    CliRunner().invoke(root, ["--ledger", url, "token", "revoke", "ci"])
    twice = CliRunner().invoke(root, ["--ledger", url, "token", "revoke", "ci"])
    assert twice.exit_code == 2
    assert "revoked already" in twice.output


# --- reading --------------------------------------------------------------------------


def test_read_endpoints_answer_what_the_queries_answer(story_server: ApiServer) -> None:
    settled(story_server)
    views = views_of(story_server)
    topology = get(story_server, "/api/topology").json()
    assert topology["items"] == queries.topology(views)
    assert topology["total"] == 2
    manifest = get(story_server, "/api/hosts/h1/manifest").json()
    assert manifest == queries.manifest(views, "h1")
    assert get(story_server, "/api/generations").json()["items"] == queries.generations(views)
    detail = get(story_server, "/api/generations/2").json()
    assert detail == queries.generation(views, 2)
    history = get(story_server, "/api/hosts/h1/history", limit=1000).json()
    assert history["items"] == queries.history(views, "h1")
    failures = get(story_server, "/api/failures", kind="activation_failed").json()["items"]
    assert [(f["host"], f["reason"]) for f in failures] == [("h1", "health check failed")]
    diff = get(story_server, "/api/diff", a=1, b=2).json()
    assert diff["services"][0]["change"] == "changed"
    assert {c["name"] for c in diff["closure_changes"]} == {"openssl"}
    metrics = get(story_server, "/api/metrics").json()
    assert [m["service"] for m in metrics] == ["api"]
    drift = get(story_server, "/api/drift").json()
    assert drift["envs"][0]["unreported"] == 2


def test_the_generation_tree_shows_the_failure_and_the_rollback(story_server: ApiServer) -> None:
    settled(story_server)
    [root_node] = get(story_server, "/api/generations/tree").json()
    chain, failures = [], []
    node = root_node
    while True:
        chain.append((node["number"], node["status"], node["reason"], node["target"]))
        failures.append(node["failure"])
        if not node["children"]:
            break
        [node] = node["children"]
    assert chain == [
        (1, "completed", "deploy", None),
        (2, "completed", "deploy", None),
        (3, "rolled back", "deploy", None),
        (4, "completed", "rollback", 2),
    ]
    assert failures == [None, None, "activation failed on h1", None]


def test_where_now_at_a_past_moment_and_in_a_generation(story_server: ApiServer) -> None:
    settled(story_server)

    def versions(**params: Any) -> list[tuple[str, int]]:
        answer = get(story_server, "/api/where", name="openssl", **params).json()
        return [(row["version"], row["hosts"]) for row in answer["summary"]]

    assert versions() == [("1.0.2d", 2)]
    assert versions(at=minute(10).isoformat()) == [("1.0.1p", 2)]
    assert versions(at=minute(16).isoformat()) == [("1.0.1p", 1), ("1.0.2d", 1)]
    assert versions(generation=3) == [("3.0.13", 2)]
    assert versions(range=">=1.0.2,<3") == [("1.0.2d", 2)]
    answer = get(story_server, "/api/where", name="openssl").json()
    assert [(p["host"], p["version"]) for p in answer["placements"]["items"]] == [
        ("h1", "1.0.2d"), ("h2", "1.0.2d"),
    ]  # fmt: skip


def test_pagination(story_server: ApiServer) -> None:
    settled(story_server)
    first = get(story_server, "/api/hosts/h1/history", limit=3).json()
    assert (first["limit"], first["offset"], len(first["items"])) == (3, 0, 3)
    everything = get(story_server, "/api/hosts/h1/history", limit=1000).json()["items"]
    pages, url = [], story_server.base + "/api/hosts/h1/history?limit=3"
    while url:
        page = httpx.get(url, headers=story_server.headers("reader")).json()
        assert page["total"] == len(everything)
        pages += page["items"]
        url = page["next"] and story_server.base + page["next"]
    assert pages == everything
    assert first["next"] == "/api/hosts/h1/history?offset=3&limit=3"
    assert get(story_server, "/api/topology", limit=0).status_code == 422
    assert get(story_server, "/api/topology", limit=1001).status_code == 422


def test_errors_are_json_with_a_fitting_status(story_server: ApiServer) -> None:
    settled(story_server)
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("/api/generations/99", {}, 404, "production has no generation 99"),
        ("/api/hosts/nowhere/manifest", {}, 404, "nothing is active on host 'nowhere'"),
        ("/api/where", {"name": "openssl", "range": "=>1.0"}, 422, "unknown operator"),
        ("/api/where", {"name": "openssl", "at": "yesterday"}, 422, "at: not an ISO 8601"),
        ("/api/where", {"name": "openssl", "at": "2026-03-01T00:00:00"}, 422, "timezone"),
        ("/api/where", {}, 422, "name: Field required"),
        ("/api/diff", {"a": 1, "b": 77}, 404, "no generation 77"),
        ("/api/nothing-here", {}, 404, "Not Found"),
        # A question naming what the ledger never saw: 404, never an empty 200.
        ("/api/where", {"name": "opensll"}, 404, "package called 'opensll'; did you mean"),
        ("/api/where", {"name": "openssl", "env": "prod"}, 404, "did you mean 'production'"),
        ("/api/where", {"name": "openssl", "range": "1.0.1..1.0.2"}, 422, "range"),
        ("/api/topology", {"env": "nope"}, 404, "environment 'nope' is not in the ledger"),
        ("/api/failures", {"env": "nope"}, 404, "environment 'nope' is not in the ledger"),
    ]
    for path, params, status, text in cases:
        response = get(story_server, path, **params)
        assert response.status_code == status, (path, response.text)
        body = response.json()
        assert set(body) == {"error", "message", "details"}
        assert text in body["message"], (path, body)
        assert "Traceback" not in response.text


def test_the_openapi_document_describes_every_endpoint(api_server: ApiServer) -> None:
    document = httpx.get(api_server.base + "/openapi.json").json()
    paths = document["paths"]
    for path in ("/api/topology", "/api/hosts/{host}/manifest", "/api/generations",
                 "/api/generations/tree", "/api/generations/{number}", "/api/diff",
                 "/api/where", "/api/hosts/{host}/history", "/api/failures", "/api/drift",
                 "/api/metrics", "/api/events", "/api/stream", "/api/rollback"):  # fmt: skip
        assert path in paths, path
    where = paths["/api/where"]["get"]
    assert where["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WhereAnswer"
    }
    assert {p["name"] for p in where["parameters"]} >= {"name", "range", "at", "known_at"}


# --- writing --------------------------------------------------------------------------


def health(host: str, **fields: Any) -> dict[str, Any]:
    return {"kind": "health_reported", "event_id": str(uuid.uuid4()), "env": "production",
            "occurred_at": START.isoformat(), "actor": "agent", "host": host,
            "state": "ok", **fields}  # fmt: skip


def test_post_one_event_then_again(api_server: ApiServer, ledger: Ledger) -> None:
    event = health("h9")
    first = post(api_server, "/api/events", "writer", event)
    assert first.status_code == 201, first.text
    [stored] = first.json()["events"]
    assert (stored["event_id"], stored["new"]) == (event["event_id"], True)
    again = post(api_server, "/api/events", "writer", event)
    assert again.status_code == 200
    assert again.json()["already_stored"] == 1
    [fact] = list(ledger.facts())
    assert (fact.event["actor"], fact.event["source"]) == ("test-writer", "http")


def test_a_batch_is_all_or_nothing(api_server: ApiServer, ledger: Ledger) -> None:
    good = [health(f"h{i}") for i in range(3)]
    lines = [orjson.dumps(e) for e in good] + [orjson.dumps(health("h4", state="on fire")), b"{"]
    response = post(api_server, "/api/events", "writer", b"\n".join(lines),
                    content_type="application/x-ndjson")  # fmt: skip
    assert response.status_code == 422
    body = response.json()
    assert body["message"].startswith("2 of 5 events are invalid, nothing was stored")
    assert [(d["line"], d["field"]) for d in body["details"]] == [(4, "state"), (5, "")]
    assert ledger.count() == 0

    batch = b"\n".join(orjson.dumps(e) for e in good)
    created = post(api_server, "/api/events", "writer", batch, content_type="application/x-ndjson")
    assert created.status_code == 201
    assert created.json()["stored"] == 3
    clash = {**good[0], "state": "critical"}
    conflict = post(api_server, "/api/events", "writer",
                    b"\n".join([orjson.dumps(health("h7")), orjson.dumps(clash)]),
                    content_type="application/x-ndjson")  # fmt: skip
    assert conflict.status_code == 409
    assert f"event_id {good[0]['event_id']} is already stored" in conflict.json()["message"]
    assert ledger.count() == 3


def test_bodies_of_the_wrong_type_or_size_are_refused(ledger: Ledger) -> None:
    settings = ServerSettings(stream_interval=0.05, max_body_bytes=2048)
    for server in serve(ledger.location.url, settings):
        wrong = post(server, "/api/events", "writer", health("h1"), content_type="text/plain")
        assert wrong.status_code == 415
        big = orjson.dumps(health("h1", description="x" * 4000))
        too_large = post(server, "/api/events", "writer", big)
        assert too_large.status_code == 413
        assert "at most 2,048 are accepted" in too_large.json()["message"]

        streamed = httpx.post(  # chunked, no Content-Length: counted while read
            server.base + "/api/events", content=iter([big[:1000], big[1000:]]),
            headers={**server.headers("writer"), "Content-Type": "application/json"},
        )  # fmt: skip
        assert streamed.status_code == 413
        empty = post(server, "/api/events", "writer", b"   ")
        assert empty.status_code == 400
    assert ledger.count() == 0


def test_admins_tag_and_plan_rollbacks(story_server: ApiServer) -> None:
    settled(story_server)
    tagged = post(story_server, "/api/generations/2/tags", "admin", {"tags": ["known-good"]})
    assert tagged.status_code == 201, tagged.text
    dry = post(story_server, "/api/rollback", "admin", {"to": 1, "dry_run": True})
    assert dry.status_code == 200, dry.text
    plan = dry.json()
    assert (plan["generation"], plan["target"], plan["recorded"]) == (5, 1, False)
    assert {s["step"] for s in plan["steps"]} >= {"activate"}
    head = story_server.ledger.count()
    done = post(story_server, "/api/rollback", "admin", {"to": 1})
    assert done.json()["recorded"] is True
    facts = list(story_server.ledger.facts())
    assert len(facts) == head + 1
    assert (facts[-1].event["kind"], facts[-1].event["actor"]) == (
        "generation_planned", "test-admin",
    )  # fmt: skip
    settled(story_server)
    assert "known-good" in get(story_server, "/api/generations/2").json()["tags"]
    missing = post(story_server, "/api/rollback", "admin", {"to": 42})
    assert missing.status_code == 404


# --- the live stream ------------------------------------------------------------------


def read_stream(
    server: ApiServer, headers: dict[str, str], done: Callable[[list[str]], bool]
) -> list[str]:
    """The stream's lines until ``done(lines)``."""
    lines: list[str] = []
    with httpx.stream("GET", server.base + "/api/stream", headers=headers, timeout=30) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            lines.append(line)
            if done(lines):
                break
    return lines


def views_after(count: int) -> Callable[[list[str]], bool]:
    """Done once ``count`` ledger events and then a views message arrived."""

    def done(lines: list[str]) -> bool:
        return lines.count("event: ledger") >= count and lines[-2:-1] == ["event: views"]

    return done


def test_the_stream_sends_new_events_then_the_views_position(
    api_server: ApiServer, ledger: Ledger
) -> None:
    events = [health("h1"), health("h2")]
    received: list[list[str]] = []
    reader = threading.Thread(
        target=lambda: received.append(
            read_stream(api_server, api_server.headers("reader"), views_after(2))
        )
    )
    reader.start()
    time.sleep(0.5)  # the client is connected
    post(api_server, "/api/events", "writer", events[0])
    post(api_server, "/api/events", "writer", events[1])
    reader.join(DEADLINE)
    [lines] = received
    ids = [line.removeprefix("id: ") for line in lines if line.startswith("id: ")]
    assert ids == ["1", "2"]
    data = [orjson.loads(line[6:]) for line in lines if line.startswith("data: ")]
    assert [d["event_id"] for d in data if "event_id" in d] == [e["event_id"] for e in events]
    assert data[-1] == {"position": 2}

    # Reconnecting with Last-Event-ID replays what came after it.
    headers = {**api_server.headers("reader"), "Last-Event-ID": "1"}
    replay = read_stream(api_server, headers, lambda lines: "id: 2" in lines)
    assert "id: 1" not in replay


def test_secrets_never_reach_the_logs(
    api_server: ApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "dl_" + "x" * 43
    for secret in (api_server.tokens["reader"], api_server.tokens["writer"], wrong):
        httpx.get(api_server.base + "/api/status", headers={"Authorization": f"Bearer {secret}"})
        post(api_server, "/api/events", "writer", b"{", content_type="application/json")
    assert caplog.records  # something was logged at all
    for secret in (*api_server.tokens.values(), wrong):
        assert secret not in caplog.text


def test_ledger_serve_runs_the_api_until_stopped(ledger: Ledger, tmp_path: Path) -> None:
    fleet(ledger)
    url = ledger.location.url
    created = CliRunner().invoke(root, ["--ledger", url, "token", "create", "ops", "--json"])
    secret = orjson.loads(created.output)["token"]
    port = free_port()
    log = tmp_path / "serve.log"
    process = subprocess.Popen(
        [sys.executable, "-c", "from cli.main import main; main()", "--ledger", url, "serve",
         "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/api/status",
                    headers={"Authorization": f"Bearer {secret}"},
                )
                break
            except httpx.TransportError:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        assert response.json()["token"] == "ops"
        page = httpx.get(f"http://127.0.0.1:{port}/")
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
    assert f"http://127.0.0.1:{port}/" in log.read_text()
    assert secret not in log.read_text()
