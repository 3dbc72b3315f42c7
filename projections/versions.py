"""How the ledger orders package versions and reads version ranges.

Every version belongs to an ecosystem: the type of its component's package URL (``pypi``,
``deb``, ``npm``, …), or ``nix`` for a component with a Nix store path (see
``ledger.ecosystems.ecosystem_of``). Versions are only ever compared within one ecosystem.

The Nix order
-------------

Nix versions are ordered exactly as Nix's ``builtins.compareVersions`` orders them
(``nextComponent``, ``componentsLT`` and ``compareVersions`` in Nix's
``src/libstore/names.cc``); a test checks this module against a real ``nix-instantiate``.

A version is read as a list of components. Runs of ``.`` and ``-`` separate components and
are otherwise ignored; a component is a run of ASCII digits or a run of other characters
(neither digits nor separators), so ``1.0.1p`` is ``1``, ``0``, ``1``, ``p`` and
``2.38-44`` is ``2``, ``38``, ``44``. Two versions are compared component by component,
left to right, until both are used up; a version that ends early supplies empty
components. Two components ``c1`` and ``c2`` compare by the first rule that applies:

1. both are numbers: as integers (``1.0.10 > 1.0.9``; ``1.01 == 1.1``). A number is a run
   of digits whose value fits a C++ ``int`` (at most 2147483647, leading zeros allowed);
   a longer run is *not* a number and compares as a word (rule 6), so
   ``1.99999999999 < 1.2`` and ``20240101123045 < 20240101``;
2. the empty component is below a number: ``2.3 < 2.3.1``;
3. ``pre`` is below everything but ``pre``, even the empty component:
   ``2.3pre1 < 2.3 < 2.3a``;
4. a number is above any word: ``2.3a < 2.3.1``;
5. (the mirror of rule 4);
6. otherwise both are words (or empty) and compare byte by byte as UTF-8, which is code
   point order: ``"" < "RC" < "a" < "p" < "rc" < "u" < "é"``. So the empty component is
   below every word: ``1.0.1 < 1.0.1p < 1.0.1u``.

Only ``pre`` is special and only in lower case: ``rc``, ``alpha``, ``beta`` and ``dev``
are ordinary words, so ``1.0.0-rc1 > 1.0.0`` and ``3.0.13-dev > 3.0.13`` in this order.
Trailing separators change nothing (``1.0. == 1.0``); neither do doubled ones
(``1..2 == 1.2``, ``1.0a == 1.0-a``).

Other ecosystems
----------------

Versions of these purl types are compared by their ecosystem's own rules, as implemented
by the ``univers`` library:

- ``pypi``: PEP 440 (``1.0rc1 < 1.0 == 1.0.0 < 1.0.post1``);
- ``deb``: Debian policy (epochs, ``~`` below everything: ``1.0~rc1 < 1.0 < 1:0.9``);
- ``rpm``: rpmvercmp, with epochs and ``~``/``^``;
- ``npm``, ``cargo``, ``hex``, ``golang`` (a leading ``v`` dropped), ``composer``:
  Semantic Versioning 2.0 (``1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-beta < 1.0.0``); a
  version with fewer than three numbers is completed with zeros, and build metadata
  (``+…``) is ignored, as SemVer says;
- ``gem``: RubyGems (``1.0.a < 1.0``); ``maven``: Maven's ComparableVersion
  (``1.0-alpha-1 < 1.0-SNAPSHOT < 1.0 == 1.0.0``); ``nuget``: NuGet;
  ``conan``: Conan; ``alpm``: Arch Linux's vercmp; ``apk``: Alpine's apk.

Any other ecosystem (``generic``, ``github``, ``docker``, ``conda``, …) uses the Nix order.
So does a pair of versions when either of them is not a valid version of its ecosystem
(``has_native_order``), or when the ecosystem's comparer fails on them: ``1.0.1p`` is not
PEP 440, so a PyPI ``1.0.1p`` is compared with ``1.0`` the Nix way (and is above it).

The valid versions of one ecosystem are ordered consistently, except in Conan's own
order, which compares a number with a word as text (``1rc < 2 < 10 < 1rc``), and for odd
strings in Maven's. A list that mixes valid and invalid versions can hold three that are
not ordered transitively, since the two orders disagree (for PyPI, ``1.0rc1 < 1.0`` while
Nix has ``1.0 < 1.0rc1``); sorting such a list gives an order, but not a meaningful one.

Ranges
------

A range is a comma-separated list of clauses, each an operator (``>=``, ``>``, ``<=``,
``<``, ``==`` or ``!=``; ``=`` means ``==``, and so does no operator) and a version; a
version is in the range when every clause holds, comparing in the version's ecosystem.
``>=1.0.1,<1.0.2`` holds ``1.0.1``, ``1.0.1p`` and ``1.0.1u`` but not ``1.0.2`` or
``1.0.2d``. Other range syntaxes are refused rather than read as an exact version:
``1.0.1..1.0.2``, ``1.0.1 - 1.0.2``, ``[1.0,2.0)``, ``^1.2``, ``~1.2``, ``~=1.2``, ``~>1.2``,
``1.x``, ``*`` and ``||``; the message gives the clauses to write instead.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, TypeAlias

from ledger.ecosystems import NIX
from ledger.errors import InvalidInput

if TYPE_CHECKING:
    from univers import versions as univers_versions

MAX_VERSION_LENGTH = 200

NIX_INT_MAX = 2**31 - 1
"""The largest number Nix reads as a number in a version (a C++ ``int``)."""

_COMPONENT = re.compile(r"[0-9]+|[^0-9.\-]+")

_ComponentKey: TypeAlias = tuple[int] | tuple[int, int] | tuple[int, str]
NixVersionKey: TypeAlias = tuple[_ComponentKey, ...]

# The four ranks of a component, lowest first; see the module docstring.
_PRE: _ComponentKey = (0,)
_EMPTY: _ComponentKey = (1,)
_WORD = 2
_NUMBER = 3


@functools.cache
def native_versions() -> dict[str, type[univers_versions.Version]]:
    """The ecosystems (purl types) with an order of their own, and univers' class for
    it. (univers is imported on first use: it takes ~45 ms, and Nix needs none of it.)"""
    from univers import versions as univers_versions

    return {
        "alpm": univers_versions.ArchLinuxVersion,
        "apk": univers_versions.AlpineLinuxVersion,
        "cargo": univers_versions.SemverVersion,
        "composer": univers_versions.ComposerVersion,
        "conan": univers_versions.ConanVersion,
        "deb": univers_versions.DebianVersion,
        "gem": univers_versions.RubygemsVersion,
        "golang": univers_versions.GolangVersion,
        "hex": univers_versions.SemverVersion,
        "maven": univers_versions.MavenVersion,
        "npm": univers_versions.SemverVersion,
        "nuget": univers_versions.NugetVersion,
        "pypi": univers_versions.PypiVersion,
        "rpm": univers_versions.RpmVersion,
    }


NATIVE_ORDER_ECOSYSTEMS = frozenset(
    {"alpm", "apk", "cargo", "composer", "conan", "deb", "gem", "golang", "hex", "maven",
     "npm", "nuget", "pypi", "rpm"}
)  # fmt: skip
"""The keys of ``native_versions()``, known without importing univers (a test checks)."""

_SEMVER_ECOSYSTEMS = frozenset({"cargo", "composer", "golang", "hex", "npm"})

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

_FOREIGN_CHARS = frozenset("[]()|*^")
"""Characters of other range syntaxes, never part of a version the ledger compares."""

_WILDCARD_COMPONENT = re.compile(r"(?:^|[.\-])[xX*](?:[.\-]|$)")

_RANGE_EXAMPLE = ">=1.0.1,<=1.0.2"


def _component_key(component: str) -> _ComponentKey:
    """pre < the empty component < words and overlong numbers (as text) < numbers."""
    if component == "pre":
        return _PRE
    if "0" <= component[0] <= "9":
        # A run of ASCII digits (str.isdigit would take "²" too). Nix reads it with
        # string2Int<int>: a run that overflows an int is not a number. Leading zeros do
        # not count (0002147483647 is still a number).
        significant = component.lstrip("0")
        if len(significant) <= len(str(NIX_INT_MAX)) and int(component) <= NIX_INT_MAX:
            return (_NUMBER, int(component))
    return (_WORD, component)


def _nix_key(version: str) -> NixVersionKey:
    # The trailing empty component stands for every missing one: components are never
    # empty, so a version that stops early is decided by its "nothing" against the
    # other's next component, as in Nix.
    return (*(_component_key(c) for c in _COMPONENT.findall(version)), _EMPTY)


def _nix_compare(a: str, b: str) -> int:
    key_a, key_b = _nix_key(a), _nix_key(b)
    return (key_a > key_b) - (key_a < key_b)


@functools.lru_cache(maxsize=65536)
def _native_version(ecosystem: str, version: str) -> univers_versions.Version | None:
    """``version`` read by ``ecosystem``'s own rules, or None when they do not apply."""
    version_class = native_versions().get(ecosystem)
    if version_class is None:
        return None
    if ecosystem in _SEMVER_ECOSYSTEMS:
        version = version.partition("+")[0]
    from univers.nuget import InvalidNuGetVersion

    try:
        native = version_class(version)
    except (ValueError, TypeError, InvalidNuGetVersion):
        # univers' parsers say "not a version of this ecosystem" with these.
        return None
    # NuGet's parser returns no value for some strings instead of refusing them.
    return native if native.value is not None else None


def _native_compare(a: univers_versions.Version, b: univers_versions.Version) -> int | None:
    """The ecosystem's order of two versions it read, or None when it cannot tell."""
    try:
        # Only `<`: univers' `==` compares the parsed parts, not the order (Debian 01, 1).
        return (b < a) - (a < b)
    except (ValueError, TypeError):
        # Some comparers trip over what their parser let through (Arch's on "²").
        return None


def has_native_order(version: str, ecosystem: str) -> bool:
    """Whether ``version`` is valid in ``ecosystem``'s own order (see the module docstring).

    When either version of a pair is not, the pair compares in the Nix order.
    """
    return _native_version(ecosystem, version) is not None


def compare_versions(a: str, b: str, ecosystem: str = NIX) -> int:
    """-1, 0 or 1 as ``a`` is older than, the same as, or newer than ``b`` in ``ecosystem``.

    The Nix order unless ``ecosystem`` has an order of its own and both versions are
    valid in it (see the module docstring).
    """
    if ecosystem != NIX:
        native_a = _native_version(ecosystem, a)
        native_b = _native_version(ecosystem, b) if native_a is not None else None
        if native_a is not None and native_b is not None:
            order = _native_compare(native_a, native_b)
            if order is not None:
                return order
    return _nix_compare(a, b)


class EcosystemVersionKey:
    """The sort key of a version outside Nix: orders as compare_versions in its ecosystem.

    Keys of different ecosystems (a Nix key is a tuple) order by the ecosystem's name, so a
    mixed list sorts into one run per ecosystem instead of failing.
    """

    __slots__ = ("ecosystem", "version")

    # Unhashable: versions that differ as text can be equal (PEP 440's 1.0 and 1.0.0).
    __hash__: ClassVar[None] = None  # type: ignore[assignment]

    def __init__(self, ecosystem: str, version: str) -> None:
        self.ecosystem = ecosystem
        self.version = version

    def _order(self, other: object) -> int | None:
        if isinstance(other, EcosystemVersionKey):
            if other.ecosystem == self.ecosystem:
                return compare_versions(self.version, other.version, self.ecosystem)
            return (self.ecosystem > other.ecosystem) - (self.ecosystem < other.ecosystem)
        if isinstance(other, tuple):
            if self.ecosystem == NIX:
                own = _nix_key(self.version)
                return (own > other) - (own < other)
            return (self.ecosystem > NIX) - (self.ecosystem < NIX)
        return None

    def __eq__(self, other: object) -> bool:
        order = self._order(other)
        return NotImplemented if order is None else order == 0

    def __lt__(self, other: object) -> bool:
        order = self._order(other)
        return NotImplemented if order is None else order < 0

    def __le__(self, other: object) -> bool:
        order = self._order(other)
        return NotImplemented if order is None else order <= 0

    def __gt__(self, other: object) -> bool:
        order = self._order(other)
        return NotImplemented if order is None else order > 0

    def __ge__(self, other: object) -> bool:
        order = self._order(other)
        return NotImplemented if order is None else order >= 0

    def __repr__(self) -> str:
        return f"EcosystemVersionKey({self.ecosystem!r}, {self.version!r})"


def version_key(version: str, ecosystem: str = NIX) -> NixVersionKey | EcosystemVersionKey:
    """A sort key: ``sorted(vs, key=version_key)`` orders as compare_versions.

    A tuple (hashable, cheap) for Nix; an EcosystemVersionKey for other ecosystems.
    """
    if ecosystem == NIX:
        return _nix_key(version)
    return EcosystemVersionKey(ecosystem, version)


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
    foreign = sorted(_FOREIGN_CHARS.intersection(version))
    if foreign:
        return (
            f"has {foreign[0]!r} inside its version {version!r}, which belongs to another "
            f"range syntax: write clauses such as {_RANGE_EXAMPLE!r}"
        )
    if ".." in version:
        return (
            f"has '..' inside its version {version!r}: write a span as two clauses, "
            f"such as {_RANGE_EXAMPLE!r}"
        )
    if _WILDCARD_COMPONENT.search(version):
        return (
            f"has a wildcard in its version {version!r}: write the bounds instead, "
            "such as '>=1.2,<1.3' for 1.2.x"
        )
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

    def contains(self, version: str, ecosystem: str = NIX) -> bool:
        """Whether ``version`` satisfies every clause, compared in ``ecosystem``."""
        return all(
            _HOLDS[op](compare_versions(version, bound, ecosystem)) for op, bound in self.clauses
        )

    def __str__(self) -> str:
        return ",".join(op + version for op, version in self.clauses)


def _split_clause(clause: str) -> tuple[str, str]:
    """The operator (everything before the first letter or digit) and the version."""
    start = next((i for i, c in enumerate(clause) if c.isalnum()), len(clause))
    return clause[:start].strip(), clause[start:].strip()


_FOREIGN_OPERATORS = {
    "^": "a caret range (npm, Cargo, Composer)",
    "~": "a tilde range (npm, Composer)",
    "~>": "a pessimistic constraint (RubyGems)",
    "~=": "a compatible-release clause (PEP 440)",
}

_SPAN = re.compile(r"(?P<low>[^.\s][^\s]*?)?\s*(?P<dots>\.\.\.?)\s*(?P<high>[^.\s]\S*)?")
_HYPHEN_SPAN = re.compile(r"(?P<low>\S+)\s+-\s+(?P<high>\S+)")
_INTERVAL = re.compile(r"(?P<open>[\[(])(?P<low>[^,\[\]()]*),(?P<high>[^,\[\]()]*)(?P<close>[\])])")
_EXACT_INTERVAL = re.compile(r"\[(?P<version>[^,\[\]()]+)\]")


def _plain(version: str | None) -> bool:
    """Whether ``version`` (a bound lifted from another syntax) can go in a clause as is."""
    return version is not None and _version_problem(version.strip()) is None


def _other_syntax(text: str) -> tuple[str, str] | None:
    """What other range syntax ``text`` is written in, and the clauses to write instead."""
    if "|" in text:
        return "alternatives joined with '||' (npm)", _RANGE_EXAMPLE
    interval = _INTERVAL.fullmatch(text)
    if interval:
        low, high = interval["low"].strip(), interval["high"].strip()
        clauses = []
        if low:
            clauses.append((">=" if interval["open"] == "[" else ">") + low)
        if high:
            clauses.append(("<=" if interval["close"] == "]" else "<") + high)
        usable = clauses and all(_plain(c.lstrip("<>=")) for c in clauses)
        return "an interval (Maven, NuGet)", ",".join(clauses) if usable else _RANGE_EXAMPLE
    exact = _EXACT_INTERVAL.fullmatch(text)
    if exact:
        version = exact["version"].strip()
        return "an interval (Maven, NuGet)", "==" + version if _plain(version) else _RANGE_EXAMPLE
    if any(c in text for c in "[]()"):
        return "intervals (Maven, NuGet)", _RANGE_EXAMPLE
    span = _SPAN.fullmatch(text)
    if span:
        low, high = span["low"], span["high"]
        clauses = []
        if low:
            clauses.append(">=" + low)
        if high:
            clauses.append(("<" if span["dots"] == "..." else "<=") + high)
        usable = clauses and all(_plain(c.lstrip("<>=")) for c in clauses)
        return f"a {span['dots']!r} span", ",".join(clauses) if usable else _RANGE_EXAMPLE
    hyphen = _HYPHEN_SPAN.fullmatch(text)
    if hyphen:
        low, high = hyphen["low"], hyphen["high"]
        usable = _plain(low) and _plain(high)
        return "a hyphen range (npm)", f">={low},<={high}" if usable else _RANGE_EXAMPLE
    if re.search(r"\s-|-\s", text):
        return "a hyphen range (npm)", _RANGE_EXAMPLE
    for clause in text.split(","):
        written_op, version = _split_clause(clause.strip())
        if written_op in _FOREIGN_OPERATORS:
            return _FOREIGN_OPERATORS[written_op], _RANGE_EXAMPLE
        if "*" in clause or _WILDCARD_COMPONENT.search(version):
            return "a wildcard", ">=1.2,<1.3"
    return None


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
    """Read ``'>=1.0.1,<1.0.2'`` and the like; raise InvalidInput saying what is wrong.

    Text in another range syntax is refused, never taken for an exact version.
    """
    if not text.strip():
        raise InvalidInput(
            f"version range {text!r} is empty: give clauses such as '>=1.0.1,<1.0.2'"
        )
    other = _other_syntax(text.strip())
    if other:
        what, instead = other
        raise InvalidInput(
            f"version range {text!r} looks like {what}, which the ledger does not read: "
            f"write comma-separated clauses with >=, >, <=, <, == or !=, such as {instead!r}"
        )
    clauses = text.split(",")
    return VersionRange(
        tuple(
            _parse_clause(text, number, clause.strip())
            for number, clause in enumerate(clauses, start=1)
        )
    )


def version_matches(
    version: str,
    *,
    exact: str | None,
    range_: VersionRange | None,
    ecosystem: str = NIX,
) -> bool:
    """Whether ``version`` is exactly ``exact`` (as written) and inside ``range_``.

    Either test is skipped when not given; with neither, every version matches. The range
    compares in ``ecosystem``; ``exact`` is the label as written, in every ecosystem.
    """
    if exact is not None and version != exact:
        return False
    return range_ is None or range_.contains(version, ecosystem)
