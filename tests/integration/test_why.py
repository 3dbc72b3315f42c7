"""``ledger why BUILD PACKAGE`` on builds imported from the real tools' output, on both
backends: the chains follow the graph each importer kept (nix path-info references,
CycloneDX dependencies, SPDX relationships), and every question it cannot answer is an
error that says why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.main import LedgerGroup, root
from cli.why import why
from ledger.application import Ledger
from ledger.store import locate
from projections.runner import Views

FIXTURES = Path(__file__).parents[1] / "fixtures"
MULTI_PATH_INFO = FIXTURES / "nix" / "multi-output-path-info.json"
STORE_QR = FIXTURES / "nix" / "store-qR.txt"
SBOMS = FIXTURES / "sboms"
CDX_JSON = FIXTURES / "cyclonedx" / "environment.cdx.json"
GATEWAY = "3c759mpz79z8jascjsxdi3mz53l0kq61"
IMAGE = "sha256:b2af04b4a64e7a0005310489135dd7423c7ed73e2b87d10f6104a75fdaad3e6b"
ENVIRONMENT = "sha256:" + "9f" * 32

# `ledger` with `why` added, whether or not cli/main.py lists it in COMMANDS yet; a copy,
# so that tests walking `root`'s commands (the docs tests) see only what it declares.
LEDGER = LedgerGroup(
    name="ledger",
    callback=root.callback,
    params=root.params,
    commands={"why": why},
    context_settings=root.context_settings,
)


def run(url: str, *args: str, input: bytes | None = None) -> Result:
    return CliRunner().invoke(LEDGER, ["--ledger", url, *args], input=input)


@pytest.fixture
def url(ledger_url: str) -> str:
    assert run(ledger_url, "init").exit_code == 0
    for args in (
        ("nix-path-info", str(MULTI_PATH_INFO)),
        ("nix-store", str(STORE_QR)),
        ("sbom", str(SBOMS / "image-syft.spdx")),
        ("sbom", str(SBOMS / "environment-1.5.cdx.xml"), "--build-id", ENVIRONMENT),
    ):
        result = run(ledger_url, "import", *args, "--env", "production")
        assert result.exit_code == 0, result.output
    # On PostgreSQL the views are the runner's to keep up (`ledger project --follow`).
    assert run(ledger_url, "project").exit_code == 0
    return ledger_url


def answer(url: str, *args: str) -> dict[str, Any]:
    result = run(url, "why", *args, "--json")
    assert result.exit_code == 0, result.output
    found: dict[str, Any] = json.loads(result.output)
    return found


def chains(found: dict[str, Any]) -> dict[str, list[str] | None]:
    return {
        p["version"]: None if p["path"] is None else [step["label"] for step in p["path"]]
        for p in found["paths"]
    }


def refused(url: str, *args: str) -> str:
    result = run(url, "why", *args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ")
    assert "Traceback" not in result.output
    return result.output.replace("\n", " ")


def test_a_chain_per_version_the_closure_holds(url: str) -> None:
    found = answer(url, GATEWAY[:8], "openssl")
    assert (found["build_id"], found["service"], found["build_version"]) == (
        GATEWAY, "gateway", "3.1.0",
    )  # fmt: skip
    # gateway refers to openssl 1.1.1w's out and to 3.0.13's dev output directly.
    assert chains(found) == {
        "1.1.1w": ["gateway-3.1.0", "openssl-1.1.1w"],
        "3.0.13": ["gateway-3.1.0", "openssl-3.0.13 (dev)"],
    }
    glibc = answer(url, GATEWAY, "glibc")
    assert chains(glibc) == {"2.38-44": ["gateway-3.1.0", "openssl-3.0.13", "glibc-2.38-44"]}
    [step] = [s for s in glibc["paths"][0]["path"] if s["name"] == "glibc"]
    assert step["store_path"] == "/nix/store/39a6g9bgxa8iylyi3ablx41q8qw3rimr-glibc-2.38-44"


def test_chains_through_sbom_graphs(url: str) -> None:
    # SPDX (tag-value, from syft's JSON): the image CONTAINS every package.
    assert chains(answer(url, "sha256:b2af", "zlib")) == {
        "1.3.1-r1": [f"registry.internal/api-{IMAGE}", "zlib-1.3.1-r1"]
    }
    # CycloneDX XML: api depends on requests, requests on urllib3.
    found = answer(url, ENVIRONMENT[:12], "pkg:pypi/urllib3")
    assert chains(found) == {"2.8.0": ["requests-2.34.2", "urllib3-2.8.0"]}
    assert found["paths"][0]["path"][1]["purl"] == "pkg:pypi/urllib3@2.8.0"


def test_the_table_for_people_draws_the_chain(url: str) -> None:
    result = run(url, "why", GATEWAY, "glibc")
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"gateway 3.1.0 (build {GATEWAY}, production) holds glibc 2.38-44:\n"
        "\n"
        "gateway-3.1.0\n"
        "└───openssl-3.0.13\n"
        "    └───glibc-2.38-44\n"
    )


def test_a_version_nothing_leads_to_has_no_chain(url: str) -> None:
    """An SBOM may list a component without saying what needs it."""
    document = json.loads(CDX_JSON.read_bytes())
    document["components"].append(
        {"type": "library", "name": "six", "version": "1.16.0", "purl": "pkg:pypi/six@1.16.0",
         "bom-ref": "six==1.16.0"}
    )  # fmt: skip
    result = run(
        url, "import", "cyclonedx", "-", "--env", "staging", "--build-id", "sha256:" + "ab" * 32,
        input=json.dumps(document).encode(),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert run(url, "project").exit_code == 0
    assert chains(answer(url, "sha256:abab", "six")) == {"1.16.0": None}
    people = run(url, "why", "sha256:abab", "six")
    assert "six 1.16.0: in the closure, but nothing recorded with the build leads to it" in (
        people.output
    )


def test_what_cannot_be_answered_says_why(url: str) -> None:
    assert "Error: no build 'zzzz' in the ledger" in refused(url, "zzzz", "openssl")
    message = refused(url, "sha256:", "zlib")
    assert "'sha256:' is the start of several builds' ids:" in message
    assert IMAGE in message
    assert ENVIRONMENT in message
    message = refused(url, GATEWAY, "opensll")
    assert f"the closure of build {GATEWAY} (gateway 3.1.0) does not hold opensll" in message
    assert "did you mean 'openssl'?" in message
    # nix-store -qR output has no references: recorded without a graph.
    message = refused(url, "9l96c3rl", "openssl")
    assert (
        "build 9l96c3rl7wzzv9xkxj2ypgxc5kkwqfna (api 2.4.1) was recorded without dependency "
        "information (as nix-store -qR output and SBOMs without dependencies are), so nothing "
        "says why its closure holds openssl (3.0.13)"
    ) in message


def test_rebuilt_views_give_the_same_graph_and_answers(url: str) -> None:
    views = Views(Ledger(locate(url)))
    views.catch_up()
    before = views.dump("builds")
    first = answer(url, GATEWAY, "openssl")
    assert before["build_references"], "the graph is in the view"
    views.rebuild(["builds"])
    assert views.dump("builds") == before
    assert answer(url, GATEWAY, "openssl") == first
