"""Every ledger event to Riemann, and gauges from the views.

Each fact becomes one Riemann event (``to_riemann``; the table is in
``docs/collectors.md``): ``host`` is the fleet host, or the env for fleet-wide facts
(builds, generations); ``service`` is ``deploy <what> <fleet service>`` (``deploy
activation api``), the same for a kind and its failure so Riemann's index, keyed by
(host, service), holds the latest outcome; failures are ``critical``.

Advisories: what each vulnerability exposes (``collectors.exposure_state``) follows
the facts that change it, as one event per vulnerability and env after the fact's own
(``exposure_event``): host = the env, service ``advisory CVE-…``, metric = the hosts
exposed, state ``critical`` (high or critical severity) or ``warning`` while any host is,
``ok`` with metric 0 once none is. Such a fact is sent once the views have reached it
(the collector brings them up to date in the background); until the ledger holds an
advisory, none of this is done. The exposure state moves with the position.

Delivery is at least once: the collector reads a batch after its confirmed position,
sends it as one ``Msg`` through riemann-client's ``QueuedClient`` and waits for
Riemann's ok; only then does the position move. A crash in between sends that batch
again after the restart; nothing is ever skipped. While Riemann is down every step
raises (the loop in ``collectors.run`` backs off) and the ledger keeps the backlog:
memory holds one batch.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from collectors.exposure_state import (
    EXPOSURE_KINDS,
    AdvisoryWatch,
    Change,
    ExposureBook,
    cpe_map_of,
)
from collectors.exposure_state import create_tables as create_exposure_tables
from collectors.follower import Follower
from collectors.gauges import Gauge, ViewsCatchUp, gauges
from collectors.settings import CollectSettings
from collectors.tls import client_context
from ledger.application import Ledger, batched
from ledger.errors import InvalidInput
from ledger.memory import cycle_collection_paused
from ledger.store import StoreLocation
from projections.runner import Views
from projections.store import to_micros
from projections.view import IN_LIST, Fact

with warnings.catch_warnings():
    # riemann-client's generated protobuf module builds its descriptors with calls
    # that protobuf 3.20 (the newest it allows) marks as deprecated.
    warnings.simplefilter("ignore", DeprecationWarning)
    from riemann_client import riemann_pb2  # type: ignore[import-untyped]
    from riemann_client.client import QueuedClient  # type: ignore[import-untyped]
    from riemann_client.transport import (  # type: ignore[import-untyped]
        RiemannError as RiemannError,  # noqa: PLC0414 (re-exported for callers)
    )
    from riemann_client.transport import TCPTransport as ClientTCPTransport

Event = Any  # riemann_pb2.Event: riemann-client ships no type information
TIMEOUT = 10.0
"""Seconds to connect, and to wait for Riemann's answer to one message."""
FAILED = frozenset(
    {"build_failed", "distribution_failed", "activation_failed", "drain_timed_out",
     "generation_failed"}
)  # fmt: skip
SUBJECT = {
    "build_recorded": "build",
    "build_failed": "build",
    "distribution_completed": "distribution",
    "distribution_failed": "distribution",
    "activation_completed": "activation",
    "activation_failed": "activation",
    "drain_started": "drain",
    "drain_completed": "drain",
    "drain_timed_out": "drain",
    "deactivated": "deactivation",
    "health_reported": "health",
    "generation_planned": "generation",
    "generation_completed": "generation",
    "generation_failed": "generation",
    "generation_tagged": "generation tags",
    "host_reported": "host report",
    "advisory_recorded": "advisory",
}
"""What a kind is about: ``deploy <subject> [<fleet service>]`` is its Riemann service."""
DESCRIPTION_CHARS = 4096
LOG_TAIL_CHARS = 1024


# --- one fact, one Riemann event ----------------------------------------------------


def to_riemann(fact: Fact, versions: Mapping[str, str] | None = None) -> Event:
    """The Riemann event of a fact. ``versions`` (build id to version) names the
    version of builds the fact gives only the id of (activations, drains, …)."""
    event = riemann_pb2.Event()
    fill(event, fact, versions or {})
    return event


def fill(event: Event, fact: Fact, versions: Mapping[str, str]) -> None:
    """Set ``event``'s fields for ``fact`` (in place: a batch is built inside its
    ``Msg``, without copying every event into it)."""
    e = fact.event
    kind = fact.kind
    service = e.get("service")
    build_id = e.get("build_id")
    version = e.get("version") or (versions.get(build_id) if build_id else None)
    event.host = e.get("host") or e["env"]
    event.service = f"deploy {SUBJECT[kind]} {service}" if service else f"deploy {SUBJECT[kind]}"
    if kind == "health_reported":
        event.state = e["state"]
    else:
        event.state = "critical" if kind in FAILED else "ok"
    event.time = to_micros(e["occurred_at"]) // 1_000_000
    event.description = describe(fact, version)[:DESCRIPTION_CHARS]
    event.tags.extend((e["env"], kind, service) if service else (e["env"], kind))
    if (ttl := e.get("ttl_s")) is not None:
        event.ttl = ttl
    set_metric(event, metric_of(kind, e))
    attributes = [
        ("env", e["env"]),
        ("kind", kind),
        ("position", str(fact.position)),
        ("event_id", e["event_id"]),
        ("actor", e["actor"]),
        ("recorded_at", e.get("recorded_at")),
        ("build_id", build_id),
        ("version", version),
    ]
    for key in OPTIONAL_ATTRIBUTES:
        if (value := e.get(key)) is not None and value != "":
            attributes.append((key, str(value)))
    if kind.startswith("generation_"):
        attributes.append(("generation", str(e["number"])))
        if e.get("tags"):
            attributes.append(("tags", ",".join(e["tags"])))
    add = event.attributes.add
    for key, value in attributes:
        if value:
            add(key=key, value=value)


OPTIONAL_ATTRIBUTES = (
    "generation", "artifact", "source_revision", "reason", "exit_code", "duration_s",
    "timeout_s", "parent", "target", "advisory_id", "database",
)  # fmt: skip
"""Fields copied into attributes when the event has them (as text). Each attribute is
a message of its own on the wire, and what costs most to encode: ``time`` already says
when it happened, the metric holds bytes and in-flight counts."""


def metric_of(kind: str, e: Mapping[str, Any]) -> int | float | None:
    """The one number of a fact: a duration (s), a count or bytes; ``None`` if none."""
    if kind in ("activation_completed", "drain_completed"):
        return float(e["duration_s"])
    if kind in ("drain_started", "drain_timed_out"):
        return int(e["in_flight"])
    if kind == "distribution_completed":
        return int(e["bytes"])
    if kind == "health_reported":
        return None if e.get("metric") is None else float(e["metric"])
    if kind == "build_recorded":
        return len(e.get("closure") or ())
    if kind in ("generation_planned", "host_reported"):
        return len(e.get("manifest") or ())
    if kind == "advisory_recorded":
        return len(e.get("affected") or ())
    return None


def set_metric(event: Event, metric: int | float | None) -> None:
    """Integers as ``metric_sint64``, floats as ``metric_d``; both also as ``metric_f``
    for older consumers, as riemann-java-client does. (riemann-client's ``event()``
    would refuse ``metric=``.)"""
    if metric is None:
        return
    if isinstance(metric, int):
        event.metric_sint64 = metric
    else:
        event.metric_d = metric
    event.metric_f = float(metric)


def describe(fact: Fact, version: str | None) -> str:
    """One sentence for people (a failed activation adds the end of its log)."""
    e = fact.event
    what = f"{e.get('service')} {version or short(e.get('build_id'))}"
    on = f"on {e.get('host')}"
    generation = f"in generation {e['generation']}" if e.get("generation") else ""
    match fact.kind:
        case "build_recorded":
            revision = f" from {e['source_revision'][:12]}" if e.get("source_revision") else ""
            return f"built {what}{revision}: {len(e.get('closure') or ())} store paths"
        case "build_failed":
            return f"build of {what} failed: {e['reason']}"
        case "distribution_completed":
            return f"copied {what} to {e['host']}: {e['bytes']:,} bytes in {e['duration_s']} s"
        case "distribution_failed":
            return f"copying {what} to {e['host']} failed: {e['reason']}"
        case "activation_completed":
            return f"activated {what} {on} {generation} ({e['duration_s']} s)"
        case "activation_failed":
            code = f" (exit code {e['exit_code']})" if e.get("exit_code") is not None else ""
            log = e.get("log_excerpt") or ""
            tail = f"\n\n{log[-LOG_TAIL_CHARS:]}" if log else ""
            return f"{what} failed to activate {on} {generation}: {e['reason']}{code}{tail}"
        case "drain_started":
            return f"draining {what} {on}: {e['in_flight']} in flight"
        case "drain_completed":
            return f"drained {what} {on} in {e['duration_s']} s"
        case "drain_timed_out":
            return (
                f"drain of {what} {on} timed out after {e['timeout_s']} s "
                f"with {e['in_flight']} in flight"
            )
        case "deactivated":
            return f"deactivated {what} {on} {generation}".rstrip()
        case "health_reported":
            subject = f"{e['service']} on {e['host']}" if e.get("service") else e["host"]
            return e.get("description") or f"{subject} is {e['state']}"
        case "generation_planned":
            manifest = e.get("manifest") or ()
            hosts = len({entry["host"] for entry in manifest})
            return (
                f"generation {e['number']} planned ({e['reason']}): {len(manifest)} placements "
                f"on {hosts} hosts"
            )
        case "generation_completed":
            return f"generation {e['number']} completed"
        case "generation_failed":
            reason = f": {e['reason']}" if e.get("reason") else ""
            return f"generation {e['number']} failed{reason}"
        case "generation_tagged":
            return f"generation {e['number']} tagged {', '.join(e['tags'])}"
        case "host_reported":
            return f"{e['host']} reported {len(e.get('manifest') or ())} active services"
        case "advisory_recorded":
            withdrawn = " (withdrawn)" if e.get("withdrawn") else ""
            summary = f": {e['summary']}" if e.get("summary") else ""
            return (
                f"advisory {e['advisory_id']} recorded from {e['database']}{withdrawn}, "
                f"{len(e.get('affected') or ())} packages named{summary}"
            )
    return fact.kind


def short(build_id: str | None) -> str:
    return (build_id or "?")[:12]


CATCH_UP_WAIT = 1.0
"""Seconds a step waits for the views' catch-up when nothing can be sent before it."""
SERIOUS = frozenset({"high", "critical"})
"""Severities whose exposure is ``critical`` in Riemann (the others: ``warning``)."""
MAX_HOSTS_NAMED = 10


def exposure_event(event: Event, change: Change) -> None:
    """What a vulnerability exposes in an env after a fact, as a Riemann event."""
    found = change.vulnerability
    hosts = sorted({e.host for e in change.exposed})
    packages = sorted({p for e in change.exposed for p in e.packages}, key=lambda p: p[:2])
    rating = f"{found.severity} {found.score:g}" if found.score is not None else "unscored"
    event.host = change.env
    event.service = f"advisory {found.key}"
    if not hosts:
        event.state = "ok"
        event.description = f"no host in {change.env} exposed to {found.key}: {change.why}"
    else:
        event.state = "critical" if found.severity in SERIOUS else "warning"
        named = ", ".join(hosts[:MAX_HOSTS_NAMED])
        more = f" and {len(hosts) - MAX_HOSTS_NAMED} more" if len(hosts) > MAX_HOSTS_NAMED else ""
        versions = ", ".join(f"{name} {version}" for name, version, _ in packages)
        event.description = (
            f"{len(hosts)} host{'s' if len(hosts) != 1 else ''} in {change.env} exposed to "
            f"{found.key} ({rating}): {versions}; {named}{more}"
        )[:DESCRIPTION_CHARS]
    event.time = to_micros(change.fact.event["occurred_at"]) // 1_000_000
    event.tags.extend((change.env, "advisory", found.key))
    set_metric(event, len(hosts))
    fixed = sorted({f"{name} {fix}" for name, _, fix in packages if fix})
    attributes = [
        ("env", change.env),
        ("kind", "advisory_exposure"),
        ("position", str(change.fact.position)),
        ("event_id", change.fact.event["event_id"]),
        ("advisory_id", found.key),
        ("aliases", ",".join(found.ids[1:])),
        ("severity", found.severity or ""),
        ("score", "" if found.score is None else f"{found.score:g}"),
        ("versions", ", ".join(f"{name} {version}" for name, version, _ in packages)),
        ("fixed", ", ".join(fixed)),
    ]
    add = event.attributes.add
    for key, value in attributes:
        if value:
            add(key=key, value=value)


def gauge_event(event: Event, gauge: Gauge, now: float, ttl: float) -> None:
    """A gauge as a Riemann event: host = env, expiring after ``ttl`` seconds so a
    collector that stopped shows as expired gauges."""
    event.host = gauge.env
    event.service = f"deploy {gauge.name}"
    event.state = gauge.state
    event.time = int(now)
    event.ttl = ttl
    event.description = gauge.description
    event.tags.extend(("gauge", gauge.env))
    set_metric(event, gauge.metric)
    add = event.attributes.add
    for key, value in (("env", gauge.env), *sorted(gauge.attributes.items())):
        add(key=key, value=value)


# --- the connection -----------------------------------------------------------------


class RiemannUnavailable(ConnectionError):
    """Riemann could not be reached, or the connection to it failed: an outage."""


class RiemannTimedOut(RiemannUnavailable, TimeoutError):
    """Riemann did not accept the connection or answer in time."""


class TCPTransport(ClientTCPTransport):  # type: ignore[misc]
    """riemann-client's TCP transport, reading Riemann's answer exactly, optionally
    over TLS (on an ``ssl.SSLContext``, see ``collectors.tls``).

    The client's own ``send`` reads the 4-byte length with one ``recv(4)`` (a short
    read breaks it) and loops forever if the connection closes mid-answer; here a
    closed connection raises ``ConnectionError`` and every wait ends after ``timeout``.
    """

    def __init__(
        self, host: str, port: int, timeout: float, context: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(host, port, timeout)
        self.context = context
        self.connected = False

    def connect(self) -> None:
        sock = socket.create_connection(self.address, self.timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.context is not None:
                sock = self.context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self.socket = sock
        self.connected = True

    def disconnect(self) -> None:
        if self.connected:
            self.connected = False
            self.socket.close()

    def send(self, message: Any) -> Any:
        data = message.SerializeToString()
        self.socket.sendall(struct.pack("!I", len(data)) + data)
        (length,) = struct.unpack("!I", self._read(4))
        response = riemann_pb2.Msg()
        response.ParseFromString(self._read(length))
        if not response.ok:
            raise RiemannError(response.error or "Riemann answered without ok")
        return response

    def _read(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            chunk = self.socket.recv(min(size - len(data), 1 << 20))
            if not chunk:
                raise ConnectionError("Riemann closed the connection before answering")
            data += chunk
        return bytes(data)


class RiemannSink:
    """One connection to Riemann through riemann-client's ``QueuedClient``: events are
    built into its queued ``Msg``, ``flush`` sends it and waits for the ok. After a
    failure the connection is dropped and the next flush opens a new one."""

    def __init__(
        self, host: str, port: int, *, timeout: float, context: ssl.SSLContext | None
    ) -> None:
        self.address = f"{host}:{port}"
        self.transport = TCPTransport(host, port, timeout, context)
        self.client = QueuedClient(self.transport)

    def add(self) -> Event:
        """A new, empty event at the end of the queued message, to fill in."""
        return self.client.queue.events.add()

    def flush(self) -> None:
        """Send the queued events as one message; raises unless Riemann said ok.

        A connection kept from an earlier flush may have been closed by Riemann (a
        restart) while idle: then the message goes once more, at once, on a new one.
        """
        try:
            if self.transport.connected:
                try:
                    self.client.flush()
                    return
                except (ConnectionError, ssl.SSLEOFError):
                    self.transport.disconnect()
            self.transport.connect()
            self.client.flush()
        except OSError as error:  # refused, unreachable, timed out, TLS, reset
            self.client.clear_queue()
            self.transport.disconnect()
            if isinstance(error, RiemannUnavailable):
                raise
            reason = str(error).strip() or type(error).__name__
            unavailable = RiemannTimedOut if isinstance(error, TimeoutError) else RiemannUnavailable
            raise unavailable(
                f"cannot reach Riemann at {self.address}: {type(error).__name__}: {reason}"
            ) from error
        except BaseException:
            self.client.clear_queue()
            self.transport.disconnect()
            raise

    def close(self) -> None:
        self.transport.disconnect()


def sink_for(settings: CollectSettings, timeout: float = TIMEOUT) -> RiemannSink:
    address = settings.riemann_address
    if address is None:
        raise InvalidInput("no Riemann server given: set --riemann HOST:PORT")
    context = (
        client_context(settings.riemann_ca, settings.riemann_cert, settings.riemann_key)
        if settings.riemann_tls
        else None
    )
    return RiemannSink(*address, timeout=timeout, context=context)


# --- the collector ------------------------------------------------------------------


class BuildVersions:
    """Build id to version, for facts that name a build only by its id: learnt from
    the builds the collector passes, looked up in the builds view for the others.
    Bounded: the least recently used are forgotten first."""

    def __init__(self, views: Callable[[], Views], size: int = 50_000) -> None:
        self.views = views
        self.size = size
        self.known: OrderedDict[str, str] = OrderedDict()

    def learn(self, facts: Sequence[Fact]) -> Mapping[str, str]:
        """The versions of the builds these facts name (those that can be known)."""
        wanted: set[str] = set()
        named: set[str] = set()
        for fact in facts:
            build_id: str | None = fact.event.get("build_id")
            if build_id is None:
                continue
            if fact.kind == "build_recorded":
                self._remember([(build_id, fact.event["version"])])
            elif build_id not in self.known:
                wanted.add(build_id)
            named.add(build_id)
        if wanted:
            self._remember(self._look_up(wanted))
        for build_id in named & self.known.keys():
            self.known.move_to_end(build_id)
        return self.known

    def _look_up(self, build_ids: Iterable[str]) -> list[tuple[str, str]]:
        views = self.views()
        found: list[tuple[str, str]] = []
        for batch in batched(sorted(build_ids), IN_LIST):
            marks = ", ".join("?" * len(batch))
            rows = views.query(
                f"SELECT build_id, version FROM builds WHERE build_id IN ({marks})", batch
            )
            found += [(r["build_id"], r["version"]) for r in rows]
        return found

    def _remember(self, pairs: Iterable[tuple[str, str]]) -> None:
        for build_id, version in pairs:
            self.known[build_id] = version
            self.known.move_to_end(build_id)
        while len(self.known) > self.size:
            self.known.popitem(last=False)


class RiemannCollector:
    """Follows the ledger from its own position (``Collector/riemann``) to Riemann."""

    name = "riemann"

    def __init__(
        self,
        ledger: Ledger,
        settings: CollectSettings,
        *,
        views_location: StoreLocation | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = TIMEOUT,
    ) -> None:
        self.ledger = ledger
        self.settings = settings
        self.sink = sink_for(settings, timeout)
        self.follower = Follower(ledger, self.name, batch=settings.riemann_batch)
        self.position = self.follower.position()
        self.views_location = views_location
        self._views: Views | None = None
        self.versions = BuildVersions(self.views)
        self._exposure: ExposureBook | None = None
        self.advisories = AdvisoryWatch(ledger)
        create_exposure_tables(self.follower.store)
        self.catch_up = ViewsCatchUp(ledger, views_location)
        self.clock = clock
        self.next_gauges = clock() + settings.gauge_interval
        self.gauges_due = False

    def views(self) -> Views:
        if self._views is None:
            self._views = Views(self.ledger, self.views_location)
        return self._views

    def exposure(self) -> ExposureBook:
        if self._exposure is None:
            self._exposure = ExposureBook(self.name, self.views(), cpe_map_of(self.settings))
        return self._exposure

    def step(self) -> bool:
        """Send the next batch of facts, then the gauges when they are due; whether
        there was anything to send."""
        facts = self.follower.read(self.position, self.settings.riemann_batch)
        changes: dict[int, list[Change]] = {}
        exposing = any(fact.kind in EXPOSURE_KINDS for fact in facts) and (
            self.advisories.seen(facts[-1].notification_id)
        )
        if exposing:
            ready = self._views_reached(facts)
            if not ready:
                # Nothing can go before the views reach the next fact: wait for the
                # catch-up a little (nothing else is held up), then step again.
                if (thread := self.catch_up.thread) is not None:
                    thread.join(CATCH_UP_WAIT)
                return True
            facts = ready
            with self.follower.store.transaction(commit=False) as tx:
                for change in self.exposure().apply(tx, facts):
                    changes.setdefault(change.fact.notification_id, []).append(change)
        if facts:
            versions = self.versions.learn(facts)
            with cycle_collection_paused():  # a batch is thousands of objects
                for fact in facts:
                    fill(self.sink.add(), fact, versions)
                    for change in changes.get(fact.notification_id, ()):
                        exposure_event(self.sink.add(), change)
                self.sink.flush()
            # Only now, with Riemann's ok, does the position move (and the exposure
            # state with it).
            also = self.exposure().write if exposing else None
            self.follower.confirm(facts[-1].notification_id, also=also)
            self.position = facts[-1].notification_id
        return self.gauge_round() or bool(facts)

    def _views_reached(self, facts: list[Fact]) -> list[Fact]:
        """The facts up to the first that can change an exposure and that the views
        have not reached. Views behind are brought up to date in the background (the
        gauges' thread, on both backends): deliveries never wait on a catch-up, and never
        on another process projecting; the facts held back go at a later step."""
        ready = min(self.views().positions().values())
        for index, fact in enumerate(facts):
            if fact.kind in EXPOSURE_KINDS and fact.notification_id > ready:
                self.catch_up.start()
                return facts[:index]
        return facts

    def gauge_round(self) -> bool:
        """Every ``gauge_interval``: bring embedded views up to date (in the
        background), then send the gauges; whether they were sent now."""
        if not self.gauges_due:
            now = self.clock()
            if now < self.next_gauges:
                return False
            self.next_gauges = now + self.settings.gauge_interval
            self.gauges_due = True
            if self.views().embedded:
                self.catch_up.start()
        if self.catch_up.running():
            return False
        # Not tracked: a round that fails is skipped, and the next one an interval
        # later says the same, up to date.
        self.gauges_due = False
        return self.send_gauges(self.clock())

    def send_gauges(self, now: float) -> bool:
        """The gauges of every env, from the views, as of ``now``."""
        found = gauges(self.views(), now)
        ttl = 3 * self.settings.gauge_interval
        for gauge in found:
            gauge_event(self.sink.add(), gauge, now, ttl)
        if found:
            self.sink.flush()
        return bool(found)

    def close(self) -> None:
        self.sink.close()
        self.catch_up.close()
        self.follower.close()
        if self._views is not None:
            self._views.recorder.datastore.close()
