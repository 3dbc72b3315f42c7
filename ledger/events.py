"""The event vocabulary: one pydantic model per kind of fact the ledger records.

These models are the one contract that files, HTTP and Kafka carry. Their JSON form
(``model_dump(mode="json")``) is "the documented event form": one JSON object per
event, discriminated by ``kind``, versioned by ``schema_version``. ``docs/events.md``
describes it and ``docs/schema/ledger-event.schema.json`` is generated from here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

SCHEMA_VERSION: Literal[1] = 1
"""Bump with an upcaster in ``ledger.domain`` when a kind changes incompatibly."""


# String rules are patterns, checked inside pydantic-core (Rust) rather than by Python
# validators called hundreds of times per build; ``describe_error`` turns a mismatch
# back into a sentence that says what is wrong and where.
_CC = r"\x00-\x1f\x7f-\x9f"  # exactly Unicode category Cc
_CONTROL = re.compile(f"[{_CC}]")
NAME_PATTERN = rf"^[^{_CC}\s](?:[^{_CC}]*[^{_CC}\s])?$"
LABEL_PATTERN = rf"^(?:[^{_CC}\s](?:[^{_CC}]*[^{_CC}\s])?)?$"
_CC_EXCEPT_NEWLINES = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_CONTROL_EXCEPT_NEWLINES = re.compile(f"[{_CC_EXCEPT_NEWLINES}]")
TEXT_PATTERN = rf"^[^{_CC_EXCEPT_NEWLINES}]*$"
HASH_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9+/=_.:-]{7,199}$"

Name = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=NAME_PATTERN)]
"""A host, service, env or actor name: non-empty, at most 253 characters, printable."""

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


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware (for example 2026-03-11T14:10:00Z)")
    return value.astimezone(UTC)


Timestamp = Annotated[datetime, AfterValidator(_utc)]
TIMESTAMP: TypeAdapter[datetime] = TypeAdapter(Timestamp)
"""Serialises a timestamp exactly as the models do (``…Z``)."""


class Envelope(Model):
    """Fields every event carries."""

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: UUID
    env: Name
    occurred_at: Timestamp
    recorded_at: Timestamp | None = None
    actor: Name
    source: Source | None = None

    @field_validator("occurred_at", "recorded_at")
    @classmethod
    def _not_absurd(cls, value: datetime | None) -> datetime | None:
        if value is not None and not (1970 <= value.year <= 9998):
            raise ValueError("timestamp must be between 1970 and 9998")
        return value


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
    | HostReported,
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
    )
}
"""Every kind, by its ``kind`` string."""


def parse_event(data: bytes | str) -> LedgerEvent:
    """Validate one event in the JSON form; raises ``pydantic.ValidationError``."""
    return EVENT_ADAPTER.validate_json(data)


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
