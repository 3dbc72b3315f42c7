"""Which component versions an advisory's affected package covers (projections.matching).

The OSV cases are the worked examples of the OSV schema (ossf/osv-schema, docs/schema.md,
"Examples", at commit 51b8156), evaluated as its "Evaluation" pseudocode says; the
properties check the module against brute-force transcriptions written here, over
dotted-integer versions compared as integer tuples.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from ledger.events import AffectedPackage
from projections.matching import (
    CpeMap,
    affects,
    fixed_version,
    lookup_keys,
    names_match,
    unmatchable,
)
from projections.versions import compare_versions

Event = tuple[str, str]


def package(**fields: Any) -> dict[str, Any]:
    """An AffectedPackage's JSON form, through the event model: what the lead passes."""
    return AffectedPackage.model_validate_json(json.dumps(fields)).model_dump(mode="json")


def osv(
    *ranges: dict[str, Any], ecosystem: str = "pypi", name: str = "demo", **fields: Any
) -> dict[str, Any]:
    return package(ecosystem=ecosystem, name=name, ranges=list(ranges), **fields)


def span(*events: Event, type_: str = "ECOSYSTEM") -> dict[str, Any]:
    return {"type": type_, "events": [{kind: value} for kind, value in events]}


def nvd(product: str = "openssl", vendor: str = "openssl", **fields: Any) -> dict[str, Any]:
    return package(ecosystem="cpe", name=product, vendor=vendor, **fields)


# --- the OSV schema's worked examples --------------------------------------------------

UNFIXED = osv(span(("introduced", "0"), type_="SEMVER"), ecosystem="npm")
FIXED = osv(span(("introduced", "0"), ("fixed", "1.0.2"), type_="SEMVER"), ecosystem="npm")
MULTIPLE = osv(
    span(
        ("introduced", "1.0.0"),
        ("fixed", "1.0.2"),
        ("introduced", "3.0.0"),
        ("fixed", "3.2.5"),
        type_="SEMVER",
    ),
    ecosystem="npm",
)
# The last_affected example is h2database's: Maven's com.h2database:h2.
LAST_AFFECTED = osv(
    span(("introduced", "0"), ("last_affected", "2.1.214")),
    ecosystem="maven",
    name="com.h2database:h2",
)
FIXED_INSTEAD = osv(
    span(("introduced", "0"), ("fixed", "2.1.214"), type_="SEMVER"),
    ecosystem="maven",
    name="com.h2database:h2",
)


@pytest.mark.parametrize(
    ("example", "version", "affected", "fixed"),
    [
        # "Unfixed vulnerability example": every possible version is affected.
        (UNFIXED, "0.0.0", True, None),
        (UNFIXED, "1.0.0", True, None),
        (UNFIXED, "999.999.999", True, None),
        # "Fixed vulnerability example": everything before 1.0.2.
        (FIXED, "0.0.1", True, "1.0.2"),
        (FIXED, "1.0.1", True, "1.0.2"),
        (FIXED, "1.0.2-rc.1", True, "1.0.2"),  # a SemVer prerelease is below its release
        (FIXED, "1.0.2", False, None),
        (FIXED, "1.0.2+build.5", False, None),  # build metadata does not count
        (FIXED, "1.0.3", False, None),
        # "Multiple range example": [1.0.0, 1.0.2) and [3.0.0, 3.2.5).
        (MULTIPLE, "0.9.9", False, None),
        (MULTIPLE, "1.0.0", True, "1.0.2"),
        (MULTIPLE, "1.0.1", True, "1.0.2"),
        (MULTIPLE, "1.0.2", False, None),
        (MULTIPLE, "2.9.9", False, None),
        (MULTIPLE, "3.0.0", True, "3.2.5"),
        (MULTIPLE, "3.2.4", True, "3.2.5"),
        (MULTIPLE, "3.2.5", False, None),
        (MULTIPLE, "4.0.0", False, None),
        # "last_affected vs fixed example": 2.1.214 is affected, versions above it are
        # taken as not, and no fixed version is known ...
        (LAST_AFFECTED, "2.0.206", True, None),
        (LAST_AFFECTED, "2.1.214", True, None),
        (LAST_AFFECTED, "2.1.220", False, None),
        # ... while with fixed, 2.1.214 is the fix.
        (FIXED_INSTEAD, "2.1.212", True, "2.1.214"),
        (FIXED_INSTEAD, "2.1.214", False, None),
    ],
)
def test_osv_schema_examples(
    example: dict[str, Any], version: str, affected: bool, fixed: str | None
) -> None:
    ecosystem = example["ecosystem"]
    assert affects(example, version, ecosystem) is affected
    assert fixed_version(example, version, ecosystem) == fixed


def test_limit_events_bound_a_range_as_before_limits_says() -> None:
    # BeforeLimits: below any one limit; a limit holding "*" is infinity.
    limited = osv(span(("introduced", "1.0"), ("limit", "2.0")))
    assert affects(limited, "1.9", "pypi")
    assert not affects(limited, "2.0", "pypi")
    assert not affects(limited, "2.1", "pypi")
    # A limit is where the description stops, not a fix.
    assert fixed_version(limited, "1.9", "pypi") is None
    two = osv(span(("introduced", "1.0"), ("limit", "1.5"), ("limit", "3.0")))
    assert affects(two, "2.5", "pypi")
    assert not affects(two, "3.0", "pypi")
    starred = osv(span(("introduced", "1.0"), ("limit", "2.0"), ("limit", "*")))
    assert affects(starred, "9.0", "pypi")
    # A fixed event below the limit still names the fix.
    fixed_first = osv(span(("introduced", "1.0"), ("fixed", "1.5"), ("limit", "2.0")))
    assert fixed_version(fixed_first, "1.2", "pypi") == "1.5"


def test_events_are_sorted_in_the_ecosystem_order_before_the_walk() -> None:
    # Written out of order: sorted, this is [1.0, 1.5) and [2.0, 2.5).
    shuffled = osv(
        span(("fixed", "2.5"), ("introduced", "1.0"), ("fixed", "1.5"), ("introduced", "2.0"))
    )
    assert [affects(shuffled, v, "pypi") for v in ("0.9", "1.2", "1.7", "2.2", "2.6")] == [
        False,
        True,
        False,
        True,
        False,
    ]
    assert fixed_version(shuffled, "2.2", "pypi") == "2.5"
    # PEP 440 sorts 1.0rc1 below 1.0; the Nix order (a generic package) above it.
    pre = osv(span(("introduced", "1.0rc1"), ("fixed", "1.0")))
    assert affects(pre, "1.0rc2", "pypi")
    assert not affects(pre, "1.0.1", "pypi")
    # Sorted in the Nix order: fixed 1.0, then introduced 1.0rc1, open above it.
    assert affects(pre, "1.0.1", "generic")


def test_events_equal_in_the_order_keep_the_record_order() -> None:
    # The schema's sorted() does not say how ties go: the sort is stable.
    closed_then_opened = osv(span(("introduced", "1.0"), ("fixed", "2.0"), ("introduced", "2.0")))
    opened_then_closed = osv(span(("introduced", "1.0"), ("introduced", "2.0"), ("fixed", "2.0")))
    assert affects(closed_then_opened, "2.0", "pypi")
    assert not affects(opened_then_closed, "2.0", "pypi")
    # 2.0.0 is 2.0 in PEP 440: a tie between spellings too.
    assert not affects(osv(span(("introduced", "2.0"), ("fixed", "2.0.0"))), "2.0", "pypi")


# --- CVE-2014-0160 (Heartbleed): NVD bounds, NVD versions and Debian's OSV record ------

HEARTBLEED = nvd(bounds=[{"start": "1.0.1", "end": "1.0.1g"}])


@pytest.mark.parametrize(
    ("version", "affected"),
    [
        ("1.0.0", False),
        ("1.0.0t", False),
        ("1.0.1", True),
        ("1.0.1-dev", True),  # the Nix order: "dev" is a word, between 1.0.1d and 1.0.1e
        ("1.0.1a", True),
        ("1.0.1e", True),
        ("1.0.1f", True),
        ("1.0.1g", False),
        ("1.0.1u", False),
        ("1.0.2", False),
        ("3.0.13", False),
    ],
)
def test_heartbleed_in_the_nix_order(version: str, affected: bool) -> None:
    assert affects(HEARTBLEED, version, "nix") is affected
    assert fixed_version(HEARTBLEED, version, "nix") == ("1.0.1g" if affected else None)


def test_where_the_nix_order_puts_1_0_1_dev() -> None:
    # Only "pre" is below the release in Nix; "dev" is an ordinary word.
    assert compare_versions("1.0.1", "1.0.1-dev") < 0
    assert compare_versions("1.0.1d", "1.0.1-dev") < 0  # "d" is a prefix of "dev"
    assert compare_versions("1.0.1-dev", "1.0.1e") < 0
    assert compare_versions("1.0.1pre1", "1.0.1") < 0
    assert not affects(HEARTBLEED, "1.0.1pre1", "nix")


def test_heartbleed_as_nvd_lists_it_version_by_version() -> None:
    # NVD's record lists cpe:…:openssl:openssl:1.0.1:beta1 and so on; the importer writes
    # VERSION-UPDATE. A listed version has no known fix.
    listed = nvd(versions=["1.0.1", "1.0.1-beta1", "1.0.1a", "1.0.1f"])
    assert affects(listed, "1.0.1-beta1", "nix")
    assert affects(listed, "1.0.1f", "nix")
    assert not affects(listed, "1.0.1b", "nix")  # not listed: nothing says so
    assert fixed_version(listed, "1.0.1f", "nix") is None


def test_debian_record_in_the_debian_order() -> None:
    debian = osv(
        span(("introduced", "0"), ("fixed", "1.0.1e-2+deb7u5")),
        ecosystem="deb",
        name="openssl",
        source_ecosystem="Debian:7",
    )
    assert affects(debian, "1.0.1e-2+deb7u4", "deb")
    assert not affects(debian, "1.0.1e-2+deb7u5", "deb")
    assert not affects(debian, "1.0.1e-2+deb7u10", "deb")
    # "~" sorts below everything in Debian: a backport of u5 comes before u5 (Nix: after).
    assert affects(debian, "1.0.1e-2+deb7u5~bpo1", "deb")
    assert not affects(debian, "1.0.1e-2+deb7u5~bpo1", "generic")
    assert fixed_version(debian, "1.0.1e-2+deb7u4", "deb") == "1.0.1e-2+deb7u5"


@pytest.mark.parametrize(
    ("bound", "version", "affected", "fixed"),
    [
        ({"start": "1.0.1", "start_excluding": True, "end": "1.0.2"}, "1.0.1", False, None),
        ({"start": "1.0.1", "start_excluding": True, "end": "1.0.2"}, "1.0.1a", True, "1.0.2"),
        ({"start": "1.0.1", "end": "1.0.2", "end_including": True}, "1.0.2", True, None),
        ({"start": "1.0.1", "end": "1.0.2", "end_including": True}, "1.0.1f", True, None),
        ({"start": "1.0.1", "end": "1.0.2", "end_including": True}, "1.0.2a", False, None),
        ({"end": "1.0.2"}, "0.9.8", True, "1.0.2"),
        ({"start": "1.0.1"}, "3.0.13", True, None),
        ({}, "0.0.1", True, None),  # a criterion with version * and no bounds
    ],
)
def test_nvd_bound_ends(
    bound: dict[str, Any], version: str, affected: bool, fixed: str | None
) -> None:
    product = nvd(bounds=[bound])
    assert affects(product, version, "nix") is affected
    assert fixed_version(product, version, "nix") == fixed


def test_nvd_bounds_compare_in_the_components_order() -> None:
    # One product, components in two ecosystems: PEP 440 puts 2.0rc1 inside [1.0, 2.0),
    # the Nix order above 2.0.
    product = nvd(product="demo", vendor="demo", bounds=[{"start": "1.0", "end": "2.0"}])
    assert affects(product, "2.0rc1", "pypi")
    assert not affects(product, "2.0rc1", "nix")


def test_the_json_form_with_its_defaults_written_out() -> None:
    # Events stored before the advisory parts left their defaults out carry them.
    written_out = {
        "ecosystem": "cpe",
        "name": "openssl",
        "vendor": "openssl",
        "source_ecosystem": None,
        "purl": None,
        "ranges": [],
        "bounds": [
            {"start": "1.0.1", "start_excluding": False, "end": "1.0.1g", "end_including": False}
        ],
        "versions": [],
    }
    assert affects(written_out, "1.0.1f", "nix")
    assert fixed_version(written_out, "1.0.1f", "nix") == "1.0.1g"
    assert lookup_keys(written_out) == [(None, "openssl")]
    assert unmatchable(written_out) == []
    osv_form = {
        "ecosystem": "pypi",
        "name": "requests",
        "vendor": None,
        "purl": None,
        "ranges": [
            {
                "type": "ECOSYSTEM",
                "events": [
                    {"introduced": "2.3.0", "fixed": None, "last_affected": None, "limit": None},
                    {"introduced": None, "fixed": "2.31.0", "last_affected": None, "limit": None},
                ],
            }
        ],
        "bounds": [],
        "versions": [],
    }
    assert affects(osv_form, "2.30.0", "pypi")
    assert fixed_version(osv_form, "2.30.0", "pypi") == "2.31.0"
    assert lookup_keys(osv_form) == [("pypi", "requests")]


# --- orders ------------------------------------------------------------------------------


def test_listed_versions_are_equal_in_the_components_order() -> None:
    listed = package(ecosystem="pypi", name="demo", versions=["1.0"])
    assert affects(listed, "1.0", "pypi")
    assert affects(listed, "1.0.0", "pypi")  # PEP 440: the same version
    assert not affects(listed, "1.0.0", "generic")  # Nix order: 1.0 < 1.0.0
    assert affects(listed, "1.00", "generic")  # Nix order: 00 is 0
    assert not affects(listed, "1.0.1", "pypi")


def test_listed_versions_a_native_order_cannot_read_compare_the_nix_way() -> None:
    # Neither 1.0.1p nor 1.0.1-p is PEP 440: as a pair they compare in the Nix order,
    # where they are equal; so are 1.0 (PEP 440) and 1.0- (not).
    odd = package(ecosystem="pypi", name="demo", versions=["1.0.1p", "1.0-", "2.0"])
    assert affects(odd, "1.0.1-p", "pypi")
    assert affects(odd, "1.0", "pypi")
    assert affects(odd, "2.0.0", "pypi")
    assert not affects(odd, "1.0.1q", "pypi")


def test_listed_versions_in_an_order_that_is_not_transitive() -> None:
    # Conan compares numbers and words as text: 1rc < 2 < 10 < 1rc. The version is
    # compared with each listed one: a search in the sorted list would miss 010 (10).
    listed = ["9", "3", "1.0rc", "2", "10", "2rc", "1a"]
    conan = package(ecosystem="conan", name="zlib", versions=listed)
    assert compare_versions("010", "10", "conan") == 0
    assert affects(conan, "010", "conan")
    assert not affects(conan, "4", "conan")


def test_semver_ranges_compare_as_semver_whatever_the_ecosystem() -> None:
    semver = span(("introduced", "0"), ("fixed", "1.0.2"), type_="SEMVER")
    ecosystem = span(("introduced", "0"), ("fixed", "1.0.2"))
    # In the Nix order 1.0.2-rc.1 is above 1.0.2 ("rc" is a word); in SemVer below it.
    assert affects(osv(semver, ecosystem="generic"), "1.0.2-rc.1", "generic")
    assert not affects(osv(ecosystem, ecosystem="generic"), "1.0.2-rc.1", "generic")


def test_go_versions_are_compared_without_their_v() -> None:
    # OSV writes Go's SEMVER versions without the "v" Go's module versions carry.
    go = osv(
        span(("introduced", "0"), ("fixed", "1.9.1"), type_="SEMVER"),
        ecosystem="golang",
        name="github.com/gin-gonic/gin",
    )
    assert affects(go, "v1.9.0", "golang")
    assert not affects(go, "v1.9.1", "golang")
    assert fixed_version(go, "v1.9.0", "golang") == "1.9.1"


def test_a_component_without_a_version_is_never_affected() -> None:
    assert not affects(UNFIXED, "", "npm")
    assert not affects(nvd(bounds=[{}]), "", "nix")
    assert fixed_version(UNFIXED, "", "npm") is None


def test_invalid_component_versions_fall_back_to_the_nix_order() -> None:
    # 1.0.1p is not PEP 440: against 1.0.2 it is compared the Nix way, and is below it.
    ranged = osv(span(("introduced", "1.0"), ("fixed", "1.0.2")))
    assert affects(ranged, "1.0.1p", "pypi")
    assert not affects(ranged, "1.0.2p", "pypi")


# --- what cannot be matched --------------------------------------------------------------


def test_a_range_no_event_of_which_its_order_can_read_is_listed_not_guessed() -> None:
    odd = osv(span(("introduced", "abc"), ("fixed", "abf")))
    assert unmatchable(odd) == [
        "pypi package demo: ECOSYSTEM range 1: none of its versions (abc, abf) is a valid "
        "pypi version, so it is not evaluated"
    ]
    # The Nix order would put "abd" inside; the range is not evaluated.
    assert compare_versions("abc", "abd") < 0 < compare_versions("abf", "abd")
    assert not affects(odd, "abd", "pypi")
    # A SEMVER range is read as SemVer.
    semver = osv(span(("introduced", "0"), ("fixed", "next"), type_="SEMVER"), ecosystem="golang")
    assert unmatchable(semver) == [
        "golang package demo: SEMVER range 1: none of its versions (next) is a valid SemVer "
        "version, so it is not evaluated"
    ]
    assert not affects(semver, "v1.0.0", "golang")


def test_a_range_with_one_readable_event_is_evaluated() -> None:
    # 1.0.1p is not PEP 440, 1.0 is: the range is evaluated, 1.0.1p by the Nix order.
    mixed = osv(span(("introduced", "1.0"), ("fixed", "1.0.1p")))
    assert unmatchable(mixed) == []
    assert affects(mixed, "1.0.1", "pypi")
    assert not affects(mixed, "1.0.2", "pypi")


def test_every_string_is_a_nix_version() -> None:
    nix = osv(span(("introduced", "abc"), ("fixed", "abf")), ecosystem="generic")
    assert unmatchable(nix) == []
    assert affects(nix, "abd", "generic")


def test_what_matches_nothing_is_said() -> None:
    assert unmatchable(package(ecosystem="npm", name="left-pad")) == [
        "npm package left-pad names no version, range or bound: it matches no version"
    ]
    assert unmatchable(nvd()) == [
        "CPE product openssl:openssl names no version, range or bound: it matches no version"
    ]
    no_start = osv(span(("fixed", "1.0")), span(("introduced", "0"), ("fixed", "2.0")))
    assert unmatchable(no_start) == [
        "pypi package demo: ECOSYSTEM range 1 has no introduced event: it covers no version"
    ]
    assert not affects(osv(span(("fixed", "1.0"))), "0.5", "pypi")
    assert unmatchable(HEARTBLEED) == []
    assert unmatchable(MULTIPLE) == []


def test_unmatchable_reads_the_ecosystem_from_the_purl() -> None:
    odd = osv(span(("introduced", "abc")), ecosystem="generic", purl="pkg:pypi/demo")
    assert unmatchable(odd) == [
        "pypi package demo: ECOSYSTEM range 1: none of its versions (abc) is a valid pypi "
        "version, so it is not evaluated"
    ]


# --- the fixed version -------------------------------------------------------------------


def test_the_fix_is_followed_through_overlapping_ranges() -> None:
    # 1.5 closes the first range but is inside the second; 3.0 clears both.
    chained = osv(
        span(("introduced", "1.0"), ("fixed", "1.5")),
        span(("introduced", "1.2"), ("fixed", "3.0")),
    )
    assert fixed_version(chained, "1.1", "pypi") == "3.0"
    assert fixed_version(chained, "1.3", "pypi") == "3.0"
    # A fix above a last_affected end clears both; one below it does not.
    above = osv(
        span(("introduced", "1.0"), ("last_affected", "1.5")),
        span(("introduced", "1.0"), ("fixed", "2.0")),
    )
    assert fixed_version(above, "1.2", "pypi") == "2.0"
    below = osv(
        span(("introduced", "1.0"), ("last_affected", "2.5")),
        span(("introduced", "1.0"), ("fixed", "2.0")),
    )
    assert fixed_version(below, "1.2", "pypi") is None
    # An open range anywhere on the way: nothing is known to fix it.
    opened = osv(span(("introduced", "1.0"), ("fixed", "2.0")), span(("introduced", "2.0")))
    assert fixed_version(opened, "1.2", "pypi") is None


def test_a_last_affected_end_another_range_carries_on_from() -> None:
    # [0, 1] and [1, 2): the versions just past 1 are still affected; 2 is the fix.
    carried = osv(
        span(("introduced", "0"), ("last_affected", "1")),
        span(("introduced", "1"), ("fixed", "2")),
        ecosystem="nix",
    )
    assert fixed_version(carried, "0.5", "nix") == "2"
    # [0, 1] and [1.0, 2): 1.0 is above 1 in Nix, so 1a (between them) is clear: unknown.
    gap = osv(
        span(("introduced", "0"), ("last_affected", "1")),
        span(("introduced", "1.0"), ("fixed", "2")),
        ecosystem="nix",
    )
    assert not affects(gap, "1a", "nix")
    assert fixed_version(gap, "0.5", "nix") is None
    assert fixed_version(gap, "1.0", "nix") == "2"


def test_a_fix_inside_an_included_nvd_end_is_no_fix() -> None:
    product = nvd(
        bounds=[
            {"start": "1.0", "end": "2.0"},
            {"start": "1.5", "end": "3.0", "end_including": True},
        ]
    )
    assert fixed_version(product, "1.2", "nix") is None
    assert affects(product, "2.0", "nix")


def test_a_listed_version_inside_a_fixed_range_has_the_ranges_fix() -> None:
    both = osv(span(("introduced", "1.0"), ("fixed", "1.1")), versions=["1.0", "1.2"])
    assert fixed_version(both, "1.0", "pypi") == "1.1"
    assert fixed_version(both, "1.2", "pypi") is None  # listed only
    assert fixed_version(both, "0.9", "pypi") is None  # not affected


# --- identity ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "keys"),
    [
        ({"ecosystem": "pypi", "name": "Foo_Bar"}, [("pypi", "foo-bar")]),
        (
            {"ecosystem": "pypi", "name": "ignored", "purl": "pkg:pypi/Foo.Bar"},
            [("pypi", "foo-bar")],
        ),
        (
            {"ecosystem": "deb", "name": "openssl", "purl": "pkg:deb/debian/openssl?arch=source"},
            [("deb", "openssl")],
        ),
        (
            {"ecosystem": "maven", "name": "org.apache.logging.log4j:log4j-core"},
            [("maven", "org.apache.logging.log4j:log4j-core")],
        ),
        ({"ecosystem": "npm", "name": "@babel/core"}, [("npm", "@babel/core")]),
        (
            {"ecosystem": "golang", "name": "github.com/gin-gonic/gin"},
            [("golang", "github.com/gin-gonic/gin")],
        ),
        ({"ecosystem": "cpe", "vendor": "openssl", "name": "openssl"}, [(None, "openssl")]),
        ({"ecosystem": "cpe", "vendor": "OpenSSL", "name": "OpenSSL"}, [(None, "openssl")]),
        ({"ecosystem": "cpe", "vendor": "haxx", "name": "libcurl"}, [(None, "curl")]),
        ({"ecosystem": "cpe", "vendor": "other", "name": "libcurl"}, [(None, "libcurl")]),
        ({"ecosystem": "cpe", "vendor": "nodejs", "name": "node.js"}, [(None, "nodejs")]),
        ({"ecosystem": "cpe", "name": "Éclair"}, [(None, "Éclair")]),  # ASCII only
    ],
)
def test_lookup_keys(fields: dict[str, Any], keys: list[tuple[str | None, str]]) -> None:
    cpe_map = CpeMap({("haxx", "libcurl"): "curl", ("nodejs", "node.js"): "NodeJS"})
    assert lookup_keys(package(**fields), cpe_map) == keys


def test_an_unreadable_purl_leaves_the_ecosystem_and_name() -> None:
    broken = package(ecosystem="pypi", name="Foo_Bar", purl="pkg:pypi/%20@1")
    assert lookup_keys(broken) == [("pypi", "foo-bar")]


def test_osv_names_match_their_ecosystem_only() -> None:
    pygments = package(ecosystem="pypi", name="Pygments")
    assert names_match(pygments, "pypi", "pygments", "Pygments")
    assert not names_match(pygments, "nix", "pygments", "pygments")
    assert not names_match(pygments, "pypi", "pygments2", "pygments2")


def test_nvd_products_match_names_in_every_ecosystem_folding_ascii_only() -> None:
    openssl = nvd()
    assert names_match(openssl, "nix", "openssl", "openssl")
    assert names_match(openssl, "deb", "openssl", "OpenSSL")
    assert names_match(openssl, "generic", "OPENSSL", "OPENSSL")
    assert not names_match(openssl, "nix", "openssl-dev", "openssl-dev")
    # PostgreSQL's lower() would fold É: a candidate it brings is refused here.
    eclair = nvd(product="éclair", vendor="demo")
    assert names_match(eclair, "nix", "éclair", "éclair")
    assert not names_match(eclair, "nix", "Éclair", "Éclair")
    assert names_match(nvd(product="Éclair", vendor="demo"), "nix", "ÉCLAIR", "ÉCLAIR")


def test_a_mapped_product_matches_the_mapped_name_only() -> None:
    cpe_map = CpeMap({("haxx", "libcurl"): "curl"})
    libcurl = nvd(product="libcurl", vendor="haxx")
    assert names_match(libcurl, "nix", "curl", "curl", cpe_map)
    assert names_match(libcurl, "deb", "curl", "Curl", cpe_map)
    assert not names_match(libcurl, "nix", "libcurl", "libcurl", cpe_map)
    assert names_match(libcurl, "nix", "libcurl", "libcurl")  # without the map


# --- the CPE map file --------------------------------------------------------------------


def test_cpe_map_load(tmp_path: Path) -> None:
    path = tmp_path / "cpe-map"
    path.write_text(
        "# NVD products named differently from their Nix packages\n"
        "\n"
        "haxx:libcurl curl\n"
        "  nodejs:node.js   nodejs   # trailing comment\n"
        "Python:Python python3\n"
        "haxx:libcurl curl\n"  # the same mapping again changes nothing
        "acme:a\\:b acme-ab\n",  # an escaped colon, as CPE 2.3 writes one
        encoding="utf-8",
    )
    loaded = CpeMap.load(path)
    assert dict(loaded.names) == {
        ("haxx", "libcurl"): "curl",
        ("nodejs", "node.js"): "nodejs",
        ("python", "python"): "python3",
        ("acme", "a:b"): "acme-ab",
    }
    assert lookup_keys(nvd(product="python", vendor="python"), loaded) == [(None, "python3")]
    assert CpeMap.EMPTY.names == {}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("haxx:libcurl", "'haxx:libcurl' has no component name after it"),
        ("haxx:libcurl curl extra", "expected two fields, found 3"),
        ("libcurl curl", "'libcurl' is not vendor:product (one unescaped ':')"),
        ("cpe:2.3:a:haxx:libcurl curl", "is not vendor:product"),
        (":libcurl curl", "':libcurl' has an empty vendor or product"),
        ("haxx: curl", "'haxx:' has an empty vendor or product"),
        ("haxx:libcurl cu\x07rl", "is not a component name"),
    ],
)
def test_cpe_map_refuses_a_bad_line(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "cpe-map"
    path.write_text(f"# first\nhaxx:curl curl\n{line}\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as caught:
        CpeMap.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}, line 3: ")
    assert reason in message
    assert "'vendor:product name'" in message


def test_cpe_map_refuses_two_names_for_one_product(tmp_path: Path) -> None:
    path = tmp_path / "cpe-map"
    path.write_text("haxx:libcurl curl\n\nHAXX:libcurl libcurl\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"line 3: haxx:libcurl is mapped to 'curl' on line 1"):
        CpeMap.load(path)


def test_cpe_map_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"cannot read CPE map .*missing"):
        CpeMap.load(tmp_path / "missing")
    binary = tmp_path / "binary"
    binary.write_bytes(b"haxx:libcurl \xff\n")
    with pytest.raises(InvalidInput, match="is not UTF-8 text"):
        CpeMap.load(binary)


# --- properties against brute force ------------------------------------------------------
#
# Dotted-integer versions ("1.10.2") are ordered by Nix as integer tuples, so the OSV
# pseudocode transcribed over tuples is an independent oracle for the Nix order.

NUMBERS = st.lists(st.integers(0, 12), min_size=1, max_size=4)
DOTTED = NUMBERS.map(lambda parts: ".".join(map(str, parts)))
KINDS = st.sampled_from(["introduced", "fixed", "last_affected", "limit"])
EVENTS = st.lists(
    st.one_of(
        st.tuples(KINDS, DOTTED),
        st.just(("introduced", "0")),
        st.just(("limit", "*")),
    ),
    min_size=1,
    max_size=7,
)


def ints(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def pep440(version: str) -> tuple[int, ...]:
    """PEP 440 release segments compare padded with zeros: drop trailing zeros."""
    parts = list(ints(version))
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def pseudocode(version: str, events: list[Event], order: Any = ints) -> bool:
    """IncludedInRanges for one range, line by line from the OSV schema."""
    v = order(version)
    limits = [value for kind, value in events if kind == "limit"]
    if limits and not any("*" in value or v < order(value) for value in limits):
        return False
    vulnerable = False

    def sort_key(event: Event) -> tuple[Any, ...]:
        return (0,) if event == ("introduced", "0") else (1, order(event[1]))

    for kind, value in sorted((e for e in events if e[0] != "limit"), key=sort_key):
        if kind == "introduced" and (value == "0" or v >= order(value)):
            vulnerable = True
        elif kind == "fixed" and v >= order(value):  # noqa: SIM114 (as the schema writes it)
            vulnerable = False
        elif kind == "last_affected" and v > order(value):
            vulnerable = False
    return vulnerable


@given(EVENTS, DOTTED)
def test_ranges_evaluate_as_the_osv_pseudocode(events: list[Event], version: str) -> None:
    assert affects(osv(span(*events), ecosystem="nix"), version, "nix") is pseudocode(
        version, events
    )


@given(EVENTS, st.lists(DOTTED, max_size=40), DOTTED)
def test_pypi_ranges_evaluate_in_the_pep440_order(
    events: list[Event], listed: list[str], version: str
) -> None:
    expected = pseudocode(version, events, pep440) or any(
        pep440(version) == pep440(other) for other in listed
    )
    assert affects(osv(span(*events), versions=listed), version, "pypi") is expected


@st.composite
def well_formed(draw: st.DrawFn) -> list[tuple[tuple[int, ...], str, str]]:
    """One range as intervals: (start, end kind, end) with strictly increasing points;
    the last may be open (end kind "")."""
    points = sorted(set(draw(st.lists(NUMBERS.map(tuple), min_size=1, max_size=8))))
    spans = []
    for index in range(0, len(points), 2):
        start = points[index]
        if index + 1 < len(points):
            kind = draw(st.sampled_from(["fixed", "last_affected"]))
            spans.append((start, kind, ".".join(map(str, points[index + 1]))))
        else:
            spans.append((start, "", ""))
    return spans


def range_of(spans: list[tuple[tuple[int, ...], str, str]], order: list[int]) -> dict[str, Any]:
    """The range of these intervals, its events written in the record in ``order`` (a
    permutation of indexes, those past the last event skipped)."""
    events: list[Event] = []
    for start, kind, end in spans:
        events.append(("introduced", ".".join(map(str, start))))
        if kind:
            events.append((kind, end))
    return span(*(events[i] for i in order if i < len(events)))


def holds(start: tuple[int, ...], kind: str, end: str, v: tuple[int, ...]) -> bool:
    """Whether the interval [start, end) (fixed), [start, end] (last_affected) or
    [start, ∞) (open) holds v."""
    if v < start:
        return False
    return not kind or (v < ints(end) if kind == "fixed" else v <= ints(end))


@given(well_formed(), st.permutations(range(16)), DOTTED)
def test_well_formed_ranges_are_their_intervals(
    spans: list[tuple[tuple[int, ...], str, str]], order: list[int], version: str
) -> None:
    # Written in any order in the record: sorting restores the intervals.
    record = osv(range_of(spans, order), ecosystem="nix")
    v = ints(version)
    inside = [(kind, end) for start, kind, end in spans if holds(start, kind, end, v)]
    assert affects(record, version, "nix") is bool(inside)
    expected = inside[0][1] if inside and inside[0][0] == "fixed" else None
    assert fixed_version(record, version, "nix") == expected


@given(st.lists(well_formed(), min_size=1, max_size=3), DOTTED)
def test_the_fixed_version_is_the_lowest_known_clear_version(
    ranges: list[list[tuple[tuple[int, ...], str, str]]], version: str
) -> None:
    """Across overlapping ranges, over a continuous order (Nix has versions between any
    two: 1.2 < 1.2a < 1.2.0): the lowest point above the version that no interval holds is
    either a fixed end (the answer) or just past a last_affected end (unknown)."""
    record = osv(*(range_of(spans, list(range(16))) for spans in ranges), ecosystem="nix")
    intervals = [interval for spans in ranges for interval in spans]
    v = ints(version)

    def affected(point: tuple[int, ...]) -> bool:
        return any(holds(start, kind, end, point) for start, kind, end in intervals)

    def clear_just_past(point: tuple[int, ...]) -> bool:
        # Nothing holds the versions immediately above point (the interval's start is a
        # point, so one starting above it leaves a gap).
        return not any(
            start <= point and (not kind or ints(end) > point) for start, kind, end in intervals
        )

    candidates = [
        (ints(end), 0, end)
        for _, kind, end in intervals
        if kind == "fixed" and ints(end) > v and not affected(ints(end))
    ] + [
        (ints(end), 1, None)
        for _, kind, end in intervals
        if kind == "last_affected" and ints(end) >= v and clear_just_past(ints(end))
    ]
    expected = min(candidates)[2] if affected(v) and candidates else None
    assert affects(record, version, "nix") is affected(v)
    assert fixed_version(record, version, "nix") == expected
