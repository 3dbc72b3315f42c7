"""The live stream: one thread follows the ledger, brings the views up to date, and
fans each new event (and then the views' new position) out to every connected client
as Server-Sent Events.

Each client has a bounded queue; a client too slow to keep up is disconnected (its
browser reconnects with ``Last-Event-ID`` and gets what it missed, up to ``REPLAY``
events, from the ledger). The follower holds no durable position: it starts at the
head when the server starts, since the stream is for watching, not for delivery —
``ledger publish`` is the durable way to follow the ledger from elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any, cast

import orjson

from ledger.application import Ledger
from ledger.domain import CHAIN_ID, LedgerEntry
from projections.runner import Views

log = logging.getLogger("ledger.serve")

QUEUE = 1000
REPLAY = 1000
HEARTBEAT = 15.0
BULKY = ("closure", "manifest", "log_excerpt")


def summary(position: int, event: dict[str, Any]) -> dict[str, Any]:
    """An event for the stream: every field but the bulky lists (closures, manifests),
    which are counted instead."""
    data: dict[str, Any] = {"position": position}
    for key, value in event.items():
        if key in BULKY and isinstance(value, list):
            data[f"{key}_entries"] = len(value)
        elif key not in BULKY:
            data[key] = value
    return data


def read_after(ledger: Ledger, position: int, limit: int) -> list[tuple[int, dict[str, Any]]]:
    """Up to ``limit`` events after ``position``, as (position, event)."""
    notifications = ledger.recorder.select_notifications(position, limit, inclusive_of_start=False)
    facts = []
    for notification in notifications:
        if notification.originator_id != CHAIN_ID:
            continue
        entry = cast(LedgerEntry, ledger.mapper.to_domain_event(notification))
        facts.append((entry.originator_version, entry.event))
    return facts


class Broadcaster:
    """Follows the ledger in a thread; ``subscribe`` gives a client its SSE lines."""

    def __init__(self, views: Views, *, project: bool, interval: float = 0.25) -> None:
        self.views = views
        self.project = project
        self.interval = interval
        self.position, _ = views.ledger.head()
        self.views_position = self._views_position()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.clients: set[asyncio.Queue[bytes | None]] = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ledger-stream", daemon=True)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=10)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                busy = self._step()
            except Exception as error:  # the database away: keep trying, say so once a while
                log.warning("stream: %s", error)
                busy = False
            if not busy:
                self.stop.wait(self.interval)

    def _step(self) -> bool:
        facts = read_after(self.views.ledger, self.position, 500)
        position = facts[-1][0] if facts else self.position
        if self.project:
            if self.views_position < position:  # new facts, or views behind at start
                self.views.catch_up()  # so that the views include what is announced
            views_position = position
        else:  # the runner elsewhere (``ledger project --follow``) moves them
            views_position = self._views_position()
        self.position = position
        lines = [sse("ledger", summary(p, e), event_id=p) for p, e in facts]
        if views_position != self.views_position:
            self.views_position = views_position
            lines.append(sse("views", {"position": views_position}))
        if lines:
            self._send(b"".join(lines))
        return bool(facts)

    def _views_position(self) -> int:
        head, _ = self.views.ledger.head()
        return head - self.views.lag()

    def _send(self, message: bytes) -> None:
        loop = self.loop
        if loop is None or loop.is_closed():
            return

        def deliver() -> None:
            for queue in list(self.clients):
                try:
                    queue.put_nowait(message)
                except asyncio.QueueFull:
                    # Too slow to keep up: end its stream; it reconnects and catches up.
                    self.clients.discard(queue)
                    while not queue.empty():
                        queue.get_nowait()
                    queue.put_nowait(None)

        loop.call_soon_threadsafe(deliver)

    async def subscribe(self, last_event_id: int | None) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE)
        self.clients.add(queue)
        try:
            yield b"retry: 2000\n\n"
            if last_event_id is not None and last_event_id < self.position:
                missed = await asyncio.to_thread(
                    read_after, self.views.ledger, last_event_id, REPLAY
                )
                missed = [(p, e) for p, e in missed if p <= self.position]
                if missed:
                    yield b"".join(sse("ledger", summary(p, e), event_id=p) for p, e in missed)
                yield sse("views", {"position": self.views_position})
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), HEARTBEAT)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if message is None:
                    return
                yield message
        finally:
            self.clients.discard(queue)


def sse(event: str, data: dict[str, Any], *, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"
