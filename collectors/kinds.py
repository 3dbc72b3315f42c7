"""The kinds of alerts and an alert's two statuses: the words the alerting modules
(rules, silences, alerts, grouping, messages) share."""

from __future__ import annotations

ALERT_KINDS: dict[str, str] = {
    "activation_failed": "a service build failed to activate on hosts",
    "distribution_failed": "a build's closure could not be copied to hosts",
    "drain_timed_out": "a drain gave up with work still in flight",
    "generation_failed": "a generation stopped with failures",
    "health_critical": "hosts report a service (or themselves) critical",
    "health_warning": "hosts report a service (or themselves) warning (not by default)",
    "drift": "a host runs other builds than its env's completed current generation wants",
    "advisory": "hosts run a build an advisory affects (one alert per vulnerability and env)",
}
DEFAULT_KINDS = frozenset(ALERT_KINDS) - {"health_warning"}
GENERATION_KINDS = frozenset(
    {"activation_failed", "distribution_failed", "drain_timed_out", "generation_failed"}
)
HEALTH_KINDS = {"critical": "health_critical", "warning": "health_warning"}
ADVISORY = "advisory"

FIRING, RESOLVED = "firing", "resolved"
