"""The Riemann collector against a receiver speaking Riemann's protocol: what every kind
of event looks like once decoded, the gauges, delivery through outages and restarts
(at least once, in order), and TLS."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from collectors.follower import Follower
from collectors.riemann import RiemannCollector, RiemannError, to_riemann
from collectors.run import run
from collectors.settings import CollectSettings
from ledger.application import Ledger
from ledger.store import locate
from projections.runner import Views
from tests.factories import BUILD_ID, FIELDS, make_event
from tests.services.riemann import (
    RiemannReceiver,
    attributes,
    make_certificates,
    riemann_fixture,  # noqa: F401 (the `riemann` fixture)
)
from tests.story import Story, build_id, minute

OCCURRED = datetime(2026, 3, 11, 14, 10, tzinfo=UTC)
HOUR = 3600.0


def settings(address: str, **overrides: Any) -> CollectSettings:
    """No gauges unless a test asks: an hour between rounds, and test clocks stand still."""
    return CollectSettings(riemann=address, **{"gauge_interval": HOUR, **overrides})


@pytest.fixture
def collector(ledger: Ledger, riemann: RiemannReceiver) -> Iterator[RiemannCollector]:
    made = RiemannCollector(ledger, settings(riemann.address, riemann_batch=100))
    yield made
    made.close()


def deliver(collector: RiemannCollector) -> None:
    while collector.step():
        pass


def positions(events: list[Any]) -> list[int]:
    return [int(attributes(e)["position"]) for e in events]


def append(ledger: Ledger, count: int, start: int = 0) -> None:
    ledger.append(
        [
            make_event("health_reported", host=f"web-{start + i:04}", state="ok")
            for i in range(count)
        ]
    )


# --- what arrives --------------------------------------------------------------------

# kind: (host, service, state, metric field and value, description)
EXPECTED: dict[str, tuple[str, str, str, tuple[str, float] | None, str]] = {
    "build_recorded": ("production", "deploy build api", "ok", ("metric_sint64", 1),
                       "built api 2.4.1 from 9fceb02d0ae5: 1 store paths"),
    "build_failed": ("production", "deploy build api", "critical", None,
                     "build of api 2.4.2 failed: tests failed"),
    "distribution_completed": ("web-001", "deploy distribution api", "ok",
                               ("metric_sint64", 1024),
                               "copied api 2.4.1 to web-001: 1,024 bytes in 1.5 s"),
    "distribution_failed": ("web-001", "deploy distribution api", "critical", None,
                            "copying api 2.4.1 to web-001 failed: disk full"),
    "activation_completed": ("web-001", "deploy activation api", "ok", ("metric_d", 0.0),
                             "activated api 2.4.1 on web-001 in generation 1 (0.0 s)"),
    "activation_failed": ("web-001", "deploy activation api", "critical", None,
                          "api 2.4.1 failed to activate on web-001 in generation 1: health "
                          "check failed (exit code 1)\n\nline 1\nline 2"),
    "drain_started": ("web-001", "deploy drain api", "ok", ("metric_sint64", 12),
                      "draining api 2.4.1 on web-001: 12 in flight"),
    "drain_completed": ("web-001", "deploy drain api", "ok", ("metric_d", 0.0),
                        "drained api 2.4.1 on web-001 in 0.0 s"),
    "drain_timed_out": ("web-001", "deploy drain api", "critical", ("metric_sint64", 3),
                        "drain of api 2.4.1 on web-001 timed out after 30.0 s with 3 in flight"),
    "deactivated": ("web-001", "deploy deactivation api", "ok", None,
                    "deactivated api 2.4.1 on web-001"),
    "health_reported": ("web-001", "deploy health api", "critical", ("metric_d", 2.5),
                        "api on web-001 is critical"),
    "generation_planned": ("production", "deploy generation", "ok", ("metric_sint64", 1),
                           "generation 1 planned (deploy): 1 placements on 1 hosts"),
    "generation_completed": ("production", "deploy generation", "ok", None,
                             "generation 1 completed"),
    "generation_failed": ("production", "deploy generation", "critical", None,
                          "generation 1 failed: 3 hosts failed"),
    "generation_tagged": ("production", "deploy generation tags", "ok", None,
                          "generation 1 tagged known-good"),
    "host_reported": ("web-001", "deploy host report", "ok", ("metric_sint64", 1),
                      "web-001 reported 1 active services"),
    # Advisories hold in every env ('*'); the packages named are the metric.
    "advisory_recorded": ("*", "deploy advisory", "ok", ("metric_sint64", 2),
                          "advisory CVE-2014-0160 recorded from nvd, 2 packages named: The "
                          "TLS heartbeat extension reads past the end of a buffer."),
}  # fmt: skip
METRICS = ("metric_sint64", "metric_d", "metric_f")


def test_every_kind_arrives_as_a_riemann_event(
    ledger: Ledger, riemann: RiemannReceiver, collector: RiemannCollector
) -> None:
    assert set(EXPECTED) == set(FIELDS), "a kind of event has no expected Riemann form"
    kinds = list(FIELDS)
    events = [make_event(kind) for kind in kinds]
    ledger.append(events)
    deliver(collector)

    received = riemann.wait_for(len(events))
    assert len(received) == len(events)
    for position, (kind, sent, got) in enumerate(zip(kinds, events, received, strict=True), 1):
        host, service, state, metric, description = EXPECTED[kind]
        assert (got.host, got.service, got.state) == (host, service, state), kind
        assert got.description == description, kind
        assert got.time == int(OCCURRED.timestamp()), kind
        fleet_service = (
            ("api",) if not kind.startswith(("generation_", "host_", "advisory_")) else ()
        )
        env = "*" if kind == "advisory_recorded" else "production"
        assert list(got.tags) == [env, kind, *fleet_service], kind
        if metric is None:
            assert not any(got.HasField(f) for f in METRICS), kind
        else:
            field, value = metric
            assert getattr(got, field) == value, kind
            assert got.metric_f == pytest.approx(value), kind
            assert [f for f in METRICS if got.HasField(f)] == [field, "metric_f"], kind
        assert got.HasField("ttl") == (kind == "health_reported"), kind
        found = attributes(got)
        assert found["env"] == env
        assert found["kind"] == kind
        assert found["position"] == str(position)
        assert found["event_id"] == str(sent.event_id)
        assert found["actor"] == "ci@test"
        assert found["recorded_at"].endswith("Z")
        if kind not in ("build_failed", "health_reported") and not kind.startswith(
            ("generation_", "host_", "advisory_")
        ):
            assert (found["build_id"], found["version"]) == (BUILD_ID, "2.4.1"), kind
    assert received[kinds.index("health_reported")].ttl == 60
    by_kind = {kind: attributes(got) for kind, got in zip(kinds, received, strict=True)}
    assert by_kind["build_failed"]["version"] == "2.4.2"
    assert by_kind["activation_failed"]["exit_code"] == "1"
    assert by_kind["activation_failed"]["generation"] == "1"
    assert by_kind["activation_failed"]["reason"] == "health check failed"
    assert by_kind["distribution_completed"]["duration_s"] == "1.5"
    assert by_kind["drain_timed_out"]["timeout_s"] == "30.0"
    assert by_kind["generation_planned"]["generation"] == "1"
    assert by_kind["generation_planned"]["tags"] == "release-1"
    assert by_kind["generation_tagged"]["tags"] == "known-good"
    assert by_kind["build_recorded"]["artifact"].startswith("/nix/store/")
    assert "deactivated" in by_kind
    assert "generation" not in by_kind["deactivated"]
    assert by_kind["advisory_recorded"]["advisory_id"] == "CVE-2014-0160"
    assert by_kind["advisory_recorded"]["database"] == "nvd"


def test_host_health_and_builds_known_only_to_the_views(
    ledger: Ledger, riemann: RiemannReceiver
) -> None:
    """A host's own health has no fleet service; a collector that starts after the
    build was recorded finds its version in the builds view."""
    ledger.append([make_event("build_recorded")])
    Views(ledger).catch_up()
    Follower(ledger, "riemann").confirm(1)  # as if delivered by an earlier run
    ledger.append(
        [
            make_event("health_reported", service=None, state="warning", ttl_s=None,
                       description="disk 91 % full", metric=91.0),
            make_event("activation_completed"),
        ]
    )  # fmt: skip
    collector = RiemannCollector(ledger, settings(riemann.address))
    deliver(collector)
    collector.close()
    health, activation = riemann.wait_for(2)
    assert (health.host, health.service, health.state) == ("web-001", "deploy health", "warning")
    assert health.description == "disk 91 % full"
    assert list(health.tags) == ["production", "health_reported"]
    assert not health.HasField("ttl")
    assert attributes(activation)["version"] == "2.4.1"
    assert activation.description.startswith("activated api 2.4.1 on web-001")


# --- gauges --------------------------------------------------------------------------


def scripted_fleet() -> tuple[Story, Story]:
    """Production: api 1.0 on h1-h4 in generation 1 (completed at minute 12); generation
    2 (api 1.1, without h4) activated on h1, failed on h2 at minute 100 (and on h3 at
    minute 20, long ago); h2-h4 still on 1.0. h1 reports 1.1, h2 reports 1.0 (drift),
    h3 never reported. Staging: api 1.0 on s1, generation 1 completed at minute 30."""
    p = Story()
    old, new = p.build("api", "1.0"), p.build("api", "1.1")
    p.plan(1, {(h, "api"): old for h in ("h1", "h2", "h3", "h4")})
    for host in ("h1", "h2", "h3", "h4"):
        p.activate(host, "api", old, 1)
    p.add("generation_completed", at=12, number=1)
    p.plan(2, {(h, "api"): new for h in ("h1", "h2", "h3")}, at=15)
    p.add("activation_failed", at=20, host="h3", service="api", build_id=new, generation=2,
          reason="timeout")  # fmt: skip
    p.replace("h1", "api", old, new, 2)
    p.add("activation_failed", at=100, host="h2", service="api", build_id=new, generation=2,
          reason="port in use")  # fmt: skip
    p.add("host_reported", at=101, host="h1",
          manifest=[{"host": "h1", "service": "api", "build_id": new}])  # fmt: skip
    p.add("host_reported", at=102, host="h2",
          manifest=[{"host": "h2", "service": "api", "build_id": old}])  # fmt: skip
    s = Story("staging")
    s.plan(1, {("s1", "api"): build_id("api", "1.0")}, at=25)
    s.activate("s1", "api", build_id("api", "1.0"), 1)
    s.add("generation_completed", at=30, number=1)
    return p, s


def next_gauges(collector: RiemannCollector, riemann: RiemannReceiver) -> list[Any]:
    """Step until a round of gauges has arrived (embedded views are brought up to date
    in the background first); the gauges."""
    deadline = time.monotonic() + 60
    while not (found := [e for e in riemann.events() if "gauge" in e.tags]):
        assert time.monotonic() < deadline, "no gauges came"
        collector.step()
        time.sleep(0.01)
    return found


def test_gauges_per_env_from_the_views(ledger: Ledger, riemann: RiemannReceiver) -> None:
    production, staging = scripted_fleet()
    production.record(ledger)
    staging.record(ledger)
    if ledger.location.backend == "postgres":
        Views(ledger).catch_up()  # there `ledger project --follow` keeps the views
    now = [minute(130).timestamp()]
    collector = RiemannCollector(
        ledger, settings(riemann.address, gauge_interval=10), clock=lambda: now[0]
    )
    deliver(collector)
    assert all("gauge" not in e.tags for e in riemann.events()), "gauges before an interval"
    riemann.clear()
    now[0] += 10
    gauges = {(e.host, e.service): e for e in next_gauges(collector, riemann)}
    metric = {key: e.metric_sint64 or e.metric_d for key, e in gauges.items()}
    assert metric == {
        ("production", "deploy hosts generation 1"): 3,
        ("production", "deploy hosts generation 2"): 1,
        ("production", "deploy hosts not on current generation"): 3,
        ("production", "deploy activations failed last hour"): 1,
        ("production", "deploy drift hosts"): 1,
        ("production", "deploy seconds since deployment"): 118 * 60 + 10,
        ("staging", "deploy hosts generation 1"): 1,
        ("staging", "deploy hosts not on current generation"): 0,
        ("staging", "deploy activations failed last hour"): 0,
        ("staging", "deploy drift hosts"): 0,
        ("staging", "deploy seconds since deployment"): 100 * 60 + 10,
    }
    drift = gauges[("production", "deploy drift hosts")]
    assert attributes(drift) == {
        "env": "production", "generation": "2", "unreported": "1", "stale": "0", "reported": "2"
    }  # fmt: skip
    assert drift.state == "warning"
    assert gauges[("staging", "deploy drift hosts")].state == "ok"
    assert (
        attributes(gauges[("production", "deploy seconds since deployment")])["generation"] == "1"
    )
    for event in gauges.values():
        assert event.ttl == 30, "gauges expire after three intervals"
        assert event.time == int(now[0])
        assert list(event.tags) == ["gauge", event.host]

    riemann.clear()
    assert not collector.step(), "no gauges before the next interval"
    now[0] += 50 * 60  # minute 180, and 10 s
    ledger.append(
        [make_event("generation_completed", number=2, occurred_at=minute(175).isoformat())]
    )
    if ledger.location.backend == "postgres":
        Views(ledger).catch_up()
    later = {(e.host, e.service): e for e in next_gauges(collector, riemann)}
    assert later[("production", "deploy activations failed last hour")].metric_sint64 == 0
    assert later[("production", "deploy seconds since deployment")].metric_d == 5 * 60 + 10
    collector.close()


def test_gauges_from_views_in_another_database(
    sqlite_url: str, riemann: RiemannReceiver, tmp_path: Path
) -> None:
    """With ``--views`` the views are kept (and brought up to date) there."""
    ledger = Ledger(locate(sqlite_url), create=True)
    for story in scripted_fleet():
        story.record(ledger)
    now = [minute(130).timestamp()]
    collector = RiemannCollector(
        ledger,
        settings(riemann.address, gauge_interval=10),
        views_location=locate(str(tmp_path / "views.db")),
        clock=lambda: now[0],
    )
    now[0] += 10
    gauges = {(e.host, e.service): e for e in next_gauges(collector, riemann)}
    assert gauges[("production", "deploy drift hosts")].metric_sint64 == 1
    assert Views(ledger, locate(str(tmp_path / "views.db"))).lag() == 0
    assert Views(ledger).positions()["placements"] == 0, "the ledger's file has no views"
    collector.close()
    ledger.close()


# --- delivery ------------------------------------------------------------------------


def test_reconnects_after_the_receiver_restarts(
    ledger: Ledger, riemann: RiemannReceiver, collector: RiemannCollector
) -> None:
    append(ledger, 3)
    deliver(collector)
    riemann.wait_for(3)
    riemann.stop()
    append(ledger, 2, start=3)  # the ledger does not wait for Riemann
    with pytest.raises(ConnectionError):
        collector.step()
    assert Follower(ledger, "riemann").position() == 3, "nothing confirmed while down"
    riemann.start()
    deliver(collector)  # no failure: the dead connection is replaced at once
    assert positions(riemann.wait_for(5)) == [1, 2, 3, 4, 5]

    riemann.stop()
    riemann.start()  # went down and up again between two steps
    append(ledger, 1, start=5)
    deliver(collector)
    assert positions(riemann.wait_for(6)) == [1, 2, 3, 4, 5, 6]


def test_catches_up_in_order_after_an_outage(
    ledger: Ledger, riemann: RiemannReceiver, collector: RiemannCollector
) -> None:
    """The real loop: while Riemann is down it backs off and the ledger keeps taking
    events (from another writer); once Riemann is back every event arrives, in order,
    once."""
    writer = Ledger(locate(ledger.location.url))
    append(writer, 50)
    riemann.stop()
    stop = threading.Event()
    loop = threading.Thread(
        target=run, args=([collector],), kwargs={"poll_interval": 0.01, "stop": stop}
    )
    loop.start()
    try:
        for batch in range(10):
            append(writer, 100, start=50 + 100 * batch)
        assert writer.count() == 1050
        assert not riemann.events()
        riemann.start()
        received = riemann.wait_for(1050)
    finally:
        stop.set()
        loop.join()
    assert positions(received) == list(range(1, 1051))
    assert Follower(ledger, "riemann").position() == collector.position
    writer.close()


def test_at_least_once_across_a_restart(ledger: Ledger, riemann: RiemannReceiver) -> None:
    """Riemann got the batch but its ok never came: the position stays, and the
    collector started again sends that batch again (a duplicate, never a loss)."""
    append(ledger, 10)
    first = RiemannCollector(ledger, settings(riemann.address))
    riemann.mode = "drop"
    with pytest.raises(ConnectionError):
        first.step()
    assert len(riemann.events()) == 10
    assert Follower(ledger, "riemann").position() == 0
    first.close()  # the process is gone

    riemann.mode = "ok"
    again = Ledger(locate(ledger.location.url))
    second = RiemannCollector(again, settings(riemann.address))
    deliver(second)
    assert positions(riemann.wait_for(20)) == list(range(1, 11)) * 2
    assert second.follower.position() == second.position > 0
    second.close()
    third = RiemannCollector(again, settings(riemann.address))
    assert not third.step(), "what was confirmed is not sent again"
    third.close()
    again.close()


def test_an_error_or_no_answer_confirms_nothing(ledger: Ledger, riemann: RiemannReceiver) -> None:
    append(ledger, 5)
    collector = RiemannCollector(ledger, settings(riemann.address), timeout=0.5)
    riemann.mode = "error"
    with pytest.raises(RiemannError, match="told to refuse"):
        collector.step()
    riemann.mode = "hang"
    with pytest.raises(TimeoutError):
        collector.step()
    assert collector.follower.position() == 0
    riemann.mode = "ok"
    deliver(collector)
    assert positions(riemann.events())[-5:] == [1, 2, 3, 4, 5]
    assert collector.follower.position() == collector.position > 0
    collector.close()


# --- TLS -----------------------------------------------------------------------------


def tls_settings(address: str, certs: Path, **overrides: Any) -> CollectSettings:
    tls = {
        "riemann_tls": True,
        "riemann_ca": certs / "ca.pem",
        "riemann_cert": certs / "client.pem",
        "riemann_key": certs / "client.key",
    }
    return settings(address, **{**tls, **overrides})


@pytest.fixture
def tls_riemann(tmp_path: Path) -> Iterator[tuple[RiemannReceiver, Path]]:
    certs = make_certificates(tmp_path / "certs")
    receiver = RiemannReceiver(tls=certs.server_context()).start()
    yield receiver, tmp_path / "certs"
    receiver.stop()


def test_tls_with_a_client_certificate(
    sqlite_url: str, tls_riemann: tuple[RiemannReceiver, Path]
) -> None:
    receiver, certs = tls_riemann
    ledger = Ledger(locate(sqlite_url), create=True)
    append(ledger, 3)
    collector = RiemannCollector(ledger, tls_settings(receiver.address, certs))
    deliver(collector)
    assert positions(receiver.wait_for(3)) == [1, 2, 3]
    receiver.stop()
    receiver.start()
    append(ledger, 1, start=3)
    deliver(collector)  # a new TLS connection, at once
    assert positions(receiver.wait_for(4)) == [1, 2, 3, 4]
    collector.close()
    ledger.close()


def test_tls_refuses_an_untrusted_or_misnamed_server_and_needs_the_client_cert(
    sqlite_url: str, tls_riemann: tuple[RiemannReceiver, Path], tmp_path: Path
) -> None:
    receiver, certs = tls_riemann
    other = make_certificates(tmp_path / "other", name="other")
    ledger = Ledger(locate(sqlite_url), create=True)
    append(ledger, 1)
    port = receiver.port
    attempts = {
        "untrusted CA": tls_settings(receiver.address, certs, riemann_ca=other.ca),
        "name not in the certificate": tls_settings(f"localhost:{port}", certs),
        "no client certificate": settings(
            receiver.address, riemann_tls=True, riemann_ca=certs / "ca.pem"
        ),
    }
    for why, wrong in attempts.items():
        collector = RiemannCollector(ledger, wrong)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            collector.step()
        collector.close()
        assert not receiver.events(), why
    assert Follower(ledger, "riemann").position() == 0
    ledger.close()


def test_to_riemann_of_one_fact(ledger: Ledger) -> None:
    """The mapping on its own: a fact read back from the ledger, versions given."""
    ledger.append([make_event("activation_completed", duration_s=2.25)])
    fact = Follower(ledger, "riemann").read(0)[0]
    converted = to_riemann(fact, {BUILD_ID: "2.4.1"})
    assert converted.metric_d == 2.25
    assert converted.description == "activated api 2.4.1 on web-001 in generation 1 (2.25 s)"
