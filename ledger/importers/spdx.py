"""Builds from SPDX 2.3 documents, JSON or tag-value (what syft, Trivy and the SPDX tools
write), read with spdx-tools.

The package the document DESCRIBES (or lists in ``documentDescribes``) is the build:
its name is the service, its versionInfo the version, its purl (the PACKAGE-MANAGER
external ref) the artifact, its SHA-256 checksum (else a sha256 digest as its purl's
or its own version: an image; else an id derived from the document's content,
``base.sbom_build_id``, as sbom4python's documents need) the build id;
``creationInfo.created`` dates it. Every package with a purl, the described one too,
is a closure component with name, versionInfo, purl and SHA-256 checksum; a package
without a purl is skipped and reported, as for CycloneDX.

Relationships are the graph: A DEPENDS_ON B, A CONTAINS B, A DYNAMIC_LINK or
STATIC_LINK B make A refer to B, and B DEPENDENCY_OF / RUNTIME_DEPENDENCY_OF /
CONTAINED_BY A the same; the described package is the root. Files, snippets and
packages without a purl are looked through (``base.with_graph``). A relationship of
these kinds naming an element the document does not define is refused; one naming
another document's element (``DocumentRef-…:``), NONE or NOASSERTION is left out.
A document with none of them among its packages is recorded without a graph.

``spdx_tools.spdx.parser.parse_anything`` picks a parser by the file's name; here the
format is told by content (standard input has no name), so its JSON and tag-value
parsers are called directly, as it would call them.
"""

from __future__ import annotations

import re
from datetime import UTC

from ply import yacc  # type: ignore[import-untyped]
from spdx_tools.spdx.model.checksum import ChecksumAlgorithm
from spdx_tools.spdx.model.document import Document
from spdx_tools.spdx.model.package import ExternalPackageRefCategory, Package
from spdx_tools.spdx.model.relationship import RelationshipType
from spdx_tools.spdx.parser.error import SPDXParsingError
from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser
from spdx_tools.spdx.parser.tagvalue.parser import Parser as TagValueParser

from ledger.events import Component
from ledger.importers.base import (
    BuildOptions,
    ImportedBuild,
    ImportRefused,
    SbomBuild,
    component,
    decode,
    load_json,
    sbom_build_id,
    sbom_format,
    with_graph,
)

LIBRARY_ERRORS = (SPDXParsingError, ValueError, TypeError, LookupError, AttributeError)
"""What spdx-tools raises for a document it cannot read."""
MAX_REASON = 300
READ_VERSIONS = ("SPDX-2.2", "SPDX-2.3")
_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_LINE = re.compile(r"Line: ([0-9]+)")
_PATCHED_LICENSE_LIST = re.compile(r"^([0-9]+\.[0-9]+)\.[0-9]+$")
_PATCHED_LICENSE_LIST_TAG = re.compile(
    r"^([ \t]*LicenseListVersion:[ \t]*[0-9]+\.[0-9]+)\.[0-9]+(?=[ \t]*\r?$)", re.MULTILINE
)
FORWARD = frozenset(
    {
        RelationshipType.DEPENDS_ON,
        RelationshipType.CONTAINS,
        RelationshipType.DYNAMIC_LINK,
        RelationshipType.STATIC_LINK,
    }
)
"""A RELATIONSHIP B: A refers to B."""
BACKWARD = frozenset(
    {
        RelationshipType.DEPENDENCY_OF,
        RelationshipType.RUNTIME_DEPENDENCY_OF,
        RelationshipType.CONTAINED_BY,
    }
)
"""A RELATIONSHIP B: B refers to A."""
DESCRIBING = frozenset({RelationshipType.DESCRIBES, RelationshipType.DESCRIBED_BY})
READ = FORWARD | BACKWARD | DESCRIBING
"""The relationships the graph is made of; the others (GENERATED_FROM, COPY_OF, …) say
nothing about what the artifact needs."""


def read_document(file: str, data: bytes) -> Document:
    """The parsed document, JSON or tag-value, or the refusal saying where it is bad."""
    kind = sbom_format(file, data)
    if kind == "spdx-json":
        document = load_json(file, data)
        _license_list_without_patch(document.get("creationInfo"))
        if document.get("spdxVersion") not in READ_VERSIONS:
            raise ImportRefused(
                file,
                "spdxVersion",
                f"{document.get('spdxVersion')!r}: the versions read are "
                + ", ".join(READ_VERSIONS),
            )
        try:
            return JsonLikeDictParser().parse(document)  # type: ignore[no-untyped-call]
        except (*LIBRARY_ERRORS, RecursionError) as error:
            raise ImportRefused(file, *_explain(error)) from None
    if kind != "spdx-tag-value":
        raise ImportRefused(
            file,
            "",
            "a CycloneDX SBOM, not an SPDX document: import it with `ledger import cyclonedx`",
        )
    text = _PATCHED_LICENSE_LIST_TAG.sub(r"\1", decode(file, data))
    try:
        parser = TagValueParser(  # type: ignore[no-untyped-call]
            write_tables=False, debug=False, errorlog=yacc.NullLogger()
        )
        document = parser.parse(text)  # type: ignore[no-untyped-call]
    except (*LIBRARY_ERRORS, RecursionError) as error:
        raise ImportRefused(file, *_explain(error)) from None
    assert isinstance(document, Document)
    if document.creation_info.spdx_version not in READ_VERSIONS:
        raise ImportRefused(
            file,
            "SPDXVersion",
            f"{document.creation_info.spdx_version!r}: the versions read are "
            + ", ".join(READ_VERSIONS),
        )
    return document


def _license_list_without_patch(creation_info: object) -> None:
    """sbom4python writes ``licenseListVersion`` as ``3.28.0``; SPDX 2.3 says MAJOR.MINOR
    and spdx-tools refuses anything else. The ledger does not use the field, and a
    patch release of the license list is the same list, so its patch part is dropped
    before parsing (in tag-value too, keeping the line where it is) rather than
    refusing the document of a widely used tool."""
    if isinstance(creation_info, dict):
        version = creation_info.get("licenseListVersion")
        if isinstance(version, str) and (found := _PATCHED_LICENSE_LIST.match(version)):
            creation_info["licenseListVersion"] = found.group(1)


def _explain(error: BaseException) -> tuple[str, str]:
    """Where (a tag-value line, when the parser says) and what, on one line."""
    if isinstance(error, SPDXParsingError):
        said = "; ".join(_flat(message) for message in error.get_messages())  # type: ignore[no-untyped-call]
    else:
        said = " ".join(str(error).split()) or type(error).__name__
    lines = _LINE.findall(said)
    position = f"line {lines[0]}" if lines else ""
    if len(said) > MAX_REASON:
        said = said[: MAX_REASON - 1] + "…"
    return position, f"not a valid SPDX document: {said}"


def _flat(message: str) -> str:
    """spdx-tools nests messages as the text of lists: keep the words."""
    for mark in ("['", "']", '["', '"]'):
        message = message.replace(mark, "")
    return " ".join(message.split())


def _purl(package: Package) -> str | None:
    for ref in package.external_references:
        if ref.category is ExternalPackageRefCategory.PACKAGE_MANAGER and ref.reference_type == (
            "purl"
        ):
            return str(ref.locator)
    return None


def _sha256(file: str, package: Package) -> str | None:
    for checksum in package.checksums:
        if checksum.algorithm is ChecksumAlgorithm.SHA256:
            if not _SHA256_HEX.match(checksum.value):
                raise ImportRefused(
                    file, f"package {package.spdx_id}", "a SHA256 checksum is 64 hex digits"
                )
            return f"sha256:{checksum.value.lower()}"
    return None


def _graph(file: str, document: Document) -> tuple[dict[str, list[str]], list[str], bool]:
    """Each element's references, the described elements, and whether any relationship
    of the graph's kinds links two of the document's elements."""
    own = document.creation_info.spdx_id
    defined = {
        own,
        *(p.spdx_id for p in document.packages),
        *(f.spdx_id for f in document.files),
        *(s.spdx_id for s in document.snippets),
    }
    edges: dict[str, list[str]] = {}
    described: list[str] = []
    linked = False
    for relationship in document.relationships:
        kind = relationship.relationship_type
        source, target = relationship.spdx_element_id, relationship.related_spdx_element_id
        if kind not in READ:
            continue
        if not isinstance(target, str) or ":" in target or ":" in source:
            continue  # NONE, NOASSERTION, or an element of another document
        for name in (source, target):
            if name not in defined:
                raise ImportRefused(
                    file,
                    f"relationship {source} {kind.name} {target}",
                    f"{name} is not an element of the document (no package, file or "
                    "snippet has this SPDXID)",
                )
        if kind is RelationshipType.DESCRIBES and source == own:
            described.append(target)
        elif kind is RelationshipType.DESCRIBED_BY and target == own:
            described.append(source)
        elif kind in FORWARD:
            edges.setdefault(source, []).append(target)
            linked = True
        elif kind in BACKWARD:
            edges.setdefault(target, []).append(source)
            linked = True
    return edges, described, linked


def sbom_build(file: str, data: bytes, options: BuildOptions) -> SbomBuild:
    """The one build an SPDX document describes; see the module docstring."""
    document = read_document(file, data)
    packages = {package.spdx_id: package for package in document.packages}
    kept: list[tuple[str, Component]] = []
    skipped: list[str] = []
    for package in document.packages:
        purl = _purl(package)
        if purl is None:
            skipped.append(f"{package.name} {_version(package)}".rstrip() + f" ({package.spdx_id})")
            continue
        fields = {
            "name": package.name,
            "version": _version(package),
            "purl": purl,
            "hash": _sha256(file, package),
        }
        kept.append((package.spdx_id, component(file, f"package {package.spdx_id}", fields)))
    edges, described, linked = _graph(file, document)
    if linked:
        closure, roots = with_graph(kept, edges, described)
    else:
        closure, roots = tuple(item for _, item in kept), ()
    root = _described_package(file, [packages[d] for d in described if d in packages], options)
    if root is not None:
        service = options.service or root.name
        version = _version(root)
        artifact = (
            options.artifact or _purl(root) or (f"{root.name}@{version}" if version else root.name)
        )
        build_id = options.build_id or _build_id(file, root)
    else:
        assert options.service
        assert options.artifact
        service, version, artifact = options.service, "", options.artifact
        build_id = options.build_id
    if build_id is None:
        identity = None if root is None else (root.name, version, _purl(root))
        build_id = sbom_build_id(identity, closure, roots)
    return SbomBuild(
        ImportedBuild(
            position="the described package",
            build_id=build_id,
            service=service,
            version=version,
            artifact=artifact,
            closure=closure,
            occurred_at=document.creation_info.created.replace(tzinfo=UTC)
            if document.creation_info.created.tzinfo is None
            else document.creation_info.created,
            roots=roots,
        ),
        skipped,
    )


def _version(package: Package) -> str:
    return package.version or ""


def _described_package(
    file: str, described: list[Package], options: BuildOptions
) -> Package | None:
    """The one package the document describes; none (or several) need the options."""
    if len(described) == 1:
        return described[0]
    if options.service and options.artifact:
        return None
    said = (
        "describes no package"
        if not described
        else "describes several packages (" + ", ".join(p.spdx_id for p in described) + ")"
    )
    raise ImportRefused(
        file,
        "DESCRIBES",
        f"the document {said}, so it does not say what was built: pass --service and --artifact",
    )


def _build_id(file: str, root: Package) -> str | None:
    """The described package's SHA-256, else a sha256 digest as its purl's or own
    version (syft describes an image so); None when it has neither."""
    found = _sha256(file, root)
    if found:
        return found
    purl = _purl(root)
    for version in (_purl_version(purl) if purl else None, root.version):
        if version and _DIGEST.match(version):
            return str(version)
    return None


def _purl_version(purl: str) -> str | None:
    from packageurl import PackageURL

    try:
        version = PackageURL.from_string(purl).version
    except ValueError:
        return None
    return str(version) if version else None
