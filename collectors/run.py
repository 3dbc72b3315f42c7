"""The collectors' loop: step each collector in turn, back off the ones that fail.

A collector is anything with a ``name``, a ``step()`` that does the work available now
(returning whether there was any) and a ``close()``. One failing collector (Riemann
down, Slack answering 500) backs off — exponentially, with jitter, up to a minute —
without holding up the others; the ledger's writers never wait for any of them. What a
collector could not deliver stays after its tracked position and is delivered when it
recovers: memory holds one batch per collector, whatever the outage's length.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger("ledger.collect")

MAX_BACKOFF = 60.0
FIRST_BACKOFF = 0.5


class Collector(Protocol):
    name: str

    def step(self) -> bool:
        """Deliver what is available now; whether there was anything to do."""
        ...

    def close(self) -> None: ...


@dataclass
class Backoff:
    """When a failing collector may try again: doubling delays, with full jitter."""

    failures: int = 0
    until: float = 0.0
    ceiling: float = MAX_BACKOFF
    jitter: Callable[[float, float], float] = field(default=random.uniform)

    def failed(self, now: float) -> float:
        self.failures += 1
        ceiling = min(self.ceiling, FIRST_BACKOFF * 2 ** min(self.failures - 1, 16))
        delay = self.jitter(ceiling / 2, ceiling)
        self.until = now + delay
        return delay

    def succeeded(self) -> None:
        self.failures, self.until = 0, 0.0


def run(
    collectors: Sequence[Collector],
    *,
    poll_interval: float,
    stop: threading.Event,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Step every collector until ``stop`` is set; sleep ``poll_interval`` when none had
    anything to do."""
    backoffs = {c.name: Backoff() for c in collectors}
    while not stop.is_set():
        busy = False
        for collector in collectors:
            backoff = backoffs[collector.name]
            if clock() < backoff.until:
                continue
            try:
                busy = collector.step() or busy
            except Exception as error:  # one collector's outage must not stop the others
                delay = backoff.failed(clock())
                log.warning(
                    "%s: %s; retrying in %.1f s (failure %d in a row)",
                    collector.name,
                    describe(error),
                    delay,
                    backoff.failures,
                )
            else:
                if backoff.failures:
                    log.info("%s: delivering again", collector.name)
                backoff.succeeded()
        if not busy:
            stop.wait(poll_interval)


def describe(error: BaseException) -> str:
    """One line about ``error``, for logs (collectors make sure it holds no secret)."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
