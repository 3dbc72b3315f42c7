"""SPDX 2.3 documents, JSON and tag-value, read through spdx-tools.

tests/fixtures/sboms/SPDX{JSON,Tag}Example-v2.3.spdx* are the SPDX specification's
own examples as spdx/tools-python tests with them; image-syft.spdx.json is written as
syft 1.18 writes an Alpine image's SPDX JSON (the image DESCRIBES, CONTAINS every
package; dependencies as DEPENDENCY_OF), and image-syft.spdx is that document
converted to tag-value by spdx-tools' pyspdxtools (tests/fixtures/sboms/make_sboms.sh).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ledger.importers import spdx
from ledger.importers.base import (
    SBOM_ID_PREFIX,
    BuildOptions,
    ImportedBuild,
    ImportRefused,
    SbomBuild,
)

SBOMS = Path(__file__).parents[1] / "fixtures" / "sboms"
SPEC_JSON = SBOMS / "SPDXJSONExample-v2.3.spdx.json"
SPEC_TAG = SBOMS / "SPDXTagExample-v2.3.spdx"
SYFT_JSON = SBOMS / "image-syft.spdx.json"
SYFT_TAG = SBOMS / "image-syft.spdx"
DIGEST = "sha256:b2af04b4a64e7a0005310489135dd7423c7ed73e2b87d10f6104a75fdaad3e6b"
IMAGE = "SPDXRef-DocumentRoot-Image-registry.internal-api"


def read(path: Path, data: bytes | None = None, options: BuildOptions | None = None) -> SbomBuild:
    return spdx.sbom_build(
        str(path), path.read_bytes() if data is None else data, options or BuildOptions()
    )


def edited(change: Callable[[dict[str, Any]], None]) -> bytes:
    document = json.loads(SYFT_JSON.read_bytes())
    change(document)
    return json.dumps(document).encode()


def refusal(path: Path, data: bytes) -> str:
    with pytest.raises(ImportRefused) as caught:
        read(path, data)
    return str(caught.value)


def graph(found: ImportedBuild) -> dict[str, list[str]]:
    names = [c.name for c in found.closure]
    return {c.name: [names[i] for i in c.references] for c in found.closure}


@pytest.mark.parametrize("path", [SPEC_JSON, SPEC_TAG], ids=["json", "tag-value"])
def test_the_specification_example_is_the_build_of_the_package_it_describes(path: Path) -> None:
    sbom = read(path)
    found = sbom.build
    # It DESCRIBES a file and glibc 2.11.1, whose SHA256 checksum names the build.
    assert (found.service, found.version, found.artifact) == ("glibc", "2.11.1", "glibc@2.11.1")
    assert found.build_id == (
        "sha256:11b6d3ee554eedf79299905a98f9b9a04e498210b59f15094c916c91d150efcd"
    )
    assert found.occurred_at is not None
    assert found.occurred_at.isoformat() == "2010-01-29T18:30:22+00:00"
    # Only Jena has a purl; glibc, Apache Commons Lang and Saxon are skipped, named.
    [jena] = found.closure
    assert (jena.name, jena.version, jena.purl, jena.hash) == (
        "Jena", "3.12.0", "pkg:maven/org.apache.jena/apache-jena@3.12.0", None,
    )  # fmt: skip
    assert sbom.skipped == [
        "glibc 2.11.1 (SPDXRef-Package)",
        "Apache Commons Lang (SPDXRef-fromDoap-1)",
        "Saxon 8.8 (SPDXRef-Saxon)",
    ]
    # Its relationships link glibc to files, and files to Jena by GENERATED_FROM: no
    # chain of dependencies reaches a component, so no graph is recorded.
    assert found.roots == ()


def test_json_and_tag_value_give_the_same_build() -> None:
    assert read(SYFT_JSON).build == read(SYFT_TAG).build
    assert read(SPEC_JSON).build == read(SPEC_TAG).build


def test_a_syft_image_is_named_by_its_digest_and_keeps_its_graph() -> None:
    sbom = read(SYFT_JSON)
    found = sbom.build
    assert sbom.skipped == []
    assert (found.service, found.version, found.build_id) == (
        "registry.internal/api",
        DIGEST,
        DIGEST,
    )
    assert found.artifact == f"pkg:oci/api@sha256%3A{DIGEST[7:]}?arch=amd64&tag=2.4.1"
    # The described image is in the closure and is its root; it CONTAINS every package.
    [root] = found.roots
    assert found.closure[root].name == "registry.internal/api"
    assert found.closure[root].hash == DIGEST
    # X DEPENDENCY_OF Y: Y refers to X.
    assert graph(found)["libssl3"] == ["musl", "libcrypto3"]
    assert graph(found)["curl"] == ["musl", "libcurl"]
    libssl = next(c for c in found.closure if c.name == "libssl3")
    assert libssl.purl == (
        "pkg:apk/alpine/libssl3@3.3.2-r1?arch=x86_64&distro=alpine-3.20.3&upstream=openssl"
    )
    assert libssl.hash is None  # syft gives SHA1 only


def test_depends_on_and_document_describes_make_the_same_graph() -> None:
    def rewrite(document: dict[str, Any]) -> None:
        relationships = []
        for r in document["relationships"]:
            if r["relationshipType"] == "DEPENDENCY_OF":
                r = {  # noqa: PLW2901
                    "spdxElementId": r["relatedSpdxElement"],
                    "relatedSpdxElement": r["spdxElementId"],
                    "relationshipType": "DEPENDS_ON",
                }
            if r["relationshipType"] != "DESCRIBES":
                relationships.append(r)
        document["relationships"] = relationships
        document["documentDescribes"] = [IMAGE]

    assert read(SYFT_JSON, edited(rewrite)).build == read(SYFT_JSON).build


def test_a_relationship_naming_an_unknown_element_is_refused() -> None:
    def dangling(document: dict[str, Any]) -> None:
        document["relationships"].append(
            {
                "spdxElementId": "SPDXRef-Package-apk-curl-ffffffffffffffff",
                "relatedSpdxElement": document["packages"][0]["SPDXID"],
                "relationshipType": "DEPENDS_ON",
            }
        )

    message = refusal(SYFT_JSON, edited(dangling))
    assert message.startswith(
        f"{SYFT_JSON}: relationship SPDXRef-Package-apk-curl-ffffffffffffffff DEPENDS_ON "
        "SPDXRef-Package-apk-musl-"
    )
    assert "SPDXRef-Package-apk-curl-ffffffffffffffff is not an element of the document" in message


def test_other_documents_elements_and_noassertion_are_left_out() -> None:
    def external(document: dict[str, Any]) -> None:
        document["relationships"] += [
            {
                "spdxElementId": IMAGE,
                "relatedSpdxElement": "DocumentRef-base:SPDXRef-Package-apk-musl",
                "relationshipType": "CONTAINS",
            },
            {
                "spdxElementId": IMAGE,
                "relatedSpdxElement": "NOASSERTION",
                "relationshipType": "CONTAINS",
            },
        ]

    assert read(SYFT_JSON, edited(external)).build == read(SYFT_JSON).build


@pytest.mark.parametrize(
    ("path", "change", "expected"),
    [
        (
            SYFT_TAG,
            lambda t: t.replace("PackageChecksum: SHA1: ", "PackageChecksum: SHA99: ", 1),
            "line 22: not a valid SPDX document: Error while parsing Package: Error while "
            "parsing PackageChecksum: Token did not match specified grammar rule. Line: 22",
        ),
        (SYFT_JSON, lambda t: t[:2000], "not valid JSON"),
        (
            SYFT_JSON,
            lambda t: t.replace('"SPDX-2.3"', '"SPDX-2.1"'),
            "spdxVersion: 'SPDX-2.1': the versions read are SPDX-2.2, SPDX-2.3",
        ),
        (
            SYFT_JSON,
            lambda t: t.replace('"algorithm": "SHA256"', '"algorithm": "SHA-256"'),
            "not a valid SPDX document: Error while parsing Package: Error while parsing "
            "Checksum: Invalid ChecksumAlgorithm: SHA_256",
        ),
        (
            SYFT_JSON,
            lambda t: t.replace(DIGEST[7:], "abc", 1).replace(f'"{DIGEST[7:]}"', '"abc"'),
            "a SHA256 checksum is 64 hex digits",
        ),
        (
            SYFT_JSON,
            lambda t: t.replace('"relationshipType": "DESCRIBES"', '"relationshipType": "OTHER"'),
            "DESCRIBES: the document describes no package, so it does not say what was "
            "built: pass --service and --artifact;",
        ),
        (
            SBOMS / "environment-1.5.cdx.xml",
            lambda t: t,
            "a CycloneDX SBOM, not an SPDX document: import it with `ledger import cyclonedx`",
        ),
    ],
    ids=["tag-value", "truncated", "version", "checksum", "short-sha256", "undescribed", "cdx"],
)
def test_a_bad_document_is_refused_saying_where(
    path: Path, change: Callable[[str], str], expected: str
) -> None:
    message = refusal(path, change(path.read_text()).encode())
    assert message.startswith(f"{path}: ")
    assert expected in message, message


def test_the_options_name_a_build_the_document_does_not() -> None:
    data = edited(
        lambda d: d.update(
            relationships=[r for r in d["relationships"] if r["relationshipType"] != "DESCRIBES"]
        )
    )
    options = BuildOptions(service="api", artifact="registry.internal/api:2.4.1", build_id=DIGEST)
    found = read(SYFT_JSON, data, options).build
    assert (found.service, found.artifact, found.build_id) == (
        "api", "registry.internal/api:2.4.1", DIGEST,
    )  # fmt: skip
    # Nothing is described: the graph has no root to start from.
    assert found.roots == ()


# --- a build id from the document's content ------------------------------------------


def _undigested(document: dict[str, Any]) -> None:
    """The image described as a named, versioned package with no checksum or digest
    (as sbom4python describes a Python package)."""
    image = next(p for p in document["packages"] if p["SPDXID"] == IMAGE)
    image.pop("checksums")
    image["versionInfo"] = "2.4.1"
    image["externalRefs"][0]["referenceLocator"] = "pkg:oci/api?tag=2.4.1"


def _rewritten(document: dict[str, Any]) -> None:
    """The same content as another run writes it: new namespace, date and SPDXIDs,
    packages and relationships in another order, a comment."""
    _undigested(document)
    document["documentNamespace"] = "https://example.org/spdx/api-2c6f0d0e"
    document["creationInfo"]["created"] = "2026-12-24T18:00:00Z"
    document["creationInfo"]["comment"] = "written again"
    names = {p["SPDXID"]: f"SPDXRef-{n}" for n, p in enumerate(document["packages"])}
    for package in document["packages"]:
        package["SPDXID"] = names[package["SPDXID"]]
    for relationship in document["relationships"]:
        for key in ("spdxElementId", "relatedSpdxElement"):
            relationship[key] = names.get(relationship[key], relationship[key])
    document["packages"].reverse()
    document["relationships"].reverse()


def test_a_package_without_a_checksum_is_named_by_the_documents_content() -> None:
    found = read(SYFT_JSON, edited(_undigested)).build
    assert found.build_id.startswith(SBOM_ID_PREFIX)
    assert len(found.build_id) == len(SBOM_ID_PREFIX) + 64
    assert read(SYFT_JSON, edited(_rewritten)).build.build_id == found.build_id

    def upgraded(document: dict[str, Any]) -> None:
        _undigested(document)
        musl = next(p for p in document["packages"] if p["name"] == "musl")
        musl["versionInfo"] = "1.2.5-r1"

    def unlinked(document: dict[str, Any]) -> None:
        _undigested(document)
        document["relationships"] = [
            r for r in document["relationships"] if r["relationshipType"] != "DEPENDENCY_OF"
        ]

    others = {read(SYFT_JSON, edited(change)).build.build_id for change in (upgraded, unlinked)}
    assert len(others) == 2
    assert found.build_id not in others


def test_an_undescribed_document_needs_no_build_id() -> None:
    data = edited(
        lambda d: d.update(
            relationships=[r for r in d["relationships"] if r["relationshipType"] != "DESCRIBES"]
        )
    )
    options = BuildOptions(service="api", artifact="registry.internal/api:2.4.1")
    found = read(SYFT_JSON, data, options).build
    # Nothing is described, so the image's digest names nothing: the content does.
    assert found.build_id.startswith(SBOM_ID_PREFIX)
    assert (found.service, found.artifact) == ("api", "registry.internal/api:2.4.1")


@pytest.mark.parametrize("path", [SPEC_JSON, SPEC_TAG, SYFT_JSON, SYFT_TAG])
def test_a_license_list_version_with_a_patch_part_is_read(path: Path) -> None:
    """sbom4python writes licenseListVersion 3.28.0, where SPDX says MAJOR.MINOR."""
    text, changed = re.subn(
        r'((?:"licenseListVersion"\s*:\s*"|LicenseListVersion:[ \t]*)[0-9]+\.[0-9]+)',
        r"\g<1>.0",
        path.read_text(),
    )
    assert changed == 1
    assert read(path, text.encode()).build == read(path).build
