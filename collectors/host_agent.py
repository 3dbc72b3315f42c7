"""The host agent (``ledger agent run``): on a fleet host, every so often, find what is
active and report it — a ``host_reported`` event — over HTTP or Kafka.

What is active comes from a manifest file (re-read each time, for hosts whose own
tooling writes one) or from Nix profiles, one per service, Disnix style: each entry of
the profiles directory (``/nix/var/nix/profiles/per-service/api`` → ``api-7-link`` →
``/nix/store/<hash>-api-2.4.1``) is a service whose active build is the store path it
points to (build id: the path's hash part, as ``ledger import`` records builds).

A report that cannot be delivered (the server or broker away) is retried, the *same*
event with the same ``event_id``, until it is, so a host never reports one finding
twice; a newer finding replaces an undelivered older one.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from uuid import uuid4

import orjson

from collectors.agent import send
from collectors.run import Backoff, describe
from ledger.errors import InvalidInput, StoreUnavailable
from ledger.events import HostReported, ManifestEntry
from ledger.importers.storepath import STORE_DIR, parse_store_path
from ledger.manifests import read_manifest

log = logging.getLogger("ledger.agent")
MAX_LINKS = 40


def profile_manifest(host: str, directory: Path) -> list[ManifestEntry]:
    """One entry per service profile in ``directory`` (generation links left out)."""
    if not directory.is_dir():
        raise InvalidInput(f"{directory} is not a directory of Nix profiles")
    entries = []
    for profile in sorted(directory.iterdir()):
        if profile.name.endswith("-link") or not profile.is_symlink():
            continue
        target = _store_path(profile)
        store_path = parse_store_path(target)
        entries.append(
            ManifestEntry(
                host=host, service=profile.name, build_id=store_path.hash, artifact=target
            )
        )
    return entries


def _store_path(profile: Path) -> str:
    """Follow a profile's links to the store path it points to."""
    path = str(profile)
    for _ in range(MAX_LINKS):
        if path.startswith(f"{STORE_DIR}/"):
            return path
        if not os.path.islink(path):
            break
        target = os.readlink(path)
        path = os.path.normpath(os.path.join(os.path.dirname(path), target))
    raise InvalidInput(f"profile {profile} does not lead to a Nix store path (it ends at {path})")


class Reporter(Protocol):
    def __call__(self, event: HostReported) -> None: ...


@dataclass(frozen=True)
class HttpReporter:
    """``POST /api/events`` of a ``ledger serve`` with a writer's token; with
    ``receipts``, asks for a receipt (``?receipt=true``) and appends it to that JSON Lines
    file: the inclusion proof of the report in a checkpoint the server signed, which
    the host can show later, with the public key, to prove what it reported."""

    base_url: str
    token: str
    timeout: float = 30.0
    receipts: Path | None = None

    def __call__(self, event: HostReported) -> None:
        query = "?receipt=true" if self.receipts is not None else ""
        request = urllib.request.Request(
            self.base_url.rstrip("/") + "/api/events" + query,
            data=orjson.dumps(event.model_dump(mode="json")),
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = response.read()
        except urllib.error.HTTPError as error:
            message = _message(error)
            if 400 <= error.code < 500:
                raise InvalidInput(
                    f"the ledger refused the report ({error.code}): {message}"
                ) from None
            raise StoreUnavailable(f"the ledger answered {error.code}: {message}") from None
        except OSError as error:  # refused, unreachable, timed out
            raise StoreUnavailable(f"could not reach {self.base_url}: {error}") from None
        if self.receipts is not None:
            keep_receipts(self.receipts, answer)


def keep_receipts(path: Path, answer: bytes) -> int:
    """Append the receipts of a ``POST /api/events?receipt=true`` answer to ``path``
    (JSON Lines, one proof per event, flushed to disk); how many. A server without a
    checkpoint key stores the event but signs nothing: that is logged, not retried,
    since the report itself was delivered."""
    try:
        reply = orjson.loads(answer)
        receipts = reply.get("receipts")
        problem = str(reply.get("receipt_problem") or "none was sent")
    except (orjson.JSONDecodeError, AttributeError):
        receipts, problem = None, "its answer was not the JSON of POST /api/events"
    if not receipts:
        log.warning("agent: the report was stored but no receipt was kept: %s", problem)
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as file:
        for receipt in receipts:
            file.write(orjson.dumps(receipt) + b"\n")
        file.flush()
        os.fsync(file.fileno())
    return len(receipts)


def _message(error: urllib.error.HTTPError) -> str:
    try:
        return str(orjson.loads(error.read())["message"])
    except Exception:
        return error.reason if isinstance(error.reason, str) else ""


@dataclass(frozen=True)
class KafkaReporter:
    bootstrap: str
    topic: str
    timeout: float = 30.0

    def __call__(self, event: HostReported) -> None:
        send([event], bootstrap=self.bootstrap, topic=self.topic, timeout=self.timeout)


@dataclass
class HostAgent:
    host: str
    env: str
    actor: str
    manifest: Callable[[], list[ManifestEntry]]
    report: Reporter
    pending: HostReported | None = None
    sent: int = 0

    def finding(self) -> HostReported:
        return HostReported(
            event_id=uuid4(), env=self.env, occurred_at=datetime.now(UTC), actor=self.actor,
            host=self.host, manifest=tuple(self.manifest()),
        )  # fmt: skip

    def tick(self) -> HostReported:
        """Look, then deliver the finding (or the undelivered one, if nothing changed)."""
        event = self.finding()
        if self.pending is not None and self.pending.manifest == event.manifest:
            event = self.pending  # the same finding, undelivered: same event_id
        self.pending = event
        self.report(event)
        self.pending = None
        self.sent += 1
        log.info("agent: reported %d services of %s", len(event.manifest), self.host)
        return event


def run_agent(
    agent: HostAgent,
    *,
    every: float,
    stop: threading.Event,
    once: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Report every ``every`` seconds until ``stop``; failures retry sooner (back-off up
    to ``every``). With ``once``: until one report is delivered."""
    backoff = Backoff(ceiling=every)
    while not stop.is_set():
        try:
            agent.tick()
        except Exception as error:
            delay = backoff.failed(clock())
            log.warning("agent: %s; trying again in %.1f s", describe(error), delay)
            stop.wait(delay)
            continue
        backoff.succeeded()
        if once:
            return
        stop.wait(every)


def manifest_source(
    host: str, manifest_file: str | None, profiles: Path | None
) -> Callable[[], list[ManifestEntry]]:
    if (manifest_file is None) == (profiles is None):
        raise InvalidInput("give either --manifest FILE or --profiles DIR")
    if profiles is not None:
        return lambda: profile_manifest(host, profiles)
    assert manifest_file is not None
    return lambda: list(read_manifest(manifest_file, host=host))


def token_from(value: str | None, file: Path | None) -> str:
    if file is not None:
        return file.read_text().strip()
    if value:
        return value
    raise InvalidInput("--http needs a writer's token: --token-file FILE or LEDGER_TOKEN")
