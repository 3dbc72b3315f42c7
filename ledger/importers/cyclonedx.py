"""Builds from CycloneDX SBOMs, JSON or XML (container images and other non-Nix artifacts).

The SBOM is read with cyclonedx-python-lib (XML parsed by defusedxml first, as the
library does, so entity tricks are refused). Its ``metadata.component`` is the build
(the service, version and artifact); every component, nested ones too, becomes a
closure component with its name, version, purl and, when the SBOM gives one, its
SHA-256 hash. A component without a purl is skipped and reported: the ledger names a
component by store path or purl, and an SBOM may validly hold components with neither
(files, or packages a scanner could not identify); refusing the whole SBOM for them
would keep every such artifact out of the ledger.

The ``dependencies`` (ref → dependsOn) become the graph: the roots are what
``metadata.component`` depends on, or, when the SBOM does not say (syft lists only the
packages' own dependencies), the components nothing depends on. A dependency naming a
ref no component has is refused. An SBOM without ``dependencies`` is recorded without
a graph.

The build id is ``metadata.component``'s SHA-256, else a sha256 digest as its purl's or
own version (an image), else derived from the SBOM's content (``base.sbom_build_id``):
``cyclonedx-py environment`` names no hash, and its serial number and timestamp change
on every run, so only the content can name the build the same way twice.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from cyclonedx.exception import CycloneDxException
from cyclonedx.model import HashAlgorithm, HashType
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component as BomComponent
from cyclonedx.schema.deprecation import BaseSchemaDeprecationWarning
from defusedxml import DefusedXmlException  # type: ignore[import-untyped]
from defusedxml import ElementTree as SafeElementTree

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
    unreferenced,
    with_graph,
)

__all__ = ["BuildOptions", "SbomBuild", "read_bom", "sbom_build"]

LIBRARY_ERRORS = (CycloneDxException, ValueError, TypeError, LookupError, AttributeError)
"""What cyclonedx-python-lib raises for input it cannot deserialize."""
MAX_REASON = 200
_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_NAMESPACE = re.compile(r"^\{(http://cyclonedx\.org/schema/bom/[0-9.]+)\}bom$")


@contextmanager
def _quietly() -> Iterator[None]:
    """The library warns about fields later schema versions deprecate (tools, author):
    an SBOM written to an older version is no less a fact."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BaseSchemaDeprecationWarning)
        yield


@dataclass(frozen=True)
class RawBom:
    """What the library's model does not keep: where each component is in the file
    (by bom-ref, for refusals) and whether the SBOM has a timestamp of its own."""

    paths: dict[str, str]
    dated: bool
    has_dependencies: bool


def read_bom(file: str, data: bytes) -> tuple[Bom, RawBom]:
    """The deserialized SBOM, JSON or XML, or the refusal saying where it is bad."""
    found = sbom_format(file, data)
    if found == "cyclonedx-xml":
        return _read_xml(file, data)
    if found.startswith("spdx"):
        raise ImportRefused(
            file, "", "an SPDX document, not a CycloneDX SBOM: import it with `ledger import spdx`"
        )
    return _read_json(file, data)


def _read_json(file: str, data: bytes) -> tuple[Bom, RawBom]:
    document = load_json(file, data)
    if not isinstance(document, dict) or document.get("bomFormat") != "CycloneDX":
        raise ImportRefused(
            file, "", 'not a CycloneDX JSON SBOM (no "bomFormat": "CycloneDX" at the top)'
        )
    try:
        with _quietly():
            bom = Bom.from_json(document)  # type: ignore[attr-defined]
    except (*LIBRARY_ERRORS, RecursionError) as error:
        raise ImportRefused(file, *_locate(_json_components(document), error)) from None
    metadata = document.get("metadata")
    raw = RawBom(
        paths={
            item["bom-ref"]: path
            for path, item in _json_components(document)
            if isinstance(item, dict) and isinstance(item.get("bom-ref"), str)
        },
        # The library fills in "now" for an SBOM without a timestamp: only a real one counts.
        dated=isinstance(metadata, dict) and "timestamp" in metadata,
        has_dependencies=bool(document.get("dependencies")),
    )
    return bom, raw


def _read_xml(file: str, data: bytes) -> tuple[Bom, RawBom]:
    text = decode(file, data)
    try:
        root = SafeElementTree.fromstring(text)
    except ParseError as error:
        line, column = error.position
        reason = str(error).split(":", 1)[0]
        raise ImportRefused(
            file, f"line {line}, column {column + 1}", f"not well-formed XML ({reason})"
        ) from None
    except DefusedXmlException as error:
        raise ImportRefused(
            file, "", f"XML with entity declarations or external references is refused ({error!r})"
        ) from None
    match = _NAMESPACE.match(root.tag)
    if match is None:
        raise ImportRefused(file, "", f"not a CycloneDX XML SBOM (its root element is {root.tag})")
    namespace = match.group(1)
    try:
        with _quietly():
            bom = Bom.from_xml(root)  # type: ignore[attr-defined]
    except (*LIBRARY_ERRORS, RecursionError) as error:
        raise ImportRefused(
            file, *_locate(_xml_components(root, namespace), error, namespace)
        ) from None
    metadata = root.find(f"{{{namespace}}}metadata")
    raw = RawBom(
        paths={
            item.attrib["bom-ref"]: path
            for path, item in _xml_components(root, namespace)
            if "bom-ref" in item.attrib
        },
        dated=metadata is not None and metadata.find(f"{{{namespace}}}timestamp") is not None,
        has_dependencies=len(root.findall(f"{{{namespace}}}dependencies/*")) > 0,
    )
    return bom, raw


def _locate(
    components: Iterable[tuple[str, Any]], error: BaseException, namespace: str | None = None
) -> tuple[str, str]:
    """The first component the library cannot read on its own, else the whole document."""
    for path, raw in components:
        try:
            if namespace is None:
                BomComponent.from_json(raw)  # type: ignore[attr-defined]
            else:
                BomComponent.from_xml(raw, default_namespace=namespace)  # type: ignore[attr-defined]
        except (*LIBRARY_ERRORS, RecursionError) as component_error:
            return path, f"not a valid CycloneDX component: {_said(component_error)}"
    return "", f"not a valid CycloneDX SBOM: {_said(error)}"


def _said(error: BaseException) -> str:
    """What the library said, on one line and not too long to read."""
    said = " ".join(str(error).split()) or type(error).__name__
    return said if len(said) <= MAX_REASON else said[: MAX_REASON - 1] + "…"


def _json_components(document: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Every component of the raw JSON with its JSON path, nested ones before their parent."""
    metadata = document.get("metadata")
    if isinstance(metadata, dict) and "component" in metadata:
        yield "metadata.component", metadata["component"]
    yield from _json_list(document.get("components"), "components")


def _json_list(items: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if not isinstance(items, list):
        return
    for index, raw in enumerate(items):
        path = f"{prefix}[{index}]"
        if isinstance(raw, dict):
            yield from _json_list(raw.get("components"), f"{path}.components")
        yield path, raw


def _xml_components(root: Element, namespace: str) -> Iterator[tuple[str, Element]]:
    """Every component element with its path (``components/component[2]``, counted from 1
    as XPath does), nested ones before their parent."""
    tag = f"{{{namespace}}}component"
    metadata = root.find(f"{{{namespace}}}metadata")
    if metadata is not None and (item := metadata.find(tag)) is not None:
        yield "metadata/component", item
    yield from _xml_list(root.find(f"{{{namespace}}}components"), "components", tag, namespace)


def _xml_list(
    parent: Element | None, prefix: str, tag: str, namespace: str
) -> Iterator[tuple[str, Element]]:
    if parent is None:
        return
    for number, item in enumerate(parent.findall(tag), start=1):
        path = f"{prefix}/component[{number}]"
        yield from _xml_list(
            item.find(f"{{{namespace}}}components"), f"{path}/components", tag, namespace
        )
        yield path, item


def _walk(components: Iterable[BomComponent]) -> Iterator[BomComponent]:
    for item in components:
        yield item
        yield from _walk(item.components)


def _sha256(hashes: Iterable[HashType], file: str, position: str) -> str | None:
    for hash_ in hashes:
        if hash_.alg is HashAlgorithm.SHA_256:
            if not _SHA256_HEX.match(hash_.content):
                raise ImportRefused(file, f"{position}.hashes", "a SHA-256 is 64 hex digits")
            return f"sha256:{hash_.content.lower()}"
    return None


def _label(item: BomComponent, paths: dict[str, str]) -> str:
    ref = item.bom_ref.value
    return paths.get(ref, f"component {item.name!r}") if ref else f"component {item.name!r}"


def _graph(file: str, bom: Bom) -> tuple[dict[str, list[str]], list[str] | None]:
    """Each ref's dependsOn, and what the root (metadata.component) depends on, if the
    SBOM says; a ref no component has is refused, naming the dependency it is in."""
    refs = {item.bom_ref.value for item in _walk(bom.components) if item.bom_ref.value}
    root = bom.metadata.component
    root_ref = root.bom_ref.value if root is not None else None
    if root_ref:
        refs.add(root_ref)
    edges: dict[str, list[str]] = {}
    for dependency in bom.dependencies:
        ref = dependency.ref.value or ""
        if ref not in refs:
            raise ImportRefused(file, f"dependencies: ref {ref!r}", "no component has this bom-ref")
        for target in dependency.dependencies:
            name = target.ref.value or ""
            if name not in refs:
                raise ImportRefused(
                    file,
                    f"dependencies: ref {ref!r}, dependsOn {name!r}",
                    "no component has this bom-ref",
                )
        edges.setdefault(ref, []).extend(
            target.ref.value or "" for target in dependency.dependencies
        )
    root_edges = edges.pop(root_ref, None) if root_ref else None
    return edges, root_edges


def sbom_build(file: str, data: bytes, options: BuildOptions) -> SbomBuild:
    """The one build an SBOM describes, with its components; see the module docstring."""
    bom, raw = read_bom(file, data)
    kept: list[tuple[str, Component]] = []
    skipped: list[str] = []
    order: list[str] = []
    for number, item in enumerate(_walk(bom.components)):
        key = item.bom_ref.value or f"#{number}"
        order.append(key)
        position = _label(item, raw.paths)
        if item.purl is None:
            ref = f" ({item.bom_ref.value})" if item.bom_ref.value else ""
            skipped.append(f"{item.name} {item.version or ''}".rstrip() + ref)
            continue
        fields = {
            "name": item.name,
            "version": item.version or "",
            "purl": item.purl.to_string(),
            "hash": _sha256(item.hashes, file, position),
        }
        kept.append((key, component(file, position, fields)))
    edges, root_edges = _graph(file, bom)
    if raw.has_dependencies:
        roots = root_edges if root_edges else unreferenced(order, edges)
        closure, root_indexes = with_graph(kept, edges, roots)
    else:
        closure, root_indexes = tuple(item for _, item in kept), ()
    root = bom.metadata.component
    if root is not None:
        service = options.service or root.name
        version = root.version or ""
        artifact = options.artifact or _artifact(root)
        build_id = options.build_id or _build_id(file, root)
    elif options.service and options.artifact:
        service, version, artifact = options.service, "", options.artifact
        build_id = options.build_id
    else:
        raise ImportRefused(
            file,
            "metadata.component",
            "missing, so the SBOM does not say what was built: pass --service and --artifact",
        )
    if build_id is None:
        identity = None if root is None else (root.name, version, _purl(root))
        build_id = sbom_build_id(identity, closure, root_indexes)
    return SbomBuild(
        ImportedBuild(
            position="metadata.component",
            build_id=build_id,
            service=service,
            version=version,
            artifact=artifact,
            closure=closure,
            occurred_at=bom.metadata.timestamp if raw.dated else None,
            roots=root_indexes,
        ),
        skipped,
    )


def _build_id(file: str, root: BomComponent) -> str | None:
    """The root's SHA-256, else a sha256 digest as its (purl) version: an image digest;
    None when it has neither."""
    found = _sha256(root.hashes, file, "metadata.component")
    if found:
        return found
    for version in (root.purl.version if root.purl else None, root.version):
        if version and _DIGEST.match(version):
            return str(version)
    return None


def _purl(item: BomComponent) -> str | None:
    return None if item.purl is None else str(item.purl.to_string())


def _artifact(root: BomComponent) -> str:
    return _purl(root) or (f"{root.name}@{root.version}" if root.version else root.name)
