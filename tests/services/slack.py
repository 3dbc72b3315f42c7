"""A Slack incoming-webhook stand-in for the tests: a local HTTP server.

It records every POSTed JSON body (with the time it arrived and how it was answered)
and answers each request as the test programmed it, in order — 200 ``ok`` once the
program runs out:

- ``Answer(429, headers={"Retry-After": "30"})``: rate limited, as Slack answers;
- ``Answer(500)``, ``Answer(400, "invalid_payload")``: server error, bad request;
- ``DROP``: read the request, then close the connection without answering (Slack got
  it; the client never hears so).

Requests to any other path than the webhook's secret one get ``404 no_service``, as
Slack answers for a deleted webhook. Also: a ``Clock`` for the collectors' injectable
clock, and a factory for collectors pointed at the stand-in.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from collectors.settings import CollectSettings
from collectors.slack import SlackCollector
from ledger.application import Ledger


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)


OK = Answer()
DROP = Answer(0, "")


def rate_limited(seconds: int) -> Answer:
    return Answer(429, "rate_limited", {"Retry-After": str(seconds)})


@dataclass(frozen=True)
class Request:
    at: float  # time.monotonic() when it arrived
    path: str
    body: dict[str, Any]
    status: int  # how it was answered (0: not at all)

    @property
    def message_id(self) -> int:
        return int(self.body["metadata"]["event_payload"]["message_id"])

    @property
    def text(self) -> str:
        """The fallback text and every block's text, for assertions."""
        parts = [self.body.get("text", "")]
        for block in self.body.get("blocks", []):
            if "text" in block:
                parts.append(block["text"]["text"])
            parts += [e.get("text", "") for e in block.get("elements", [])]
        return "\n".join(parts)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    stand_in: SlackStandIn


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        stand_in = self.server.stand_in
        answer = stand_in.next_answer(self.path)
        stand_in.record(Request(time.monotonic(), self.path, json.loads(raw), answer.status))
        if answer.status == 0:
            self.close_connection = True
            return
        data = answer.body.encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class SlackStandIn:
    """The webhook: ``url`` (with a secret token in its path), ``answer(...)`` to
    program the next answers, ``requests`` to see what came."""

    def __init__(self) -> None:
        self.token = secrets.token_hex(12)
        self.path = f"/services/T0LEDGER/B0LEDGER/{self.token}"
        self._answers: deque[Answer] = deque()
        self._requests: list[Request] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.stand_in = self
        self.port = self._server.server_address[1]
        # A short poll: shutdown() waits up to one poll interval (0.5 s by default, about
        # 50 s over the suite's stand-ins).
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def answer(self, *answers: Answer) -> None:
        with self._lock:
            self._answers.extend(answers)

    def next_answer(self, path: str) -> Answer:
        if path != self.path:
            return Answer(404, "no_service")
        with self._lock:
            return self._answers.popleft() if self._answers else OK

    def record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    @property
    def delivered(self) -> list[Request]:
        """The requests answered 200: the messages Slack would show."""
        return [r for r in self.requests if r.status == 200]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(name="slack")
def slack_fixture() -> Iterator[SlackStandIn]:
    stand_in = SlackStandIn()
    yield stand_in
    stand_in.stop()


class Clock:
    """The collectors' wall clock, moved by the test: no sleeping, no thresholds. It
    starts at the real time, so silences made through the CLI line up with it."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(name="clock")
def clock_fixture() -> Clock:
    return Clock()


def slack_collector(
    ledger: Ledger,
    url: str,
    clock: Clock,
    *,
    rules: Path | None = None,
    group_wait: float = 30,
    group_interval: float = 300,
    repeat_interval: float = 3600,
) -> SlackCollector:
    """A Slack collector on ``ledger`` posting to ``url``, its time from ``clock``."""
    settings = CollectSettings.model_construct(
        slack_webhook=SecretStr(url),
        rules=rules,
        group_wait=group_wait,
        group_interval=group_interval,
        repeat_interval=repeat_interval,
    )
    return SlackCollector(ledger, settings, clock=clock)


def run_until_idle(collector: SlackCollector) -> None:
    """Step until the collector has nothing to do at this moment of its clock."""
    for _ in range(1000):
        if not collector.step():
            return
    raise AssertionError("the collector never went idle")
