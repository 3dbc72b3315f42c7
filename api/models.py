"""The API's response models: what each endpoint answers, in the OpenAPI document.

The rows come from ``projections.queries`` and its siblings as plain dicts; these
models name and type their fields. Times are ISO 8601 UTC strings, as the CLI's
``--json`` prints them. ``POST /api/events`` carries events, whose model is
``ledger.events``; the admin requests' bodies (``TagRequest``, ``RollbackRequest``) are
strict: no field of another type (``"3"`` or ``true`` for a number), no unknown field.
"""

from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.params import MAX_NUMBER

T = TypeVar("T")


class Response(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class Page(Response, Generic[T]):
    """One page of a list: ``items`` from ``offset`` on, ``total`` in all, and the URL
    of the next page (null on the last)."""

    items: list[T]
    total: int
    limit: int
    offset: int
    next: str | None


class Error(Response):
    """Every error: the status's meaning, a sentence, and for bad input what was wrong
    where (line, field, reason)."""

    error: str
    message: str
    details: list[dict[str, object]] = []


class Placement(Response):
    env: str
    host: str
    service: str
    build_id: str
    version: str | None = None
    artifact: str | None = None
    since: str | None = None
    generation: int | None = None
    health: str | None = Field(
        default=None, description="ok, warning or critical; '(stale)' once its ttl passed"
    )


class Component(Response):
    name: str
    version: str
    store_path: str | None = None
    purl: str | None = None
    hash: str | None = None


class HostService(Placement):
    depends_on: list[str] = []
    closure: list[Component] = []


class ManifestEntry(Response):
    host: str
    service: str
    build_id: str
    artifact: str | None = None
    depends_on: list[str] = []


class Generation(Response):
    env: str
    number: int
    parent: int | None = None
    reason: str
    target: int | None = None
    status: str
    bad: bool = False
    rolled_back_by: int | None = None
    actor: str
    source_revision: str | None = None
    tags: list[str] = []
    planned_at: str | None = None
    finished_at: str | None = None
    failure: str | None = None
    placements: int = 0


class GenerationDetail(Generation):
    manifest: list[ManifestEntry] = []


class GenerationNode(Generation):
    """A generation with the generations planned from it (rollbacks included)."""

    children: list[GenerationNode] = []


class Found(Response):
    """A placement whose closure holds a version of the package."""

    env: str
    host: str
    service: str
    build_id: str
    build_version: str | None = None
    name: str
    version: str
    outputs: list[str] = Field(
        default=[], description="The package's outputs in the closure (Nix: out, bin, dev…)."
    )
    store_path: str | None = Field(
        default=None, description="Its store path (the out output's) or purl."
    )
    since: str | None = None
    generation: int | None = None
    ecosystem: str = Field(description="nix, or the purl type (pypi, deb, npm…).")


class WhereCount(Response):
    """One package version in one environment: on how many hosts, in which services."""

    env: str
    ecosystem: str
    name: str
    version: str
    outputs: list[str]
    hosts: int
    services: list[str]


class WhereAnswer(Response):
    """Where a package is: one row per version with host counts, then the placements."""

    name: str
    at: str | None = None
    known_at: str | None = None
    generation: int | None = None
    summary: list[WhereCount]
    placements: Page[Found]


class HistoryEntry(Response):
    position: int
    env: str
    host: str
    service: str | None = None
    kind: str
    build_id: str | None = None
    generation: int | None = None
    occurred_at: str | None = None
    actor: str
    detail: str = ""


class Failure(Response):
    position: int
    env: str
    host: str | None = None
    service: str | None = None
    build_id: str | None = None
    generation: int | None = None
    kind: str
    problem: str
    occurred_at: str | None = None
    actor: str
    reason: str | None = None


class DriftEnv(Response):
    env: str
    generation: int | None = None
    hosts: int
    reported: int
    matching: int
    drifted: int
    unreported: int
    stale: int


class DriftProblem(Response):
    env: str
    host: str
    service: str | None = None
    problem: str
    desired_build: str | None = None
    reported_build: str | None = None
    reported_at: str | None = None
    stale: bool = False
    generation: int | None = None


class DriftAnswer(Response):
    envs: list[DriftEnv]
    problems: Page[DriftProblem]


class DeliveryMetrics(Response):
    env: str
    service: str
    deployments: int
    deployments_per_day: float | None = None
    lead_time_hours: float | None = None
    change_failure_rate: float | None = None
    time_to_restore_hours: float | None = None


class ServiceChange(Response):
    service: str
    change: str
    from_build: str | None = None
    to_build: str | None = None
    hosts: int


class ClosureChange(Response):
    name: str
    from_: str = Field(alias="from")
    to: str
    services: list[str]
    hosts: int


class Diff(Response):
    env: str
    from_: int = Field(alias="from")
    to: int
    services: list[ServiceChange]
    closure_changes: list[ClosureChange]


class Stored(Response):
    event_id: str
    position: int
    new: bool


class CheckpointAnswer(Response):
    """A kept checkpoint: its fields, and the signed note to verify and keep."""

    origin: str
    size: int
    root: str = Field(description="The Merkle tree root, lowercase hex.")
    note: str = Field(description="The C2SP signed note (tlog-checkpoint).")


class InclusionAnswer(Response):
    """RFC 9162 §2.1.3: the event at ``position`` is leaf ``leaf_index`` of the tree of
    the checkpoint (of size ``tree_size``)."""

    type: Literal["inclusion"]
    position: int
    leaf_index: int
    tree_size: int
    chain_hash: str
    leaf_hash: str
    hashes: list[str]
    checkpoint: str


class ConsistencyAnswer(Response):
    """RFC 9162 §2.1.4: the tree of ``new_checkpoint`` extends that of ``old_checkpoint``."""

    type: Literal["consistency"]
    old_size: int
    new_size: int
    hashes: list[str]
    old_checkpoint: str
    new_checkpoint: str


class Receipt(InclusionAnswer):
    """An event's inclusion proof, as ``POST /api/events?receipt=true`` answers it."""

    event_id: str


class Appended(Response):
    """What ``POST /api/events`` did: every event's position, and how many were new."""

    stored: int
    already_stored: int
    events: list[Stored]
    receipts: list[Receipt] | None = Field(
        default=None,
        description="Only with ?receipt=true: per event, its inclusion proof against a "
        "checkpoint signed now; null when the server cannot sign (see receipt_problem).",
    )
    receipt_problem: str | None = Field(
        default=None, description="Only with ?receipt=true: why there are no receipts."
    )


class Body(BaseModel):
    """A request body: every field of its own type, no field it does not name."""

    model_config = ConfigDict(extra="forbid", strict=True)


class TagRequest(Body):
    tags: list[Annotated[str, StringConstraints(min_length=1, max_length=253)]] = Field(
        min_length=1, max_length=20, description="Labels (names: printable, no spaces)."
    )


class RollbackRequest(Body):
    to: int = Field(ge=1, le=MAX_NUMBER, description="The generation to go back to.")
    dry_run: bool = Field(default=False, description="Plan only; record nothing.")
    force: bool = Field(default=False, description="Allow a target that failed.")


class PlanStep(Response):
    wave: int
    step: str
    host: str
    service: str
    build_id: str
    artifact: str | None = None
    replaces: str | None = None


class PlanAnswer(Response):
    """A rollback plan; ``recorded`` when its generation_planned event was appended
    (executors carry the steps out, as after ``ledger rollback --to N``)."""

    env: str
    generation: int
    parent: int | None = None
    reason: str
    target: int | None = None
    placements: int
    unchanged: int
    minimal_steps: int
    steps: list[PlanStep]
    recorded: bool


class Status(Response):
    head: int
    views: int
    """The position the views have reached."""
    envs: list[str]
    role: str
    token: str


# --- advisories ------------------------------------------------------------------------


class ExposedPlacement(Response):
    """A placement active at the horizon whose build holds an affected package version."""

    env: str
    host: str
    service: str
    build_id: str
    ecosystem: str
    name: str
    version: str
    fixed: str | None = None
    advisories: list[str]


class ExposureWindow(Response):
    """Where one (env, host, service), or one (env, host) without ``service``, was
    exposed: merged intervals (an end of null: still exposed at the horizon)."""

    env: str
    host: str
    service: str | None = None
    intervals: list[tuple[str, str | None]]
    first_exposed: str
    last_exposed: str | None = None
    hours: float


class ExposureAnswer(Response):
    """Which hosts an advisory exposed, from when to when (``ledger exposure``)."""

    ids: list[str]
    horizon: str
    published: str | None = None
    recorded: str
    withdrawn: list[str]
    hosts_exposed: int
    services_exposed: int
    host_hours: float
    host_hours_after_published: float | None = None
    host_hours_after_recorded: float
    affected: list[ExposedPlacement]
    windows: list[ExposureWindow]
    hosts: list[ExposureWindow]
    unmatched: list[str]


class AffectedVersion(Response):
    name: str
    version: str
    fixed: str | None = None


class Vulnerability(Response):
    """One vulnerability affecting what runs (``ledger vulns``)."""

    id: str
    aliases: list[str]
    score: float | None = None
    severity: str | None = None
    hosts: int
    services: int
    packages: list[AffectedVersion]
    summary: str


class HostCountChange(Response):
    """From ``at`` on, ``hosts`` hosts of ``env`` run ``version``."""

    at: str
    env: str
    ecosystem: str
    version: str
    hosts: int


class VersionSpan(Response):
    env: str
    ecosystem: str
    version: str
    first_run: str
    last_run: str | None = None
    hosts_now: int


class VersionsOverTime(Response):
    """A package's versions over time (``ledger where NAME --timeline``)."""

    name: str
    env: str | None = None
    changes: list[HostCountChange]
    versions: list[VersionSpan]
