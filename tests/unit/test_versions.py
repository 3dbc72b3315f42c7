"""Version ordering (exactly Nix's builtins.compareVersions, checked against a real
nix-instantiate) and version ranges. Other ecosystems' orders: test_ecosystems.py."""

from __future__ import annotations

import functools
import itertools
import json
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import InvalidInput
from projections.versions import (
    NATIVE_ORDER_ECOSYSTEMS,
    NIX_INT_MAX,
    VersionRange,
    compare_versions,
    native_versions,
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
    ("2.38", "2.38-44"),
    ("", "0"),
    ("", "a"),
    # Only "pre" is below the missing component; other words are above it and
    # compare as text. These are where Nix differs from semantic versioning.
    ("1.0.0-pre", "1.0.0"),
    ("1.0.0", "1.0.0-rc1"),
    ("3.0.13", "3.0.13-dev"),
    ("1.0.0", "1.0.0-RC1"),
    ("1.0.0-RC1", "1.0.0-rc1"),
    ("1.0.0-alpha", "1.0.0-beta"),
    ("1.0.0-alpha", "1.0.0-dev"),
    ("1.0.0-pre", "1.0.0-alpha"),
    ("1.0.0-beta", "1.0.0-rc1"),
    ("1.0.0-rc1", "1.0.0-rc2"),
    ("1.0.0-rc9", "1.0.0-rc10"),
    ("1.0a", "1.0rc1"),
    ("1.0.0-rc1", "1.0.0-1"),
    # Words compare as UTF-8 bytes.
    ("1.0-Z", "1.0-a"),
    ("1.0-z", "1.0-é"),
    # A run of digits that overflows a C++ int is a word, below every number.
    ("1.99999999999", "1.2"),
    ("20240101123045", "20240101"),
    ("2147483648", "2147483647"),
    ("1.2147483648", "1.0"),
    ("1.2147483648", "1.2147483649"),
    ("1.99999999999", "1.a"),
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
    ("1.02147483647", "1.2147483647"),
    ("1", "0" * 60 + "1"),
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
        "1.0.0",
        "1.0.0-rc1",
        "1.0.1",
        "1.0.1p",
        "1.0.2",
        "1.0.2d",
        "1.0.9",
        "1.0.10",
    ]


def test_pre_is_case_sensitive() -> None:
    # Like every word but "pre": "PRE" is above the missing component.
    assert compare_versions("1.0PRE1", "1.0") == 1
    assert compare_versions("1.0pre1", "1.0") == -1


def test_the_largest_number_is_a_cpp_int() -> None:
    assert NIX_INT_MAX == 2147483647
    assert compare_versions(str(NIX_INT_MAX), "0") == 1
    assert compare_versions(str(NIX_INT_MAX + 1), "0") == -1
    # No int() of a huge digit run (Python refuses more than 4300 digits).
    assert compare_versions("9" * 10_000, "1") == -1


# A transcription of Nix's nextComponent/componentsLT/compareVersions
# (src/libstore/names.cc): the oracle the implementation is checked against, itself
# checked against nix-instantiate below.


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


def nix_string2int(c: str) -> int | None:
    """string2Int<int>: a C++ int, or nothing (not digits, or out of range)."""
    if not c or any(ch not in "0123456789" for ch in c):
        return None
    value = int(c)
    return value if value <= 2**31 - 1 else None


def nix_components_lt(c1: str, c2: str) -> bool:
    n1, n2 = nix_string2int(c1), nix_string2int(c2)
    if n1 is not None and n2 is not None:
        return n1 < n2
    if c1 == "" and n2 is not None:
        return True
    if c1 == "pre" and c2 != "pre":
        return True
    if c2 == "pre":
        return False
    if n2 is not None:
        return True
    if n1 is not None:
        return False
    return c1.encode() < c2.encode()


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


# The real Nix.

REAL_LOOKING = [
    "",
    ".",
    "-",
    "0",
    "1",
    "1.0",
    "1.0.",
    "1.0-",
    "1.0.-",
    "1.0.0",
    "1.0.1",
    "1.0.1p",
    "1.0.1u",
    "1.0.2",
    "1.0.2d",
    "1.1.1w",
    "3.0.9",
    "3.0.13",
    "3.0.13-dev",
    "3.0.13-rc1",
    "3.0.13-RC1",
    "3.0.13pre",
    "3.0.13-pre",
    "3.0.13-bin",
    "1.0pre1",
    "1.0pre2",
    "1.0PRE1",
    "pre",
    "2.38",
    "2.38-44",
    "2.38-44.1",
    "2024.01.01",
    "2024.1.1",
    "20240101",
    "0-unstable-2024-01-01",
    "unstable-2024-01-01",
    "99999999999",
    "1.99999999999",
    "2147483647",
    "2147483648",
    "02147483647",
    "0" * 40 + "7",
    "1..2",
    "1.2",
    "1.0a",
    "1.0-a",
    "1.0alpha",
    "1.0-alpha.1",
    "1.0beta",
    "1.0-z",
    "1.0-Z",
    "1.0-é",
    "1.0-ünïcode",
    "1.0-日本",
    "ünïcode",
    "1.0+build.5",
    "v1.0",
    "1.0~rc1",
    "1:1.0",
    "1.0_1",
    '1.0"q',
    "1.0\\x",
    "1.0${x}",
    "1.0\ttab",
    "1.²",
    "1.٣",
    "1.0-x²",
]

_PARTS = [
    "0",
    "1",
    "2",
    "9",
    "10",
    "007",
    "2147483647",
    "2147483648",
    "99999999999",
    "pre",
    "PRE",
    "rc",
    "a",
    "p",
    "z",
    "alpha",
    "dev",
    "Z",
    "é",
    "日",
    "x_y",
    "²",
    "٣",
    "~",
    "+",
]
_SEPARATORS = ["", "", ".", "-", "..", ".-", "-."]


def generated_versions(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        "".join(rng.choice(_SEPARATORS) + rng.choice(_PARTS) for _ in range(rng.randint(0, 5)))
        + rng.choice(_SEPARATORS)
        for _ in range(count)
    ]


def nix_check_pairs() -> list[tuple[str, str]]:
    """Every pair of the real-looking versions, and random pairs of generated ones."""
    generated = generated_versions(200, seed=20240101)
    rng = random.Random(7)
    pairs = list(itertools.combinations(REAL_LOOKING, 2))
    pairs += [(rng.choice(generated), rng.choice(generated)) for _ in range(600)]
    pairs += [(rng.choice(generated), rng.choice(REAL_LOOKING)) for _ in range(400)]
    return pairs


def nix_string(text: str) -> str:
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("$", "\\$")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


@functools.cache
def real_nix_compare(pairs: tuple[tuple[str, str], ...]) -> tuple[int, ...]:
    """builtins.compareVersions of every pair, from one nix-instantiate run."""
    nix_instantiate = shutil.which("nix-instantiate")
    if nix_instantiate is None:
        pytest.fail(
            "nix-instantiate is not installed: the version order is checked against the "
            "real Nix. Install Debian's nix-bin (sh tools/system-deps.sh does it)."
        )
    expression = "map (p: builtins.compareVersions (builtins.elemAt p 0) (builtins.elemAt p 1)) [\n"
    expression += "\n".join(f"  [ {nix_string(a)} {nix_string(b)} ]" for a, b in pairs)
    expression += "\n]\n"
    with tempfile.TemporaryDirectory() as directory:
        # A file, not --expr: the expression is longer than one argument may be.
        source = Path(directory) / "pairs.nix"
        source.write_text(expression, encoding="utf-8")
        result = subprocess.run(
            [nix_instantiate, "--eval", "--strict", "--json", "--readonly-mode", str(source)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)
    assert isinstance(answers, list)
    assert len(answers) == len(pairs)
    return tuple(int(answer) for answer in answers)


def mismatches(pairs: list[tuple[str, str]], ours: list[int], nix: tuple[int, ...]) -> list[str]:
    return [
        f"{a!r} vs {b!r}: ours {o}, Nix {n}"
        for (a, b), o, n in zip(pairs, ours, nix, strict=True)
        if o != n
    ]


def test_compare_versions_is_nixs_own() -> None:
    pairs = nix_check_pairs()
    assert len(pairs) >= 500
    nix = real_nix_compare(tuple(pairs))
    ours = [compare_versions(a, b) for a, b in pairs]
    assert mismatches(pairs, ours, nix)[:20] == []
    # The set exercises every answer, not just one.
    assert set(nix) == {-1, 0, 1}


def test_the_oracle_is_nixs_own() -> None:
    pairs = nix_check_pairs()
    nix = real_nix_compare(tuple(pairs))
    assert mismatches(pairs, [nix_compare(a, b) for a, b in pairs], nix)[:20] == []


def test_version_key_sorts_as_nix_does() -> None:
    versions = REAL_LOOKING
    ordered = sorted(versions, key=version_key)
    pairs = list(itertools.pairwise(ordered))
    nix = real_nix_compare(tuple(pairs))
    assert [(a, b) for (a, b), answer in zip(pairs, nix, strict=True) if answer > 0] == []


COMPONENTS = st.one_of(
    st.from_regex(r"0*[0-9]{1,3}", fullmatch=True),
    st.sampled_from(
        ["a", "b", "p", "z", "q", "A", "pr", "rc", "pre", "PRE", "é", "2147483648", "99999999999"]
    ),
    st.text(alphabet="abcxyz+_~é²٣", min_size=1, max_size=3),
)
SEPARATORS = st.sampled_from(["", "", ".", "-", "..", ".-"])


@st.composite
def versions(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.tuples(SEPARATORS, COMPONENTS), max_size=6))
    version = "".join(sep + component for sep, component in parts)
    return version + draw(SEPARATORS)


VERSIONS = st.one_of(
    versions(), st.text(alphabet="0123456789abpre.-", max_size=12), st.text(max_size=6)
)


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
            ["1.0.1", "1.0.1p", "1.0.1u", "1.0.1-rc1", "1.0.2pre1"],
            ["1.0.2", "1.0.0", "1.0.2d", "1.0.1pre1", "1.0"],
        ),
        (">1.0.1", ["1.0.1a", "1.0.1-beta", "1.0.2", "2"], ["1.0.1", "1.0.1pre5", "1.0"]),
        ("<=3.0.9", ["3.0.9", "3.0.9pre1", "3.0.8z"], ["3.0.9a", "3.0.9-rc1", "3.0.13"]),
        ("==1.0.1", ["1.0.1", "1.0.01", "1-0-1"], ["1.0.1p", "1.0.10"]),
        ("=1.0.1", ["1.0.1"], ["1.0.2"]),
        ("1.0.1", ["1.0.1"], ["1.0.2"]),
        ("!=1.0.1p", ["1.0.1", "1.0.1q"], ["1.0.1p"]),
        (
            " >= 1.0 , < 2.0-rc1 , != 1.5 ",
            ["1.0", "1.4", "1.6", "2.0-beta", "2.0"],
            ["1.5", "0.9", "2.0-rc1", "2.0-rc2", "2.1"],
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
        # Debian and semantic versions are versions, not range syntax.
        (">=1:1.0~rc1-2", ((">=", "1:1.0~rc1-2"),), ">=1:1.0~rc1-2"),
        ("<2.0.0-rc.1+build.5", (("<", "2.0.0-rc.1+build.5"),), "<2.0.0-rc.1+build.5"),
        ("<=2.38-44", (("<=", "2.38-44"),), "<=2.38-44"),
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


# (text, what it looks like, the clauses suggested instead)
OTHER_SYNTAXES = [
    ("1.0.1..1.0.2", "a '..' span", ">=1.0.1,<=1.0.2"),
    (" 1.0.1 .. 1.0.2 ", "a '..' span", ">=1.0.1,<=1.0.2"),
    ("1.0.1...1.0.2", "a '...' span", ">=1.0.1,<1.0.2"),
    ("1.0.1..", "a '..' span", ">=1.0.1"),
    ("..1.0.2", "a '..' span", "<=1.0.2"),
    ("1.0.1 - 1.0.2", "a hyphen range (npm)", ">=1.0.1,<=1.0.2"),
    ("1.0.1 -1.0.2", "a hyphen range (npm)", ">=1.0.1,<=1.0.2"),
    ("[1.0,2.0)", "an interval (Maven, NuGet)", ">=1.0,<2.0"),
    ("(1.0,2.0]", "an interval (Maven, NuGet)", ">1.0,<=2.0"),
    ("[1.0,)", "an interval (Maven, NuGet)", ">=1.0"),
    ("(,2.0]", "an interval (Maven, NuGet)", "<=2.0"),
    ("[1.0]", "an interval (Maven, NuGet)", "==1.0"),
    ("[1.0,2.0),[3.0,4.0)", "intervals (Maven, NuGet)", ">=1.0.1,<=1.0.2"),
    ("^1.2", "a caret range (npm, Cargo, Composer)", ">=1.0.1,<=1.0.2"),
    ("~1.2", "a tilde range (npm, Composer)", ">=1.0.1,<=1.0.2"),
    ("~=1.2", "a compatible-release clause (PEP 440)", ">=1.0.1,<=1.0.2"),
    ("~> 1.2", "a pessimistic constraint (RubyGems)", ">=1.0.1,<=1.0.2"),
    (">=1.0,^1.2", "a caret range", ">=1.0.1,<=1.0.2"),
    ("1.x", "a wildcard", ">=1.2,<1.3"),
    ("1.2.X", "a wildcard", ">=1.2,<1.3"),
    ("1.2.*", "a wildcard", ">=1.2,<1.3"),
    ("*", "a wildcard", ">=1.2,<1.3"),
    (">=1.0,<2.x", "a wildcard", ">=1.2,<1.3"),
    ("1.0 || 2.0", "alternatives joined with '||' (npm)", ">=1.0.1,<=1.0.2"),
    (">=1.0 <2.0 || >=3", "alternatives joined with '||' (npm)", ">=1.0.1,<=1.0.2"),
]


@pytest.mark.parametrize(("text", "what", "instead"), OTHER_SYNTAXES)
def test_other_range_syntaxes_are_refused_not_read_as_versions(
    text: str, what: str, instead: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_range(text)
    message = str(caught.value)
    assert message.startswith(f"version range {text!r} looks like {what}")
    assert f"such as {instead!r}" in message
    if instead != ">=1.0.1,<=1.0.2":
        # What it suggests is itself a good range.
        parse_range(instead)


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
        (((">=", "1.0..2.0"),), "has '..' inside its version '1.0..2.0'"),
        (((">=", "1.x"),), "has a wildcard in its version '1.x'"),
        (((">=", "1.0)"),), "has ')' inside its version '1.0)'"),
        (((">=", "1|2"),), "has '|' inside its version '1|2'"),
    ],
)
def test_version_range_refuses_clauses_it_could_not_print_back(
    clauses: tuple[tuple[str, str], ...], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        VersionRange(clauses)


RANGE_VERSIONS = st.from_regex(r"[0-9a-wyz][0-9a-wyz.\-]{0,8}", fullmatch=True).filter(
    lambda version: ".." not in version
)


OPERATORS = st.sampled_from([">=", ">", "<=", "<", "==", "!="])


@given(st.lists(st.tuples(OPERATORS, RANGE_VERSIONS), min_size=1))
def test_canonical_text_parses_back_to_the_same_range(clauses: list[tuple[str, str]]) -> None:
    r = VersionRange(tuple(clauses))
    assert parse_range(str(r)) == r


# version_matches.


def test_version_matches_exact_is_the_label_as_written() -> None:
    assert version_matches("1.0.1p", exact="1.0.1p", range_=None)
    assert not version_matches("1.0.01p", exact="1.0.1p", range_=None)
    assert not version_matches("1.0.0", exact="1.0", range_=None, ecosystem="pypi")


def test_version_matches_range() -> None:
    r = parse_range(">=1.0.1,<1.0.2")
    assert version_matches("1.0.1u", exact=None, range_=r)
    assert not version_matches("1.0.2", exact=None, range_=r)


def test_version_matches_range_in_the_versions_ecosystem() -> None:
    r = parse_range(">=1.0,<2.0")
    assert not version_matches("2.0rc1", exact=None, range_=r)
    assert version_matches("2.0rc1", exact=None, range_=r, ecosystem="pypi")


def test_version_matches_needs_both_when_both_are_given() -> None:
    r = parse_range(">=1.0.1,<1.0.2")
    assert version_matches("1.0.1p", exact="1.0.1p", range_=r)
    assert not version_matches("1.0.2", exact="1.0.2", range_=r)
    assert not version_matches("1.0.1u", exact="1.0.1p", range_=r)


def test_version_matches_anything_without_a_filter() -> None:
    assert version_matches("", exact=None, range_=None)
    assert version_matches("whatever-1", exact=None, range_=None)


def test_the_ecosystems_with_their_own_order_are_those_univers_is_asked_for() -> None:
    """NATIVE_ORDER_ECOSYSTEMS is written out so that importing the module does not load
    univers; it must name exactly the ecosystems ``native_versions`` maps."""
    assert frozenset(native_versions()) == NATIVE_ORDER_ECOSYSTEMS
