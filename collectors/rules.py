"""Alert rules: which facts become alerts. By default the kinds in ``DEFAULT_KINDS``
(all but health warnings); a rules file (TOML, ``--rules FILE``) adds alerts or
silences them for good by env, service and kind. A bad file is refused before anything
runs, naming the file, the rule and what is wrong. Rules apply when the collector
reads a fact: changing them does not touch alerts already there."""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collectors.kinds import ALERT_KINDS, DEFAULT_KINDS
from ledger.errors import InvalidInput

RULE_KEYS = ("action", "kind", "env", "service")
ACTIONS = ("alert", "silence")


@dataclass(frozen=True)
class Rule:
    """Alert (or never alert) on ``kind`` in ``env`` for ``service``; env and service are
    shell-style patterns (``pr-*``); a field left out matches anything."""

    action: str = "alert"
    kind: str | None = None
    env: str | None = None
    service: str | None = None

    def matches(self, env: str, service: str, kind: str) -> bool:
        return (
            (self.kind is None or self.kind == kind)
            and (self.env is None or fnmatch.fnmatchcase(env, self.env))
            and (self.service is None or fnmatch.fnmatchcase(service, self.service))
        )


@dataclass(frozen=True)
class Rules:
    """What alerts: the default kinds (unless ``defaults`` is off) and the ``alert``
    rules; a ``silence`` rule wins over both."""

    rules: tuple[Rule, ...] = ()
    defaults: bool = True

    def alerts(self, env: str, service: str, kind: str) -> bool:
        if any(r.action == "silence" and r.matches(env, service, kind) for r in self.rules):
            return False
        if self.defaults and kind in DEFAULT_KINDS:
            return True
        return any(r.action == "alert" and r.matches(env, service, kind) for r in self.rules)


def load_rules(path: Path | None) -> Rules:
    """The rules in a TOML file (the defaults when ``path`` is None). Refuses a bad file
    naming the file, the rule (1 is the first ``[[rule]]``) and what is wrong."""
    if path is None:
        return Rules()
    try:
        data = tomllib.loads(path.read_text())
    except OSError as error:
        raise InvalidInput(f"{path}: cannot read the rules file: {error.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InvalidInput(f"{path}: not valid TOML: {error}") from None
    if unknown := sorted(set(data) - {"defaults", "rule"}):
        raise InvalidInput(
            f"{path}: unknown setting {unknown[0]!r} (known: defaults, and [[rule]] tables)"
        )
    defaults = data.get("defaults", True)
    if not isinstance(defaults, bool):
        raise InvalidInput(f"{path}: defaults must be true or false, not {defaults!r}")
    entries = data.get("rule", [])
    if not isinstance(entries, list):
        raise InvalidInput(f"{path}: rule must be [[rule]] tables")
    rules = tuple(_rule(path, index, entry) for index, entry in enumerate(entries, start=1))
    return Rules(rules, defaults)


def _rule(path: Path, index: int, entry: Any) -> Rule:
    def refuse(reason: str) -> InvalidInput:
        return InvalidInput(f"{path}: rule {index}: {reason}")

    if not isinstance(entry, dict):
        raise refuse("expected a table of action, kind, env, service")
    if unknown := sorted(set(entry) - set(RULE_KEYS)):
        raise refuse(f"unknown key {unknown[0]!r} (known: {', '.join(RULE_KEYS)})")
    for key, value in entry.items():
        if not isinstance(value, str) or not value.strip():
            raise refuse(f"{key} must be a non-empty string, not {value!r}")
    action = entry.get("action", "alert")
    if action not in ACTIONS:
        raise refuse(f"action must be 'alert' or 'silence', not {action!r}")
    kind = entry.get("kind")
    if isinstance(kind, str):
        kind = kind.replace("-", "_")  # activation-failed as `ledger record` spells it
    if kind is not None and kind not in ALERT_KINDS:
        raise refuse(f"unknown kind {kind!r} (known: {', '.join(ALERT_KINDS)})")
    if not any(key in entry for key in ("kind", "env", "service")):
        raise refuse("name at least one of kind, env, service (a rule matching everything)")
    return Rule(action, kind, entry.get("env"), entry.get("service"))
