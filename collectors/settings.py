"""How the collectors are configured: flags, environment variables and a settings file.

Precedence, highest first: command-line flags, environment variables (``LEDGER_…``,
e.g. ``LEDGER_RIEMANN=riemann.internal:5555``, ``LEDGER_SLACK_WEBHOOK=https://…``), a
settings file (TOML, ``--config FILE`` or ``LEDGER_CONFIG``), then the defaults below.
The webhook URL is a secret: it is kept as a ``SecretStr``, so it prints as
``**********`` in logs, reprs and errors.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from ledger.errors import InvalidInput
from ledger.events import describe_error


class CollectSettings(BaseSettings):
    """Everything `ledger collect` needs besides the ledger itself."""

    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="forbid", frozen=True)

    riemann: str | None = Field(
        default=None, description="Riemann server as HOST:PORT (TCP); unset: no Riemann."
    )
    riemann_tls: bool = Field(default=False, description="Connect to Riemann over TLS.")
    riemann_ca: Path | None = Field(default=None, description="CA bundle for Riemann's cert.")
    riemann_cert: Path | None = Field(default=None, description="Client certificate (PEM).")
    riemann_key: Path | None = Field(default=None, description="Client certificate's key.")
    riemann_batch: int = Field(default=500, ge=1, le=10_000, description="Events per message.")
    gauge_interval: float = Field(
        default=10.0, gt=0, description="Seconds between gauges sent from the views."
    )
    slack_webhook: SecretStr | None = Field(
        default=None, description="Slack incoming-webhook URL (a secret); unset: no Slack."
    )
    dashboard_url: str | None = Field(
        default=None,
        description="The dashboard's public URL (what `ledger serve` is reached at): Slack "
        "messages link to the generation's or advisory's page there; unset: no links.",
    )
    rules: Path | None = Field(default=None, description="Alert rules file (TOML).")
    cpe_map: Path | None = Field(
        default=None,
        description="NVD products named otherwise than their packages, for advisory alerts "
        "(lines 'vendor:product name'; see docs/advisories.md).",
    )
    group_wait: float = Field(
        default=30.0, ge=0, description="Seconds to wait before a group's first message."
    )
    group_interval: float = Field(
        default=300.0, ge=0, description="Seconds between messages about a changed group."
    )
    repeat_interval: float = Field(
        default=4 * 3600.0, ge=0, description="Seconds before an unchanged alert is re-sent."
    )
    poll_interval: float = Field(
        default=0.5, gt=0, description="Seconds between looks at the ledger when idle."
    )
    checkpoint_every: int | None = Field(
        default=None,
        ge=1,
        description="Sign a checkpoint once this many events were appended since the last "
        "(the key: LEDGER_CHECKPOINT_KEY); unset: not by count.",
    )
    checkpoint_interval: float | None = Field(
        default=None,
        gt=0,
        description="Sign a checkpoint this often (seconds, or 90s, 5m, 1h) when the ledger "
        "grew; unset: not by time.",
    )

    @field_validator("checkpoint_interval", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return seconds(value) if isinstance(value, str) else value

    @field_validator("riemann")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, sep, port = value.rpartition(":")
        if (
            not sep
            or not host
            or not (port.isascii() and port.isdigit())
            or not 0 < int(port) < 65536
        ):
            raise ValueError(f"expected HOST:PORT (riemann.internal:5555), not {value!r}")
        return value

    @field_validator("dashboard_url")
    @classmethod
    def _web_address(cls, value: str | None) -> str | None:
        """An http(s) URL with a host, without a fragment (the links add the page's):
        a typo here would put dead links in every alert."""
        if value is None:
            return None
        text = value.strip()
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"expected an http(s) URL such as https://ledger.example.com/, not {value!r}"
            )
        parts.port  # noqa: B018 (raises ValueError on a port out of range)
        if parts.fragment or text.endswith("#"):
            raise ValueError(f"give the URL without a fragment (#…), not {value!r}")
        if any(c.isspace() or c in "<>|" for c in text):
            raise ValueError(f"the URL holds a space or one of < > |: {value!r}")
        return text.rstrip("/") + "/"

    @property
    def riemann_address(self) -> tuple[str, int] | None:
        if self.riemann is None:
            return None
        host, _, port = self.riemann.rpartition(":")
        return host.strip("[]"), int(port)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def seconds(text: str) -> float:
    """``60``, ``45s``, ``5m``, ``1h30m``, ``1d`` → seconds; ``ValueError`` otherwise."""
    value = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):  # not float(): it takes "nan" and "inf"
        return float(value)
    if not value or _DURATION.sub("", value) or not _DURATION.search(value):
        raise ValueError(f"{text!r} is not a duration such as 60, 45s, 5m or 1h")
    return sum(float(n) * _UNITS[unit] for n, unit in _DURATION.findall(value))


def load_settings(config: Path | None = None, **flags: Any) -> CollectSettings:
    """The settings: ``flags`` that were given (``None`` means not given) over the
    environment over ``config`` (TOML) over the defaults. Refuses unknown or bad values,
    naming the setting."""
    from_file: dict[str, Any] = {}
    if config is not None:
        try:
            from_file = tomllib.loads(config.read_text())
        except OSError as error:
            raise InvalidInput(f"{config}: cannot read it: {error.strerror}") from None
        except tomllib.TOMLDecodeError as error:
            raise InvalidInput(f"{config}: not valid TOML: {error}") from None
        if unknown := sorted(set(from_file) - set(CollectSettings.model_fields)):
            raise InvalidInput(
                f"{config}: unknown settings {', '.join(unknown)}; known: "
                + ", ".join(sorted(CollectSettings.model_fields))
            )

    class Settings(CollectSettings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            file = InitSettingsSource(settings_cls, init_kwargs=from_file)
            return init_settings, env_settings, file

    try:
        settings = Settings(**{name: value for name, value in flags.items() if value is not None})
    except ValidationError as error:
        field, reason = describe_error(error.errors(include_url=False)[0])
        raise InvalidInput(f"setting {field or '?'}: {reason}") from None
    return CollectSettings.model_construct(**dict(settings))
