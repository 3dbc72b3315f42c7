"""Package identity by ecosystem (purls, names) and each ecosystem's version order."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.ecosystems import (
    GENERIC,
    NIX,
    PackageRef,
    ecosystem_of,
    lookup_name,
    lookup_names,
    match_name,
    normalise_name,
    parse_purl,
)
from ledger.errors import InvalidInput
from projections.versions import (
    NATIVE_ORDER_ECOSYSTEMS,
    EcosystemVersionKey,
    compare_versions,
    has_native_order,
    parse_range,
    version_key,
)

# Package URLs.


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("pkg:pypi/Pygments@2.17.2", PackageRef("pypi", None, "Pygments", "2.17.2")),
        ("pkg:pypi/Foo_Bar", PackageRef("pypi", None, "Foo_Bar", None)),
        ("pkg:pypi/foo@", PackageRef("pypi", None, "foo", None)),
        ("pkg:npm/%40angular/core@17.0.0", PackageRef("npm", "@angular", "core", "17.0.0")),
        ("pkg:npm/@angular/core@17.0.0", PackageRef("npm", "@angular", "core", "17.0.0")),
        ("pkg:npm/JSONStream@1.3.5", PackageRef("npm", None, "JSONStream", "1.3.5")),
        (
            "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=amd64&distro=bookworm",
            PackageRef("deb", "debian", "openssl", "3.0.11-1~deb12u2"),
        ),
        ("pkg:deb/debian/curl@1:7.88.1-10", PackageRef("deb", "debian", "curl", "1:7.88.1-10")),
        (
            "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
            PackageRef("maven", "org.apache.logging.log4j", "log4j-core", "2.14.1"),
        ),
        (
            "pkg:golang/github.com/sirupsen/logrus@v1.9.3#hooks",
            PackageRef("golang", "github.com/sirupsen", "logrus", "v1.9.3"),
        ),
        ("pkg:nix/openssl@3.0.13", PackageRef("nix", None, "openssl", "3.0.13")),
        ("pkg:PyPI/x@1", PackageRef("pypi", None, "x", "1")),
        ("  pkg:generic/a%20b@1%2B2  ", PackageRef("generic", None, "a b", "1+2")),
    ],
)
def test_parse_purl(text: str, ref: PackageRef) -> None:
    assert parse_purl(text) == ref


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "A purl string argument is required"),
        ("openssl", 'missing the required "pkg" scheme'),
        ("pkg:", "missing the required type"),
        ("pkg:npm", "missing the required type"),
        ("pkg:npm/", "missing the required name"),
        ("pkg:npm/@scope", "missing the required name"),
        ("pkg:1a/b", "cannot start with a number"),
        ("pkg:py pi/b", "purl type must be composed only of"),
        ("pkg:pypi/foo?x", "Invalid qualifier"),
        ("pkg:pypi/%20@1", "its name is empty"),
    ],
)
def test_a_malformed_purl_is_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_purl(text)
    message = str(caught.value)
    assert message.startswith(f"{text!r} is not a valid package URL (")
    assert reason in message
    assert message.endswith(
        "write pkg:TYPE/NAMESPACE/NAME@VERSION, such as 'pkg:pypi/pygments@2.17.2'"
    )


# Ecosystems.


@pytest.mark.parametrize(
    ("store_path", "purl", "ecosystem"),
    [
        ("/nix/store/5c5x8ik0k7ssxvvyvg4zfwnqhzy7lklj-openssl-3.0.13", None, NIX),
        # A store path wins: the version is the Nix package's.
        ("/nix/store/5c5x8ik0k7ssxvvyvg4zfwnqhzy7lklj-python3-pygments", "pkg:pypi/x@1", NIX),
        (None, "pkg:nix/openssl@3.0.13", NIX),
        (None, "pkg:pypi/pygments@2.17.2", "pypi"),
        ("", "pkg:deb/debian/openssl@3.0.11-1", "deb"),
        (None, "pkg:NPM/left-pad@1.3.0", "npm"),
        (None, "not a purl", GENERIC),
        (None, None, GENERIC),
        ("", "", GENERIC),
    ],
)
def test_ecosystem_of(store_path: str | None, purl: str | None, ecosystem: str) -> None:
    assert ecosystem_of(store_path, purl) == ecosystem


# Names.


@pytest.mark.parametrize(
    ("ecosystem", "name", "normalised"),
    [
        ("pypi", "Pygments", "pygments"),
        ("pypi", "Foo_Bar", "foo-bar"),
        ("pypi", "foo.bar", "foo-bar"),
        ("pypi", "Foo__-.Bar", "foo-bar"),
        ("nix", "Pygments", "Pygments"),
        ("nix", "python3.12-Foo_Bar", "python3.12-Foo_Bar"),
        ("generic", "OpenSSL", "OpenSSL"),
        ("deb", "OpenSSL", "openssl"),
        ("github", "Purl-Spec", "purl-spec"),
        ("composer", "Framework", "framework"),
        ("nuget", "Newtonsoft.Json", "newtonsoft.json"),
        ("npm", "JSONStream", "JSONStream"),
        ("maven", "Log4j-Core", "Log4j-Core"),
        ("golang", "Logrus", "Logrus"),
        ("cargo", "Serde_JSON", "Serde_JSON"),
        ("gem", "Rails", "Rails"),
        ("rpm", "OpenSSL", "OpenSSL"),
        ("pub", "Flutter-Widgets2", "flutter_widgets2"),
        ("hackage", "Foo_Bar", "Foo-Bar"),
    ],
)
def test_normalise_name(ecosystem: str, name: str, normalised: str) -> None:
    assert normalise_name(ecosystem, name) == normalised


@pytest.mark.parametrize(
    ("ecosystem", "namespace", "name", "match"),
    [
        ("pypi", None, "Pygments", "pygments"),
        ("nix", None, "openssl", "openssl"),
        ("npm", "@angular", "core", "@angular/core"),
        ("npm", "angular", "core", "@angular/core"),
        ("npm", None, "left-pad", "left-pad"),
        ("maven", "org.apache.logging.log4j", "log4j-core", "org.apache.logging.log4j:log4j-core"),
        ("golang", "github.com/sirupsen", "logrus", "github.com/sirupsen/logrus"),
        ("composer", "Laravel", "Framework", "laravel/framework"),
        ("github", "Package-URL", "Purl-Spec", "package-url/purl-spec"),
        ("huggingface", "Org", "Model", "Org/Model"),
        ("vscode-extension", "MS-Python", "Python", "ms-python.python"),
        # A distribution or vendor is not part of the name.
        ("deb", "debian", "OpenSSL", "openssl"),
        ("rpm", "fedora", "openssl", "openssl"),
        ("docker", "library", "nginx", "nginx"),
    ],
)
def test_match_name(ecosystem: str, namespace: str | None, name: str, match: str) -> None:
    assert match_name(ecosystem, namespace, name) == match


def test_a_bare_name_finds_pypi_pygments_whatever_its_case() -> None:
    stored = parse_purl("pkg:pypi/Pygments@2.17.2").match_name
    assert stored == "pygments"
    assert lookup_name("pypi", "pygments") == stored
    assert lookup_name("pypi", "Pygments") == stored
    assert lookup_name("pypi", "PYGMENTS") == stored
    assert parse_purl("pkg:pypi/pygments").match_name == stored


def test_a_bare_name_finds_nix_names_only_as_written() -> None:
    stored = match_name(NIX, None, "Pygments")
    assert lookup_name(NIX, "Pygments") == stored
    assert lookup_name(NIX, "pygments") != stored


@pytest.mark.parametrize(
    ("purl", "asked"),
    [
        ("pkg:npm/%40angular/core@17.0.0", "@angular/core"),
        (
            "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
            "org.apache.logging.log4j:log4j-core",
        ),
        ("pkg:golang/github.com/sirupsen/logrus@v1.9.3", "github.com/sirupsen/logrus"),
        ("pkg:composer/laravel/framework@10.0.0", "Laravel/Framework"),
        ("pkg:github/package-url/purl-spec@v1", "Package-URL/purl-spec"),
        ("pkg:vscode-extension/ms-python/python@2024.1.0", "MS-Python.Python"),
        ("pkg:deb/debian/openssl@3.0.11-1", "OpenSSL"),
        ("pkg:npm/left-pad@1.3.0", "left-pad"),
        ("pkg:pypi/foo-bar@1", "Foo_Bar"),
    ],
)
def test_a_bare_name_written_the_ecosystems_way_finds_the_component(purl: str, asked: str) -> None:
    ref = parse_purl(purl)
    assert lookup_name(ref.ecosystem, asked) == ref.match_name


def test_lookup_names_are_every_ecosystems_reading() -> None:
    # As written (Nix, npm, …), lower case (Debian, …), PEP 503, kebab-case (Hackage).
    assert lookup_names("Foo_Bar") == {"Foo_Bar", "foo_bar", "foo-bar", "Foo-Bar"}
    assert lookup_names("openssl") == {"openssl"}
    assert lookup_names("@Angular/Core") == {"@Angular/Core", "@angular/core", "_angular_core"}


@pytest.mark.parametrize(
    ("purl", "asked"),
    [
        ("pkg:pypi/Pygments@2.17.2", "pygments"),
        ("pkg:pypi/foo-bar@1", "Foo.Bar"),
        ("pkg:nix/Pygments@2.17.2", "Pygments"),
        ("pkg:deb/debian/OpenSSL@3.0.11-1", "openssl"),
        ("pkg:composer/laravel/framework@10.0.0", "Laravel/Framework"),
        (
            "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
            "org.apache.logging.log4j:log4j-core",
        ),
    ],
)
def test_lookup_names_hold_the_match_name_of_what_is_asked_for(purl: str, asked: str) -> None:
    ref = parse_purl(purl)
    assert ref.match_name in lookup_names(asked)


def test_a_bare_name_does_not_find_a_namespaced_package_by_its_last_part() -> None:
    ref = parse_purl("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1")
    assert lookup_name("maven", "log4j-core") != ref.match_name


# Each ecosystem's version order.

# (ecosystem, versions from oldest to newest)
ORDERS = [
    ("pypi", ["1.0.dev1", "1.0a1", "1.0b2", "1.0rc1", "1.0", "1.0.post1", "1.0.1", "1.1"]),
    ("pypi", ["0.9", "1.0+local", "1.0.1"]),
    ("deb", ["1.0~rc1", "1.0", "1.0-1", "1.0-1+deb12u1", "1.0-2", "2.0", "1:0.9", "1:1.0"]),
    ("deb", ["3.0.11-1~deb12u1", "3.0.11-1~deb12u2", "3.0.11-1", "3.0.13-1"]),
    (
        "npm",
        [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.10.0",
        ],
    ),
    ("cargo", ["0.9.0", "1.0.0-rc.1", "1.0.0", "1.2.0"]),
    ("golang", ["v0.0.0-20191109021931-daa7c04131f5", "v0.1.0", "v1.9.3", "v2.0.0+incompatible"]),
    ("gem", ["1.0.a", "1.0.b1", "1.0", "1.0.1", "1.1"]),
    ("maven", ["1.0-alpha-1", "1.0-beta", "1.0-SNAPSHOT", "1.0", "1.0-sp1", "1.0.1"]),
    ("nuget", ["1.0.0-alpha", "1.0.0-beta", "1.0.0", "1.0.1", "1.0.1.1"]),
    ("rpm", ["1.0~rc1", "1.0", "1.0a", "1.1", "1:0.9"]),
    ("composer", ["1.0.0-RC1", "1.0.0", "v1.0.1"]),
    ("alpm", ["1.0rc1", "1.0-1", "1.0-2", "1.0.1", "1:0.5"]),
    ("apk", ["1.0_rc1", "1.0", "1.0-r1", "1.0.1"]),
]


@pytest.mark.parametrize(("ecosystem", "ordered"), ORDERS)
def test_each_ecosystem_orders_its_own_way(ecosystem: str, ordered: list[str]) -> None:
    for older, newer in itertools.combinations(ordered, 2):
        assert compare_versions(older, newer, ecosystem) == -1, (older, newer)
        assert compare_versions(newer, older, ecosystem) == 1, (older, newer)
    shuffled = list(reversed(ordered))
    assert sorted(shuffled, key=lambda v: version_key(v, ecosystem)) == ordered


@pytest.mark.parametrize(
    ("ecosystem", "a", "b"),
    [
        ("pypi", "1.0", "1.0.0"),
        ("pypi", "1.0RC1", "1.0rc1"),
        ("pypi", "v1.0", "1.0"),
        ("deb", "01", "1"),
        ("deb", "0:1.0", "1.0"),
        ("maven", "1.0", "1.0.0"),
        ("npm", "1.0.0+build.1", "1.0.0+build.2"),
        ("golang", "v1.2.3", "1.2.3"),
        ("nuget", "1.0", "1.0.0"),
    ],
)
def test_equal_in_the_ecosystem(ecosystem: str, a: str, b: str) -> None:
    assert compare_versions(a, b, ecosystem) == 0
    assert version_key(a, ecosystem) == version_key(b, ecosystem)


def test_the_documented_examples() -> None:
    assert compare_versions("1.0rc1", "1.0", "pypi") == -1
    assert compare_versions("1.0", "1.0.post1", "pypi") == -1
    assert compare_versions("1:1.0", "2.0", "deb") == 1
    assert compare_versions("1.0~rc1", "1.0", "deb") == -1
    assert compare_versions("1.0.0-rc.1", "1.0.0", "npm") == -1
    # The same pairs in the Nix order, for contrast.
    assert compare_versions("1.0rc1", "1.0") == 1
    assert compare_versions("1:1.0", "2.0") == -1


@pytest.mark.parametrize(
    ("ecosystem", "a", "b", "expected"),
    [
        # Not PEP 440: the Nix order, where 1.0.1p is above 1.0.1 and below 1.0.2.
        ("pypi", "1.0.1p", "1.0.1", 1),
        ("pypi", "1.0.1p", "1.0.2", -1),
        ("pypi", "not a version", "1.0", -1),
        ("npm", "", "1.0.0", -1),
        ("nuget", "", "1.0", -1),
        ("deb", "1.0 beta", "1.0", 1),
        # Ecosystems without an order of their own.
        ("generic", "1.0rc1", "1.0", 1),
        ("github", "v1.0.0-rc1", "v1.0.0", 1),
        ("conda", "1.0", "1.0.0", -1),
    ],
)
def test_the_nix_order_when_the_ecosystems_own_does_not_apply(
    ecosystem: str, a: str, b: str, expected: int
) -> None:
    assert compare_versions(a, b, ecosystem) == expected
    assert compare_versions(a, b, ecosystem) == compare_versions(a, b)


def test_which_versions_have_their_ecosystems_order() -> None:
    assert has_native_order("1.0rc1", "pypi")
    assert not has_native_order("1.0.1p", "pypi")
    assert not has_native_order("1.0", "generic")
    assert not has_native_order("1.0", "nix")
    assert has_native_order("1:1.0~rc1-2", "deb")
    assert not has_native_order("", "npm")


def test_the_ecosystems_with_an_order_of_their_own() -> None:
    assert {
        "alpm",
        "apk",
        "cargo",
        "composer",
        "conan",
        "deb",
        "gem",
        "golang",
        "hex",
        "maven",
        "npm",
        "nuget",
        "pypi",
        "rpm",
    } == NATIVE_ORDER_ECOSYSTEMS


def test_ranges_compare_in_the_versions_ecosystem() -> None:
    r = parse_range(">=1.0,<2.0")
    assert r.contains("2.0rc1", "pypi")
    assert not r.contains("2.0rc1")
    assert r.contains("1.5-1", "deb")
    assert not r.contains("1:1.5", "deb")
    assert parse_range("<1.0.0").contains("1.0.0-rc.1", "npm")
    assert not parse_range("<1.0.0").contains("1.0.0-rc.1")
    assert parse_range("==1.0").contains("1.0.0", "pypi")


def test_keys_of_different_ecosystems_sort_apart_instead_of_failing() -> None:
    keys = [
        version_key("2.0", "pypi"),
        version_key("1.0"),
        version_key("1.0", "deb"),
        version_key("1.0", "pypi"),
    ]
    assert sorted(keys) == [keys[2], keys[1], keys[3], keys[0]]
    assert sorted([(1, keys[0]), (1, keys[1])]) == [(1, keys[1]), (1, keys[0])]
    assert EcosystemVersionKey(NIX, "1.0") == version_key("1.0")
    assert EcosystemVersionKey(NIX, "1.0") < version_key("1.0.1")
    assert version_key("1.0", "deb") != version_key("1.0", "pypi")


def test_an_ecosystem_key_is_unhashable() -> None:
    # Versions that differ as text are equal (PEP 440's 1.0 and 1.0.0).
    with pytest.raises(TypeError):
        hash(version_key("1.0", "pypi"))


ANY_VERSION = st.one_of(
    st.text(max_size=12),
    st.from_regex(r"v?[0-9]{1,3}(\.[0-9]{1,3}){0,3}([-.~+_:][0-9a-z]{1,5}){0,3}", fullmatch=True),
)


@given(st.sampled_from(sorted(NATIVE_ORDER_ECOSYSTEMS)), ANY_VERSION, ANY_VERSION)
def test_compare_never_fails_and_is_antisymmetric(ecosystem: str, a: str, b: str) -> None:
    assert compare_versions(a, b, ecosystem) == -compare_versions(b, a, ecosystem)
    assert compare_versions(a, a, ecosystem) == 0
    ka, kb = version_key(a, ecosystem), version_key(b, ecosystem)
    assert compare_versions(a, b, ecosystem) == (ka > kb) - (ka < kb)


VALID_LOOKING = st.from_regex(
    r"[0-9]{1,2}(\.[0-9]{1,2}){0,2}(-?(rc|a|b|beta|dev)[0-9]?)?", fullmatch=True
)

# Conan's own order compares a number with a word as text, so 1rc < 2 < 10 < 1rc: not an
# order to sort by, but Conan's.
TRANSITIVE = sorted(NATIVE_ORDER_ECOSYSTEMS - {"conan"})


@given(st.sampled_from(TRANSITIVE), st.lists(VALID_LOOKING, max_size=6))
def test_sorting_is_consistent_with_compare(ecosystem: str, vs: list[str]) -> None:
    # Only versions valid in the ecosystem: mixed with invalid ones (compared the Nix way)
    # the two orders can disagree.
    vs = [v for v in vs if has_native_order(v, ecosystem)]
    ordered = sorted(vs, key=lambda v: version_key(v, ecosystem))
    for earlier, later in itertools.combinations(ordered, 2):
        assert compare_versions(earlier, later, ecosystem) <= 0, (earlier, later)
