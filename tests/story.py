"""A small fleet history written step by step, for tests of the views.

Each step makes one valid event with its own ``occurred_at`` (a minute after the
previous one unless given), so tests can ask "what was active at minute 7".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ledger.application import Ledger
from ledger.events import Envelope
from tests.factories import make_event

START = datetime(2026, 3, 1, tzinfo=UTC)


def minute(n: float) -> datetime:
    return START + timedelta(minutes=n)


def build_id(service: str, version: str) -> str:
    return f"{service}-{version}-0000000000000000"[:32].replace(".", "_")


def openssl(version: str) -> dict[str, Any]:
    return {
        "name": "openssl",
        "version": version,
        "store_path": f"/nix/store/{'o' * 32}-openssl-{version}",
        "hash": "sha256:" + version.encode().hex().ljust(64, "0")[:64],
    }


def zlib(version: str) -> dict[str, Any]:
    return {
        "name": "zlib",
        "version": version,
        "store_path": f"/nix/store/{'z' * 32}-zlib-{version}",
        "hash": "sha256:" + ("z" + version).encode().hex().ljust(64, "0")[:64],
    }


class Story:
    def __init__(self, env: str = "production") -> None:
        self.env = env
        self.events: list[Envelope] = []
        self.clock = 0.0

    def add(
        self, kind: str, at: float | None = None, *, late: float = 0, **fields: Any
    ) -> Envelope:
        """One event, occurring a minute after the last one (or at minute ``at``) and
        recorded ``late`` minutes after it occurred."""
        self.clock = self.clock + 1 if at is None else at
        fields.setdefault("env", self.env)
        fields.setdefault("actor", "deploy-bot")
        event = make_event(
            kind,
            occurred_at=minute(self.clock).isoformat(),
            recorded_at=minute(self.clock + late).isoformat(),
            **fields,
        )
        self.events.append(event)
        return event

    def build(self, service: str, version: str, *closure: dict[str, Any]) -> str:
        bid = build_id(service, version)
        self.add(
            "build_recorded",
            build_id=bid,
            service=service,
            version=version,
            artifact=f"/nix/store/{bid}-{service}-{version}",
            closure=list(closure),
        )
        return bid

    def plan(
        self,
        number: int,
        placements: dict[tuple[str, str], str],
        *,
        depends: dict[str, list[str]] | None = None,
        **fields: Any,
    ) -> None:
        """Generation ``number`` placing builds on (host, service); ``depends`` gives
        each service's dependencies."""
        manifest = [
            {"host": h, "service": s, "build_id": b, "depends_on": (depends or {}).get(s, [])}
            for (h, s), b in sorted(placements.items())
        ]
        fields.setdefault("parent", number - 1 if number > 1 else None)
        self.add("generation_planned", number=number, manifest=manifest, **fields)

    def activate(self, host: str, service: str, build: str, generation: int) -> None:
        self.add("distribution_completed", host=host, service=service, build_id=build)
        self.add(
            "activation_completed",
            host=host,
            service=service,
            build_id=build,
            generation=generation,
        )

    def replace(
        self, host: str, service: str, old: str, new: str, generation: int, *, late: float = 0
    ) -> None:
        self.add("distribution_completed", host=host, service=service, build_id=new)
        self.add("drain_started", host=host, service=service, build_id=old)
        self.add("drain_completed", host=host, service=service, build_id=old)
        self.add(
            "deactivated",
            host=host,
            service=service,
            build_id=old,
            generation=generation,
            late=late,
        )
        self.add(
            "activation_completed",
            host=host,
            service=service,
            build_id=new,
            generation=generation,
            late=late,
        )

    def record(self, ledger: Ledger) -> None:
        ledger.append(self.events)
        self.events = []


def api_upgrade() -> Story:
    """api 1.0 (openssl 1.0.1p) on h1 and h2 in generation 1 (minutes 3-8), then 1.1
    (openssl 1.0.2d) in generation 2 (h1 at minute 14, h2 at minute 19), both completed."""
    s = Story()
    old = s.build("api", "1.0", openssl("1.0.1p"))
    new = s.build("api", "1.1", openssl("1.0.2d"))
    s.plan(1, {("h1", "api"): old, ("h2", "api"): old})
    s.activate("h1", "api", old, 1)
    s.activate("h2", "api", old, 1)
    s.add("generation_completed", number=1)
    s.plan(2, {("h1", "api"): new, ("h2", "api"): new})
    s.replace("h1", "api", old, new, 2)
    s.replace("h2", "api", old, new, 2)
    s.add("generation_completed", number=2)
    return s
