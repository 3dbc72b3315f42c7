"""A PostgreSQL server of a test's own, which the test may stop and start again (the
session's shared server must stay up for the other tests)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


class OwnPostgres:
    """pgserver's PostgreSQL on a data directory of its own, on a Unix socket."""

    def __init__(self, pgdata: Path) -> None:
        import pgserver

        self.server: Any = pgserver.get_server(pgdata, cleanup_mode="stop")
        self.url: str = self.server.get_uri()
        info = self.server.get_postmaster_info()
        self.socket_dir = str(info.socket_dir)

    def _pg_ctl(self, *args: str) -> None:
        from pgserver._commands import pg_ctl

        pg_ctl(list(args), pgdata=self.server.pgdata, user=self.server.system_user)

    def stop(self) -> None:
        """Stop now: open connections are cut, as in a crash of the database host."""
        self._pg_ctl("-w", "-m", "immediate", "stop")

    def start(self) -> None:
        """Start again on the same socket, so clients reconnect to the same URL."""
        self._pg_ctl(
            "-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.server.log),
            "start",
        )  # fmt: skip

    def cleanup(self) -> None:
        # pgserver only stops the server it started, not one started again here.
        with contextlib.suppress(subprocess.CalledProcessError):  # not running
            self._pg_ctl("-w", "-m", "fast", "stop")
        self.server.cleanup()


@pytest.fixture(name="own_postgres")
def own_postgres_server(tmp_path: Path) -> Iterator[OwnPostgres]:
    """A PostgreSQL of this test's own, as the fixture ``own_postgres`` (import
    ``own_postgres_server``)."""
    server = OwnPostgres(tmp_path / "pgdata")
    try:
        yield server
    finally:
        server.cleanup()
