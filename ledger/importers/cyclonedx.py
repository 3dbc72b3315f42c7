"""Builds from CycloneDX JSON SBOMs (container images and other non-Nix artifacts).

The SBOM is read with cyclonedx-python-lib. Its ``metadata.component`` is the build
(the service, version and artifact); every component, nested ones too, becomes a
closure component with its name, version, purl and, when the SBOM gives one, its
SHA-256 hash. A component without a purl is skipped and reported: the ledger names a
component by store path or purl, and an SBOM may validly hold components with neither
(files, or packages a scanner could not identify); refusing the whole SBOM for them
would keep every such artifact out of the ledger.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from cyclonedx.exception import CycloneDxException
from cyclonedx.model import HashAlgorithm, HashType
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component as BomComponent

from ledger.events import Component
from ledger.importers.base import ImportedBuild, ImportRefused, component, load_json

LIBRARY_ERRORS = (CycloneDxException, ValueError, TypeError, LookupError, AttributeError)
"""What cyclonedx-python-lib raises for input it cannot deserialize."""
MAX_REASON = 200
_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class BuildOptions:
    """What the command line says about the build, over what the SBOM says."""

    service: str | None = None
    artifact: str | None = None
    build_id: str | None = None


@dataclass(frozen=True)
class SbomBuild:
    build: ImportedBuild
    skipped: list[str]
    """Components without a purl, as ``name version (bom-ref)``."""


def read_bom(file: str, data: bytes) -> tuple[Bom, dict[str, Any]]:
    """The deserialized SBOM and its raw JSON, or the refusal saying where it is bad."""
    document = load_json(file, data)
    if not isinstance(document, dict) or document.get("bomFormat") != "CycloneDX":
        raise ImportRefused(
            file, "", 'not a CycloneDX JSON SBOM (no "bomFormat": "CycloneDX" at the top)'
        )
    try:
        return Bom.from_json(document), document  # type: ignore[attr-defined]
    except (*LIBRARY_ERRORS, RecursionError) as error:
        raise ImportRefused(file, *_locate(document, error)) from None


def _locate(document: dict[str, Any], error: BaseException) -> tuple[str, str]:
    """The first component the library cannot read on its own, else the whole document."""
    for path, raw in _raw_components(document):
        try:
            BomComponent.from_json(raw)  # type: ignore[attr-defined]
        except (*LIBRARY_ERRORS, RecursionError) as component_error:
            return path, f"not a valid CycloneDX component: {_said(component_error)}"
    return "", f"not a valid CycloneDX SBOM: {_said(error)}"


def _said(error: BaseException) -> str:
    """What the library said, on one line and not too long to read."""
    said = " ".join(str(error).split()) or type(error).__name__
    return said if len(said) <= MAX_REASON else said[: MAX_REASON - 1] + "…"


def _raw_components(document: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Every component of the raw JSON with its JSON path, nested ones before their parent."""
    metadata = document.get("metadata")
    if isinstance(metadata, dict) and "component" in metadata:
        yield "metadata.component", metadata["component"]
    yield from _raw_list(document.get("components"), "components")


def _raw_list(items: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if not isinstance(items, list):
        return
    for index, raw in enumerate(items):
        path = f"{prefix}[{index}]"
        if isinstance(raw, dict):
            yield from _raw_list(raw.get("components"), f"{path}.components")
        yield path, raw


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


def sbom_build(file: str, data: bytes, options: BuildOptions) -> SbomBuild:
    """The one build an SBOM describes, with its components; see the module docstring."""
    bom, document = read_bom(file, data)
    raw_paths = {
        raw["bom-ref"]: path
        for path, raw in _raw_components(document)
        if isinstance(raw, dict) and isinstance(raw.get("bom-ref"), str)
    }
    closure: list[Component] = []
    skipped: list[str] = []
    for item in _walk(bom.components):
        position = _label(item, raw_paths)
        if item.purl is None:
            ref = f" ({item.bom_ref.value})" if item.bom_ref.value else ""
            skipped.append(f"{item.name} {item.version or ''}".rstrip() + ref)
            continue
        closure.append(
            component(
                file,
                position,
                {
                    "name": item.name,
                    "version": item.version or "",
                    "purl": item.purl.to_string(),
                    "hash": _sha256(item.hashes, file, position),
                },
            )
        )
    root = bom.metadata.component
    if root is not None:
        service = options.service or root.name
        version = root.version or ""
        artifact = options.artifact or _artifact(root)
        build_id = options.build_id or _build_id(file, root)
    elif options.service and options.artifact and options.build_id:
        service, version, artifact, build_id = (
            options.service,
            "",
            options.artifact,
            options.build_id,
        )
    else:
        raise ImportRefused(
            file,
            "metadata.component",
            "missing, so the SBOM does not say what was built: pass --service, --artifact "
            "and --build-id",
        )
    # The library fills in "now" for an SBOM without a timestamp: only a real one counts.
    metadata = document.get("metadata")
    dated = isinstance(metadata, dict) and "timestamp" in metadata
    return SbomBuild(
        ImportedBuild(
            position="metadata.component",
            build_id=build_id,
            service=service,
            version=version,
            artifact=artifact,
            closure=tuple(closure),
            occurred_at=bom.metadata.timestamp if dated else None,
        ),
        skipped,
    )


def _build_id(file: str, root: BomComponent) -> str:
    """The root's SHA-256, else a sha256 digest as its (purl) version: an image digest."""
    found = _sha256(root.hashes, file, "metadata.component")
    if found:
        return found
    for version in (root.purl.version if root.purl else None, root.version):
        if version and _DIGEST.match(version):
            return version
    raise ImportRefused(
        file,
        "metadata.component",
        "no SHA-256 hash and no sha256 digest in its purl or version to name the build "
        "by: pass --build-id",
    )


def _artifact(root: BomComponent) -> str:
    if root.purl is not None:
        return str(root.purl.to_string())
    return f"{root.name}@{root.version}" if root.version else root.name
