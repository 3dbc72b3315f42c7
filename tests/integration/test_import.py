"""``ledger import …`` on the real tools' output (tests/fixtures/), on both backends.

The fixtures come from tests/fixtures/make_fixtures.sh: Nix 2.8 built the closure of
api-2.4.1 (glibc, zlib, openssl, curl, python3.11-cryptography, api-config), a profile
of three generations, and gateway-3.1.0 and billing-1.4.0, whose closures hold the
outputs of two multi-output openssl derivations; cyclonedx-py described a small Python
environment. Variants for refusals are cut or edited from those files here.
"""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.main import root
from ledger.application import Ledger
from ledger.importers import nix
from ledger.store import locate
from projections.runner import Views

FIXTURES = Path(__file__).parents[1] / "fixtures"
PATH_INFO = FIXTURES / "nix" / "path-info.json"
PATH_INFO_OBJECT = FIXTURES / "nix" / "path-info-object.json"
STORE_QR = FIXTURES / "nix" / "store-qR.txt"
PROFILE_TAR = FIXTURES / "nix" / "profile.tar"
PROFILE_PATH_INFO = FIXTURES / "nix" / "profile-path-info.json"
MULTI_PATH_INFO = FIXTURES / "nix" / "multi-output-path-info.json"
MULTI_PATH_INFO_OBJECT = FIXTURES / "nix" / "multi-output-path-info-object.json"
MULTI_STORE_QR = FIXTURES / "nix" / "multi-output-store-qR.txt"
MULTI_ROOT_STORE_QR = FIXTURES / "nix" / "multi-root-store-qR.txt"
SBOM = FIXTURES / "cyclonedx" / "environment.cdx.json"
SBOMS = FIXTURES / "sboms"

API_2_4_1 = "/nix/store/9l96c3rl7wzzv9xkxj2ypgxc5kkwqfna-api-2.4.1"
API_2_4_2 = "/nix/store/kb7hjyjdaj4z9b7sdrbwj40gcyg8iisp-api-2.4.2"
API_2_5_0 = "/nix/store/cxq7cn8h5k9y1ykikb9m2b1wasqlwz21-api-2.5.0"
OPENSSL = "/nix/store/h8jz8q02wmsbrqsm33favafsi82swvls-openssl-3.0.13"
GLIBC = "/nix/store/39a6g9bgxa8iylyi3ablx41q8qw3rimr-glibc-2.38-44"
CRYPTOGRAPHY = "/nix/store/b2clmh34z9jds63365jdbls53cyczsy2-python3.11-cryptography-41.0.3"
CLOSURE_2_4_1 = [  # (name, version), sorted by store path as the importer records them
    ("glibc", "2.38-44"),
    ("api", "2.4.1"),
    ("python3.11-cryptography", "41.0.3"),
    ("api-config", ""),
    ("openssl", "3.0.13"),
    ("curl", "8.6.0"),
    ("zlib", "1.3.1"),
]
OPENSSL_NAR_HASH = "sha256-4/AZj4P2wAMISYEl4z173ylHnDkaMe8V7pC6hkxJ+6Y="
REGISTERED_2_4_1 = "2026-11-25T02:18:53Z"  # registrationTime 1795573133
GENERATION_DATES = ["2026-03-02T09:15:00Z", "2026-03-09T14:40:00Z", "2026-03-16T08:05:00Z"]
DIGEST = "sha256:" + "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

# The multi-output closures: openssl-3.0.13 (outputs out bin dev man) and
# openssl-1.1.1w (out dev). gateway needs 3.0.13's out, bin and dev and 1.1.1w's out;
# billing needs 1.1.1w's dev and 3.0.13's man.
GATEWAY = "/nix/store/3c759mpz79z8jascjsxdi3mz53l0kq61-gateway-3.1.0"
BILLING = "/nix/store/gibg0yxjl81ziw894i7nh3gq7wz3jgkz-billing-1.4.0"
OPENSSL_3 = "/nix/store/6bqd20ipg9va4dyybb5bbfnn36jmhpxs-openssl-3.0.13"
OPENSSL_3_BIN = "/nix/store/wgq21kh5ns7h7c40k4sqp9ixkhsy5gq4-openssl-3.0.13-bin"
OPENSSL_3_DEV = "/nix/store/3v93xnhp0fdmbdrfvzpmbwpx84gndvrm-openssl-3.0.13-dev"
OPENSSL_3_MAN = "/nix/store/2ki0imrhn23r00v5kdcv417sp84hyh4v-openssl-3.0.13-man"
OPENSSL_1 = "/nix/store/c1wdpn0lvw32akmr8zj2jxb40scch49g-openssl-1.1.1w"
OPENSSL_1_DEV = "/nix/store/8b1nvc4z1s3ib01d64p6idp97435h60x-openssl-1.1.1w-dev"
OPENSSL_OUTPUTS = {  # store path: (name, version, output)
    OPENSSL_3: ("openssl", "3.0.13", "out"),
    OPENSSL_3_BIN: ("openssl", "3.0.13", "bin"),
    OPENSSL_3_DEV: ("openssl", "3.0.13", "dev"),
    OPENSSL_3_MAN: ("openssl", "3.0.13", "man"),
    OPENSSL_1: ("openssl", "1.1.1w", "out"),
    OPENSSL_1_DEV: ("openssl", "1.1.1w", "dev"),
}
GATEWAY_CLOSURE = {  # store path: (name, version, output), every path of the closure
    GLIBC: ("glibc", "2.38-44", "out"),
    OPENSSL_3: OPENSSL_OUTPUTS[OPENSSL_3],
    OPENSSL_3_BIN: OPENSSL_OUTPUTS[OPENSSL_3_BIN],
    OPENSSL_3_DEV: OPENSSL_OUTPUTS[OPENSSL_3_DEV],
    OPENSSL_1: OPENSSL_OUTPUTS[OPENSSL_1],
    GATEWAY: ("gateway", "3.1.0", "out"),
}
BILLING_CLOSURE = {
    GLIBC: ("glibc", "2.38-44", "out"),
    OPENSSL_3_MAN: OPENSSL_OUTPUTS[OPENSSL_3_MAN],
    OPENSSL_1: OPENSSL_OUTPUTS[OPENSSL_1],
    OPENSSL_1_DEV: OPENSSL_OUTPUTS[OPENSSL_1_DEV],
    BILLING: ("billing", "1.4.0", "out"),
}
REGISTERED_GATEWAY = "2026-12-06T02:40:11Z"  # registrationTime 1796524811
REGISTERED_BILLING = "2026-12-06T02:40:15Z"  # registrationTime 1796524815


def run(url: str, *args: str, input: bytes | None = None) -> Result:
    return CliRunner().invoke(root, ["--ledger", url, *args], input=input)


@pytest.fixture
def url(ledger_url: str) -> str:
    assert run(ledger_url, "init").exit_code == 0
    return ledger_url


def imported(url: str, *args: str, input: bytes | None = None) -> dict[str, Any]:
    result = run(url, "import", *args, "--json", input=input)
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.output)
    return report


def events(url: str) -> list[dict[str, Any]]:
    return [fact.event for fact in Ledger(locate(url)).facts()]


def refused(url: str, *args: str, input: bytes | None = None) -> str:
    """The message of an import that must be refused, having recorded nothing."""
    before = Ledger(locate(url)).count()
    result = run(url, "import", *args, "--env", "production", input=input)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ")
    assert "nothing was recorded from it" in result.output
    assert "Traceback" not in result.output
    assert Ledger(locate(url)).count() == before
    return result.output


def profile(tmp_path: Path) -> Path:
    """The profile archive unpacked, symlinks with their own mtimes (lutimes) kept."""
    folder = tmp_path / "profiles"
    folder.mkdir()
    with tarfile.open(PROFILE_TAR) as archive:
        for member in archive.getmembers():
            assert member.issym()
            link = folder / member.name
            link.symlink_to(member.linkname)
            os.utime(link, (member.mtime, member.mtime), follow_symlinks=False)
    return folder / "api"


def edited(path: Path, change: Any) -> bytes:
    """A fixture's JSON after ``change(document)``."""
    document = json.loads(path.read_bytes())
    change(document)
    return json.dumps(document, indent=2).encode()


# --- nix path-info --json ------------------------------------------------------------


def test_path_info_records_the_root_with_its_whole_closure(url: str) -> None:
    report = imported(url, "nix-path-info", str(PATH_INFO), "--env", "production")
    assert (report["recorded"], report["already_recorded"]) == (1, 0)
    [build] = report["builds"]
    assert build["build_id"] == "9l96c3rl7wzzv9xkxj2ypgxc5kkwqfna"
    assert (build["service"], build["version"], build["artifact"]) == ("api", "2.4.1", API_2_4_1)
    [event] = events(url)
    assert event["kind"] == "build_recorded"
    assert event["source"] == "import"
    assert event["occurred_at"] == REGISTERED_2_4_1
    assert [(c["name"], c["version"]) for c in event["closure"]] == CLOSURE_2_4_1
    openssl = next(c for c in event["closure"] if c["name"] == "openssl")
    assert openssl == {
        "name": "openssl",
        "version": "3.0.13",
        "output": "out",
        "store_path": OPENSSL,
        "purl": None,
        "hash": OPENSSL_NAR_HASH,
        "references": [0],  # glibc: the closure is sorted by store path
    }
    # The graph: api (index 1) is the root; each path keeps its references.
    assert event["roots"] == [1]
    names = [c["name"] for c in event["closure"]]
    assert {
        c["name"]: sorted(names[i] for i in c.get("references", [])) for c in event["closure"]
    } == {
        "glibc": [],
        "api": ["api-config", "curl", "python3.11-cryptography"],
        "python3.11-cryptography": ["openssl"],
        "api-config": [],
        "openssl": ["glibc"],
        "curl": ["glibc", "openssl", "zlib"],
        "zlib": ["glibc"],
    }


def test_both_forms_nix_prints_give_the_same_builds() -> None:
    from_list = nix.path_info_builds("a", PATH_INFO.read_bytes(), service=None)
    from_object = nix.path_info_builds("b", PATH_INFO_OBJECT.read_bytes(), service=None)
    assert [b.closure for b in from_list] == [b.closure for b in from_object]
    assert [(b.build_id, b.occurred_at, b.roots) for b in from_list] == [
        (b.build_id, b.occurred_at, b.roots) for b in from_object
    ]


def test_re_importing_in_either_form_records_nothing_new(url: str) -> None:
    imported(url, "nix-path-info", str(PATH_INFO), "--env", "production")
    for path in (PATH_INFO, PATH_INFO_OBJECT):
        report = imported(url, "nix-path-info", str(path), "--env", "production")
        assert (report["recorded"], report["already_recorded"]) == (0, 1)
        assert report["builds"][0]["position"] == 1
    assert len(events(url)) == 1


def test_one_build_per_root_and_service_from_the_option(url: str) -> None:
    report = imported(
        url, "nix-path-info", "-", "--env", "staging", "--service", "web",
        input=PROFILE_PATH_INFO.read_bytes(),
    )  # fmt: skip
    builds = {b["artifact"]: b for b in report["builds"]}
    assert set(builds) == {API_2_4_1, API_2_4_2, API_2_5_0}
    assert {b["service"] for b in builds.values()} == {"web"}
    assert {a: b["paths"] for a, b in builds.items()} == {API_2_4_1: 7, API_2_4_2: 7, API_2_5_0: 6}
    closure_2_5_0 = next(e for e in events(url) if e["artifact"] == API_2_5_0)["closure"]
    assert ("openssl", "3.0.14") in {(c["name"], c["version"]) for c in closure_2_5_0}
    assert ("openssl", "3.0.13") not in {(c["name"], c["version"]) for c in closure_2_5_0}


def test_the_builds_view_holds_the_imported_closure_and_nothing_is_active(url: str) -> None:
    imported(url, "nix-path-info", str(PATH_INFO), "--env", "production")
    ledger = Ledger(locate(url))
    views = Views(ledger)
    views.catch_up()
    [build] = views.query("SELECT * FROM builds")
    assert (build["service"], build["version"], build["components"]) == ("api", "2.4.1", 7)
    rows = views.query(
        "SELECT name, version, store_path, hash FROM build_components WHERE build_id = ? "
        "ORDER BY ord",
        ["9l96c3rl7wzzv9xkxj2ypgxc5kkwqfna"],
    )
    assert [(r["name"], r["version"]) for r in rows] == CLOSURE_2_4_1
    assert (OPENSSL, OPENSSL_NAR_HASH) in {(r["store_path"], r["hash"]) for r in rows}
    # Recorded, not deployed: no host runs it yet.
    where = run(url, "where", "openssl", "--json")
    assert where.exit_code == 0, where.output
    assert json.loads(where.output) == []


def test_a_truncated_path_info_file_is_refused_at_the_line_and_column(url: str) -> None:
    cut = PATH_INFO.read_bytes()[:1500]
    message = refused(url, "nix-path-info", "-", input=cut)
    assert "Error: <stdin>: line 1, column " in message
    assert "not valid JSON" in message
    assert "the file ends before the JSON does (truncated?)" in message


def test_a_closure_missing_a_path_is_refused_naming_it(url: str, tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_bytes(
        edited(PATH_INFO, lambda d: d.remove(next(e for e in d if e["path"] == OPENSSL)))
    )
    message = refused(url, "nix-path-info", str(path))
    assert f"{path}: [2]: truncated closure: {CRYPTOGRAPHY} references {OPENSSL}, " in message
    assert "which is not in the file" in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d[3].pop("narHash"), "[3].narHash: missing, or not a string"),
        (lambda d: d[3].update(narHash="md5 !!"), "[3].narHash: expected a hash such as"),
        (lambda d: d[0].update(path="/usr/lib/x"), "[0].path: '/usr/lib/x' is not a Nix store"),
        (
            lambda d: d[1]["references"].append(7),
            "[1].references[4]: not a string",
        ),
        (
            lambda d: d[1]["references"].append("curl-8.6.0"),
            "[1].references[4]: 'curl-8.6.0' is not a Nix store path",
        ),
        (
            lambda d: d[2].update(registrationTime="yesterday"),
            "[2].registrationTime: expected seconds since 1970",
        ),
        (lambda d: d.append(d[0]), f"[7]: {GLIBC} is listed twice (also at [0])"),
        (lambda d: d.clear(), "it holds no store path"),
    ],
)
def test_a_bad_entry_is_refused_with_its_json_path(
    url: str, tmp_path: Path, change: Any, expected: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(edited(PATH_INFO, change))
    assert f"Error: {path}: {expected}" in refused(url, "nix-path-info", str(path)).replace(
        "\n", ""
    )


def test_a_path_newer_nix_reports_as_invalid_is_refused(url: str) -> None:
    data = edited(PATH_INFO_OBJECT, lambda d: d.update({OPENSSL: None}))
    message = refused(url, "nix-path-info", "-", input=data)
    assert f'["{OPENSSL}"]: {OPENSSL} is not valid in the store' in message


# --- nix-store -qR -------------------------------------------------------------------


def test_store_paths_record_the_last_line_as_the_root(url: str) -> None:
    report = imported(
        url, "nix-store", str(STORE_QR), "--env", "staging", "--at", "2026-03-11T14:10:00Z"
    )
    [build] = report["builds"]
    assert (build["artifact"], build["version"], build["paths"]) == (API_2_4_1, "2.4.1", 7)
    [event] = events(url)
    assert event["occurred_at"] == "2026-03-11T14:10:00Z"
    assert [(c["name"], c["version"]) for c in event["closure"]] == CLOSURE_2_4_1
    # No narHash in this output: a component's hash is its store path's hash part.
    assert {c["hash"] for c in event["closure"]} == {
        c["store_path"].removeprefix("/nix/store/")[:32] for c in event["closure"]
    }


def test_store_paths_with_the_root_named_and_re_imported_later(url: str) -> None:
    first = imported(url, "nix-store", str(STORE_QR), "--env", "staging", "--root", API_2_4_1)
    assert (first["builds"][0]["service"], first["builds"][0]["version"]) == ("api", "2.4.1")
    # Without --at the time is "now", so this is other content under the same event id:
    # reported as already recorded, not refused.
    again = imported(url, "nix-store", str(STORE_QR), "--env", "staging")
    assert (again["recorded"], again["already_recorded"]) == (0, 1)
    assert len(events(url)) == 1


def test_a_root_that_is_not_the_last_line_is_refused(url: str) -> None:
    """The file is then another path's closure: curl's own is not cut out of it."""
    curl = "/nix/store/pigy61057ipyi6rkzll9qi5vc9z0i4vg-curl-8.6.0"
    message = refused(url, "nix-store", str(STORE_QR), "--root", curl).replace("\n", "")
    assert f"Error: {STORE_QR}: line 6: --root {curl} is not the last line ({API_2_4_1})" in message


def test_truncated_or_bad_store_path_lines_are_refused_at_their_line(url: str) -> None:
    text = STORE_QR.read_text()
    message = refused(url, "nix-store", "-", input=text[:-20].encode())
    assert "Error: <stdin>: line 7: the file does not end with a newline" in message
    lines = text.splitlines()
    lines[2] = "/nix/store/b2clmh34z9jds63365jdbls53cyczsy2-python3.11 cryptography"
    message = refused(url, "nix-store", "-", input="\n".join([*lines, ""]).encode())
    assert "Error: <stdin>: line 3: '/nix/store/b2clmh34z9jds63365jdbls53cyczsy2-" in message
    message = refused(url, "nix-store", str(STORE_QR), "--root", OPENSSL + "-dev")
    assert f"--root {OPENSSL}-dev is not one of its store paths" in message


# --- nix-profile ---------------------------------------------------------------------


def test_profile_generations_are_builds_dated_by_their_links(url: str, tmp_path: Path) -> None:
    report = imported(url, "nix-profile", str(profile(tmp_path)), "--env", "production")
    assert [(b["artifact"], b["paths"]) for b in report["builds"]] == [
        (API_2_4_1, 1),
        (API_2_4_2, 1),
        (API_2_5_0, 1),
    ]
    recorded = events(url)
    assert [e["occurred_at"] for e in recorded] == GENERATION_DATES
    assert {e["service"] for e in recorded} == {"api"}
    assert recorded[0]["closure"] == [
        {
            "name": "api",
            "version": "2.4.1",
            "output": "out",
            "store_path": API_2_4_1,
            "purl": None,
            "hash": "9l96c3rl7wzzv9xkxj2ypgxc5kkwqfna",
        }
    ]


def test_profile_closures_come_from_path_info(url: str, tmp_path: Path) -> None:
    report = imported(
        url, "nix-profile", str(profile(tmp_path)), "--path-info", str(PROFILE_PATH_INFO),
        "--env", "production",
    )  # fmt: skip
    assert [b["paths"] for b in report["builds"]] == [7, 7, 6]
    first = events(url)[0]
    assert first["occurred_at"] == GENERATION_DATES[0]
    assert [(c["name"], c["version"]) for c in first["closure"]] == CLOSURE_2_4_1
    assert next(c for c in first["closure"] if c["name"] == "openssl")["hash"] == OPENSSL_NAR_HASH
    # With path-info each generation keeps its graph, rooted at its own store path.
    assert [first["closure"][i]["store_path"] for i in first["roots"]] == [API_2_4_1]


def test_a_rolled_back_to_build_is_recorded_once_at_its_first_generation(
    url: str, tmp_path: Path
) -> None:
    link = profile(tmp_path)
    (link.parent / "api-4-link").symlink_to(API_2_4_1)  # what a rollback to gen 1 leaves
    report = imported(url, "nix-profile", str(link), "--env", "production")
    assert [b["artifact"] for b in report["builds"]] == [API_2_4_1, API_2_4_2, API_2_5_0]
    assert events(url)[0]["occurred_at"] == GENERATION_DATES[0]


def test_a_bad_generation_refuses_the_whole_profile(url: str, tmp_path: Path) -> None:
    link = profile(tmp_path)
    (link.parent / "api-3-link").unlink()
    (link.parent / "api-3-link").symlink_to("/home/alice/api")
    message = refused(url, "nix-profile", str(link))
    assert f"Error: {link.parent / 'api-3-link'}: '/home/alice/api' is not a Nix store" in message
    assert not events(url)
    message = refused(url, "nix-profile", str(link.parent / "web"))
    assert "no generations: there is no web-N-link beside it" in message
    (tmp_path / ".nix-profile").symlink_to(link)
    message = refused(url, "nix-profile", str(tmp_path / ".nix-profile"))
    assert f"there is no .nix-profile-N-link beside it in {tmp_path} (it links to {link}" in message


def test_path_info_without_a_generation_is_refused(url: str, tmp_path: Path) -> None:
    message = refused(url, "nix-profile", str(profile(tmp_path)), "--path-info", str(PATH_INFO))
    assert f"{PATH_INFO}: generation 2 ({API_2_4_2}) is not in it" in message


# --- CycloneDX -----------------------------------------------------------------------


def test_an_sbom_is_one_build_of_its_components(url: str) -> None:
    report = imported(
        url, "cyclonedx", str(SBOM), "--env", "production", "--build-id", DIGEST,
        "--at", "2026-03-11T14:10:00Z",
    )  # fmt: skip
    [build] = report["builds"]
    assert (build["service"], build["version"], build["artifact"]) == ("api", "2.4.1", "api@2.4.1")
    assert (build["build_id"], build["paths"]) == (DIGEST, 5)
    [event] = events(url)
    assert event["occurred_at"] == "2026-03-11T14:10:00Z"
    assert [(c["name"], c["version"], c["purl"], c["hash"]) for c in event["closure"]] == [
        ("certifi", "2026.10.19.post1", "pkg:pypi/certifi@2026.10.19.post1", None),
        ("charset-normalizer", "3.5.2", "pkg:pypi/charset-normalizer@3.5.2", None),
        ("idna", "3.20", "pkg:pypi/idna@3.20", None),
        ("requests", "2.34.2", "pkg:pypi/requests@2.34.2", None),
        ("urllib3", "2.8.0", "pkg:pypi/urllib3@2.8.0", None),
    ]
    # The builds view takes components without a hash.
    views = Views(Ledger(locate(url)))
    views.catch_up()
    rows = views.query("SELECT name, purl, hash FROM build_components ORDER BY ord")
    assert [(r["name"], r["hash"]) for r in rows][:2] == [
        ("certifi", None),
        ("charset-normalizer", None),
    ]
    again = imported(url, "cyclonedx", str(SBOM), "--env", "production", "--build-id", DIGEST)
    assert (again["recorded"], again["already_recorded"]) == (0, 1)


ENVIRONMENT_ID = "sbom:3bbd719665e8f17a8243116023a2941b19727a026c680c4bc142d93277b7c373"
"""The id derived from the content of the environment the cyclonedx-py fixtures describe
(a change to base.sbom_build_id's canonical form shows up here first)."""


def test_an_sbom_without_a_digest_is_named_by_its_content(url: str) -> None:
    report = imported(url, "cyclonedx", str(SBOM), "--env", "production")
    [build] = report["builds"]
    assert (build["build_id"], build["paths"], build["new"]) == (ENVIRONMENT_ID, 5, True)
    # The same environment, written by cyclonedx-py as XML of three schema versions, is
    # the same content: the same build, already recorded.
    for version in ("1.4", "1.5", "1.6"):
        path = SBOMS / f"environment-{version}.cdx.xml"
        again = imported(url, "sbom", str(path), "--env", "production")
        assert (again["recorded"], again["builds"][0]["build_id"]) == (0, ENVIRONMENT_ID)
    # --build-id still names the build; then it is another build.
    named = imported(url, "cyclonedx", str(SBOM), "--env", "production", "--build-id", DIGEST)
    assert (named["recorded"], named["builds"][0]["build_id"]) == (1, DIGEST)
    assert [e["build_id"] for e in events(url)] == [ENVIRONMENT_ID, DIGEST]


def test_an_image_sbom_is_named_by_its_digest_with_hashes_and_nested_components(
    url: str,
) -> None:
    def image(document: dict[str, Any]) -> None:
        document["metadata"]["timestamp"] = "2026-03-11T14:10:00Z"
        document["metadata"]["component"]["purl"] = (
            "pkg:oci/api@sha256%3A" + DIGEST[7:] + "?repository_url=registry.internal/api"
        )
        components = document["components"]
        components[3]["hashes"] = [{"alg": "SHA-256", "content": "AB" * 32}]
        components[3]["components"] = [
            {
                "type": "library",
                "name": "chardet",
                "version": "5.2.0",
                "purl": "pkg:pypi/chardet@5.2.0",
            }
        ]
        components.append({"type": "file", "name": "api.conf", "bom-ref": "file-1"})

    report = imported(url, "cyclonedx", "-", "--env", "production", input=edited(SBOM, image))
    [build] = report["builds"]
    assert build["build_id"] == DIGEST
    assert build["artifact"] == f"pkg:oci/api@{DIGEST}?repository_url=registry.internal/api"
    assert report["skipped_components"] == ["api.conf (file-1)"]
    [event] = events(url)
    assert event["occurred_at"] == "2026-03-11T14:10:00Z"
    closure = {c["name"]: c for c in event["closure"]}
    assert closure["requests"]["hash"] == "sha256:" + "ab" * 32
    assert closure["chardet"]["purl"] == "pkg:pypi/chardet@5.2.0"
    assert "api.conf" not in closure


def test_an_sbom_with_nothing_to_name_the_build_needs_the_options(url: str) -> None:
    def without_root(document: dict[str, Any]) -> None:
        document["metadata"].pop("component")
        document["dependencies"] = [
            d for d in document["dependencies"] if d["ref"] != "root-component"
        ]

    data = edited(SBOM, without_root)
    message = refused(url, "cyclonedx", "-", "--build-id", DIGEST, input=data)
    assert "metadata.component: missing" in message
    assert "pass --service and --artifact;" in message
    report = imported(
        url, "cyclonedx", "-", "--env", "production", "--build-id", DIGEST,
        "--service", "api", "--artifact", "registry.internal/api:2.4.1", input=data,
    )  # fmt: skip
    assert report["builds"][0]["artifact"] == "registry.internal/api:2.4.1"
    # Without --build-id the content names it: not the id of the SBOM with its root
    # component, which is part of the content.
    derived = imported(
        url, "cyclonedx", "-", "--env", "production", "--service", "api",
        "--artifact", "registry.internal/api:2.4.1", input=data,
    )  # fmt: skip
    [build] = derived["builds"]
    assert build["new"]
    assert build["build_id"].startswith("sbom:")
    assert build["build_id"] != ENVIRONMENT_ID


def test_a_truncated_sbom_is_refused_at_the_line_and_column(url: str) -> None:
    text = SBOM.read_text()
    cut = text[: text.index('"name": "idna"') + 10]
    line = cut.count("\n") + 1
    message = refused(url, "cyclonedx", "-", "--build-id", DIGEST, input=cut.encode())
    assert f"Error: <stdin>: line {line}, column " in message
    assert "(truncated?)" in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["components"][2].update(type="spaceship"),
            "components[2]: not a valid CycloneDX component: 'spaceship' is not a valid "
            "ComponentType",
        ),
        (
            lambda d: d["components"][1].update(
                components=[{"type": "library", "purl": "pkg:pypi/x@1"}]
            ),
            "components[1].components[0]: not a valid CycloneDX component:",
        ),
        (
            lambda d: d["components"][1].update(hashes=[{"alg": "SHA-256", "content": "abc"}]),
            "components[1].hashes: a SHA-256 is 64 hex digits",
        ),
        (
            lambda d: d["components"][4].update(name=" urllib3"),
            "components[4].name: leading or trailing whitespace is not allowed",
        ),
        (lambda d: d.update(bomFormat="SPDX"), "JSON, but neither a CycloneDX SBOM"),
        (
            lambda d: d.update(bomFormat="SPDX", spdxVersion="SPDX-2.3"),
            "an SPDX document, not a CycloneDX SBOM: import it with `ledger import spdx`",
        ),
        (
            lambda d: d["dependencies"][3]["dependsOn"].append("chardet==5.2.0"),
            "dependencies: ref 'requests==2.34.2', dependsOn 'chardet==5.2.0': no component "
            "has this bom-ref",
        ),
        (
            lambda d: d["dependencies"].append({"ref": "pkg:pypi/six@1.16.0"}),
            "dependencies: ref 'pkg:pypi/six@1.16.0': no component has this bom-ref",
        ),
        (
            lambda d: d.update(components={"name": "certifi"}),
            "not a valid CycloneDX SBOM: There was an AttributeError deserializing JSON",
        ),
    ],
)
def test_a_bad_component_is_refused_with_its_json_path(
    url: str, change: Any, expected: str
) -> None:
    data = edited(SBOM, change)
    message = refused(url, "cyclonedx", "-", "--build-id", DIGEST, input=data)
    assert f"Error: <stdin>: {expected}" in message.replace("\n", "")


def test_the_table_for_people_says_what_was_recorded(url: str) -> None:
    result = run(url, "import", "nix-path-info", str(PATH_INFO), "--env", "production")
    assert result.exit_code == 0, result.output
    assert "9l96c3rl7wzzv9xkxj2ypgxc5kkwqfna" in result.output  # the whole id, not 12 characters
    assert "recorded at position 1" in result.output
    assert "1 build recorded, 0 already recorded." in result.output
    result = run(url, "import", "sbom", str(SBOM), "--env", "production")
    assert result.exit_code == 0, result.output
    assert f"  {ENVIRONMENT_ID}  " in result.output


# --- multi-output packages -----------------------------------------------------------


def closure_of(event: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {c["store_path"]: (c["name"], c["version"], c["output"]) for c in event["closure"]}


@pytest.mark.parametrize(
    "fixture", [MULTI_PATH_INFO, MULTI_PATH_INFO_OBJECT], ids=["list", "object"]
)
def test_path_info_records_each_output_as_its_package_by_the_deriver(
    url: str, fixture: Path
) -> None:
    report = imported(url, "nix-path-info", str(fixture), "--env", "production")
    assert [(b["service"], b["version"], b["artifact"], b["paths"]) for b in report["builds"]] == [
        ("gateway", "3.1.0", GATEWAY, 6),
        ("billing", "1.4.0", BILLING, 5),
    ]
    gateway, billing = events(url)
    assert (gateway["occurred_at"], billing["occurred_at"]) == (
        REGISTERED_GATEWAY,
        REGISTERED_BILLING,
    )
    # Two openssl versions in one closure, three outputs of one of them.
    assert closure_of(gateway) == GATEWAY_CLOSURE
    assert closure_of(billing) == BILLING_CLOSURE
    recorded = {**closure_of(gateway), **closure_of(billing)}
    assert {path: recorded[path] for path in OPENSSL_OUTPUTS} == OPENSSL_OUTPUTS
    dev = next(c for c in gateway["closure"] if c["store_path"] == OPENSSL_3_DEV)
    assert dev == {
        "name": "openssl",
        "version": "3.0.13",
        "output": "dev",
        "store_path": OPENSSL_3_DEV,
        "purl": None,
        "hash": "sha256-5LDAFl8UnsSm0bvfBrMtxNYYufRYTfieRfrC9zguRDM=",
        "references": [3, 5],  # its out and bin outputs, by closure index
    }
    assert [gateway["closure"][i]["store_path"] for i in dev["references"]] == [
        OPENSSL_3,
        OPENSSL_3_BIN,
    ]


def test_the_deriver_decides_not_the_name(url: str) -> None:
    """A derivation named openssl-3.0.13-dev has one output, out, at …-openssl-3.0.13-dev."""

    def one_output_package(document: list[dict[str, Any]]) -> None:
        entry = next(e for e in document if e["path"] == OPENSSL_3_DEV)
        entry["deriver"] = "/nix/store/jf5gcirh7p0bv3z2bgi8wlzwmpnfsfl5-openssl-3.0.13-dev.drv"
        entry = next(e for e in document if e["path"] == OPENSSL_1_DEV)
        del entry["deriver"]  # a path no derivation built: its name says what it is

    imported(
        url, "nix-path-info", "-", "--env", "production",
        input=edited(MULTI_PATH_INFO, one_output_package),
    )  # fmt: skip
    gateway, billing = events(url)
    assert closure_of(gateway)[OPENSSL_3_DEV] == ("openssl", "3.0.13-dev", "out")
    assert closure_of(billing)[OPENSSL_1_DEV] == ("openssl", "1.1.1w", "dev")


@pytest.mark.parametrize(
    ("deriver", "expected"),
    [
        (
            "/nix/store/jf5gcirh7p0bv3z2bgi8wlzwmpnfsfl5-openssl-3.0.14.drv",
            "'openssl-3.0.13-dev' is not an output of a derivation named 'openssl-3.0.14'",
        ),
        (
            "/nix/store/jf5gcirh7p0bv3z2bgi8wlzwmpnfsfl5-openssl-3.0.13",
            "/nix/store/jf5gcirh7p0bv3z2bgi8wlzwmpnfsfl5-openssl-3.0.13 is not a derivation "
            "(a store path ending in .drv)",
        ),
        ("openssl-3.0.13.drv", "'openssl-3.0.13.drv' is not a Nix store path"),
        (7, "not a string"),
    ],
)
def test_a_deriver_that_does_not_fit_is_refused(url: str, deriver: Any, expected: str) -> None:
    def change(document: list[dict[str, Any]]) -> None:
        document[3]["deriver"] = deriver

    assert json.loads(MULTI_PATH_INFO.read_bytes())[3]["path"] == OPENSSL_3_DEV
    message = refused(url, "nix-path-info", "-", input=edited(MULTI_PATH_INFO, change))
    assert f"Error: <stdin>: [3].deriver: {expected}" in message.replace("\n", "")


def test_store_paths_without_derivers_give_the_outputs_by_name(url: str) -> None:
    report = imported(
        url, "nix-store", str(MULTI_STORE_QR), "--env", "production",
        "--at", "2026-03-11T14:10:00Z",
    )  # fmt: skip
    [build] = report["builds"]
    assert (build["service"], build["version"], build["artifact"]) == ("gateway", "3.1.0", GATEWAY)
    [event] = events(url)
    assert closure_of(event) == GATEWAY_CLOSURE
    # The same outputs as the deriver gives in path-info.
    from_path_info = nix.path_info_builds("a", MULTI_PATH_INFO.read_bytes(), service=None)[0]
    assert closure_of(event) == {
        c.store_path: (c.name, c.version, c.output) for c in from_path_info.closure
    }


def test_a_root_output_is_a_build_of_its_package(url: str) -> None:
    report = imported(
        url, "nix-store", "-", "--env", "production",
        input=f"{OPENSSL_3}\n{OPENSSL_3_BIN}\n".encode(),
    )  # fmt: skip
    [build] = report["builds"]
    assert (build["service"], build["version"], build["artifact"]) == (
        "openssl",
        "3.0.13",
        OPENSSL_3_BIN,
    )


def test_re_importing_multi_output_closures_records_nothing_new(url: str) -> None:
    imported(url, "nix-path-info", str(MULTI_PATH_INFO), "--env", "production")
    imported(url, "nix-store", str(MULTI_STORE_QR), "--env", "staging")
    before = events(url)
    assert len(before) == 3
    for args in (
        ("nix-path-info", str(MULTI_PATH_INFO), "--env", "production"),
        ("nix-path-info", str(MULTI_PATH_INFO_OBJECT), "--env", "production"),
        ("nix-store", str(MULTI_STORE_QR), "--env", "staging"),
    ):
        report = imported(url, *args)
        assert report["recorded"] == 0
        assert report["already_recorded"] == len(report["builds"])
    assert events(url) == before


# --- nix-store -qR of several roots --------------------------------------------------


def test_the_closure_of_several_roots_is_refused_naming_both(url: str) -> None:
    lines = MULTI_ROOT_STORE_QR.read_text().splitlines()
    assert (lines[-1], lines.index(GATEWAY) + 1) == (BILLING, 7)  # as nix-store -qR printed it
    result = run(
        url, "import", "nix-store", str(MULTI_ROOT_STORE_QR), "--env", "production",
        "--root", GATEWAY,
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    message = result.output.replace("\n", "")
    assert message.startswith(
        f"Error: {MULTI_ROOT_STORE_QR}: line 7: --root {GATEWAY} is not the last line "
        f"({BILLING}), where nix-store -qR prints the path it was asked about: the file looks "
        "like the closure of several roots"
    )
    assert f"give nix-store -qR {GATEWAY} alone, or nix path-info --json --recursive {GATEWAY}" in (
        message
    )
    assert message.endswith("; nothing was recorded from it")
    assert events(url) == []
    assert Ledger(locate(url)).count() == 0


def test_the_closure_of_several_roots_cannot_be_told_without_a_root(url: str) -> None:
    """Documented (docs/importers.md): without references, the plain list of two closures
    looks like one closure of its last line. Only --root naming another line shows it."""
    report = imported(url, "nix-store", str(MULTI_ROOT_STORE_QR), "--env", "production")
    [build] = report["builds"]
    assert (build["artifact"], build["paths"]) == (BILLING, 9)


# --- SBOMs as the tools write them: CycloneDX XML, SPDX, told apart by content -------

IMAGE_DIGEST = "sha256:b2af04b4a64e7a0005310489135dd7423c7ed73e2b87d10f6104a75fdaad3e6b"


def graph_of(event: dict[str, Any]) -> tuple[list[str], dict[str, list[str]]]:
    """The roots' names and each component's references' names."""
    names = [c["name"] for c in event["closure"]]
    return (
        [names[i] for i in event.get("roots", [])],
        {c["name"]: [names[i] for i in c.get("references", [])] for c in event["closure"]},
    )


def test_cyclonedx_xml_records_what_the_json_records(url: str) -> None:
    from_json = imported(url, "cyclonedx", str(SBOM), "--env", "production", "--build-id", DIGEST)
    from_xml = imported(
        url, "cyclonedx", str(SBOMS / "environment-1.5.cdx.xml"), "--env", "production",
        "--build-id", DIGEST,
    )  # fmt: skip
    assert (from_json["recorded"], from_xml["already_recorded"]) == (1, 1)
    [event] = events(url)
    assert graph_of(event) == (
        ["requests"],
        {
            "certifi": [],
            "charset-normalizer": [],
            "idna": [],
            "requests": ["certifi", "charset-normalizer", "idna", "urllib3"],
            "urllib3": [],
        },
    )


@pytest.mark.parametrize(
    ("fixture", "command"),
    [
        ("image-syft.spdx.json", "spdx"),
        ("image-syft.spdx", "spdx"),
        ("image-syft.spdx.json", "sbom"),
        ("image-syft.spdx", "sbom"),
    ],
)
def test_an_spdx_image_is_one_build_with_its_graph(url: str, fixture: str, command: str) -> None:
    report = imported(url, command, "-", "--env", "staging", input=(SBOMS / fixture).read_bytes())
    [build] = report["builds"]
    assert (build["service"], build["build_id"], build["paths"]) == (
        "registry.internal/api", IMAGE_DIGEST, 9,
    )  # fmt: skip
    assert report["skipped_components"] == []
    [event] = events(url)
    assert event["occurred_at"] == "2026-03-11T14:10:00Z"
    roots, references = graph_of(event)
    assert roots == ["registry.internal/api"]
    assert references["libcurl"] == [
        "musl",
        "zlib",
        "libcrypto3",
        "libssl3",
        "ca-certificates-bundle",
    ]
    views = Views(Ledger(locate(url)))
    views.catch_up()
    rows = views.query(
        "SELECT ord, reference FROM build_references WHERE build_id = ? AND ord = -1",
        [IMAGE_DIGEST],
    )
    assert [(r["ord"], r["reference"]) for r in rows] == [(-1, 8)]


def test_the_spdx_specification_example_skips_packages_without_a_purl(url: str) -> None:
    report = imported(url, "sbom", str(SBOMS / "SPDXTagExample-v2.3.spdx"), "--env", "staging")
    assert report["skipped_components"] == [
        "glibc 2.11.1 (SPDXRef-Package)",
        "Apache Commons Lang (SPDXRef-fromDoap-1)",
        "Saxon 8.8 (SPDXRef-Saxon)",
    ]
    [event] = events(url)
    assert (event["service"], event["version"]) == ("glibc", "2.11.1")
    assert [c["purl"] for c in event["closure"]] == ["pkg:maven/org.apache.jena/apache-jena@3.12.0"]
    assert "roots" not in event  # recorded without a graph
    again = imported(url, "sbom", str(SBOMS / "SPDXJSONExample-v2.3.spdx.json"), "--env", "staging")
    assert (again["recorded"], again["already_recorded"]) == (0, 1)


def test_a_file_in_no_sbom_format_is_refused_naming_the_formats(url: str) -> None:
    message = refused(url, "sbom", str(STORE_QR)).replace("\n", "")
    assert message.startswith(
        f"Error: {STORE_QR}: not an SBOM in a format the ledger reads: CycloneDX JSON or XML "
        "(1.4-1.6), SPDX 2.3 JSON or tag-value"
    )
    message = refused(url, "sbom", str(PATH_INFO)).replace("\n", "")
    assert 'JSON, but neither a CycloneDX SBOM (no "bomFormat": "CycloneDX") nor an SPDX' in message
    message = refused(url, "spdx", str(SBOMS / "image-syft.cdx.xml")).replace("\n", "")
    assert "a CycloneDX SBOM, not an SPDX document: import it with `ledger import cyclonedx`" in (
        message
    )


def test_a_malformed_sbom_is_refused_with_its_position(url: str) -> None:
    text = (SBOMS / "image-syft.spdx").read_text()
    bad = text.replace(
        "Relationship: SPDXRef-Package-apk-musl", "Relationship: SPDXRef-Package-apk-mus", 1
    )
    message = refused(url, "sbom", "-", input=bad.encode()).replace("\n", "")
    assert "Error: <stdin>: relationship SPDXRef-Package-apk-mus" in message
    assert "is not an element of the document" in message
    xml = (SBOMS / "image-syft.cdx.xml").read_text()
    message = refused(url, "sbom", "-", input=xml[: len(xml) // 2].encode()).replace("\n", "")
    assert "Error: <stdin>: line " in message
    assert "not well-formed XML" in message
