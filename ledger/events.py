"""The event vocabulary: one pydantic model per kind of fact the ledger records.

These models are the one contract that files, HTTP and Kafka carry. Their JSON form
(``model_dump(mode="json")``) is "the documented event form": one JSON object per
event, discriminated by ``kind``, versioned by ``schema_version``. ``docs/events.md``
describes it and ``docs/schema/ledger-event.schema.json`` is generated from here.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Literal, get_args
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

SCHEMA_VERSION: Literal[1] = 1
"""Bump with an upcaster in ``ledger.domain`` when a kind changes incompatibly."""


# String rules are patterns, checked inside pydantic-core (Rust) rather than by Python
# validators called hundreds of times per build; ``describe_error`` turns a mismatch
# back into a sentence that says what is wrong and where.
_CC = r"\x00-\x1f\x7f-\x9f"  # exactly Unicode category Cc
_CONTROL = re.compile(f"[{_CC}]")
# Characters that make a name display as another: bidirectional controls (U+061C,
# U+200E/F, U+202A-U+202E, U+2066-U+2069), zero-width ones (U+200B-U+200D, U+2060,
# U+FEFF) and the line and paragraph separators (U+2028/9). Written as \u escapes,
# which Python's re, the Rust regex crate (pydantic-core) and ECMA-262 (JSON Schema)
# all read the same way.
_INVISIBLE = r"\u061c\u200b-\u200f\u2028-\u202e\u2060\u2066-\u2069\ufeff"
_INVISIBLE_CHARACTER = re.compile(f"[{_INVISIBLE}]")
_NOT_IN_NAMES = _CC + _INVISIBLE
NAME_PATTERN = rf"^[^{_NOT_IN_NAMES}\s](?:[^{_NOT_IN_NAMES}]*[^{_NOT_IN_NAMES}\s])?$"
LABEL_PATTERN = rf"^(?:[^{_NOT_IN_NAMES}\s](?:[^{_NOT_IN_NAMES}]*[^{_NOT_IN_NAMES}\s])?)?$"
_CC_EXCEPT_NEWLINES = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_CONTROL_EXCEPT_NEWLINES = re.compile(f"[{_CC_EXCEPT_NEWLINES}]")
TEXT_PATTERN = rf"^[^{_CC_EXCEPT_NEWLINES}]*$"
HASH_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9+/=_.:-]{7,199}$"

Name = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=NAME_PATTERN)]
"""A host, service, env or actor name: non-empty, at most 253 characters, printable,
without characters that would make it display as another name."""

Label = Annotated[str, StringConstraints(max_length=253, pattern=LABEL_PATTERN)]
"""A short printable string that may be empty (a component version, a revision)."""

Text = Annotated[str, StringConstraints(max_length=8192, pattern=TEXT_PATTERN)]
"""Free text for people: a reason, a description. Newlines and tabs are allowed."""

LogExcerpt = Annotated[str, StringConstraints(max_length=65536, pattern=TEXT_PATTERN)]

Hash = Annotated[str, StringConstraints(pattern=HASH_PATTERN)]
"""A content or input hash in any of the usual spellings (hex, base32, SRI)."""

BuildId = Hash
"""A build is named by its artifact's content or input hash."""

Artifact = Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=NAME_PATTERN)]
"""What was built: a Nix store path, an image digest, a release tarball URL."""

StorePath = Annotated[
    str,
    StringConstraints(max_length=1024, pattern=r"^/[^\x00-\x1f\x7f]*$"),
]
Purl = Annotated[str, StringConstraints(max_length=1024, pattern=r"^pkg:[a-z][a-z0-9.+-]*/\S+$")]

Seconds = Annotated[float, Field(ge=0, le=10**7, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=0, le=2**62)]
GenerationNumber = Annotated[int, Field(ge=1, le=2**62)]

Source = Literal["cli", "file", "http", "kafka", "import", "demo"]


class Model(BaseModel):
    """Strict, immutable models: unknown fields are refused, nothing is coerced silently."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Component(Model):
    """One store path of a closure: what an auditor searches for."""

    name: Name = Field(
        description="Package name, as Nix parses it from the derivation's name (openssl)."
    )
    version: Label = Field(
        description="Version, without the output (may be empty for unversioned store paths)."
    )
    # Left out of the JSON form when None, so that events recorded before the field
    # existed keep exactly the form (and so the hashes and content digests) they had.
    # Field(exclude_if=…) needs pydantic 2.12 or later.
    output: Label | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="The Nix output: out, bin, dev, man…; None when not a Nix path or "
        "unknown (left out of the JSON form then).",
    )
    store_path: StorePath | None = Field(
        default=None, description="Nix store path of the component."
    )
    purl: Purl | None = Field(
        default=None,
        description="Package URL (pkg:nix/openssl@3.0.13), when there is no store path.",
    )
    hash: Hash | None = Field(
        default=None,
        description="Content hash of the component (narHash, sha256:…), when the source "
        "gives one (most SBOMs do not).",
    )
    references: tuple[Annotated[int, Field(ge=0, le=99_999)], ...] = Field(
        default=(),
        max_length=100_000,
        exclude_if=lambda value: not value,
        description="The components this one refers to directly, as indexes into the "
        "build's closure (Nix references, CycloneDX dependencies, SPDX DEPENDS_ON); left "
        "out of the JSON form when empty.",
    )

    @model_validator(mode="after")
    def _has_location(self) -> Component:
        if self.store_path is None and self.purl is None:
            raise ValueError("a component needs a store_path or a purl")
        return self


class ManifestEntry(Model):
    """One service placed on one host: a line of a Disnix-style manifest."""

    host: Name = Field(description="The fleet host (web-001).")
    service: Name = Field(description="The fleet service (api, auth, …).")
    build_id: BuildId = Field(
        description="The build's content or input hash (for Nix, the store path hash)."
    )
    artifact: Artifact | None = Field(
        default=None, description="What was built: Nix store path, image digest or tarball URL."
    )
    depends_on: tuple[Name, ...] = Field(
        default=(),
        description="Services this one depends on (activated before it, drained after it).",
    )


_DATE_TIME = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
RFC3339_PATTERN = rf"^{_DATE_TIME}(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
"""RFC 3339 ``date-time``: seconds required, 1-9 fraction digits, ``Z`` or ``±hh:mm``."""
_RFC3339 = re.compile(RFC3339_PATTERN)
_WITHOUT_OFFSET = re.compile(rf"^{_DATE_TIME}$")
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9998, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
_TIMESTAMP_EXAMPLE = "for example 2026-03-11T14:10:00Z or 2026-03-11T15:10:00+01:00"


def _rfc3339(value: object) -> object:
    """Only RFC 3339 text is read: the model's own date parser also takes epoch seconds
    ("1773238200"), ``_`` or a space as the separator and times without seconds. Parsed
    here, because after a Python validator a strict model no longer takes text."""
    if isinstance(value, datetime):  # built in Python (ledger record, the planner)
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected an RFC 3339 timestamp string ({_TIMESTAMP_EXAMPLE})")
    if not _RFC3339.fullmatch(value):
        if _WITHOUT_OFFSET.fullmatch(value):
            raise ValueError("timestamp must be timezone-aware (for example 2026-03-11T14:10:00Z)")
        raise ValueError(f"expected an RFC 3339 timestamp with an offset ({_TIMESTAMP_EXAMPLE})")
    try:
        # Digits past microseconds are dropped; t and z may be lower case in RFC 3339.
        return datetime.fromisoformat(value.upper())
    except ValueError as error:  # February 30th, second 60
        raise ValueError(f"not a valid date and time ({error})") from None


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware (for example 2026-03-11T14:10:00Z)")
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-14:00 is in year 10000 in UTC
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise ValueError(
            "timestamp out of range: it must fall between 1970-01-01 and 9998-12-31 in UTC"
        )
    return utc


Timestamp = Annotated[
    datetime,
    BeforeValidator(_rfc3339),
    AfterValidator(_utc),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": RFC3339_PATTERN}),
]
"""An RFC 3339 timestamp with an offset, stored in UTC."""
TIMESTAMP: TypeAdapter[datetime] = TypeAdapter(Timestamp)
"""Serialises a timestamp exactly as the models do (``…Z``)."""

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_CANONICAL_UUID = re.compile(UUID_PATTERN)


def _canonical_uuid(value: object) -> object:
    """One spelling per id: the parser also reads ``urn:uuid:…``, braces, no dashes and
    upper case, which a consumer comparing ids as text would take for other ids."""
    if not isinstance(value, str):
        return value  # a UUID built in Python, or a wrong type the model refuses
    if not _CANONICAL_UUID.fullmatch(value):
        raise ValueError(
            "expected a UUID in its canonical form: lower-case hex digits in groups of "
            "8-4-4-4-12 (6f1c3a7e-0000-4000-8000-000000000001)"
        )
    return UUID(value)


CanonicalUUID = Annotated[
    UUID,
    BeforeValidator(_canonical_uuid),
    WithJsonSchema({"type": "string", "format": "uuid", "pattern": UUID_PATTERN}),
]


def _exactly_one(value: object) -> object:
    # A Literal accepts whatever equals 1: true and 1.0 too.
    if type(value) is not int:
        raise ValueError(f"expected the integer {SCHEMA_VERSION}")
    return value


SchemaVersion = Annotated[Literal[1], BeforeValidator(_exactly_one)]


def _kind_is_required(schema: dict[str, Any]) -> None:
    # ``kind`` has a default so that code can build events without naming the kind;
    # in the JSON form it is required (the tagged union cannot do without it).
    required = schema.setdefault("required", [])
    if "kind" in schema.get("properties", {}) and "kind" not in required:
        required.insert(0, "kind")


class Envelope(Model):
    """Fields every event carries."""

    model_config = ConfigDict(json_schema_extra=_kind_is_required)

    schema_version: SchemaVersion = SCHEMA_VERSION
    event_id: CanonicalUUID
    env: Name
    occurred_at: Timestamp
    recorded_at: Timestamp | None = None
    actor: Name
    source: Source | None = None


# --- builds -------------------------------------------------------------------------


class BuildRecorded(Envelope):
    """A service was built: its build id, artifact and full closure."""

    kind: Literal["build_recorded"] = "build_recorded"
    build_id: BuildId = Field(
        description="The build's content or input hash (for Nix, the store path hash)."
    )
    service: Name = Field(description="The fleet service (api, auth, …).")
    version: Label = Field(description="Version (may be empty for unversioned store paths).")
    artifact: Artifact = Field(
        description="What was built: Nix store path, image digest or tarball URL."
    )
    source_revision: Label = Field(
        default="", description="Source revision built from (a git commit)."
    )
    closure: tuple[Component, ...] = Field(
        default=(),
        max_length=100_000,
        description="Every store path the artifact needs (nix-store -qR), as components.",
    )
    roots: tuple[Annotated[int, Field(ge=0, le=99_999)], ...] = Field(
        default=(),
        max_length=100_000,
        exclude_if=lambda value: not value,
        description="The closure components the artifact itself refers to directly (for "
        "Nix, the artifact's own store path), as indexes into the closure; with the "
        "components' references, the dependency graph (ledger why). Left out when empty.",
    )

    @model_validator(mode="after")
    def _references_are_in_the_closure(self) -> BuildRecorded:
        size = len(self.closure)
        for index in self.roots:
            if index >= size:
                raise ValueError(f"roots names component {index}; the closure has {size}")
        for position, component in enumerate(self.closure):
            for index in component.references:
                if index >= size:
                    raise ValueError(
                        f"closure[{position}].references names component {index}; "
                        f"the closure has {size}"
                    )
        return self


class BuildFailed(Envelope):
    """A build of a service failed."""

    kind: Literal["build_failed"] = "build_failed"
    service: Name = Field(description="The fleet service (api, auth, …).")
    version: Label = Field(
        default="", description="Version (may be empty for unversioned store paths)."
    )
    source_revision: Label = Field(
        default="", description="Source revision built from (a git commit)."
    )
    reason: Text = Field(description="Why it failed.")


class ServiceOnHost(Envelope):
    """Fields of every event about one build of one service on one host."""

    host: Name = Field(description="The fleet host (web-001).")
    service: Name = Field(description="The fleet service (api, auth, …).")
    build_id: BuildId = Field(
        description="The build's content or input hash (for Nix, the store path hash)."
    )


# --- distribution --------------------------------------------------------------------


class DistributionCompleted(ServiceOnHost):
    """A build's closure was copied to a host."""

    kind: Literal["distribution_completed"] = "distribution_completed"
    bytes: Count = Field(default=0, description="Bytes copied.")
    duration_s: Seconds = Field(default=0.0, description="How long it took, in seconds.")


class DistributionFailed(ServiceOnHost):
    """Copying a build's closure to a host failed."""

    kind: Literal["distribution_failed"] = "distribution_failed"
    reason: Text = Field(description="Why it failed.")


# --- activation ----------------------------------------------------------------------


class ActivationCompleted(ServiceOnHost):
    """A service build became the active one on a host, as part of a generation."""

    kind: Literal["activation_completed"] = "activation_completed"
    generation: GenerationNumber = Field(description="The generation this is part of.")
    duration_s: Seconds = Field(default=0.0, description="How long it took, in seconds.")


class ActivationFailed(ServiceOnHost):
    """A service build failed to activate on a host."""

    kind: Literal["activation_failed"] = "activation_failed"
    generation: GenerationNumber = Field(description="The generation this is part of.")
    reason: Text = Field(description="Why it failed.")
    exit_code: int | None = Field(
        default=None, ge=-255, le=255, description="Exit code of the failed activation command."
    )
    log_excerpt: LogExcerpt = Field(
        default="", description="The end of the activation's log (at most 64 KiB)."
    )


# --- drain and deactivation ----------------------------------------------------------


class DrainStarted(ServiceOnHost):
    """A host started draining a service build's in-flight work."""

    kind: Literal["drain_started"] = "drain_started"
    in_flight: Count = Field(default=0, description="Requests or jobs still in flight.")


class DrainCompleted(ServiceOnHost):
    """A drain finished: no work left in flight."""

    kind: Literal["drain_completed"] = "drain_completed"
    duration_s: Seconds = Field(default=0.0, description="How long it took, in seconds.")


class DrainTimedOut(ServiceOnHost):
    """A drain gave up with work still in flight."""

    kind: Literal["drain_timed_out"] = "drain_timed_out"
    in_flight: Count = Field(default=0, description="Requests or jobs still in flight.")
    timeout_s: Seconds = Field(
        default=0.0, description="The drain timeout that ran out, in seconds."
    )


class Deactivated(ServiceOnHost):
    """A service build was deactivated (stopped) on a host."""

    kind: Literal["deactivated"] = "deactivated"
    generation: GenerationNumber | None = Field(
        default=None, description="The generation this is part of."
    )


# --- health --------------------------------------------------------------------------


class HealthReported(Envelope):
    """The health of a host, or of a service on it: ok, warning or critical."""

    kind: Literal["health_reported"] = "health_reported"
    host: Name = Field(description="The fleet host (web-001).")
    service: Name | None = Field(default=None, description="The fleet service (api, auth, …).")
    state: Literal["ok", "warning", "critical"] = Field(description="Health state.")
    metric: float | None = Field(
        default=None, allow_inf_nan=False, description="A measured value (latency, disk use, …)."
    )
    description: Text = Field(default="", description="What was observed, for people.")
    ttl_s: Seconds | None = Field(
        default=None, description="Seconds the report stays valid; after that the state is stale."
    )


# --- generations ---------------------------------------------------------------------


class GenerationPlanned(Envelope):
    """A coordinator generation: the desired manifest of an environment.

    ``number`` may be left out: the ledger then gives the next number of the env.
    When given, it must be exactly that next number (numbers have no gaps).
    """

    kind: Literal["generation_planned"] = "generation_planned"
    number: GenerationNumber | None = Field(
        default=None,
        description="Generation number; left out, the ledger gives the env's next one.",
    )
    parent: GenerationNumber | None = Field(
        default=None, description="The generation this one follows."
    )
    reason: Literal["deploy", "rollback", "reconstruct"] = Field(
        default="deploy", description="Why the generation was planned."
    )
    target: GenerationNumber | None = Field(
        default=None, description="For a rollback: the generation whose manifest is restored."
    )
    source_revision: Label = Field(
        default="", description="Source revision built from (a git commit)."
    )
    tags: tuple[Name, ...] = Field(
        default=(), description="Labels for the generation (release-2026.03)."
    )
    manifest: tuple[ManifestEntry, ...] = Field(
        default=(),
        max_length=1_000_000,
        description="Placements: one build of one service on one host each.",
    )


class GenerationCompleted(Envelope):
    """Every step of a generation succeeded."""

    kind: Literal["generation_completed"] = "generation_completed"
    number: GenerationNumber = Field(
        description="Generation number; left out, the ledger gives the env's next one."
    )


class GenerationFailed(Envelope):
    """A generation stopped with failures."""

    kind: Literal["generation_failed"] = "generation_failed"
    number: GenerationNumber = Field(
        description="Generation number; left out, the ledger gives the env's next one."
    )
    reason: Text = Field(default="", description="Why it failed.")


class GenerationTagged(Envelope):
    """Labels put on a generation after the fact (``ledger tag 42 known-good``)."""

    kind: Literal["generation_tagged"] = "generation_tagged"
    number: GenerationNumber = Field(description="The generation to label.")
    tags: tuple[Name, ...] = Field(
        min_length=1, max_length=100, description="Labels for the generation (release-2026.03)."
    )


# --- host reports --------------------------------------------------------------------


class HostReported(Envelope):
    """What an agent found actually active on a host (its profile manifest)."""

    kind: Literal["host_reported"] = "host_reported"
    host: Name = Field(description="The fleet host (web-001).")
    manifest: tuple[ManifestEntry, ...] = Field(
        default=(),
        max_length=100_000,
        description="What the agent found active on the host, one entry per service.",
    )

    @model_validator(mode="after")
    def _entries_are_this_host(self) -> HostReported:
        for index, entry in enumerate(self.manifest):
            if entry.host != self.host:
                raise ValueError(
                    f"manifest[{index}] names host {entry.host!r}, not the reporting host"
                )
        return self


# --- advisories ---------------------------------------------------------------------

ADVISORY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/+-]{0,127}$"
AdvisoryId = Annotated[str, StringConstraints(pattern=ADVISORY_ID_PATTERN)]
"""A vulnerability id as its database writes it: CVE-2014-0160, GHSA-…, PYSEC-2021-1,
RHSA-2024:1234."""

ALL_ENVS: Literal["*"] = "*"
"""The env of facts that hold in every environment (advisories)."""


class RangeEvent(Model):
    """One event of an OSV range: exactly one of its four fields is set."""

    introduced: Label | None = Field(default=None, exclude_if=lambda value: value is None)
    fixed: Label | None = Field(default=None, exclude_if=lambda value: value is None)
    last_affected: Label | None = Field(default=None, exclude_if=lambda value: value is None)
    limit: Label | None = Field(default=None, exclude_if=lambda value: value is None)

    @model_validator(mode="after")
    def _exactly_one(self) -> RangeEvent:
        given = [v for v in (self.introduced, self.fixed, self.last_affected, self.limit) if v]
        if len(given) != 1:
            raise ValueError(
                "a range event sets exactly one of introduced, fixed, last_affected, limit"
            )
        return self


class OsvRange(Model):
    """An OSV ``ranges[]`` entry the ledger can evaluate: versions compared in the
    package's ecosystem order (``ECOSYSTEM``) or as Semantic Versioning (``SEMVER``).
    GIT ranges name commits, which closures do not hold: they are kept as ``unmatched``."""

    type: Literal["ECOSYSTEM", "SEMVER"]
    events: tuple[RangeEvent, ...] = Field(min_length=1, max_length=1000)


def _none(value: object) -> bool:
    return value is None


def _empty(value: object) -> bool:
    return not value


# Advisory parts leave defaults out of their JSON form: an NVD year file holds tens of
# thousands of them, and what is stored should be what matching needs (docs/advisories.md).


class CpeBounds(Model):
    """The versions one NVD ``cpeMatch`` criterion covers; no bound given means every
    version on that side."""

    start: Label | None = Field(
        default=None, exclude_if=_none, description="versionStart…, if given."
    )
    start_excluding: bool = Field(
        default=False, exclude_if=_empty, description="versionStartExcluding."
    )
    end: Label | None = Field(default=None, exclude_if=_none, description="versionEnd…, if given.")
    end_including: bool = Field(
        default=False, exclude_if=_empty, description="versionEndIncluding."
    )


class AffectedPackage(Model):
    """A package an advisory says is affected, and which of its versions."""

    ecosystem: Label = Field(
        description="A purl type in lower case (pypi, deb, npm, …), or 'cpe' for an NVD "
        "product, matched against component names of every ecosystem."
    )
    name: Name = Field(description="The package (OSV) or product (NVD CPE) as written.")
    vendor: Label | None = Field(
        default=None, exclude_if=_none, description="The CPE vendor (NVD only)."
    )
    source_ecosystem: Label | None = Field(
        default=None,
        exclude_if=_none,
        description="The ecosystem as the database writes it (Debian:12).",
    )
    purl: Purl | None = Field(
        default=None, exclude_if=_none, description="OSV's affected[].package.purl."
    )
    ranges: tuple[OsvRange, ...] = Field(default=(), max_length=1000, exclude_if=_empty)
    bounds: tuple[CpeBounds, ...] = Field(default=(), max_length=10_000, exclude_if=_empty)
    versions: tuple[Label, ...] = Field(
        default=(),
        max_length=100_000,
        exclude_if=_empty,
        description="Affected versions, listed one by one.",
    )


class Severity(Model):
    """A CVSS vector, and the base score the database gave with it (if it gave one)."""

    type: Literal["CVSS_V2", "CVSS_V3", "CVSS_V4"]
    vector: Label
    score: float | None = Field(default=None, ge=0, le=10, allow_inf_nan=False, exclude_if=_none)


class AdvisoryRecorded(Envelope):
    """A vulnerability advisory as a database published it (NVD CVE JSON 2.0 or OSV),
    reduced to what matching and reports need. Advisories hold in every environment
    (``env`` is ``*``); ``occurred_at`` is the record's ``modified`` time, so an updated
    advisory is a new fact and the same record imported again is stored once."""

    kind: Literal["advisory_recorded"] = "advisory_recorded"
    env: Literal["*"] = ALL_ENVS
    advisory_id: AdvisoryId = Field(description="CVE-2014-0160, GHSA-…, PYSEC-…")
    database: Literal["nvd", "osv"] = Field(description="Where the record comes from.")
    aliases: tuple[AdvisoryId, ...] = Field(
        default=(), max_length=1000, description="Other ids of the same vulnerability."
    )
    published: Timestamp | None = Field(default=None, description="When it was published.")
    modified: Timestamp = Field(description="When the database last changed the record.")
    withdrawn: Timestamp | None = Field(
        default=None, description="When it was withdrawn (it affects nothing since)."
    )
    summary: Text = Field(default="", description="One paragraph for people.")
    severity: tuple[Severity, ...] = Field(default=(), max_length=100)
    affected: tuple[AffectedPackage, ...] = Field(default=(), max_length=100_000)
    unmatched: tuple[Text, ...] = Field(
        default=(),
        max_length=100_000,
        description="What the record says that the ledger cannot match, said plainly "
        "(a GIT range, a platform-only configuration).",
    )


LedgerEvent = Annotated[
    BuildRecorded
    | BuildFailed
    | DistributionCompleted
    | DistributionFailed
    | ActivationCompleted
    | ActivationFailed
    | DrainStarted
    | DrainCompleted
    | DrainTimedOut
    | Deactivated
    | HealthReported
    | GenerationPlanned
    | GenerationCompleted
    | GenerationFailed
    | GenerationTagged
    | HostReported
    | AdvisoryRecorded,
    Field(discriminator="kind"),
]

EVENT_ADAPTER: TypeAdapter[LedgerEvent] = TypeAdapter(LedgerEvent)

KINDS: dict[str, type[Envelope]] = {
    cls.model_fields["kind"].default: cls
    for cls in (
        BuildRecorded,
        BuildFailed,
        DistributionCompleted,
        DistributionFailed,
        ActivationCompleted,
        ActivationFailed,
        DrainStarted,
        DrainCompleted,
        DrainTimedOut,
        Deactivated,
        HealthReported,
        GenerationPlanned,
        GenerationCompleted,
        GenerationFailed,
        GenerationTagged,
        HostReported,
        AdvisoryRecorded,
    )
}
"""Every kind, by its ``kind`` string."""


def parse_event(data: bytes | str) -> LedgerEvent:
    """Validate one event in the JSON form; raises ``pydantic.ValidationError``.

    A key given twice in one object is refused: the parser keeps the last copy, a
    consumer's parser may keep the first, and the two would read different events.
    """
    try:
        event = EVENT_ADAPTER.validate_json(data)
    except ValidationError:
        _refuse_duplicate_keys(data)  # what the rest says depends on which copy counts
        raise
    if _keys_in_text(data) != _keys_in_model(event):
        _refuse_duplicate_keys(data)
    return event


# Duplicate keys, cheaply: the parser does not report them, but every key in the text
# ends with a quote and a colon, so counting those (``":`` can also occur inside
# strings, which only ever adds to the count) and comparing with the keys the models
# were given (``model_fields_set``, one per distinct key) proves most events free of
# duplicates for about 3 % of the parse time. Only when the counts differ is the text
# parsed again, slowly, to find the duplicate or clear the event.
_KEY_END = re.compile(rb'"[ \t\r\n]*:')


def _keys_in_text(data: bytes | str) -> int:
    raw = data.encode() if isinstance(data, str) else data
    # Raw tabs and line breaks are only ever formatting (strings hold them escaped), and
    # most lines hold no space at all (one byte is searched much faster than two); so
    # ``":`` ends every key unless one of these says otherwise.
    if (b" " in raw and b" :" in raw) or b"\t" in raw or b"\n" in raw or b"\r" in raw:
        return len(_KEY_END.findall(raw))
    return raw.count(b'":')


def _keys_in_model(model: BaseModel) -> int:
    keys = len(model.model_fields_set)
    for name in _nested_model_fields(type(model)):
        value = model.__dict__[name]
        if isinstance(value, BaseModel):
            keys += _keys_in_model(value)
        elif isinstance(value, tuple):
            keys += sum(_keys_in_model(item) for item in value if isinstance(item, BaseModel))
    return keys


@cache
def _nested_model_fields(cls: type[BaseModel]) -> tuple[str, ...]:
    """Fields of ``cls`` that may hold models (a closure, a manifest)."""

    def holds_model(annotation: Any) -> bool:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return True
        return any(holds_model(arg) for arg in get_args(annotation))

    return tuple(name for name, info in cls.model_fields.items() if holds_model(info.annotation))


class _KeysGivenTwice(dict[str, Any]):
    duplicate: str


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) == len(pairs):
        return result
    marked = _KeysGivenTwice(result)
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            marked.duplicate = key
            break
        seen.add(key)
    return marked


def _find_duplicate(value: Any, path: tuple[int | str, ...]) -> tuple[int | str, ...] | None:
    if isinstance(value, _KeysGivenTwice):
        return (*path, value.duplicate)
    items: Iterable[tuple[int | str, Any]]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if found := _find_duplicate(item, (*path, key)):
            return found
    return None


def duplicate_key(data: bytes | str) -> tuple[int | str, ...] | None:
    """Where a JSON document gives a key twice in one object (the path to the second
    copy, ending in the key), or None when it does not (or is not JSON at all)."""
    try:
        document = json.loads(data, object_pairs_hook=_pairs)
    except (ValueError, RecursionError):  # not JSON: the parser's error says so
        return None
    return _find_duplicate(document, ())


def _refuse_duplicate_keys(data: bytes | str) -> None:
    """Raise a ``ValidationError`` naming the first key given twice, if there is one."""
    if (loc := duplicate_key(data)) is None:
        return
    error = PydanticCustomError("duplicate_key", "duplicate key {key}", {"key": str(loc[-1])})
    raise ValidationError.from_exception_data(
        "LedgerEvent",
        [InitErrorDetails(type=error, loc=loc, input=str(loc[-1]))],
        input_type="json",
    )


def event_from_dict(data: dict[str, Any]) -> LedgerEvent:
    return EVENT_ADAPTER.validate_python(data)


def to_json_dict(event: Envelope) -> dict[str, Any]:
    """The documented JSON form of an event (what ``ledger log --json`` prints)."""
    return event.model_dump(mode="json")


def json_schema() -> dict[str, Any]:
    """JSON Schema of the event form, generated from the models."""
    schema = EVENT_ADAPTER.json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://deploy-ledger.invalid/schema/ledger-event-v{SCHEMA_VERSION}.json"
    schema["title"] = f"Deployment ledger event (schema version {SCHEMA_VERSION})"
    return schema


_PATTERN_PROBLEMS = {
    HASH_PATTERN: "expected a hash such as 'sha256:9f86d0…', a Nix narHash 'sha256-…' or a "
    "32-character Nix store hash (8-200 characters of [A-Za-z0-9+/=_.:-])",
}


def _string_problem(value: str, control: re.Pattern[str], *, trimmed: bool) -> str:
    if found := control.search(value):
        return f"control character {found.group()!r} at offset {found.start()} is not allowed"
    if trimmed and (found := _INVISIBLE_CHARACTER.search(value)):
        character = found.group()
        return (
            f"character U+{ord(character):04X} ({unicodedata.name(character, 'unnamed')}) at "
            f"offset {found.start()} is not allowed: bidirectional controls, zero-width "
            "characters and line separators could make one name display as another"
        )
    if trimmed and value != value.strip():
        return "leading or trailing whitespace is not allowed"
    return "contains characters that are not allowed"


def field_path(loc: tuple[int | str, ...]) -> str:
    """``('build_recorded', 'closure', 3, 'hash')`` -> ``closure[3].hash``."""
    parts = list(loc)
    if parts and parts[0] in KINDS:  # the tagged union's branch name
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not str(part).startswith(("function-", "tagged-union")):
            path += ("." if path else "") + str(part)
    return path


def describe_error(detail: ErrorDetails) -> tuple[str, str]:
    """The field path and a sentence for one pydantic validation error."""
    kind = detail["type"]
    ctx: dict[str, Any] = dict(detail.get("ctx") or {})
    if kind == "json_invalid":
        return "", f"not valid JSON ({ctx.get('error')})"
    if kind == "union_tag_not_found":
        return "kind", "missing: every event needs a kind"
    if kind == "union_tag_invalid":
        return (
            "kind",
            f"unknown kind {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}",
        )
    if kind == "model_attributes_type":
        return field_path(tuple(detail["loc"])), "expected a JSON object"
    if kind == "duplicate_key":
        return (
            field_path(tuple(detail["loc"])),
            f"duplicate key {ctx.get('key')!r}: a key may appear only once in an object",
        )
    message = detail["msg"]
    if kind == "string_pattern_mismatch" and isinstance(detail["input"], str):
        pattern = ctx.get("pattern")
        if pattern in _PATTERN_PROBLEMS:
            message = _PATTERN_PROBLEMS[pattern]
        elif pattern == TEXT_PATTERN:
            message = _string_problem(detail["input"], _CONTROL_EXCEPT_NEWLINES, trimmed=False)
        else:
            message = _string_problem(detail["input"], _CONTROL, trimmed=True)
    return field_path(tuple(detail["loc"])), message
