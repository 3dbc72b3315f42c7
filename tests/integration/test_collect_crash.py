"""`ledger collect` killed (SIGKILL) at random moments while events flow: every event
still reaches Riemann (at least once), and Slack never gets the same alert twice."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.application import Ledger
from ledger.store import locate
from tests.services.riemann import RiemannReceiver
from tests.services.slack import SlackStandIn
from tests.story import Story

HOSTS = [f"h{i}" for i in range(6)]
GENERATIONS = 12


@pytest.fixture
def receiver() -> Iterator[RiemannReceiver]:
    riemann = RiemannReceiver().start()
    yield riemann
    riemann.stop()


@pytest.fixture
def stand_in() -> Iterator[SlackStandIn]:
    slack = SlackStandIn()
    yield slack
    slack.stop()


def rollouts() -> Iterator[Story]:
    """Generation after generation of api on six hosts; every third one fails on a host."""
    for number in range(1, GENERATIONS + 1):
        s = Story()
        s.clock = number * 100.0
        build = s.build("api", f"1.{number}")
        s.plan(number, {(h, "api"): build for h in HOSTS}, parent=number - 1 or None)
        for index, host in enumerate(HOSTS):
            s.add("distribution_completed", host=host, service="api", build_id=build)
            if number % 3 == 0 and index == 4:
                s.add("activation_failed", host=host, service="api", build_id=build,
                      generation=number, reason="health check failed")  # fmt: skip
                s.add("generation_failed", number=number, reason="api failed on h4")
                break
            s.add("activation_completed", host=host, service="api", build_id=build,
                  generation=number)  # fmt: skip
        else:
            s.add("generation_completed", number=number)
        yield s


def collector(url: str, riemann: str, config: Path, *extra: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", "from cli.main import main; main()", "--ledger", url,
               "collect", "--riemann", riemann, "--config", str(config), *extra]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_a_killed_collector_loses_nothing_and_pages_once(
    ledger_url: str,
    tmp_path: Path,
    receiver: RiemannReceiver,
    stand_in: SlackStandIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    Ledger(locate(ledger_url), create=True).close()
    config = tmp_path / "collect.toml"
    config.write_text(
        "group_wait = 0\ngroup_interval = 0\nrepeat_interval = 86400\n"
        "poll_interval = 0.05\ngauge_interval = 86400\nriemann_batch = 20\n"
    )
    monkeypatch.setenv("LEDGER_SLACK_WEBHOOK", stand_in.url)  # the collectors inherit it
    writing = threading.Thread(target=write_slowly, args=(ledger_url,))
    writing.start()
    kills = 0
    while writing.is_alive() or kills < 4:
        process = collector(ledger_url, receiver.address, config)
        time.sleep(rng.uniform(0.3, 1.2))
        process.kill()  # SIGKILL: no chance to finish a batch or commit
        process.wait()
        kills += 1
    writing.join()
    final = collector(ledger_url, receiver.address, config, "--once")
    _, errors = final.communicate(timeout=120)
    assert final.returncode == 0, errors.decode()

    ledger = Ledger(locate(ledger_url))
    head = ledger.count()
    ledger.close()
    delivered = {
        int(a.value) for e in receiver.events() for a in e.attributes if a.key == "position"
    }
    assert delivered >= set(range(1, head + 1)), f"events lost (seed {seed}, {kills} kills)"
    sent = Counter(r.message_id for r in stand_in.delivered)
    assert sent, f"no alert reached Slack (seed {seed})"
    assert max(sent.values()) == 1, f"an alert was sent twice (seed {seed}): {sent}"


def write_slowly(url: str) -> None:
    """About 150 events over a few seconds, a rollout at a time, in small batches."""
    ledger = Ledger(locate(url))
    try:
        for story in rollouts():
            events = story.events
            for start in range(0, len(events), 4):
                ledger.append(events[start : start + 4])
                time.sleep(0.05)
    finally:
        ledger.close()
