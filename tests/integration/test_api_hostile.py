"""The HTTP API refuses hostile parameters and bodies with a 4xx JSON error naming the
field, never a 500 (issue 15), against a real server on both backends: integers past
64 bits, digits that are not ASCII, strict admin bodies, Last-Event-ID, and a probe of
every parameter of every endpoint in the OpenAPI document; and the CLI's integer
options, which refuse a number out of range as a usage error (exit 2)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from click.testing import CliRunner

from api.params import MAX_NUMBER
from cli.main import root
from ledger.application import Ledger
from ledger.store import locate
from tests.integration.test_api import fleet, get, post, settled
from tests.services.api import ApiServer, serve

HUGE = "99999999999999999999"
INTEGERS = [HUGE, str(2**63), str(MAX_NUMBER + 1), "-1", "x", "²", "٣", "1.0", "5_0", " 5", ""]
TEXTS = ["x" * 10_240, "a\x00b", "a\x1b[31mb", "a\u202eb", "a\u200bb", "a\u2028b", "\x7f"]


@pytest.fixture(scope="module")
def server(module_ledger_url: str) -> Iterator[ApiServer]:
    """The server on test_api's fleet: generations 1 to 4 of api on h1 and h2; one per
    backend for the module, since every test here is refused and checks (or need not)
    that the ledger did not change."""
    ledger = Ledger(locate(module_ledger_url), create=True)
    try:
        fleet(ledger)
    finally:
        ledger.close()
    for running in serve(module_ledger_url):
        settled(running)
        yield running


def refused(response: httpx.Response, field: str, status: int = 422) -> dict[str, Any]:
    """The response is a JSON error with ``status`` whose message names ``field``."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "message", "details"}
    assert body["message"].startswith(f"{field}: "), body
    return body


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/where", {"name": "openssl", "offset": HUGE}, "offset"),
        ("/api/where", {"name": "openssl", "limit": HUGE}, "limit"),
        ("/api/where", {"name": "openssl", "generation": HUGE}, "generation"),
        ("/api/where", {"name": "openssl", "generation": "-1"}, "generation"),
        ("/api/generations/" + HUGE, {}, "number"),
        ("/api/diff", {"a": "1", "b": HUGE}, "b"),
        ("/api/diff", {"a": "²", "b": "2"}, "a"),
        ("/api/topology", {"offset": HUGE}, "offset"),
        ("/api/hosts/h1/history", {"offset": str(2**63)}, "offset"),
        ("/api/generations", {"offset": "-1"}, "offset"),
        ("/api/failures", {"offset": HUGE}, "offset"),
        ("/api/drift", {"offset": HUGE}, "offset"),
        ("/api/where", {"name": "openssl", "offset": "1.0"}, "offset"),
        ("/api/where", {"name": "openssl", "at": "9999-12-31T23:59:59-14:00"}, "at"),
        ("/api/where", {"name": "openssl", "at": "0001-01-01T00:00:00+14:00"}, "at"),
        ("/api/where", {"name": "open\x00ssl"}, "name"),
        ("/api/hosts/h1/history", {"service": "x" * 10_240}, "service"),
        ("/api/where", {"name": "openssl", "generaton": "2"}, "generaton"),
        ("/api/failures", {"newest_first": "yes"}, "newest_first"),
    ],
)
def test_bad_query_and_path_values_are_refused_naming_them(
    server: ApiServer, path: str, params: dict[str, str], field: str
) -> None:
    refused(get(server, path, **params), field)


def test_a_parameter_given_twice_is_refused(server: ApiServer) -> None:
    response = httpx.get(
        server.base + "/api/where?name=openssl&offset=0&offset=1",
        headers=server.headers("reader"),
    )
    refused(response, "offset")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"to": 99999999999999999999, "dry_run": true}', "to"),
        (b'{"to": "3", "dry_run": true}', "to"),
        (b'{"to": true, "dry_run": true}', "to"),
        (b'{"to": 2.0, "dry_run": true}', "to"),
        (b'{"to": 0, "dry_run": true}', "to"),
        (b'{"to": 2, "dry_run": "true"}', "dry_run"),
        (b'{"to": 2, "dry_run": true, "actor": "someone-else"}', "actor"),
        (b'{"to": 2, "to": 1, "dry_run": true}', "body"),
        (b'{"to": 2', "body"),
        (b"[2]", "body"),
        (b"", "body"),
    ],
)
def test_rollback_bodies_are_strict(server: ApiServer, body: bytes, field: str) -> None:
    head = server.ledger.count()
    refused(post(server, "/api/rollback", "admin", body), field)
    assert server.ledger.count() == head


def test_tag_bodies_are_strict(server: ApiServer) -> None:
    head = server.ledger.count()
    cases = [
        (b'{"tags": "known-good"}', "tags"),
        (b'{"tags": [1]}', "tags.0"),
        (b'{"tags": ["ok"], "by": "x"}', "by"),
        (b'{"tags": ["ok"], "tags": ["other"]}', "body"),
        (b'{"tags": ["a\\u0000b"]}', "tags.0"),
    ]
    for body, field in cases:
        refused(post(server, "/api/generations/2/tags", "admin", body), field)
    refused(post(server, f"/api/generations/{HUGE}/tags", "admin", {"tags": ["x"]}), "number")
    assert server.ledger.count() == head


def test_an_admin_body_over_64_kib_is_refused(server: ApiServer) -> None:
    big = b'{"to": 1, "dry_run": true, "pad": "' + b"x" * 70_000 + b'"}'
    response = post(server, "/api/rollback", "admin", big)
    assert response.status_code == 413
    assert "at most 65,536 are accepted" in response.json()["message"]


@pytest.mark.parametrize("last", ["²", "-1", "1.0", "+1", HUGE, "x", ""])
def test_the_stream_refuses_a_bad_last_event_id(server: ApiServer, last: str) -> None:
    # As latin-1, which the server decodes back to the same text: "²" is b"\xb2".
    headers = {k.encode(): v.encode() for k, v in server.headers("reader").items()}
    headers[b"Last-Event-ID"] = last.encode("latin-1")
    with httpx.stream("GET", server.base + "/api/stream", headers=headers, timeout=30) as r:
        # Accepted, it would stream for ever: look at the status before reading on.
        assert r.status_code != 200, last
        r.read()
        refused(r, "Last-Event-ID")


def openapi_probes(document: dict[str, Any]) -> list[tuple[str, str, dict[str, str], str]]:
    """(method, path, query, what) for every parameter of every endpoint: integers as
    2^63, -1, "x", "²" and friends; text 10 kB long or with control characters."""
    probes = []
    for template, operations in document["paths"].items():
        for method, operation in operations.items():
            parameters = operation.get("parameters", [])
            required = {
                p["name"]: "openssl" if p["name"] == "name" else "1"
                for p in parameters
                if p["in"] == "query" and p.get("required")
            }
            for parameter in parameters:
                if parameter["in"] == "header":
                    continue  # Last-Event-ID: test_the_stream_refuses_a_bad_last_event_id
                schema = parameter["schema"]
                types = {s.get("type") for s in schema.get("anyOf", [schema])}
                values = INTEGERS if types & {"integer", "boolean"} else TEXTS
                for value in values:
                    path, query = template, dict(required)
                    if parameter["in"] == "path" and not value:
                        continue  # another route: /api/generations/
                    if parameter["in"] == "path":
                        path = path.replace("{" + parameter["name"] + "}", quote(value, safe=""))
                    else:
                        query[parameter["name"]] = value
                    path = path.replace("{host}", "h1").replace("{number}", "1")
                    probes.append((method.upper(), path, query, f"{parameter['name']}={value!r}"))
    return probes


def test_no_parameter_of_any_endpoint_makes_a_500(server: ApiServer) -> None:
    document = server.app.openapi()
    probes = openapi_probes(document)
    assert len(probes) > 300
    bodies = {
        "/api/rollback": {"to": 1, "dry_run": True},
        "/api/generations/1/tags": {"tags": ["x"]},
    }
    head = server.ledger.count()
    with httpx.Client(base_url=server.base, timeout=30) as client:
        for method, path, query, what in probes:
            if path == "/api/stream":
                continue  # only a header; an accepted one would stream forever
            role = "admin" if method == "POST" else "reader"
            response = client.request(
                method, path, params=query, json=bodies.get(path),
                headers=server.headers(role),
            )  # fmt: skip
            assert 400 <= response.status_code < 500, (method, path, what, response.text)
            body = response.json()
            assert set(body) == {"error", "message", "details"}, (path, what, body)
            assert "Traceback" not in response.text
    assert server.ledger.count() == head


# --- the CLI's integer options -----------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["where", "openssl", "--generation", HUGE],
        ["where", "openssl", "--generation", "-1"],
        ["history", "--host", "h1", "--limit", HUGE],
        ["failures", "--generation", str(2**63)],
        ["generation", HUGE],
        ["diff", "1", HUGE],
        ["tag", HUGE, "known-good"],
        ["rollback", "--to", HUGE],
        ["where", "openssl", "--at", "9999-12-31T23:59:59-14:00"],
    ],
)
def test_cli_numbers_out_of_range_are_usage_errors(ledger: Ledger, args: list[str]) -> None:
    fleet(ledger)
    result = CliRunner().invoke(root, ["--ledger", ledger.location.url, *args])
    assert result.exit_code == 2, result.output
    assert "Invalid value for" in result.output
    assert "unexpected" not in result.output
