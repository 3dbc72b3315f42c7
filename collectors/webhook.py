"""One Slack incoming webhook, through slack_sdk's ``WebhookClient``: a POST and how it
ended (``Outcome``), what slack_sdk retries by itself, and the webhook URL kept secret.

- **Rate limit.** At most one POST per second (``SEND_INTERVAL``, kept by the
  collector). A ``429`` is honoured: short ``Retry-After`` waits (≤ 1 s) are slept by
  slack_sdk's ``RateLimitErrorRetryHandler``, longer ones hold the outbox until then
  (durably, without blocking other collectors).
- **Failures.** slack_sdk's ``ServerErrorRetryHandler`` retries a 500/503 once at once;
  what still fails is retried by the outbox (``collectors.outbox``).
- **The webhook URL is a secret**: it never appears in logs, errors or reprs; what
  slack_sdk logs passes through ``RedactingLogger``.
"""

from __future__ import annotations

import http.client
import logging
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr
from slack_sdk.errors import SlackRequestError
from slack_sdk.http_retry.builtin_handlers import (
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.webhook import WebhookClient

from ledger.errors import InvalidInput

log = logging.getLogger("ledger.collect.slack")

SEND_INTERVAL = 1.0
"""Seconds between POSTs: Slack allows about one message per second per webhook."""
MAX_RETRY_AFTER = 3600.0
SLEEP_FOR_RETRY_AFTER = 1
"""A 429 with a Retry-After up to this is waited out by slack_sdk, in the request."""
HTTP_TIMEOUT = 10


# --- the secret ----------------------------------------------------------------------


class Redactor:
    """Cuts the webhook URL, and the secret path it carries, out of any text."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        secrets = [url, url.rstrip("/"), parts.path + (f"?{parts.query}" if parts.query else "")]
        self.secrets = sorted({s for s in secrets if len(s) > 1}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "<slack webhook>")
        return text


class RedactingLogger(logging.Logger):
    """The logger handed to slack_sdk: records pass to the collector's log with the
    webhook URL cut out. Its level is above DEBUG, so slack_sdk also skips the debug
    and retry lines that would print the URL."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__(f"{log.name}.sdk", logging.INFO)
        self._redact = redact

    def handle(self, record: logging.LogRecord) -> None:
        record.msg, record.args = self._redact(record.getMessage()), None
        record.exc_info, record.exc_text = None, None
        if log.isEnabledFor(record.levelno):
            log.handle(record)


# --- one webhook ---------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """How one delivery ended: ``sent``; ``retry`` (not delivered, try again — after
    ``retry_after`` seconds for a 429); ``failed`` (permanent); ``unknown`` (the
    request went out, no answer came back)."""

    status: str
    error: str = ""
    retry_after: float | None = None


class ShortRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """slack_sdk's 429 handler, for short waits only: it sleeps on the calling thread,
    and a long Retry-After must not hold up the other collectors (the outbox waits
    those out instead)."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        headers = {k.lower(): v for k, v in response.headers.items()}
        values = headers.get("retry-after") or []
        value = values[0] if isinstance(values, list) and values else values
        return (
            isinstance(value, str)
            and value.strip().isascii()
            and value.strip().isdigit()
            and (int(value) <= SLEEP_FOR_RETRY_AFTER)
        )


def retry_after(headers: Any, now: float) -> float:
    """Seconds a 429 asks to wait (Retry-After in seconds or as an HTTP date)."""
    value = None
    for key, found in dict(headers or {}).items():
        if key.lower() == "retry-after":
            value = found[0] if isinstance(found, list) else found
    if value is None:
        return SEND_INTERVAL
    text = str(value).strip()
    try:
        seconds = float(text) if text.isascii() and text.replace(".", "", 1).isdigit() else None
        if seconds is None:
            seconds = parsedate_to_datetime(text).timestamp() - now
    except (TypeError, ValueError, IndexError):
        return SEND_INTERVAL
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class SlackWebhook:
    """One Slack incoming webhook (its URL a secret), through slack_sdk."""

    def __init__(self, url: SecretStr, *, timeout: int = HTTP_TIMEOUT) -> None:
        secret = url.get_secret_value()
        if urlsplit(secret).scheme not in ("https", "http") or not urlsplit(secret).netloc:
            raise InvalidInput(
                "the Slack webhook is not an https:// URL (check LEDGER_SLACK_WEBHOOK or "
                "--slack-webhook; it is not shown here because it is a secret)"
            )
        self.redact = Redactor(secret)
        self._client = WebhookClient(
            secret,
            timeout=timeout,
            logger=RedactingLogger(self.redact),
            retry_handlers=[
                ShortRateLimitRetryHandler(max_retry_count=1),
                ServerErrorRetryHandler(
                    max_retry_count=1, interval_calculator=FixedValueRetryIntervalCalculator(0.5)
                ),
            ],
        )

    def __repr__(self) -> str:
        return "SlackWebhook(<secret>)"

    def post(self, body: dict[str, Any], now: Callable[[], float]) -> Outcome:
        """POST one message; never raises for what the network or Slack does."""
        try:
            response = self._client.send_dict(body)
        except urllib.error.URLError as error:
            # urllib raises URLError while connecting or sending: Slack has not got it.
            return Outcome("retry", f"cannot reach Slack: {self._describe(error.reason)}")
        except (OSError, http.client.HTTPException) as error:
            # The request went out; the answer did not come back.
            return Outcome("unknown", f"no answer from Slack: {self._describe(error)}")
        except SlackRequestError as error:
            return Outcome("failed", self._describe(error))
        status, text = response.status_code, self.redact(str(response.body or "").strip())
        if 200 <= status < 300:
            return Outcome("sent")
        if status == 429:
            wait = retry_after(response.headers, now())
            return Outcome("retry", f"HTTP 429 rate limited (Retry-After {wait:g} s)", wait)
        if status >= 500 or status == 408:
            return Outcome("retry", f"HTTP {status} {text[:200]}".rstrip())
        return Outcome("failed", f"HTTP {status} {text[:200]}".rstrip())

    def _describe(self, error: object) -> str:
        text = str(error).strip().splitlines()
        return self.redact(f"{type(error).__name__}: {text[0]}" if text else type(error).__name__)
