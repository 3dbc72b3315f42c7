"""How the ledger orders package versions and reads version ranges.

Versions are compared the way Nix's ``builtins.compareVersions`` does it. A version is split
into components at every ``.`` or ``-`` and wherever a run of digits meets a run of other
characters (``1.0.1p`` is ``1``, ``0``, ``1``, ``p``), and the components are compared left
to right, a missing one counting as empty:

- two numbers compare as integers: ``1.0.10 > 1.0.9``, ``3.0.13 > 3.0.9``;
- a number is above any word: ``2.3.1 > 2.3a``;
- anything is above nothing: ``1.0.1p > 1.0.1``, ``2.3.1 > 2.3``;
- words compare as text: ``1.0.1u > 1.0.1p``, ``1.0.2d > 1.0.2 > 1.0.1p``;
- pre-release words are below everything, even nothing, and among themselves
  ``dev < alpha < beta < pre < rc``: ``1.0.0-alpha < 1.0.0-beta < 1.0.0-rc1 < 1.0.0``.

Nix knows only ``pre``; ``dev``, ``alpha``, ``beta`` and ``rc`` are the ledger's addition,
spelled in lower case. Numbers of any length compare as integers.

A range is a comma-separated list of clauses, each an operator (``>=``, ``>``, ``<=``,
``<``, ``==`` or ``!=``; ``=`` means ``==``, and so does no operator) and a version; a
version is in the range when every clause holds. ``>=1.0.1,<1.0.2`` holds ``1.0.1``,
``1.0.1p`` and ``1.0.1u`` but not ``1.0.2`` or ``1.0.2d``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

from ledger.errors import InvalidInput

PRE_RELEASE_WORDS = ("dev", "alpha", "beta", "pre", "rc")
"""Words that sort below every other component, lowest first."""

MAX_VERSION_LENGTH = 200

_COMPONENT = re.compile(r"[0-9]+|[^0-9.\-]+")

_ComponentKey: TypeAlias = tuple[int] | tuple[int, int] | tuple[int, str]

_EMPTY: _ComponentKey = (1,)

_HOLDS: dict[str, Callable[[int], bool]] = {
    ">=": lambda order: order >= 0,
    ">": lambda order: order > 0,
    "<=": lambda order: order <= 0,
    "<": lambda order: order < 0,
    "==": lambda order: order == 0,
    "!=": lambda order: order != 0,
}

_SPELLINGS = {**{op: op for op in _HOLDS}, "=": "=="}

_OPERATOR_CHARS = frozenset("<>=!")


def _component_key(component: str) -> _ComponentKey:
    """Pre-release words < the empty component < other words (as text) < numbers."""
    if component in PRE_RELEASE_WORDS:
        return (0, PRE_RELEASE_WORDS.index(component))
    if component.isascii() and component.isdigit():
        return (3, int(component))
    return (2, component)


def version_key(version: str) -> tuple[_ComponentKey, ...]:
    """A sort key for ``version``: ``sorted(vs, key=version_key)`` orders as compare_versions.

    The trailing empty component stands for every missing one, so a version that stops
    early compares its "nothing" against the other's next component, as Nix does.
    """
    return (*(_component_key(c) for c in _COMPONENT.findall(version)), _EMPTY)


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is older than, the same as, or newer than ``b``."""
    key_a, key_b = version_key(a), version_key(b)
    return (key_a > key_b) - (key_a < key_b)


def _version_problem(version: str) -> str | None:
    """Why ``version`` cannot stand in a range clause, or None when it can."""
    if not version:
        return "has no version"
    if not version[0].isalnum():
        return f"has a version {version!r} that does not start with a letter or digit"
    if any(c.isspace() for c in version):
        return f"has whitespace inside its version {version!r}"
    if "," in version:
        return f"has a comma inside its version {version!r}"
    misplaced = sorted(_OPERATOR_CHARS.intersection(version))
    if misplaced:
        return f"has {misplaced[0]!r} inside its version {version!r}: separate clauses with commas"
    if len(version) > MAX_VERSION_LENGTH:
        return f"has a version of {len(version)} characters (at most {MAX_VERSION_LENGTH})"
    return None


@dataclass(frozen=True)
class VersionRange:
    """Clauses (operator, version) that a version must all satisfy; see parse_range."""

    clauses: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        for op, version in self.clauses:
            if op not in _HOLDS:
                raise InvalidInput(f"version range clause {op}{version}: unknown operator {op!r}")
            problem = _version_problem(version)
            if problem:
                raise InvalidInput(f"version range clause {op}{version}: {problem}")

    def contains(self, version: str) -> bool:
        return all(_HOLDS[op](compare_versions(version, bound)) for op, bound in self.clauses)

    def __str__(self) -> str:
        return ",".join(op + version for op, version in self.clauses)


def _split_clause(clause: str) -> tuple[str, str]:
    """The operator (everything before the first letter or digit) and the version."""
    start = next((i for i, c in enumerate(clause) if c.isalnum()), len(clause))
    return clause[:start].strip(), clause[start:].strip()


def _parse_clause(text: str, number: int, clause: str) -> tuple[str, str]:
    if not clause:
        raise InvalidInput(f"version range {text!r}: clause {number} is empty")
    written_op, version = _split_clause(clause)
    op = _SPELLINGS.get(written_op or "==")
    if op is None:
        raise InvalidInput(
            f"version range {text!r}: unknown operator {written_op!r} in clause {number} "
            f"({clause!r}): use >=, >, <=, <, == or !="
        )
    problem = _version_problem(version)
    if problem:
        raise InvalidInput(f"version range {text!r}: clause {number} ({clause!r}) {problem}")
    return op, version


def parse_range(text: str) -> VersionRange:
    """Read ``'>=1.0.1,<1.0.2'`` and the like; raise InvalidInput saying what is wrong."""
    if not text.strip():
        raise InvalidInput(
            f"version range {text!r} is empty: give clauses such as '>=1.0.1,<1.0.2'"
        )
    clauses = text.split(",")
    return VersionRange(
        tuple(
            _parse_clause(text, number, clause.strip())
            for number, clause in enumerate(clauses, start=1)
        )
    )


def version_matches(version: str, *, exact: str | None, range_: VersionRange | None) -> bool:
    """Whether ``version`` is exactly ``exact`` (as written) and inside ``range_``.

    Either test is skipped when not given; with neither, every version matches.
    """
    if exact is not None and version != exact:
        return False
    return range_ is None or range_.contains(version)
