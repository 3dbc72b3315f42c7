"""Package name, version and output of Nix store paths, checked against Nix itself."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.chain import content_digest
from ledger.events import BuildRecorded, Component, parse_event
from ledger.importers.storepath import NotAStorePath
from ledger.nixnames import (
    OUTPUT_NAMES,
    NotAnOutput,
    derivation_name,
    parse_drv_name,
    split_output,
)
from tests.unit.test_storepath import NIX_SPLITS

# More names for the check against Nix, beside test_storepath's: outputs of split
# packages, and versions that end in something that looks like an output.
MORE_NAMES = [
    "openssl-3.0.13",
    "openssl-3.0.13-bin",
    "openssl-3.0.13-man",
    "openssl-1.1.1w-dev",
    "glibc-2.39-52-bin",
    "gcc-13.2.0-lib",
    "gcc-13.2.0-libgcc",
    "libxml2-2.12.7-py",
    "zlib-1.3.1-static",
    "systemd-255.6-debug",
    "util-linux-2.39.4-login",
    "python3.12-requests-2.32.3-dist",
    "curl-8.7.1-devdoc",
    "api-config-dev",
    "bash--dev",
    "foo-1.0-devel",
    "kitty-0.35.2-terminfo",
    "hello",
    "nix-2.8.0-doc",
    "foo-1-",
    "foo--",
]
NAMES = [name for name, _, _ in NIX_SPLITS] + MORE_NAMES


def nix_instantiate() -> str:
    found = shutil.which("nix-instantiate")
    if found is None:
        pytest.fail("nix-instantiate is not installed (Debian's nix-bin: tools/system-deps.sh)")
    return found


def nix_eval(expression: str) -> object:
    """What Nix evaluates ``expression`` to, strictly, as JSON; in read-only mode, so
    no derivation is written to the store."""
    result = subprocess.run(
        [
            nix_instantiate(),
            "--eval",
            "--strict",
            "--json",
            "--readonly-mode",
            "--expr",
            expression,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def nix_list(items: list[str]) -> str:
    # Nix string literals escape " and \ as JSON does, and a name has neither; a name
    # has no $ either, so nothing is interpolated.
    return "[ " + " ".join(json.dumps(item) for item in items) + " ]"


def test_parse_drv_name_is_nixs_own() -> None:
    answers = nix_eval(f"map builtins.parseDrvName {nix_list(NAMES)}")
    assert answers == [{"name": n, "version": v} for n, v in map(parse_drv_name, NAMES)]
    assert len(NAMES) >= 50


# (derivation name, its outputs): real Nix names each output's store path.
DERIVATIONS = [
    ("openssl-3.0.13", ["out", "bin", "dev", "man"]),
    ("openssl-1.1.1w", ["out", "dev"]),
    ("glibc-2.38-44", ["out", "bin", "dev", "static", "debug"]),
    ("api-config", ["out", "dev"]),
    ("gcc-13.2.0", ["out", "man", "info", "lib", "libgcc", "checksum"]),
    ("foo-1.0-dev", ["out", "doc"]),
    ("python3.11-cryptography-41.0.3", ["out", "dist"]),
]


def test_output_paths_split_back_into_their_derivation_and_output() -> None:
    expression = "map (d: map (o: { drv = d.drvPath; path = d.${o}.outPath; }) d.outputs) " + (
        "[ "
        + " ".join(
            f'(derivation {{ name = "{name}"; outputs = {nix_list(outputs)}; '
            'builder = "/bin/sh"; system = "x86_64-linux"; })'
            for name, outputs in DERIVATIONS
        )
        + " ]"
    )
    answers = nix_eval(expression)
    assert isinstance(answers, list)
    for (name, outputs), paths in zip(DERIVATIONS, answers, strict=True):
        for output, path in zip(outputs, paths, strict=True):
            assert derivation_name(path["drv"]) == name
            path_name = path["path"][len("/nix/store/") + 33 :]
            assert path_name == (name if output == "out" else f"{name}-{output}")
            assert split_output(path_name, deriver_name=name) == (*parse_drv_name(name), output)


@pytest.mark.parametrize(
    ("path_name", "deriver_name", "expected"),
    [
        ("openssl-3.0.13", "openssl-3.0.13", ("openssl", "3.0.13", "out")),
        ("openssl-3.0.13-dev", "openssl-3.0.13", ("openssl", "3.0.13", "dev")),
        ("openssl-3.0.13-bin", "openssl-3.0.13", ("openssl", "3.0.13", "bin")),
        ("glibc-2.38-44", "glibc-2.38-44", ("glibc", "2.38-44", "out")),
        ("api-config-dev", "api-config", ("api-config", "", "dev")),
        # Any output name, not only the usual ones, with the deriver.
        ("foo-1.0-shell_integration", "foo-1.0", ("foo", "1.0", "shell_integration")),
        # The deriver is certain: a one-output package whose version ends in -dev.
        ("foo-1.0-dev", "foo-1.0-dev", ("foo", "1.0-dev", "out")),
        # Without one, a known output name at the end of the version is the output.
        ("openssl-3.0.13", None, ("openssl", "3.0.13", "out")),
        ("openssl-3.0.13-dev", None, ("openssl", "3.0.13", "dev")),
        ("openssl-3.0.13-man", None, ("openssl", "3.0.13", "man")),
        ("glibc-2.38-44", None, ("glibc", "2.38-44", "out")),
        ("gcc-13.2.0-libgcc", None, ("gcc", "13.2.0", "libgcc")),
        (
            "python3.11-cryptography-41.0.3-dist",
            None,
            ("python3.11-cryptography", "41.0.3", "dist"),
        ),
        ("foo-1.0-devel", None, ("foo", "1.0-devel", "out")),
        ("linux-6.6.30-modules", None, ("linux", "6.6.30-modules", "out")),
        ("source", None, ("source", "", "out")),
        # Unversioned: nothing tells an output from a part of the name.
        ("api-config-dev", None, ("api-config-dev", "", "out")),
        # The output is cut off the derivation's name, which is then parsed as Nix does.
        ("bash--dev", None, ("bash-", "", "dev")),
        ("gcc-1-2-lib", None, ("gcc", "1-2", "lib")),
    ],
)
def test_split_output(
    path_name: str, deriver_name: str | None, expected: tuple[str, str, str]
) -> None:
    assert split_output(path_name, deriver_name=deriver_name) == expected


@pytest.mark.parametrize(
    ("path_name", "deriver_name"),
    [
        ("openssl-3.0.13-dev", "openssl-3.0.14"),
        ("openssl-3.0.13-", "openssl-3.0.13"),
        ("openssl-3.0.13-out", "openssl-3.0.13"),  # out is never appended
        ("openssl", "openssl-3.0.13"),
    ],
)
def test_a_path_that_is_no_output_of_its_deriver_is_refused(
    path_name: str, deriver_name: str
) -> None:
    with pytest.raises(
        NotAnOutput, match=f"is not an output of a derivation named '{deriver_name}'"
    ):
        split_output(path_name, deriver_name=deriver_name)


def output_path_name(drv_name: str, output: str) -> str:
    """Nix's outputPathName (src/libstore/derivations.cc)."""
    return drv_name if output == "out" else f"{drv_name}-{output}"


drv_names = st.text(alphabet="abAB019-._+?=", min_size=1, max_size=30)
output_names = st.sampled_from(sorted(OUTPUT_NAMES)) | st.from_regex(
    r"[a-z][a-z0-9_]{0,9}", fullmatch=True
)


@given(drv_names, output_names)
def test_with_the_deriver_every_output_comes_back(drv_name: str, output: str) -> None:
    path_name = output_path_name(drv_name, output)
    assert split_output(path_name, deriver_name=drv_name) == (*parse_drv_name(drv_name), output)


# A name with a version: the version starts at a dash followed by a non-letter. (An
# unversioned d gives d-o, which mostly parses as an unversioned name too: nothing marks
# the output then, as for api-config-dev above.)
versioned_drv_names = st.builds(
    lambda name, first, rest: f"{name}-{first}{rest}",
    drv_names,
    st.sampled_from("019-._+?="),
    st.text(alphabet="abAB019-._+?=", max_size=10),
)


@given(versioned_drv_names, st.sampled_from(sorted(OUTPUT_NAMES - {"out"})))
def test_without_it_a_usual_output_of_a_versioned_package_comes_back(
    drv_name: str, output: str
) -> None:
    assert parse_drv_name(drv_name)[1]
    path_name = output_path_name(drv_name, output)
    assert split_output(path_name, deriver_name=None) == (*parse_drv_name(drv_name), output)


def test_derivation_name() -> None:
    assert derivation_name("/nix/store/jf5gcirh7p0bv3z2bgi8wlzwmpnfsfl5-openssl-3.0.13.drv") == (
        "openssl-3.0.13"
    )
    with pytest.raises(NotAnOutput, match=r"is not a derivation \(a store path ending in .drv\)"):
        derivation_name("/nix/store/jf5gcirh7p0bv3z2bgi8wlzwmpnfsfl5-openssl-3.0.13")
    with pytest.raises(NotAStorePath):
        derivation_name("openssl-3.0.13.drv")


# --- the output field in the event form ----------------------------------------------

OLD_BUILD = {
    "kind": "build_recorded",
    "event_id": "2c6f0d0e-8a51-4d6c-9b1e-0f5b1d0c7a11",
    "env": "production",
    "actor": "ci@build",
    "occurred_at": "2026-03-11T14:10:00Z",
    "build_id": "9l96c3rl7wzzv9xkxj2ypgxc5kkwqfna",
    "service": "api",
    "version": "2.4.1",
    "artifact": "/nix/store/9l96c3rl7wzzv9xkxj2ypgxc5kkwqfna-api-2.4.1",
    "closure": [
        {
            "name": "openssl",
            "version": "3.0.13-dev",
            "store_path": "/nix/store/3v93xnhp0fdmbdrfvzpmbwpx84gndvrm-openssl-3.0.13-dev",
            "hash": "sha256-2i0LpmfvWubZm9q5oyCUYFLi822UkI1AM0BduiFSR/s=",
        },
        {"name": "requests", "version": "2.34.2", "purl": "pkg:pypi/requests@2.34.2"},
    ],
}
# content_digest of OLD_BUILD's JSON form as the models gave it before `output` existed.
OLD_DIGEST = "6dc9f193edd828670a32c97c2ebe7a47e78fe56af2c99b403c05f9e8d5144c08"


def test_an_event_without_outputs_keeps_its_json_form_and_digest() -> None:
    form = parse_event(json.dumps(OLD_BUILD)).model_dump(mode="json")
    assert all("output" not in component for component in form["closure"])
    assert content_digest(form) == OLD_DIGEST
    event = parse_event(json.dumps(OLD_BUILD))
    assert isinstance(event, BuildRecorded)
    assert '"output"' not in event.model_dump_json()


def test_an_output_is_in_the_json_form_and_comes_back() -> None:
    component = Component(
        name="openssl", version="3.0.13", output="dev", store_path="/nix/store/x-openssl"
    )
    form = component.model_dump(mode="json")
    assert form == {
        "name": "openssl",
        "version": "3.0.13",
        "output": "dev",
        "store_path": "/nix/store/x-openssl",
        "purl": None,
        "hash": None,
    }
    assert Component.model_validate_json(json.dumps(form)) == component
    # Null is the same as left out.
    form["output"] = None
    assert "output" not in Component.model_validate_json(json.dumps(form)).model_dump()
