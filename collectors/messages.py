"""What a message says and how Slack shows it: the notices the alert state hands over
(a group's firing and resolved alerts, ready to show), an alert in one sentence, and
the Block Kit message about a group, with its plain-text fallback and the commands that
show more. An advisory group's message is about one vulnerability: its severity and
score in the title, per env the hosts exposed, the affected and fixed versions."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from collectors.kinds import ADVISORY, GENERATION_KINDS, HEALTH_KINDS

MAX_ALERTS = 20
"""Alerts shown per message (Slack: 50 blocks at most); the rest are counted."""
MAX_HOSTS = 10
SECTION_LIMIT = 3000


# --- notices: what a message says ----------------------------------------------------


@dataclass(frozen=True)
class AdvisoryNotice:
    """The vulnerability an advisory group's message is about."""

    key: str
    ids: tuple[str, ...]
    """The key first, then the other ids and aliases."""
    score: float | None
    severity: str | None
    summary: str

    def rating(self) -> str:
        """``high 7.5``, or ``severity unknown`` when no record gives a CVSS score."""
        if self.score is None:
            return "severity unknown"
        return f"{self.severity} {self.score:g}"


@dataclass(frozen=True)
class AlertNotice:
    """One alert as a message shows it."""

    fingerprint: str
    env: str
    service: str
    generation: int
    kind: str
    status: str
    hosts: tuple[str, ...]
    total_hosts: int
    builds: tuple[tuple[str, str | None], ...]
    """(build id, version or None when the views do not know the build)."""
    reasons: tuple[tuple[str, int], ...]
    """The hosts' reasons, most frequent first, with how many hosts gave each."""
    detail: str
    resolution: str | None
    new: bool
    packages: tuple[tuple[str, str, str | None], ...] = ()
    """An advisory alert's affected package versions: (name, version, fixed or None)."""

    def what(self) -> str:
        """The service and its version(s): ``api 2.4.1``; an advisory alert's affected
        package versions: ``openssl 1.0.1f``."""
        if self.kind == ADVISORY:
            return ", ".join(f"{name} {version}" for name, version, _ in self.packages)
        versions = sorted({version or build[:12] for build, version in self.builds})
        return " ".join([self.service, "/".join(versions)]).strip()

    def summary(self) -> str:
        """One sentence: "12 of 300 hosts failed to activate api 2.4.1 in generation 42"."""
        return summarise(
            self.kind, self.env, self.service, self.generation, len(self.hosts),
            self.total_hosts, self.what(), self.detail,
        )  # fmt: skip


def summarise(
    kind: str,
    env: str,
    service: str,
    generation: int,
    count: int,
    total: int,
    what: str,
    detail: str,
) -> str:
    """An alert in one sentence; ``what`` names the service and its version."""
    hosts = f"{count} host{'' if count == 1 else 's'}"
    of_hosts = f"{count} of {total} hosts" if total else hosts
    if kind == "generation_failed":
        reason = f": {detail.strip().splitlines()[0]}" if detail.strip() else ""
        return f"generation {generation} of {env} failed{reason}"
    if kind in HEALTH_KINDS.values():
        state = kind.removeprefix("health_")
        subject = service or ("itself" if count == 1 else "themselves")
        return f"{hosts} report{'s' if count == 1 else ''} {subject} {state}"
    if kind == "drift":
        return f"{of_hosts} run another {service} than generation {generation} wants"
    if kind == ADVISORY:
        return f"{hosts} in {env} exposed to {detail}" + (f": {what}" if what else "")
    verb = {
        "activation_failed": "failed to activate",
        "distribution_failed": "could not receive",
        "drain_timed_out": "timed out draining",
    }[kind]
    where = f" in generation {generation}" if generation else ""
    return f"{of_hosts} {verb} {what}{where}"


@dataclass(frozen=True)
class GroupNotice:
    """A message about one group: its firing alerts (all of them, as Alertmanager
    sends) and the alerts that resolved since the last message."""

    group_key: str
    env: str
    generation: int
    firing: tuple[AlertNotice, ...]
    resolved: tuple[AlertNotice, ...]
    advisory: AdvisoryNotice | None = None
    """An advisory group's vulnerability."""


# --- Block Kit -----------------------------------------------------------------------


def message(
    notice: GroupNotice, message_id: int, dashboard_url: str | None = None
) -> dict[str, Any]:
    """The Block Kit message about a group, with its plain-text fallback; with the
    dashboard's public URL, a line linking to the page of what it is about."""
    title = _title(notice)
    firing, resolved = notice.firing, notice.resolved
    if firing:
        plural = "s" if len(firing) != 1 else ""
        head = f":rotating_light: {title}: {len(firing)} alert{plural} firing"
    else:
        head = f":white_check_mark: {title}: resolved"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": head[:150], "emoji": True}}
    ]
    blocks += [_section(_firing(alert)) for alert in firing[:MAX_ALERTS]]
    if len(firing) > MAX_ALERTS:
        blocks.append(_context(f"… and {len(firing) - MAX_ALERTS} more firing alerts"))
    if resolved and firing:
        blocks.append({"type": "divider"})
    blocks += [_section(_resolved(alert)) for alert in resolved[:MAX_ALERTS]]
    if len(resolved) > MAX_ALERTS:
        blocks.append(_context(f"… and {len(resolved) - MAX_ALERTS} more resolved"))
    if notice.advisory is not None and notice.advisory.summary:
        about = f"{', '.join(notice.advisory.ids)}: {notice.advisory.summary}"
        blocks.append(_context(_escape(about[:500])))
    if dashboard_url is not None:
        blocks.append(_context(f"Dashboard: {dashboard_link(dashboard_url, notice)}"))
    more = " · ".join(f"`{_escape(command)}`" for command in commands(notice))
    blocks.append(_context(f"See more: {more} · ledger alert message #{message_id}"))
    return {
        "text": _fallback(notice),
        "blocks": blocks,
        "unfurl_links": False,
        "unfurl_media": False,
        "metadata": {
            "event_type": "ledger_alert",
            "event_payload": {
                "message_id": message_id,
                "group": notice.group_key,
                "firing": [a.fingerprint for a in firing],
                "resolved": [a.fingerprint for a in resolved],
            },
        },
    }


def dashboard_link(base: str, notice: GroupNotice) -> str:
    """Slack's ``<url|text>`` to the dashboard's page about a group: its advisory's, its
    generation's, or (health alerts) its env's. ``base`` ends with ``/``
    (``CollectSettings.dashboard_url``); names are percent-encoded into the fragment as
    the dashboard's router reads them, the text escaped as Slack requires."""
    if notice.advisory is not None:
        key = notice.advisory.key
        target, text = f"advisory/{quote(key, safe='')}", key
    elif notice.generation:
        target = f"generation/{quote(notice.env, safe='')}/{notice.generation}"
        text = f"{notice.env} generation {notice.generation}"
    else:
        target, text = f"env/{quote(notice.env, safe='')}", f"{notice.env} health"
    return f"<{base}#/{target}|{_escape(text)}>"


def commands(notice: GroupNotice) -> list[str]:
    """Commands that show more about the group (ones that exist, with filters they
    take)."""
    env = shlex.quote(notice.env)
    alerts = [*notice.firing, *notice.resolved]
    found: list[str] = []
    if notice.advisory is not None:
        key = shlex.quote(notice.advisory.key)
        envs = sorted({a.env for a in alerts})
        of = f" --env {shlex.quote(envs[0])}" if len(envs) == 1 else ""
        return [
            f"ledger exposure {key}{of}",
            f"ledger advisories show {key}",
            f"ledger alerts{of}",
        ]
    if any(a.kind in GENERATION_KINDS for a in alerts):
        of = f" --generation {notice.generation}" if notice.generation else ""
        found.append(f"ledger failures --env {env}{of}")
    if notice.generation:
        found.append(f"ledger generation {notice.generation} --env {env}")
    if any(a.kind == "drift" for a in alerts):
        found.append(f"ledger drift --env {env}")
    if not notice.generation:
        hosts = {host for a in alerts for host in a.hosts}
        if len(hosts) == 1:
            found.append(f"ledger history --host {shlex.quote(hosts.pop())} --env {env}")
        found.append(f"ledger topology --env {env}")
    found.append(f"ledger alerts --env {env}")
    return found


def _title(notice: GroupNotice) -> str:
    if notice.advisory is not None:
        return f"{notice.advisory.key} · {notice.advisory.rating()}"
    if notice.generation:
        return f"{notice.env} · generation {notice.generation}"
    return f"{notice.env} · health"


def _fallback(notice: GroupNotice) -> str:
    alerts = notice.firing or notice.resolved
    label = f"FIRING:{len(notice.firing)}" if notice.firing else "RESOLVED"
    more = f" (+{len(alerts) - 1} more)" if len(alerts) > 1 else ""
    return f"[{label}] {_title(notice)}: {alerts[0].summary()}{more}"


def _firing(alert: AlertNotice) -> str:
    lines = [f"*{_escape(alert.summary())}*" + (" _(new)_" if alert.new else "")]
    if alert.hosts:
        shown = ", ".join(_escape(h) for h in alert.hosts[:MAX_HOSTS])
        rest = len(alert.hosts) - MAX_HOSTS
        lines.append(f"*Hosts:* {shown}" + (f" and {rest} more" if rest > 0 else ""))
    if alert.packages:
        versions = "; ".join(
            f"{_escape(name)} {_escape(version)}"
            + (f" — fixed in {_escape(fixed)}" if fixed else " — no fixed version known")
            for name, version, fixed in alert.packages[:10]
        )
        lines.append(f"*Affected:* {versions}")
    if alert.builds and alert.kind != ADVISORY:
        builds = ", ".join(
            f"{_escape(alert.service)} {_escape(version or '?')} `{build[:12]}`"
            for build, version in alert.builds[:5]
        )
        lines.append(f"*Build:* {builds}")
    if alert.reasons:
        reasons = "; ".join(
            f"{_escape(reason)}" + (f" — {n} hosts" if n > 1 else "")
            for reason, n in alert.reasons[:3]
        )
        label = "Runs" if alert.kind == ADVISORY else "Reason"
        lines.append(f"*{label}:* {reasons}")
    elif alert.detail.strip():
        lines.append(f"*Reason:* {_escape(alert.detail.strip())}")
    return "\n".join(lines)


def _resolved(alert: AlertNotice) -> str:
    why = f" — {_escape(alert.resolution)}" if alert.resolution else ""
    return f":white_check_mark: *Resolved:* {_escape(alert.summary())}{why}"


def _section(text: str) -> dict[str, Any]:
    if len(text) > SECTION_LIMIT:
        text = text[: SECTION_LIMIT - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:SECTION_LIMIT]}]}


def _escape(text: str) -> str:
    """Producers' strings, shown as they are: Slack reads &, < and > as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
