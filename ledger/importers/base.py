"""What every build importer shares: the refusal, builds as events, recording them once,
the dependency graph, and telling SBOM formats apart.

An importer reads a whole file, builds and validates every event first, and appends
them in one ``Ledger.append`` call: a refused file records nothing. Event ids are
derived from what the build is (env, kind, build id, service), so importing the same
file again records nothing new; an id already stored is reported as already recorded
even if this import would give it other content (a default time of "now", say, or a
dependency graph an older version of the importer did not keep).

An SBOM that gives no hash or digest for its build is named by its content
(``sbom_build_id``), so the same content gets the same id, and so the same event id, on
every import.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any, Literal
from uuid import UUID, uuid5

from pydantic import ValidationError

from ledger.application import Ledger
from ledger.errors import InvalidInput
from ledger.events import BuildRecorded, Component, describe_error

EVENT_ID_NAMESPACE = UUID("5b0c7a52-3d1e-4f0a-9a43-6f1d2c8e7b19")
"""uuid5 namespace of imported events' ids; changing it would re-record every import."""


class ImportRefused(InvalidInput):
    """An import file is invalid at some position; nothing was recorded from it."""

    def __init__(self, file: str, position: str, reason: str) -> None:
        self.file = file
        self.position = position
        self.reason = reason
        where = f"{file}: {position}" if position else file
        super().__init__(f"{where}: {reason}; nothing was recorded from it")


@dataclass(frozen=True)
class ImportedBuild:
    """A build read from a file, before it becomes an event.

    ``position`` says where in the file it came from, for refusals; ``occurred_at`` is
    None when the file does not say when it was built.
    """

    position: str
    build_id: str
    service: str
    version: str
    artifact: str
    closure: tuple[Component, ...]
    occurred_at: datetime | None = None
    roots: tuple[int, ...] = ()
    """The closure components the artifact refers to directly; empty when the file says
    nothing about dependencies (then so do the components' references)."""


@dataclass(frozen=True)
class BuildOptions:
    """What the command line says about an SBOM's build, over what the SBOM says."""

    service: str | None = None
    artifact: str | None = None
    build_id: str | None = None


@dataclass(frozen=True)
class SbomBuild:
    build: ImportedBuild
    skipped: list[str]
    """Components without a purl, as ``name version (ref)``."""


@dataclass(frozen=True)
class RecordedBuild:
    """One build of an import and where it is in the ledger."""

    service: str
    version: str
    build_id: str
    artifact: str
    paths: int
    event_id: UUID
    position: int
    new: bool
    """False when the ledger already held this build's event."""


@dataclass(frozen=True)
class ImportReport:
    builds: list[RecordedBuild]
    skipped_components: list[str]
    """Components that could not be recorded (CycloneDX components without a purl)."""

    @property
    def recorded(self) -> int:
        return sum(1 for build in self.builds if build.new)

    @property
    def already_recorded(self) -> int:
        return sum(1 for build in self.builds if not build.new)


def event_id(env: str, build_id: str, service: str) -> UUID:
    """The same build of the same service in the same env always gets the same id."""
    return uuid5(EVENT_ID_NAMESPACE, json.dumps(["build_recorded", env, build_id, service]))


def decode(file: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ImportRefused(file, f"byte {error.start}", "not valid UTF-8") from None


def load_json(file: str, data: bytes) -> Any:
    """The parsed document, or the refusal saying at which line and column it breaks."""
    text = decode(file, data)
    if not text.strip():
        raise ImportRefused(file, "", "the file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        reason = f"not valid JSON ({error.msg})"
        if error.pos >= len(text.rstrip()) or error.msg.startswith("Unterminated"):
            reason += ": the file ends before the JSON does (truncated?)"
        raise ImportRefused(file, f"line {error.lineno}, column {error.colno}", reason) from None
    except RecursionError:
        raise ImportRefused(file, "", "JSON nested too deeply") from None


def component(
    file: str, position: str, fields: dict[str, Any], names: Mapping[str, str] | None = None
) -> Component:
    """A closure component, or the refusal naming its position and the bad field.

    ``names`` maps the model's field names to the file's, for the message (hash → narHash).
    """
    try:
        return Component.model_validate(fields)
    except ValidationError as error:
        raise refusal(file, position, error, names or {}) from None


def refusal(
    file: str, position: str, error: ValidationError, names: Mapping[str, str]
) -> ImportRefused:
    field, reason = describe_error(error.errors(include_url=False)[0])
    field = names.get(field, field)
    where = f"{position}.{field}" if position and field else position or field
    return ImportRefused(file, where, reason)


def record(
    ledger: Ledger,
    file: str,
    builds: Sequence[ImportedBuild],
    *,
    env: str,
    actor: str,
    at: datetime | None = None,
    skipped_components: Sequence[str] = (),
) -> ImportReport:
    """Validate every build as an event, then append the new ones in one transaction.

    ``at`` is when builds happened whose file does not say (default: now).
    """
    default_time = at or datetime.now(UTC)
    events: list[BuildRecorded] = []
    for build in builds:
        try:
            events.append(
                BuildRecorded.model_validate(
                    {
                        "event_id": event_id(env, build.build_id, build.service),
                        "env": env,
                        "actor": actor,
                        "occurred_at": build.occurred_at or default_time,
                        "build_id": build.build_id,
                        "service": build.service,
                        "version": build.version,
                        "artifact": build.artifact,
                        "closure": build.closure,
                        "roots": build.roots,
                    }
                )
            )
        except ValidationError as error:
            raise refusal(file, build.position, error, {}) from None
    stored = ledger.stored(e.event_id for e in events)
    appended = {
        result.event_id: result.position
        for result in ledger.append(
            [e for e in events if e.event_id not in stored], source="import"
        )
    }
    return ImportReport(
        [
            RecordedBuild(
                service=e.service,
                version=e.version,
                build_id=e.build_id,
                artifact=e.artifact,
                paths=len(e.closure),
                event_id=e.event_id,
                position=stored[e.event_id] if e.event_id in stored else appended[e.event_id],
                new=e.event_id not in stored,
            )
            for e in events
        ],
        list(skipped_components),
    )


# --- the dependency graph ------------------------------------------------------------


def with_graph(
    kept: Sequence[tuple[str, Component]],
    edges: Mapping[str, Iterable[str]],
    roots: Iterable[str],
) -> tuple[tuple[Component, ...], tuple[int, ...]]:
    """The closure with each component's references, and the roots, as closure indexes.

    ``kept`` is the closure in order, each component with the id the file names it by
    (store path, bom-ref, SPDX id); ``edges`` maps an id to the ids it refers to
    directly; ``roots`` are the ids the artifact refers to directly. An id that is not
    kept (a component without a purl, an SPDX file) is looked through: what refers to
    it refers to what it refers to, so a path through it is not lost, only shortened.
    A component's reference to itself (Nix paths often have one) is left out: it says
    nothing about why the component is there.
    """
    index = {key: position for position, (key, _) in enumerate(kept)}

    def targets(keys: Iterable[str]) -> tuple[int, ...]:
        found: set[int] = set()
        seen: set[str] = set()
        stack = list(keys)
        while stack:
            key = stack.pop()
            if key in index:
                found.add(index[key])
            elif key not in seen:
                seen.add(key)
                stack.extend(edges.get(key, ()))
        return tuple(sorted(found))

    closure = []
    for position, (key, item) in enumerate(kept):
        references = tuple(t for t in targets(edges.get(key, ())) if t != position)
        closure.append(item.model_copy(update={"references": references}) if references else item)
    return tuple(closure), targets(roots)


def unreferenced(keys: Iterable[str], edges: Mapping[str, Iterable[str]]) -> list[str]:
    """The ids no other id refers to, in ``keys``' order: the roots of a file that does
    not say what the artifact itself refers to (as ``nix.roots`` finds Nix's)."""
    referred = {target for key, targets in edges.items() for target in targets if target != key}
    return [key for key in keys if key not in referred]


# --- builds named by their SBOM's content ------------------------------------------

SBOM_ID_PREFIX = "sbom:"
"""What starts a build id derived from an SBOM's content (then 64 hex digits of a
SHA-256). Short on purpose: the views, alerts and Riemann show a build id's first 12
characters, which must still tell two such builds apart."""


def sbom_build_id(
    root: tuple[str, str, str | None] | None,
    closure: Sequence[Component],
    roots: Sequence[int],
) -> str:
    """A build id for an SBOM that names its build by no hash: ``sbom:`` and the SHA-256
    of what the ledger records of the build, in a canonical form.

    The form holds the root (the SBOM's name, version and purl for what was built; None
    when the SBOM has none), every closure component's name, version, purl and hash
    with the components it refers to, and the roots; components are named by those
    four fields rather than by their place or the SBOM's refs, and every list is
    sorted. So what a tool writes differently on each run (serial number, document
    namespace, timestamp, tool versions, the order of components, bom-refs and SPDXIDs)
    and what the ledger does not record (licenses, descriptions, components without a
    purl) do not change the id: one tool's SBOM of one environment gets one id, as JSON
    or as XML (or tag-value), today or tomorrow; another component, version, hash or
    dependency gets another. The form is part of the stored ids: changing it would
    record every such build again under a new id.
    """
    identities = [[item.name, item.version, item.purl, item.hash] for item in closure]
    components = sorted(
        (
            [identities[index], sorted((identities[r] for r in item.references), key=_canonical)]
            for index, item in enumerate(closure)
        ),
        key=_canonical,
    )
    content = {
        "root": None if root is None else list(root),
        "components": components,
        "roots": sorted((identities[index] for index in roots), key=_canonical),
    }
    digest = hashlib.sha256(_canonical(content).encode("utf-8")).hexdigest()
    return SBOM_ID_PREFIX + digest


def _canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


# --- SBOM formats --------------------------------------------------------------------

SbomFormat = Literal["cyclonedx-json", "cyclonedx-xml", "spdx-json", "spdx-tag-value"]
TRIED = "CycloneDX JSON or XML (1.4-1.6), SPDX 2.3 JSON or tag-value"
_CYCLONEDX_NAMESPACE = re.compile(
    rb"<(?:[A-Za-z_][\w.-]*:)?bom\b[^>]*xmlns(?::[\w.-]+)?=[\"']http://cyclonedx\.org/schema/bom/"
)
_SPDX_TAG = re.compile(rb"^[ \t]*SPDXVersion:[ \t]*SPDX-", re.MULTILINE)
_EXTENSIONS: dict[str, SbomFormat] = {
    ".spdx": "spdx-tag-value",
    ".xml": "cyclonedx-xml",
}


def sbom_format(file: str, data: bytes) -> SbomFormat:
    """Which SBOM format ``data`` is in, told by its content; the file's extension only
    decides which parser explains the trouble when the content looks like none.

    JSON is CycloneDX when ``bomFormat`` is ``CycloneDX`` and SPDX when it has an
    ``spdxVersion``; XML is CycloneDX when its root is a ``bom`` in CycloneDX's
    namespace; text is SPDX tag-value when a line starts ``SPDXVersion: SPDX-``.
    """
    start = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start in (b"{", b"["):
        document = load_json(file, data)
        if not isinstance(document, dict):
            document = {}
        if document.get("bomFormat") == "CycloneDX":
            return "cyclonedx-json"
        if "spdxVersion" in document:
            return "spdx-json"
        if "@context" in document and "spdx" in json.dumps(document["@context"]).lower():
            raise ImportRefused(file, "", "SPDX 3 (JSON-LD) is not read: give SPDX 2.3")
        raise ImportRefused(
            file,
            "",
            'JSON, but neither a CycloneDX SBOM (no "bomFormat": "CycloneDX") nor an SPDX '
            f'document (no "spdxVersion"); the formats read are {TRIED}',
        )
    if start == b"<":
        if _CYCLONEDX_NAMESPACE.search(data[:4096]):
            return "cyclonedx-xml"
        if b"spdx" in data[:4096].lower():
            raise ImportRefused(
                file,
                "",
                "SPDX XML and RDF are not read: convert the document to JSON (pyspdxtools "
                "-i FILE -o FILE.spdx.json)",
            )
        raise ImportRefused(
            file,
            "",
            "XML, but not a CycloneDX SBOM (its root is not a bom element in the "
            f"http://cyclonedx.org/schema/bom/ namespace); the formats read are {TRIED}",
        )
    if _SPDX_TAG.search(data):
        return "spdx-tag-value"
    hinted = next(
        (found for suffix, found in _EXTENSIONS.items() if PurePath(file).name.endswith(suffix)),
        None,
    )
    if hinted is not None:
        return hinted  # its parser says what is wrong with the file
    if not data.strip():
        raise ImportRefused(file, "", "the file is empty")
    raise ImportRefused(file, "", f"not an SBOM in a format the ledger reads: {TRIED}")
