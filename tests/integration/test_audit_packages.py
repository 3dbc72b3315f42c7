"""``ledger where`` on real package identities, on both backends: Nix multi-output
closures built with nix-bin (tests/fixtures/nix/multi-output-*), a CycloneDX SBOM whose
PyPI names are case-insensitive, and questions that name something the ledger never saw.

The closures: gateway-3.1.0 needs openssl-3.0.13's out, bin and dev outputs and
openssl-1.1.1w's out; billing-1.4.0 needs 1.1.1w's dev and 3.0.13's man. Two openssl
versions, six store paths.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.main import root
from ledger.application import Ledger
from ledger.store import locate
from tests.factories import make_event

FIXTURES = Path(__file__).parents[1] / "fixtures"
MULTI_PATH_INFO = FIXTURES / "nix" / "multi-output-path-info.json"
MULTI_STORE_QR = FIXTURES / "nix" / "multi-output-store-qR.txt"
SBOM = FIXTURES / "cyclonedx" / "environment.cdx.json"
GATEWAY = "3c759mpz79z8jascjsxdi3mz53l0kq61"
BILLING = "gibg0yxjl81ziw894i7nh3gq7wz3jgkz"
SBOM_BUILD = "sha256:" + "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(root, ["--ledger", url, *args])


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def refused(result: Result) -> str:
    """A question the ledger must refuse: exit 2, one clear line, no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return " ".join(result.output.split())


def activate(url: str, host: str, service: str, build_id: str) -> None:
    """Record the activation and bring the views up to date (PostgreSQL views are not
    caught up by queries)."""
    ledger = Ledger(locate(url))
    ledger.append(
        [
            make_event(
                "activation_completed",
                env="production",
                host=host,
                service=service,
                build_id=build_id,
                generation=1,
                occurred_at="2026-12-06T03:00:00Z",
            )
        ]
    )
    ledger.close()
    assert run(url, "project").exit_code == 0


@pytest.fixture
def nix_url(ledger_url: str) -> str:
    """gateway active on h1, billing on h2, imported from real `nix path-info`."""
    assert run(ledger_url, "init").exit_code == 0
    imported = run(ledger_url, "import", "nix-path-info", str(MULTI_PATH_INFO), "--env",
                   "production")  # fmt: skip
    assert imported.exit_code == 0, imported.output
    activate(ledger_url, "h1", "gateway", GATEWAY)
    activate(ledger_url, "h2", "billing", BILLING)
    return ledger_url


def test_outputs_are_one_package_version(nix_url: str) -> None:
    rows = as_json(run(nix_url, "where", "openssl", "--json"))
    assert [(r["host"], r["version"], r["outputs"]) for r in rows] == [
        ("h1", "1.1.1w", ["out"]),
        ("h1", "3.0.13", ["out", "bin", "dev"]),
        ("h2", "1.1.1w", ["out", "dev"]),
        ("h2", "3.0.13", ["man"]),
    ]
    # The out output's path stands for the package when the closure holds it.
    assert rows[1]["store_path"].endswith("-openssl-3.0.13")
    assert rows[3]["store_path"].endswith("-openssl-3.0.13-man")
    summary = as_json(run(nix_url, "where", "openssl", "--summary", "--json"))
    assert [(s["version"], s["outputs"], s["hosts"], s["services"]) for s in summary] == [
        ("1.1.1w", ["out", "dev"], 2, ["billing", "gateway"]),
        ("3.0.13", ["out", "bin", "dev", "man"], 2, ["billing", "gateway"]),
    ]  # two versions, not six
    table = run(nix_url, "where", "openssl")
    assert table.exit_code == 0, table.output
    # Two versions in one closure: still one placement per host.
    assert "openssl: 2 placements on 2 hosts" in table.output


def test_version_and_ranges_work_on_the_version_whatever_the_output(nix_url: str) -> None:
    exact = as_json(run(nix_url, "where", "openssl", "--version", "3.0.13", "--json"))
    assert [(r["host"], r["outputs"]) for r in exact] == [("h1", ["out", "bin", "dev"]),
                                                           ("h2", ["man"])]  # fmt: skip
    newer = as_json(run(nix_url, "where", "openssl", "--version-range", ">=3.0", "--json"))
    assert {r["version"] for r in newer} == {"3.0.13"}
    older = as_json(run(nix_url, "where", "openssl", "--version-range", "<3.0.13", "--json"))
    assert {(r["host"], r["version"]) for r in older} == {("h1", "1.1.1w"), ("h2", "1.1.1w")}
    # The output is no longer part of the version: 3.0.13-dev was never a version.
    assert (
        "no closure in the ledger has ever held openssl 3.0.13-dev (versions held: "
        "1.1.1w, 3.0.13)" in refused(run(nix_url, "where", "openssl", "--version", "3.0.13-dev"))
    )
    # A range that holds no version is a real "nowhere".
    none = run(nix_url, "where", "openssl", "--version-range", ">=4")
    assert none.exit_code == 0, none.output
    assert "no active closure holds openssl" in none.output
    purl = as_json(run(nix_url, "where", "pkg:nix/openssl@1.1.1w", "--json"))
    assert {(r["host"], tuple(r["outputs"])) for r in purl} == {("h1", ("out",)),
                                                                ("h2", ("out", "dev"))}  # fmt: skip


def test_without_a_deriver_outputs_follow_nix_output_names(ledger_url: str) -> None:
    """`nix-store -qR` has no derivers: the output names at the end of a version tell."""
    assert run(ledger_url, "init").exit_code == 0
    imported = run(ledger_url, "import", "nix-store", str(MULTI_STORE_QR), "--env",
                   "production", "--service", "gateway")  # fmt: skip
    assert imported.exit_code == 0, imported.output
    activate(ledger_url, "h1", "gateway", GATEWAY)
    summary = as_json(run(ledger_url, "where", "openssl", "--summary", "--json"))
    assert [(s["version"], s["outputs"]) for s in summary] == [
        ("1.1.1w", ["out"]),
        ("3.0.13", ["out", "bin", "dev"]),
    ]


def test_pypi_names_are_case_insensitive_and_purls_find_them(
    ledger_url: str, tmp_path: Path
) -> None:
    """cyclonedx-py names a distribution as its metadata does (Pygments) and its purl in
    PEP 503 form (pkg:pypi/pygments): `where pygments` must find it."""
    document = json.loads(SBOM.read_text())
    document["components"].append(
        {"type": "library", "bom-ref": "pygments==2.17.2", "name": "Pygments",
         "version": "2.17.2", "purl": "pkg:pypi/pygments@2.17.2"}
    )  # fmt: skip
    sbom = tmp_path / "with-pygments.cdx.json"
    sbom.write_text(json.dumps(document))
    assert run(ledger_url, "init").exit_code == 0
    imported = run(ledger_url, "import", "cyclonedx", str(sbom), "--env", "production",
                   "--build-id", SBOM_BUILD)  # fmt: skip
    assert imported.exit_code == 0, imported.output
    activate(ledger_url, "h1", "api", SBOM_BUILD)
    for asked in ("pygments", "Pygments", "PYGMENTS", "pkg:pypi/pygments",
                  "pkg:pypi/Pygments@2.17.2"):  # fmt: skip
        rows = as_json(run(ledger_url, "where", asked, "--json"))
        assert [(r["host"], r["name"], r["version"], r["ecosystem"]) for r in rows] == [
            ("h1", "Pygments", "2.17.2", "pypi")
        ], asked
    ranged = as_json(run(ledger_url, "where", "pygments", "--version-range", ">=2.17.0rc1",
                         "--json"))  # fmt: skip
    assert len(ranged) == 1  # PEP 440: 2.17.0rc1 < 2.17.2
    assert "did you mean 'Pygments'" in refused(run(ledger_url, "where", "pkg:npm/pygments"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["where", "opensll"], "no closure in the ledger has ever held a package called "
                               "'opensll'; did you mean 'openssl'?"),
        (["where", "openssl", "--env", "prod"], "environment 'prod' is not in the ledger; did "
                                                "you mean 'production'? (known: production)"),
        (["where", "openssl", "--version-range", "1.0.1..1.0.2"], "'>=1.0.1,<=1.0.2'"),
        (["where", "openssl", "--summary", "--env", "nope"], "environment 'nope' is not"),
        (["topology", "--env", "nope"], "environment 'nope' is not in the ledger"),
        (["generations", "--env", "nope"], "environment 'nope' is not in the ledger"),
        (["metrics", "--env", "nope"], "environment 'nope' is not in the ledger"),
        (["drift", "--env", "nope"], "environment 'nope' is not in the ledger"),
        (["where", "pkg:pypi"], "is not a valid package URL"),
    ],
)  # fmt: skip
def test_a_wrong_question_is_an_error_not_nothing(
    nix_url: str, args: list[str], message: str
) -> None:
    assert message in refused(run(nix_url, *args))


def test_diff_compares_package_versions_and_shows_outputs(nix_url: str) -> None:
    """Generation 2 puts billing's build where gateway's was: openssl keeps both
    versions but with other outputs, which diff shows instead of six path changes."""
    ledger = Ledger(locate(nix_url))
    for build in (GATEWAY, BILLING):
        ledger.append(
            [
                make_event(
                    "generation_planned",
                    manifest=[{"host": "h9", "service": "app", "build_id": build}],
                    tags=[],
                )
            ]
        )
    ledger.close()
    assert run(nix_url, "project").exit_code == 0
    answer = as_json(run(nix_url, "diff", "1", "2", "--env", "production", "--json"))
    openssl = [c for c in answer["closure_changes"] if c["name"] == "openssl"]
    assert openssl == [
        {"name": "openssl", "from": "1.1.1w, 3.0.13 [out, bin, dev]",
         "to": "1.1.1w [out, dev], 3.0.13 [man]", "services": ["app"], "hosts": 1}
    ]  # fmt: skip
