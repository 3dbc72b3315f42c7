"""CycloneDX XML and the dependency graph, on SBOMs as the tools write them.

tests/fixtures/sboms/environment-1.{4,5,6}.cdx.xml are cyclonedx-py 7.5.0's XML of the
environment tests/fixtures/cyclonedx/environment.cdx.json describes in JSON (made by
tests/fixtures/sboms/make_sboms.sh); image-syft.cdx.xml is written as syft 1.18 writes
an Alpine image's SBOM (dependencies among the apk packages only, none for the image
itself, a file component without a purl).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ledger.importers import cyclonedx
from ledger.importers.base import (
    SBOM_ID_PREFIX,
    BuildOptions,
    ImportedBuild,
    ImportRefused,
    sbom_format,
)

SBOMS = Path(__file__).parents[1] / "fixtures" / "sboms"
JSON_SBOM = Path(__file__).parents[1] / "fixtures" / "cyclonedx" / "environment.cdx.json"
SYFT = SBOMS / "image-syft.cdx.xml"
DIGEST = "sha256:b2af04b4a64e7a0005310489135dd7423c7ed73e2b87d10f6104a75fdaad3e6b"
BUILD_ID = BuildOptions(build_id="sha256:" + "9f" * 32)


def build(path: Path, data: bytes | None = None, options: BuildOptions = BUILD_ID) -> ImportedBuild:
    return cyclonedx.sbom_build(
        str(path), path.read_bytes() if data is None else data, options
    ).build


def graph(found: ImportedBuild) -> dict[str, list[str]]:
    """Each component's name and the names of the components it refers to."""
    names = [c.name for c in found.closure]
    return {c.name: [names[i] for i in c.references] for c in found.closure}


def refusal(path: Path, data: bytes) -> str:
    with pytest.raises(ImportRefused) as caught:
        cyclonedx.sbom_build(str(path), data, BUILD_ID)
    return str(caught.value)


@pytest.mark.parametrize("version", ["1.4", "1.5", "1.6"])
def test_xml_gives_the_build_the_json_gives(version: str) -> None:
    from_xml = build(SBOMS / f"environment-{version}.cdx.xml")
    from_json = build(JSON_SBOM)
    assert from_xml == from_json
    assert [c.name for c in from_xml.closure] == [
        "certifi", "charset-normalizer", "idna", "requests", "urllib3",
    ]  # fmt: skip
    # metadata.component (api) depends on requests, which depends on the rest.
    assert [from_xml.closure[i].name for i in from_xml.roots] == ["requests"]
    assert graph(from_xml)["requests"] == ["certifi", "charset-normalizer", "idna", "urllib3"]


def test_a_syft_image_sbom_is_named_by_its_digest_with_its_graph() -> None:
    sbom = cyclonedx.sbom_build(str(SYFT), SYFT.read_bytes(), BuildOptions())
    found = sbom.build
    assert (found.service, found.build_id, found.version) == (
        "registry.internal/api",
        DIGEST,
        DIGEST,
    )
    assert found.occurred_at is not None
    assert found.occurred_at.isoformat() == "2026-03-11T14:10:00+00:00"
    assert sbom.skipped == ["/lib/apk/db/installed (3b9c358f36f0a31b)"]
    libssl = next(c for c in found.closure if c.name == "libssl3")
    assert libssl.purl == (
        "pkg:apk/alpine/libssl3@3.3.2-r1?arch=x86_64&distro=alpine-3.20.3&upstream=openssl"
    )
    # The image lists no dependencies of its own: the roots are what nothing depends on.
    assert sorted(found.closure[i].name for i in found.roots) == ["busybox", "curl"]
    assert graph(found)["libcurl"] == [
        "ca-certificates-bundle", "libcrypto3", "libssl3", "musl", "zlib",
    ]  # fmt: skip
    assert graph(found)["musl"] == []


def test_an_sbom_without_dependencies_has_no_graph() -> None:
    text = JSON_SBOM.read_text()
    data = text[: text.index('"dependencies"')] + text[text.index('"metadata"') :]
    found = build(JSON_SBOM, data.encode())
    assert found.roots == ()
    assert all(c.references == () for c in found.closure)
    assert len(found.closure) == 5


def test_a_component_without_a_purl_is_looked_through() -> None:
    """requests loses its purl: api still reaches urllib3, through it."""
    text = (SBOMS / "environment-1.5.cdx.xml").read_text()
    start = text.index('<component type="library" bom-ref="requests==2.34.2">')
    purl = text.index("<purl>", start)
    data = text[:purl] + text[text.index("</purl>", purl) + len("</purl>") :]
    found = build(SBOMS / "environment-1.5.cdx.xml", data.encode())
    assert "requests" not in {c.name for c in found.closure}
    assert sorted(found.closure[i].name for i in found.roots) == [
        "certifi", "charset-normalizer", "idna", "urllib3",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda t: t[: t.index("<dependencies>") + 40],
            "line 229, column 5: not well-formed XML (unclosed token)",
        ),
        (
            lambda t: t.replace('type="library" bom-ref="idna', 'type="spaceship" bom-ref="idna'),
            "components/component[3]: not a valid CycloneDX component: 'spaceship' is not a "
            "valid ComponentType",
        ),
        (
            lambda t: t.replace(
                '<dependency ref="idna==3.20"/>\n    <dependency ref="requests',
                '<dependency ref="idna==3.2"/>\n    <dependency ref="requests',
            ),
            "dependencies: ref 'idna==3.2': no component has this bom-ref",
        ),
        (
            lambda t: t.replace(
                '<dependency ref="urllib3==2.8.0"/>\n    </dependency>',
                '<dependency ref="urllib3==2.8"/>\n    </dependency>',
            ),
            "dependencies: ref 'requests==2.34.2', dependsOn 'urllib3==2.8': no component has "
            "this bom-ref",
        ),
        (
            lambda t: t.replace("http://cyclonedx.org/schema/bom/1.5", "http://example.org/bom"),
            "XML, but not a CycloneDX SBOM",
        ),
        (
            lambda t: t.replace(
                '<?xml version="1.0" ?>',
                '<?xml version="1.0" ?>\n<!DOCTYPE bom [<!ENTITY lol "lol">]>',
            ),
            "XML with entity declarations or external references is refused",
        ),
    ],
    ids=["truncated", "bad-type", "unknown-ref", "unknown-depends-on", "namespace", "entity"],
)
def test_a_bad_xml_sbom_is_refused_saying_where(
    change: Callable[[str], str], expected: str
) -> None:
    path = SBOMS / "environment-1.5.cdx.xml"
    message = refusal(path, change(path.read_text()).encode())
    assert message.startswith(f"{path}: ")
    assert expected in message


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("environment-1.5.cdx.xml", "cyclonedx-xml"),
        ("image-syft.cdx.xml", "cyclonedx-xml"),
        ("image-syft.spdx.json", "spdx-json"),
        ("image-syft.spdx", "spdx-tag-value"),
        ("SPDXTagExample-v2.3.spdx", "spdx-tag-value"),
    ],
)
def test_the_format_is_told_by_content(name: str, expected: str, tmp_path: Path) -> None:
    assert sbom_format(name, (SBOMS / name).read_bytes()) == expected
    # Not by the name: the same bytes under another name (or from stdin) are the same.
    assert sbom_format("<stdin>", (SBOMS / name).read_bytes()) == expected


def test_a_file_in_no_format_names_what_was_tried() -> None:
    with pytest.raises(ImportRefused) as caught:
        sbom_format("closure.txt", b"/nix/store/9l96c3rl7wzzv9xkxj2ypgxc5kkwqfna-api-2.4.1\n")
    assert str(caught.value) == (
        "closure.txt: not an SBOM in a format the ledger reads: CycloneDX JSON or XML "
        "(1.4-1.6), SPDX 2.3 JSON or tag-value; nothing was recorded from it"
    )
    with pytest.raises(ImportRefused, match="SPDX XML and RDF are not read"):
        sbom_format("x.rdf.xml", (SBOMS / "image-syft.cdx.xml").read_bytes().replace(
            b"http://cyclonedx.org/schema/bom/1.5", b"http://spdx.org/rdf/terms#"
        ))  # fmt: skip


# --- a build id from the SBOM's content ----------------------------------------------


def derived_id(change: Callable[[dict[str, Any]], None] = lambda d: None) -> str:
    """The build id of the JSON fixture (which names no hash) after ``change``."""
    document = json.loads(JSON_SBOM.read_bytes())
    change(document)
    data = json.dumps(document).encode()
    return build(JSON_SBOM, data, BuildOptions()).build_id


def _renamed_refs(document: dict[str, Any]) -> None:
    """Every bom-ref renamed, as another tool (or run) may name them."""

    def rename(ref: str) -> str:
        return f"urn:cdx:{len(ref)}:{ref[::-1]}"

    document["metadata"]["component"]["bom-ref"] = rename(
        document["metadata"]["component"]["bom-ref"]
    )
    for item in document["components"]:
        item["bom-ref"] = rename(item["bom-ref"])
    for dependency in document["dependencies"]:
        dependency["ref"] = rename(dependency["ref"])
        dependency["dependsOn"] = [rename(r) for r in dependency.get("dependsOn", [])]


def _run_again(document: dict[str, Any]) -> None:
    """What differs when the same tool describes the same environment again."""
    document["serialNumber"] = "urn:uuid:2c6f0d0e-8a51-4d6c-9b1e-0f5b1d0c7a11"
    document["metadata"]["timestamp"] = "2026-12-24T18:00:00Z"
    document["metadata"]["tools"] = {"components": [{"type": "application", "name": "other"}]}
    document["components"].reverse()
    document["dependencies"].reverse()
    for dependency in document["dependencies"]:
        dependency.get("dependsOn", []).reverse()
    document["components"][0]["description"] = "a description the ledger does not keep"
    document["components"][1]["licenses"] = [{"license": {"id": "MIT"}}]
    document["components"].append({"type": "file", "name": "README", "bom-ref": "file-1"})
    _renamed_refs(document)


def test_an_sbom_without_a_hash_is_named_by_its_content() -> None:
    found = derived_id()
    assert found.startswith(SBOM_ID_PREFIX)
    assert len(found) == len(SBOM_ID_PREFIX) + 64
    assert int(found[len(SBOM_ID_PREFIX) :], 16) >= 0
    # Serial number, timestamp, tools, order, refs, licenses, descriptions and
    # components without a purl are not what was built.
    assert derived_id(_run_again) == found
    # The XML of the same environment is the same content.
    for version in ("1.4", "1.5", "1.6"):
        path = SBOMS / f"environment-{version}.cdx.xml"
        assert build(path, options=BuildOptions()).build_id == found


def _without(document: dict[str, Any], ref: str) -> None:
    """The SBOM of the environment without one package (and what depends on it, the
    same minus that dependency)."""
    document["components"] = [c for c in document["components"] if c["bom-ref"] != ref]
    document["dependencies"] = [d for d in document["dependencies"] if d["ref"] != ref]
    for dependency in document["dependencies"]:
        dependency["dependsOn"] = [r for r in dependency.get("dependsOn", []) if r != ref]


def _component(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda d: next(c for c in d["components"] if c["name"] == name)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: _component("idna")(d).update(version="3.21", purl="pkg:pypi/idna@3.21"),
        lambda d: _component("idna")(d).update(purl="pkg:pypi/idna@3.20?extra=1"),
        lambda d: _component("idna")(d).update(hashes=[{"alg": "SHA-256", "content": "ab" * 32}]),
        lambda d: _component("idna")(d).update(name="idna-ng"),
        lambda d: d["components"].append(
            {"type": "library", "name": "six", "version": "1.16.0", "purl": "pkg:pypi/six@1.16.0"}
        ),
        lambda d: _without(d, "certifi==2026.10.19.post1"),
        lambda d: next(x for x in d["dependencies"] if x["ref"] == "requests==2.34.2")[
            "dependsOn"
        ].pop(),
        lambda d: d["metadata"]["component"].update(version="2.4.2"),
        lambda d: d["metadata"]["component"].update(name="api-worker"),
        lambda d: d.pop("dependencies"),
    ],
    ids=[
        "version", "purl", "hash", "name", "one-more", "one-less", "dependency",
        "root-version", "root-name", "no-graph",
    ],
)  # fmt: skip
def test_other_content_is_another_build(change: Callable[[dict[str, Any]], None]) -> None:
    assert derived_id(change) != derived_id()


def test_the_build_id_option_and_a_digest_come_before_the_content() -> None:
    assert build(JSON_SBOM).build_id == BUILD_ID.build_id

    def digest(document: dict[str, Any]) -> None:
        document["metadata"]["component"]["hashes"] = [{"alg": "SHA-256", "content": "AB" * 32}]

    assert derived_id(digest) == "sha256:" + "ab" * 32
