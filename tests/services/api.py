"""The ledger's HTTP server for the tests: the real app under uvicorn on a free port of
127.0.0.1, in a thread of the test process, with a token of each role."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import uvicorn

from api.app import ServerSettings, create_app
from api.tokens import create_tables, create_token
from ledger.application import Ledger
from ledger.store import locate
from projections.runner import Views
from tests.services.kafka import free_port

STARTUP_TIMEOUT = 30.0


@dataclass
class ApiServer:
    """``ledger serve`` on ``url``: start, stop, and the base URL and tokens."""

    ledger_url: str
    settings: ServerSettings = field(default_factory=ServerSettings)
    port: int = field(default_factory=free_port)
    tokens: dict[str, str] = field(default_factory=dict)
    """A secret per role: ``reader``, ``writer``, ``admin``."""

    def start(self) -> ApiServer:
        self.ledger = Ledger(locate(self.ledger_url))
        self.views = Views(self.ledger)
        self.views.catch_up()
        create_tables(self.views.recorder)
        for role in ("reader", "writer", "admin"):
            self.tokens[role] = create_token(self.views.recorder, f"test-{role}", role, by="test")
        self.app = create_app(self.views, self.settings)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port,
            log_level="warning", access_log=False, timeout_graceful_shutdown=1,
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="api-server", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the API server did not start on port {self.port}")
            time.sleep(0.02)
        return self

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.views.recorder.datastore.close()
        self.ledger.close()


def serve(ledger_url: str, settings: ServerSettings | None = None) -> Iterator[ApiServer]:
    """A running server for a test; stopped afterwards."""
    server = ApiServer(ledger_url, settings or ServerSettings(stream_interval=0.05)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="api_server")
def api_server_fixture(ledger: Ledger) -> Iterator[ApiServer]:
    """A server on the test's ledger (both backends), as the fixture ``api_server``
    (import ``api_server_fixture``)."""
    yield from serve(ledger.location.url)
