"""Version ordering (Nix's compareVersions plus pre-release words) and version ranges."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from projections.versions import (
    PRE_RELEASE_WORDS,
    VersionRange,
    compare_versions,
    parse_range,
    version_key,
    version_matches,
)

# (older, newer): compare_versions(older, newer) must be -1.
ORDERED_PAIRS = [
    # Nix's documented examples of builtins.compareVersions.
    ("1.0", "2.3"),
    ("2.1", "2.3"),
    ("2.3", "2.5"),
    ("2.3", "3.1"),
    ("2.3", "2.3.1"),
    ("2.3a", "2.3.1"),
    ("2.3pre1", "2.3"),
    ("2.3pre3", "2.3pre12"),
    ("2.3a", "2.3c"),
    ("2.3pre1", "2.3c"),
    ("2.3pre1", "2.3q"),
    # OpenSSL-style letters and multi-digit components.
    ("1.0.9", "1.0.10"),
    ("1.0.1", "1.0.1p"),
    ("1.0.1p", "1.0.1u"),
    ("1.0.1p", "1.0.2"),
    ("1.0.2", "1.0.2d"),
    ("3.0.9", "3.0.13"),
    ("", "0"),
    ("", "a"),
    # Pre-release words sort below everything, even the missing component.
    ("1.0.0-rc1", "1.0.0"),
    ("1.0.0-alpha", "1.0.0-beta"),
    ("1.0.0-beta", "1.0.0-rc1"),
    ("1.0.0-dev", "1.0.0-alpha"),
    ("1.0.0-beta", "1.0.0-pre"),
    ("1.0.0-pre", "1.0.0-rc"),
    ("1.0.0-rc1", "1.0.0-rc2"),
    ("1.0.0-rc9", "1.0.0-rc10"),
    ("1.0rc1", "1.0a"),
    ("1.0.0-rc1", "1.0.0-1"),
    # Numbers of any length compare as integers.
    ("1.2", "1.99999999999"),
    ("20240101", "20240101123045"),
]

EQUAL_PAIRS = [
    ("2.3", "2.3"),
    ("1.01", "1.1"),
    ("1.0-1", "1.0.1"),
    ("1..2", "1.2"),
    ("1.0.", "1.0"),
    ("1.0a", "1.0-a"),
    ("", ""),
    ("", "."),
]


@pytest.mark.parametrize(("older", "newer"), ORDERED_PAIRS)
def test_ordered_pairs(older: str, newer: str) -> None:
    assert compare_versions(older, newer) == -1
    assert compare_versions(newer, older) == 1


@pytest.mark.parametrize(("a", "b"), EQUAL_PAIRS)
def test_equal_pairs(a: str, b: str) -> None:
    assert compare_versions(a, b) == 0
    assert compare_versions(b, a) == 0


def test_sorting_with_version_key() -> None:
    versions = ["1.0.2", "1.0.1p", "1.0.10", "1.0.0-rc1", "1.0.1", "1.0.0", "1.0.2d", "1.0.9"]
    assert sorted(versions, key=version_key) == [
        "1.0.0-rc1",
        "1.0.0",
        "1.0.1",
        "1.0.1p",
        "1.0.2",
        "1.0.2d",
        "1.0.9",
        "1.0.10",
    ]


def test_pre_release_words_are_case_sensitive() -> None:
    # Like Nix's "pre": "RC" is an ordinary word, so above the missing component.
    assert compare_versions("1.0.0-RC1", "1.0.0") == 1


# A transcription of Nix's nextComponent/componentsLT/compareVersions (src/libstore/names.cc),
# with its `c == "pre"` tests widened to PRE_RELEASE_WORDS and arbitrary-size integers: the
# oracle the implementation is checked against.


def nix_next_component(v: str, p: int) -> tuple[str, int]:
    while p < len(v) and v[p] in ".-":
        p += 1
    start = p
    if p < len(v) and v[p] in "0123456789":
        while p < len(v) and v[p] in "0123456789":
            p += 1
    else:
        while p < len(v) and v[p] not in "0123456789.-":
            p += 1
    return v[start:p], p


def nix_number(c: str) -> int | None:
    return int(c) if c and all(ch in "0123456789" for ch in c) else None


def nix_components_lt(c1: str, c2: str) -> bool:
    n1, n2 = nix_number(c1), nix_number(c2)
    if n1 is not None and n2 is not None:
        return n1 < n2
    if c1 == "" and n2 is not None:
        return True
    if c1 in PRE_RELEASE_WORDS and c2 in PRE_RELEASE_WORDS:
        return PRE_RELEASE_WORDS.index(c1) < PRE_RELEASE_WORDS.index(c2)
    if c1 in PRE_RELEASE_WORDS:
        return True
    if c2 in PRE_RELEASE_WORDS:
        return False
    if n2 is not None:
        return True
    if n1 is not None:
        return False
    return c1 < c2


def nix_compare(v1: str, v2: str) -> int:
    p1 = p2 = 0
    while p1 < len(v1) or p2 < len(v2):
        c1, p1 = nix_next_component(v1, p1)
        c2, p2 = nix_next_component(v2, p2)
        if nix_components_lt(c1, c2):
            return -1
        if nix_components_lt(c2, c1):
            return 1
    return 0


def test_the_oracle_agrees_with_the_documented_examples() -> None:
    for older, newer in ORDERED_PAIRS:
        assert (nix_compare(older, newer), nix_compare(newer, older)) == (-1, 1), (older, newer)
    for a, b in EQUAL_PAIRS:
        assert nix_compare(a, b) == 0, (a, b)


COMPONENTS = st.one_of(
    st.from_regex(r"0*[0-9]{1,3}", fullmatch=True),
    st.sampled_from(["a", "b", "p", "z", "q", "A", "pr", "rc", "pre", "alpha", "beta", "dev"]),
    st.text(alphabet="abcxyz+_~", min_size=1, max_size=3),
)
SEPARATORS = st.sampled_from(["", "", ".", "-", "..", ".-"])


@st.composite
def versions(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.tuples(SEPARATORS, COMPONENTS), max_size=6))
    version = "".join(sep + component for sep, component in parts)
    return version + draw(SEPARATORS)


VERSIONS = st.one_of(versions(), st.text(alphabet="0123456789abpr.-", max_size=10))


@given(VERSIONS, VERSIONS)
def test_compare_agrees_with_the_nix_transcription(a: str, b: str) -> None:
    assert compare_versions(a, b) == nix_compare(a, b)


@given(VERSIONS, VERSIONS)
def test_compare_is_antisymmetric_and_reflexive(a: str, b: str) -> None:
    assert compare_versions(a, b) == -compare_versions(b, a)
    assert compare_versions(a, a) == 0


@given(VERSIONS, VERSIONS)
def test_version_key_orders_like_compare(a: str, b: str) -> None:
    ka, kb = version_key(a), version_key(b)
    assert compare_versions(a, b) == (ka > kb) - (ka < kb)


@given(st.lists(VERSIONS, max_size=8))
def test_sorted_by_version_key_is_ordered_by_compare(vs: list[str]) -> None:
    # Every pair, not only neighbours: this is where a non-transitive order shows.
    ordered = sorted(vs, key=version_key)
    for earlier, later in itertools.combinations(ordered, 2):
        assert compare_versions(earlier, later) <= 0, (earlier, later)


@given(VERSIONS, VERSIONS, VERSIONS)
def test_compare_is_transitive(a: str, b: str, c: str) -> None:
    for x, y, z in itertools.permutations([a, b, c]):
        if compare_versions(x, y) <= 0 and compare_versions(y, z) <= 0:
            assert compare_versions(x, z) <= 0, (x, y, z)


# Ranges.


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        (
            ">=1.0.1,<1.0.2",
            ["1.0.1", "1.0.1p", "1.0.1u"],
            ["1.0.2", "1.0.0", "1.0.2d", "1.0.1-rc1", "1.0"],
        ),
        (">1.0.1", ["1.0.1a", "1.0.2", "2"], ["1.0.1", "1.0.1-beta", "1.0"]),
        ("<=3.0.9", ["3.0.9", "3.0.9-rc1", "3.0.8z"], ["3.0.9a", "3.0.13"]),
        ("==1.0.1", ["1.0.1", "1.0.01", "1-0-1"], ["1.0.1p", "1.0.10"]),
        ("=1.0.1", ["1.0.1"], ["1.0.2"]),
        ("1.0.1", ["1.0.1"], ["1.0.2"]),
        ("!=1.0.1p", ["1.0.1", "1.0.1q"], ["1.0.1p"]),
        (
            " >= 1.0 , < 2.0-rc1 , != 1.5 ",
            ["1.0", "1.4", "1.6", "2.0-beta"],
            ["1.5", "0.9", "2.0-rc1", "2.0"],
        ),
    ],
)
def test_range_contains(text: str, inside: list[str], outside: list[str]) -> None:
    r = parse_range(text)
    assert [v for v in inside if not r.contains(v)] == []
    assert [v for v in outside if r.contains(v)] == []


@pytest.mark.parametrize(
    ("text", "clauses", "canonical"),
    [
        (">=1.0.1,<1.0.2", ((">=", "1.0.1"), ("<", "1.0.2")), ">=1.0.1,<1.0.2"),
        ("  >= 1.0.1 ,\t< 1.0.2 ", ((">=", "1.0.1"), ("<", "1.0.2")), ">=1.0.1,<1.0.2"),
        ("1.0.1p", (("==", "1.0.1p"),), "==1.0.1p"),
        ("=1.0", (("==", "1.0"),), "==1.0"),
        ("!=2,<=3,>1", (("!=", "2"), ("<=", "3"), (">", "1")), "!=2,<=3,>1"),
    ],
)
def test_parse_range_clauses_and_canonical_text(
    text: str, clauses: tuple[tuple[str, str], ...], canonical: str
) -> None:
    r = parse_range(text)
    assert r == VersionRange(clauses)
    assert str(r) == canonical
    assert parse_range(str(r)) == r


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "version range '' is empty: give clauses such as '>=1.0.1,<1.0.2'"),
        ("  ", "version range '  ' is empty"),
        (">=1.0,<", "version range '>=1.0,<': clause 2 ('<') has no version"),
        (
            "=>1.0",
            "version range '=>1.0': unknown operator '=>' in clause 1 ('=>1.0'): "
            "use >=, >, <=, <, == or !=",
        ),
        ("~=1.0", "unknown operator '~=' in clause 1 ('~=1.0')"),
        (">=1.0,=<2", "unknown operator '=<' in clause 2 ('=<2')"),
        (">=1.0,", "version range '>=1.0,': clause 2 is empty"),
        (">=1.0,,<2", "clause 2 is empty"),
        (",1.0", "clause 1 is empty"),
        (">=1.0 2.0", "clause 1 ('>=1.0 2.0') has whitespace inside its version '1.0 2.0'"),
        (
            ">=1.0<2.0",
            "clause 1 ('>=1.0<2.0') has '<' inside its version '1.0<2.0': "
            "separate clauses with commas",
        ),
        (">=" + "1" * 201, "has a version of 201 characters (at most 200)"),
    ],
)
def test_bad_ranges_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_range(text)
    assert message in str(caught.value)


def test_a_version_of_200_characters_is_accepted() -> None:
    assert parse_range(">=" + "1" * 200).clauses == ((">=", "1" * 200),)


@pytest.mark.parametrize(
    ("clauses", "message"),
    [
        ((("=>", "1.0"),), "unknown operator '=>'"),
        ((("=", "1.0"),), "unknown operator '='"),
        (((">=", ""),), "has no version"),
        (((">=", "1,2"),), "has a comma inside its version '1,2'"),
        (((">=", "=1"),), "does not start with a letter or digit"),
    ],
)
def test_version_range_refuses_clauses_it_could_not_print_back(
    clauses: tuple[tuple[str, str], ...], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        VersionRange(clauses)


RANGE_VERSIONS = st.from_regex(r"[0-9a-z][0-9a-z.\-]{0,8}", fullmatch=True)


OPERATORS = st.sampled_from([">=", ">", "<=", "<", "==", "!="])


@given(st.lists(st.tuples(OPERATORS, RANGE_VERSIONS), min_size=1))
def test_canonical_text_parses_back_to_the_same_range(clauses: list[tuple[str, str]]) -> None:
    r = VersionRange(tuple(clauses))
    assert parse_range(str(r)) == r


# version_matches.


def test_version_matches_exact_is_the_label_as_written() -> None:
    assert version_matches("1.0.1p", exact="1.0.1p", range_=None)
    assert not version_matches("1.0.01p", exact="1.0.1p", range_=None)


def test_version_matches_range() -> None:
    r = parse_range(">=1.0.1,<1.0.2")
    assert version_matches("1.0.1u", exact=None, range_=r)
    assert not version_matches("1.0.2", exact=None, range_=r)


def test_version_matches_needs_both_when_both_are_given() -> None:
    r = parse_range(">=1.0.1,<1.0.2")
    assert version_matches("1.0.1p", exact="1.0.1p", range_=r)
    assert not version_matches("1.0.2", exact="1.0.2", range_=r)
    assert not version_matches("1.0.1u", exact="1.0.1p", range_=r)


def test_version_matches_anything_without_a_filter() -> None:
    assert version_matches("", exact=None, range_=None)
    assert version_matches("whatever-1", exact=None, range_=None)
