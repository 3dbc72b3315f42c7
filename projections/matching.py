"""Which component versions an advisory's affected package covers.

An ``advisory_recorded`` event names affected packages (``ledger.events.AffectedPackage``,
here in its JSON form, a dict as stored in the event). This module answers, for one such
package and one component of a closure: is the component that package
(``lookup_keys``, ``names_match``), is its version affected (``affects``), which version
fixes it (``fixed_version``), and what in the package cannot be matched at all
(``unmatchable``). Nothing here touches a database.

Identity
--------

An OSV package is a package URL type and a name: its ``purl`` when it has a readable one,
else its ``ecosystem`` and ``name`` read with ``ledger.ecosystems.lookup_name``; a component
is that package when its ecosystem and match_name are equal to those. An NVD product
(ecosystem ``cpe``) is matched by name in every ecosystem, case-insensitively in ASCII only
(``OpenSSL`` is ``openssl``; ``É`` is not ``é``), as vulnix does; a ``CpeMap`` names the
exceptions (NVD's ``haxx:libcurl`` is ``curl``).

Versions
--------

A version is affected when it is listed in ``versions`` (equal in the component's order,
so PyPI's ``1.0`` is listed ``1.0.0``), or inside any range or bound:

- OSV ranges are evaluated exactly as the OSV schema's "Evaluation" section says
  (``IsVulnerable``/``IncludedInRanges``/``BeforeLimits`` in ossf/osv-schema's
  ``docs/schema.md``): a range holds nothing at or above all of its ``limit`` events (a limit
  containing ``*`` is infinity; no limit means ``*``); otherwise its other events, sorted,
  are walked in order: an ``introduced`` at or below the version makes it vulnerable
  (``introduced: "0"`` sorts before every version and is below each), a ``fixed`` at or
  below it makes it not, a ``last_affected`` below it makes it not. Events are sorted in
  the range's order with a stable sort, so events that order as equal keep the record's
  order. ``ECOSYSTEM`` ranges compare in the component's ecosystem order
  (``projections.versions.compare_versions``); ``SEMVER`` ranges compare as Semantic
  Versioning 2.0 whatever the ecosystem, through univers (the order ``versions.py`` gives
  npm: prerelease below release, build metadata ignored; univers coerces what is not
  strictly SemVer: a leading ``v`` is dropped, so Go's ``v1.2.3`` meets OSV's ``1.2.3``,
  missing numbers are zeros, and a fourth number is build metadata, so ``1.2.3.4`` is
  ``1.2.3``).
- NVD bounds (``CpeBounds``) hold a version between their ends, each included or excluded
  as NVD said, compared in the component's ecosystem order; a bound without an end is
  open on that side.

A component without a version (an unversioned store path) is never affected: there is no
version to evaluate, and ``introduced: "0"`` would otherwise flag every such path.

Versions a native order cannot read
-----------------------------------

An ecosystem with an order of its own (PyPI, Debian, npm, …) compares a pair in the Nix
order when either version is not valid in it, as ``compare_versions`` does. For a range
this means: an invalid component version (PyPI's ``1.0.1p``) is placed against each event
by the Nix order, which agrees with most native orders on plain dotted numbers but not
on suffixes (Nix puts ``1.0rc1`` above ``1.0``, PEP 440 below) nor on trailing zeros
(PEP 440's ``1.0`` is ``1.0.0``, Nix's is below it), so such a version can be missed or
flagged wrongly near a range's ends; an invalid event is compared with every version in
the Nix order. Listed versions are compared the same way, pair by pair. A range in which
no event (beyond ``introduced: "0"`` and ``limit: "*"``) is valid in its order is not
evaluated at all, rather than guessed through the fallback: ``unmatchable`` lists it. The
Nix order reads every string, so in Nix and in ecosystems without an order of their own
(``generic``, ``github``, …) every range is evaluated.

The fixed version
-----------------

For an affected version, ``fixed_version`` is the lowest version known to fix it. Each
range or bound holding the version ends somewhere: at a version that is clear of it (a
``fixed`` event or an excluded NVD end, known fixes; a limit), just past one (a
``last_affected`` event, an included NVD end, a listed version), or nowhere (open).
Every version up to the highest of those ends is affected, so the walk goes there and
asks again, until it reaches a version nothing holds: the answer when a fix put it there.
An open end, a clear version that only a limit names, or a last end after which nothing
holds the versions just above (which are clear, but no record names one) make it None.
Ends are compared with one another in the component's order, a SEMVER range's too.
"""

from __future__ import annotations

import bisect
import functools
import re
import string
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, TypeAlias, cast

from ledger.ecosystems import NIX, lookup_name, parse_purl
from ledger.errors import InvalidInput
from ledger.events import NAME_PATTERN
from projections.versions import (
    NATIVE_ORDER_ECOSYSTEMS,
    NixVersionKey,
    compare_versions,
    has_native_order,
    version_key,
)

Package: TypeAlias = Mapping[str, Any]
"""An ``AffectedPackage`` in its JSON form, as stored in an ``advisory_recorded`` event."""

CPE = "cpe"
"""The ecosystem of an NVD product: matched by name in every ecosystem."""

SEMVER_ORDER = "npm"
"""The ecosystem whose order ``projections.versions`` defines as SemVer 2.0 (univers'
``SemverVersion``): SEMVER ranges compare in it whatever the component's ecosystem."""

_KINDS = ("introduced", "fixed", "last_affected", "limit")
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_NAME = re.compile(NAME_PATTERN)
_UNESCAPED_COLON = re.compile(r"(?<!\\)((?:\\\\)*):")
_ESCAPE = re.compile(r"\\(.)")
_COMMENT = re.compile(r"(?:^|\s)#.*$")
_MAP_LINE_EXAMPLE = "haxx:libcurl curl"
_UNSORTABLE = frozenset({"conan"})
"""Native orders that do not order their own versions consistently (see versions.py):
a listed version is looked for by comparing it with each."""


def _ascii_lower(text: str) -> str:
    """Lower case in ASCII only, as SQLite's lower() folds: NVD matching is exactly this."""
    return text.translate(_ASCII_LOWER)


def _cpe_unescape(text: str) -> str:
    """A CPE 2.3 value with its backslash escapes undone, as the NVD importer stores it."""
    return _ESCAPE.sub(r"\1", text)


# --- identity ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CpeMap:
    """NVD products named differently from the components they are: (vendor, product) →
    component name. Keys are unescaped and in ASCII lower case, as ``load`` makes them."""

    names: Mapping[tuple[str, str], str]

    EMPTY: ClassVar[CpeMap]

    @classmethod
    def load(cls, path: Path) -> CpeMap:
        """Read lines ``vendor:product name`` (``#`` starts a comment; blank lines are
        skipped). Vendor and product are written as in a CPE 2.3 string (``\\:`` for a
        colon inside one); the name cannot hold whitespace. A bad line is refused, naming
        the file, its line number and what is wrong."""
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"CPE map {path} is not UTF-8 text") from None
        except OSError as error:
            raise InvalidInput(f"cannot read CPE map {path}: {error.strerror or error}") from None
        names: dict[tuple[str, str], str] = {}
        defined_at: dict[tuple[str, str], int] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            fields = _COMMENT.sub("", line).split()
            if not fields:
                continue
            key, name = _map_line(fields, f"{path}, line {number}")
            if key in names and names[key] != name:
                raise InvalidInput(
                    f"{path}, line {number}: {key[0]}:{key[1]} is mapped to {names[key]!r} on "
                    f"line {defined_at[key]} already: map a product to one name"
                )
            names[key] = name
            defined_at.setdefault(key, number)
        return cls(MappingProxyType(names))


CpeMap.EMPTY = CpeMap(MappingProxyType({}))


def _map_line(fields: list[str], where: str) -> tuple[tuple[str, str], str]:
    """One ``vendor:product name`` line of a CPE map, split and checked."""

    def refuse(reason: str) -> InvalidInput:
        return InvalidInput(
            f"{where}: {reason}: write 'vendor:product name', such as {_MAP_LINE_EXAMPLE!r}"
        )

    if len(fields) == 1:
        raise refuse(f"{fields[0]!r} has no component name after it")
    if len(fields) > 2:
        raise refuse(f"expected two fields, found {len(fields)} (names hold no whitespace)")
    product_key, name = fields
    parts = _UNESCAPED_COLON.split(product_key)
    # split() keeps the group (the backslashes before the colon): vendor, group, product.
    if len(parts) != 3:
        raise refuse(f"{product_key!r} is not vendor:product (one unescaped ':')")
    vendor, product = parts[0] + parts[1], parts[2]
    if not vendor or not product:
        raise refuse(f"{product_key!r} has an empty vendor or product")
    if len(name) > 253 or not _NAME.fullmatch(name):
        raise refuse(f"{name!r} is not a component name (printable, at most 253 characters)")
    key = (_ascii_lower(_cpe_unescape(vendor)), _ascii_lower(_cpe_unescape(product)))
    return key, name


def _purl_key(package: Package) -> tuple[str, str] | None:
    purl = package.get("purl")
    return _read_purl(purl) if purl else None


@functools.lru_cache(maxsize=4096)
def _read_purl(purl: str) -> tuple[str, str] | None:
    """(type, match_name) of a purl, cached: names_match re-checks every candidate row."""
    try:
        ref = parse_purl(purl)
    except InvalidInput:
        return None  # the ecosystem and name still say which package it is
    return ref.ecosystem, ref.match_name


def lookup_keys(package: Package, cpe_map: CpeMap = CpeMap.EMPTY) -> list[tuple[str | None, str]]:
    """(ecosystem, key) pairs to select candidate components by: (purl type, match_name)
    for OSV packages (the purl wins when given and readable; else the ecosystem, and the
    name through lookup_name); (None, lower-case ASCII name) for NVD products: the mapped
    name if the map has vendor:product, else the product. Select components with
    ``ecosystem = ? AND match_name = ?``, or with the name folded to lower case equal to the
    key in any ecosystem for None, then re-check each with ``names_match``."""
    ecosystem = package["ecosystem"]
    if ecosystem == CPE:
        vendor = _ascii_lower(package.get("vendor") or "")
        product = package["name"]
        mapped = cpe_map.names.get((vendor, _ascii_lower(product)))
        return [(None, _ascii_lower(mapped or product))]
    purl_key = _purl_key(package)
    if purl_key is not None:
        return [purl_key]
    return [(ecosystem, lookup_name(ecosystem, package["name"]))]


def names_match(
    package: Package, ecosystem: str, match_name: str, name: str, cpe_map: CpeMap = CpeMap.EMPTY
) -> bool:
    """Whether a component (its ecosystem, match_name, and name as written) is the package.

    The exact re-check of a candidate the SQL selected: NVD names fold ASCII letters only,
    while PostgreSQL's lower() folds more (``É`` to ``é``), so a selection by lower() may
    bring components that are not the product.
    """
    for key_ecosystem, key in lookup_keys(package, cpe_map):
        if key_ecosystem is None:
            if _ascii_lower(name) == key:
                return True
        elif key_ecosystem == ecosystem and key == match_name:
            return True
    return False


# --- versions ---------------------------------------------------------------------------


class _NativeKey:
    """A version's sort key in a native order: compares as compare_versions, through
    cached answers (a fleet holds a few versions of a package, compared again and again)."""

    __slots__ = ("order", "version")

    # Unhashable: versions that differ as text can be equal (PEP 440's 1.0 and 1.0.0).
    __hash__: ClassVar[None] = None  # type: ignore[assignment]

    def __init__(self, version: str, order: str) -> None:
        self.version = version
        self.order = order

    def _order(self, other: object) -> int:
        if not isinstance(other, _NativeKey) or other.order != self.order:
            raise TypeError(f"cannot compare versions of {self.order} with {other!r}")
        return _native_compare(self.version, other.version, self.order)

    def __eq__(self, other: object) -> bool:
        return self._order(other) == 0

    def __lt__(self, other: object) -> bool:
        return self._order(other) < 0

    def __le__(self, other: object) -> bool:
        return self._order(other) <= 0

    def __gt__(self, other: object) -> bool:
        return self._order(other) > 0

    def __ge__(self, other: object) -> bool:
        return self._order(other) >= 0

    def __repr__(self) -> str:
        return f"_NativeKey({self.version!r}, {self.order!r})"


VersionKey: TypeAlias = NixVersionKey | _NativeKey


@functools.lru_cache(maxsize=65536)
def _native_compare(version: str, other: str, order: str) -> int:
    return compare_versions(version, other, order)


@functools.lru_cache(maxsize=65536)
def _nix_key(version: str) -> NixVersionKey:
    return cast(NixVersionKey, version_key(version, NIX))  # a tuple in the Nix order


def _key(version: str, order: str) -> VersionKey:
    """``version``'s sort key in ``order`` (an ecosystem): ordered as compare_versions
    orders it there, which is the Nix order outside the native ecosystems."""
    if order in NATIVE_ORDER_ECOSYSTEMS:
        return _NativeKey(version, order)
    return _nix_key(version)


def _compare(version: str, other: str, order: str) -> int:
    """compare_versions(version, other, order), from cached keys or answers."""
    if order in NATIVE_ORDER_ECOSYSTEMS:
        return _native_compare(version, other, order)
    a, b = _nix_key(version), _nix_key(other)
    return (a > b) - (a < b)


def _is_zero(kind: str, value: str) -> bool:
    return kind == "introduced" and value == "0"


def _is_infinite(kind: str, value: str) -> bool:
    return kind == "limit" and "*" in value


def _events(range_: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(kind, version) of each event of an OSV range, in the record's order."""
    events = []
    for event in range_.get("events") or ():
        for kind in _KINDS:
            value = event.get(kind)
            if value:  # RangeEvent sets exactly one; the others are absent or None
                events.append((kind, value))
                break
    return events


def _range_order(range_: Mapping[str, Any], ecosystem: str) -> str:
    return SEMVER_ORDER if range_.get("type") == "SEMVER" else ecosystem


def _comparable(events: Sequence[tuple[str, str]], order: str) -> bool:
    """Whether any event of a range can be read in ``order`` (see the module docstring)."""
    if order not in NATIVE_ORDER_ECOSYSTEMS:
        return True  # the Nix order reads every string
    values = [v for k, v in events if not _is_zero(k, v) and not _is_infinite(k, v)]
    return not values or any(has_native_order(value, order) for value in values)


@dataclass(frozen=True)
class _End:
    """Where the affected stretch holding a version ends: it holds the versions below
    ``version``, and ``version`` too when ``inclusive``; ``fix``: ``version`` is a known
    fix (a ``fixed`` event, an excluded NVD end). No version: open, it never ends."""

    version: str | None
    inclusive: bool = False
    fix: bool = False


_OPEN = _End(None)


@dataclass(frozen=True)
class _Range:
    """One OSV range made ready to evaluate in one order: its events other than limits,
    sorted (stably, ``introduced: "0"`` first), and its finite limits."""

    comparable: bool
    timeline: tuple[tuple[str, str], ...]
    limits: tuple[str, ...]
    """Empty when the range has no limit or a ``*`` one: no version is past them."""


@functools.lru_cache(maxsize=4096)
def _prepared(events: tuple[tuple[str, str], ...], order: str) -> _Range:
    """The same few ranges are evaluated for every candidate component: sorted once."""
    timeline = sorted(
        (event for event in events if event[0] != "limit"),
        key=lambda event: (0,) if _is_zero(*event) else (1, _key(event[1], order)),
    )
    limits = tuple(value for kind, value in events if kind == "limit")
    if any("*" in value for value in limits):
        limits = ()
    return _Range(_comparable(events, order), tuple(timeline), limits)


def _range_end(range_: Mapping[str, Any], version: str, ecosystem: str) -> _End | None:
    """None when ``version`` is outside the range, else the end of the stretch holding it:
    OSV's IncludedInRanges for one range, keeping the event that ends the stretch."""
    order = _range_order(range_, ecosystem)
    prepared = _prepared(tuple(_events(range_)), order)
    if not prepared.comparable:
        return None
    limits = prepared.limits
    if limits and not any(_compare(version, limit, order) < 0 for limit in limits):
        return None  # BeforeLimits
    affected_at: int | None = None
    for index, (kind, value) in enumerate(prepared.timeline):
        if kind == "introduced":
            if value == "0" or _compare(version, value, order) >= 0:
                affected_at = index
        elif kind == "fixed":
            if _compare(version, value, order) >= 0:
                affected_at = None
        elif _compare(version, value, order) > 0:  # last_affected
            affected_at = None
    if affected_at is None:
        return None
    # The stretch lasts until the first event after the introduction that fires above the
    # version: a fixed one at its version, a last_affected one just past it.
    closing = [
        (_key(value, order), kind == "last_affected", value)
        for kind, value in prepared.timeline[affected_at + 1 :]
        if kind != "introduced"
    ]
    end = _OPEN
    if closing:
        _, inclusive, value = min(closing, key=lambda c: (c[0], c[1]))
        end = _End(value, inclusive, fix=not inclusive)
    if limits:
        # A limit ends the range too; a limit is where the description stops, not a fix.
        top = max(limits, key=lambda value: _key(value, order))
        if end.version is None or (_key(top, order), False) < (
            _key(end.version, order),
            end.inclusive,
        ):
            end = _End(top)
    return end


def _bound_end(bound: Mapping[str, Any], version: str, ecosystem: str) -> _End | None:
    """None when ``version`` is outside an NVD bound, else the bound's upper end."""
    start, end = bound.get("start"), bound.get("end")
    # An empty bound is no bound: NVD never writes one, and "" would order below nearly all.
    if start:
        order = _compare(version, start, ecosystem)
        if order < 0 or (order == 0 and bound.get("start_excluding")):
            return None
    if not end:
        return _OPEN
    order = _compare(version, end, ecosystem)
    including = bool(bound.get("end_including"))
    if order > 0 or (order == 0 and not including):
        return None
    return _End(end, inclusive=including, fix=not including)


@dataclass(frozen=True)
class _Listed:
    """A package's ``versions``, indexed to ask "is this version listed" in one order
    without comparing it with each: records list hundreds (osv.dev enumerates them)."""

    exact: frozenset[str]
    nix: frozenset[NixVersionKey]
    """Every listed version's Nix key (the whole order, outside native ecosystems)."""
    nix_of_unreadable: frozenset[NixVersionKey]
    """The Nix keys of the listed versions a native order cannot read."""
    native: tuple[VersionKey, ...]
    """The listed versions a native order reads, sorted in it."""


@functools.lru_cache(maxsize=64)
def _listed_index(listed: tuple[str, ...], ecosystem: str) -> _Listed:
    native = ecosystem in NATIVE_ORDER_ECOSYSTEMS
    readable = [v for v in listed if native and has_native_order(v, ecosystem)]
    unreadable = set(listed).difference(readable)
    return _Listed(
        exact=frozenset(listed),
        nix=frozenset(_nix_key(v) for v in listed),
        nix_of_unreadable=frozenset(_nix_key(v) for v in unreadable),
        native=tuple(sorted(_key(v, ecosystem) for v in readable)),
    )


def _listed(package: Package, version: str, ecosystem: str) -> bool:
    """Whether ``version`` is listed, equal in ``ecosystem``'s order to a listed one: a
    pair compares in the Nix order when the native order cannot read either (as
    ``compare_versions`` does), so those are looked up by their Nix keys."""
    listed = package.get("versions")
    if not listed:
        return False
    index = _listed_index(tuple(listed), ecosystem)
    if version in index.exact:
        return True
    if ecosystem not in NATIVE_ORDER_ECOSYSTEMS or not has_native_order(version, ecosystem):
        return _nix_key(version) in index.nix
    if _nix_key(version) in index.nix_of_unreadable:
        return True
    key = _key(version, ecosystem)
    if ecosystem in _UNSORTABLE:
        return any(key == other for other in index.native)
    at = bisect.bisect_left(index.native, key)
    return at < len(index.native) and index.native[at] == key


def _ends(package: Package, version: str, ecosystem: str) -> Iterator[_End]:
    """The end of every stretch of the package holding ``version``: none when unaffected."""
    if not version:
        return
    if _listed(package, version, ecosystem):
        yield _End(version, inclusive=True)
    for range_ in package.get("ranges") or ():
        end = _range_end(range_, version, ecosystem)
        if end is not None:
            yield end
    for bound in package.get("bounds") or ():
        end = _bound_end(bound, version, ecosystem)
        if end is not None:
            yield end


def affects(package: Package, version: str, ecosystem: str) -> bool:
    """Whether ``version`` of a component of ``ecosystem`` is affected: listed in
    ``versions`` (equal in that ecosystem's order), or inside any OSV range or NVD bound
    (see the module docstring). An empty version is never affected."""
    return next(_ends(package, version, ecosystem), None) is not None


def fixed_version(package: Package, version: str, ecosystem: str) -> str | None:
    """For an affected ``version``, the lowest version known to fix it: the ``fixed``
    event closing its range (OSV) or an excluded end (NVD ``versionEndExcluding``),
    followed through overlapping ranges; None when it is not affected or the fix is
    unknown (a last_affected event, an included end, a limit, an open range, a version
    only listed)."""
    current, clear_is_fix, seen = version, False, set()
    while current not in seen:  # each step moves up; seen guards odd mixed orders
        seen.add(current)
        ends = list(_ends(package, current, ecosystem))
        if not ends:
            return current if clear_is_fix else None
        versions = [end.version for end in ends if end.version is not None]
        if len(versions) < len(ends):
            return None  # an open stretch: no version above is known to be clear of it
        # Every version from here up to the highest end is affected; past it, maybe not.
        positions = [
            (_key(value, ecosystem), end.inclusive)
            for end, value in zip(ends, versions, strict=True)
        ]
        top = max(positions)
        if top == (_key(current, ecosystem), True):
            return None  # nothing holds the versions just above this one: which is unknown
        at_top = [
            (end, value)
            for end, value, at in zip(ends, versions, positions, strict=True)
            if at == top
        ]
        fixes = [value for end, value in at_top if end.fix]
        clear_is_fix = bool(fixes)
        current = fixes[0] if fixes else at_top[0][1]
    return None


def unmatchable(package: Package) -> list[str]:
    """What in the package matches no version, said plainly, for ``advisories show``: a
    package naming no version at all, a range without an ``introduced`` event, a range
    none of whose versions its order can read (not evaluated: see the module docstring)."""
    ecosystem = package["ecosystem"]
    if ecosystem == CPE:
        what = f"CPE product {package.get('vendor') or '*'}:{package['name']}"
    else:
        purl_key = _purl_key(package)
        ecosystem = purl_key[0] if purl_key else ecosystem
        what = f"{ecosystem} package {package['name']}"
    ranges = package.get("ranges") or ()
    if not (ranges or package.get("bounds") or package.get("versions")):
        return [f"{what} names no version, range or bound: it matches no version"]
    problems = []
    for number, range_ in enumerate(ranges, start=1):
        events = _events(range_)
        order = _range_order(range_, ecosystem)
        kind = range_.get("type", "ECOSYSTEM")
        if not any(k == "introduced" for k, _ in events):
            problems.append(
                f"{what}: {kind} range {number} has no introduced event: it covers no version"
            )
        elif ecosystem != CPE and not _comparable(events, order):
            versions = ", ".join(sorted({v for _, v in events if v != "0" and "*" not in v}))
            reading = "SemVer" if order == SEMVER_ORDER and kind == "SEMVER" else order
            problems.append(
                f"{what}: {kind} range {number}: none of its versions ({versions}) is a valid "
                f"{reading} version, so it is not evaluated"
            )
    return problems
