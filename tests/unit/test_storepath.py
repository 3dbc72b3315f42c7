"""Store path names split into name and version exactly as Nix does it."""

from __future__ import annotations

from string import ascii_letters

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.events import Component
from ledger.importers.storepath import NotAStorePath, parse_store_path, split_name

HASH = "9l96c3rl7wzzv9xkxj2ypgxc5kkwqfna"

# Every expected value is what Nix 2.8 answers for
# `nix-instantiate --eval -E 'builtins.parseDrvName "NAME"'`.
NIX_SPLITS = [
    ("glibc-2.38-44", "glibc", "2.38-44"),
    ("hello-2.12.1", "hello", "2.12.1"),
    ("python3.11-cryptography-41.0.3", "python3.11-cryptography", "41.0.3"),
    ("source", "source", ""),
    ("openssl-3.0.13-bin", "openssl", "3.0.13-bin"),
    ("openssl-3.0.13-dev", "openssl", "3.0.13-dev"),
    ("gcc-wrapper-13.2.0", "gcc-wrapper", "13.2.0"),
    ("nixos-system-web-001-24.05.20240101.abcdef", "nixos-system-web", "001-24.05.20240101.abcdef"),
    (
        "nixos-system-machine-20.09.20201112.3090c65",
        "nixos-system-machine",
        "20.09.20201112.3090c65",
    ),
    ("linux-6.6.30-modules", "linux", "6.6.30-modules"),
    ("firefox-unwrapped-125.0.3", "firefox-unwrapped", "125.0.3"),
    ("perl5.38.2-URI-5.21", "perl5.38.2-URI", "5.21"),
    ("util-linux-minimal-2.39.3-lib", "util-linux-minimal", "2.39.3-lib"),
    ("nix-2.18.2-man", "nix", "2.18.2-man"),
    ("X11-1.0", "X11", "1.0"),
    ("7zip_archiver-0.2", "7zip_archiver", "0.2"),
    ("rip-grep-1.2", "rip-grep", "1.2"),
    ("gcc-1-2", "gcc", "1-2"),
    ("python3-3.11.9", "python3", "3.11.9"),
    ("gnu-config-2024-01-01", "gnu-config", "2024-01-01"),
    ("tzdata-2024a", "tzdata", "2024a"),
    ("openjdk-21+35", "openjdk", "21+35"),
    ("crate-serde-1.0.200", "crate-serde", "1.0.200"),
    ("api-config", "api-config", ""),
    ("user-environment", "user-environment", ""),
    ("unit-script-nginx-start", "unit-script-nginx-start", ""),
    ("update-users-groups.pl", "update-users-groups.pl", ""),
    # Not only a digit: any character that is not a letter starts the version.
    ("bash--1-2", "bash", "-1-2"),
    ("xvidtune-?1-2", "xvidtune", "?1-2"),
    ("a-_b", "a", "_b"),
    ("name-.1", "name", ".1"),
    # A dash at the very end is followed by nothing, so it does not split.
    ("foo-", "foo-", ""),
]


@pytest.mark.parametrize(("full", "name", "version"), NIX_SPLITS, ids=[c[0] for c in NIX_SPLITS])
def test_names_split_as_nix_splits_them(full: str, name: str, version: str) -> None:
    assert split_name(full) == (name, version)
    parsed = parse_store_path(f"/nix/store/{HASH}-{full}")
    assert (parsed.hash, parsed.name, parsed.version) == (HASH, name, version)


def drv_name(s: str) -> tuple[str, str]:
    """Nix's DrvName constructor (src/libexpr/names.cc), transcribed loop for loop."""
    for i in range(len(s)):
        if s[i] == "-" and i + 1 < len(s) and s[i + 1] not in ascii_letters:  # C-locale isalpha
            return s[:i], s[i + 1 :]
    return s, ""


@given(st.text(alphabet="abAB019-._+?=", min_size=1, max_size=30))
def test_the_split_is_the_loop_nix_runs(name: str) -> None:
    assert split_name(name) == drv_name(name)


def test_a_store_path_keeps_its_path() -> None:
    path = f"/nix/store/{HASH}-openssl-3.0.13"
    assert parse_store_path(path).path == path


@pytest.mark.parametrize(
    "text",
    [
        "/usr/lib/libssl.so.3",
        f"/gnu/store/{HASH}-openssl-3.0.13",
        f"nix/store/{HASH}-openssl-3.0.13",
        f"/nix/store/{HASH}-openssl-3.0.13/lib/libssl.so",
        f"/nix/store/{HASH}",
        f"/nix/store/{HASH}-",
        f"/nix/store/{HASH[:31]}-openssl-3.0.13",
        "/nix/store/9l96c3rl7wzzv9xkxj2ypgxc5kkwqfne-openssl",  # e is not Nix base32
        "/nix/store/9l96c3rl7wzzv9xkxj2ypgxc5kkwqfnt-openssl",  # nor is t
        f"/nix/store/{HASH.upper()}-openssl",
        f"/nix/store/{HASH}-open ssl",
        f"/nix/store/{HASH}-openssl@3",
        f"/nix/store/{HASH}-" + "x" * 212,
        f"/nix/store/{HASH}-openssl-3.0.13\n",
        "",
    ],
)
def test_what_is_not_a_store_path_is_refused_saying_what_one_is(text: str) -> None:
    with pytest.raises(NotAStorePath, match=r"is not a Nix store path \(/nix/store/<32-char"):
        parse_store_path(text)


def test_the_longest_name_nix_allows_is_accepted() -> None:
    assert parse_store_path(f"/nix/store/{HASH}-" + "x" * 211).name == "x" * 211


@pytest.mark.parametrize(
    "hash_",
    [
        "sha256-JKeS1uluPyoNzbGFmQ7kx6h9fu//om+UD3qPAwOSqqM=",  # narHash as Nix 2.8 prints it
        "sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh",  # older Nix, base32
        HASH,  # a store path's hash part (nix-store -qR has no narHash)
        "sha256:" + "ab" * 32,  # a CycloneDX SHA-256
    ],
)
def test_every_hash_an_importer_stores_fits_the_event_model(hash_: str) -> None:
    component = Component(name="openssl", version="3.0.13", purl="pkg:nix/openssl", hash=hash_)
    assert component.hash == hash_
