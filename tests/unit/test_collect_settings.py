"""Collector settings: flags over environment over file over defaults; secrets stay secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.run import Backoff
from collectors.settings import load_settings
from ledger.errors import InvalidInput

WEBHOOK = "https://hooks.slack.com/services/T000/B000/very-secret-token"


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ledger.toml"
    path.write_text(text)
    return path


def test_flags_win_over_environment_over_file_over_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = config(tmp_path, 'riemann = "file:5555"\ngroup_wait = 5\nrepeat_interval = 60\n')
    assert load_settings(path).riemann == "file:5555"
    monkeypatch.setenv("LEDGER_RIEMANN", "env:5555")
    monkeypatch.setenv("LEDGER_GROUP_WAIT", "7")
    settings = load_settings(path)
    assert (settings.riemann, settings.group_wait, settings.repeat_interval) == ("env:5555", 7, 60)
    flagged = load_settings(path, riemann="flag:5555", group_wait=None)
    assert (flagged.riemann, flagged.group_wait) == ("flag:5555", 7)
    assert load_settings().gauge_interval == 10


def test_the_webhook_never_shows(tmp_path: Path) -> None:
    settings = load_settings(config(tmp_path, f'slack_webhook = "{WEBHOOK}"\n'))
    assert settings.slack_webhook is not None
    assert settings.slack_webhook.get_secret_value() == WEBHOOK
    for shown in (str(settings), repr(settings), str(settings.model_dump())):
        assert "very-secret-token" not in shown


@pytest.mark.parametrize(
    ("text", "flags", "message"),
    [
        ('riemman = "x:1"\n', {}, "unknown settings riemman"),
        ("riemann = \n", {}, "not valid TOML"),
        ("", {"riemann": "no-port"}, "setting riemann: Value error, expected HOST:PORT"),
        ("group_wait = -1\n", {}, "setting group_wait:"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(
    tmp_path: Path, text: str, flags: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        load_settings(config(tmp_path, text), **flags)


def test_backoff_doubles_with_jitter_up_to_a_minute_and_resets() -> None:
    backoff = Backoff(jitter=lambda low, high: high)
    assert [backoff.failed(0) for _ in range(10)] == [0.5, 1, 2, 4, 8, 16, 32, 60, 60, 60]
    backoff.succeeded()
    assert backoff.failed(100) == 0.5
    assert backoff.until == 100.5
    low = Backoff(jitter=lambda low, high: low)
    assert low.failed(0) == 0.25
