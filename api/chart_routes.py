"""The data behind the dashboard's pictures over time (``api/static/charts.js``): a
generation's rollout, the DORA figures per day, week or month, and an advisory's exposure.
A package's versions over time is ``GET /api/where/timeline`` (``api.app``)."""

from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query
from fastapi import Path as InPath
from pydantic import Field

from api.app import Kit
from api.models import Response
from api.params import MAX_NUMBER, WholeNumber
from api.tokens import Token
from ledger.errors import InvalidInput

CHANGING = (
    "The manifest's placements (host, service) whose build differs from the parent "
    "generation's manifest, or that the parent's manifest does not have; every placement "
    "when the generation has no parent. What the rollout has to change (and activate)."
)


class RolloutStep(Response):
    """From ``at`` on, how many of the generation's placements were each thing (cumulative)."""

    at: str
    planned: int = Field(description="The manifest's placements (host, service).")
    changing: int = Field(description=CHANGING)
    activated: int = Field(description="Placements with an activation of the generation.")
    failed: int = Field(description="Placements with a failed activation of the generation.")
    drained: int = Field(
        description="Placements whose previous build finished draining while the generation "
        "was its environment's newest."
    )


class Rollout(Response):
    """A generation's rollout over time (``projections.rollout``)."""

    env: str
    number: int
    status: str
    planned_at: str
    finished_at: str | None = None
    next_planned_at: str | None = None
    placements: int = Field(description="The manifest's placements (host, service).")
    changing: int = Field(description=CHANGING)
    steps: list[RolloutStep]


class DeliveryBucket(Response):
    """The DORA figures of one UTC day, ISO week or month, ``[start, end)``."""

    start: str
    end: str
    deployments: int
    lead_time_hours: float | None = None
    builds: int
    change_failure_rate: float | None = None
    changes: int
    failed_changes: int
    time_to_restore_hours: float | None = None
    restores: int


class DeliveryOverTime(Response):
    """The DORA figures over time (``projections.metrics_timeline``)."""

    env: str | None = None
    service: str | None = None
    bucket: Literal["day", "week", "month"]
    buckets: list[DeliveryBucket]


class ExposureChange(Response):
    """From ``at`` on, ``hosts`` hosts of ``env`` ran a build the advisory affects."""

    at: str
    env: str
    hosts: int


class ExposureOverTime(Response):
    """An advisory's exposed hosts over time, up to now (``projections.exposure_timeline``)."""

    ids: list[str]
    env: str | None = None
    horizon: str
    published: str | None = None
    recorded: str
    hosts_exposed: int
    changes: list[ExposureChange]


def add_routes(app: FastAPI, kit: Kit) -> None:
    """Add this module's routes to ``app``."""
    Reader = Annotated[Token, Depends(kit.reader)]
    Env = Annotated[str | None, Query(description="Only this environment.", max_length=253)]
    Number = Annotated[int, WholeNumber, InPath(ge=1, le=MAX_NUMBER, description="A generation.")]

    @app.get("/api/generations/{number}/rollout", response_model=Rollout, tags=["views"])
    @kit.answers.cached
    def rollout(number: Number, _: Reader, env: Env = None) -> dict[str, Any]:
        """A generation's rollout over time: how many of its placements were planned,
        had to change (their build differs from the parent's manifest), were activated,
        failed and drained, at every moment one of them changed."""
        from projections.rollout import rollout as rollout_of

        try:
            return rollout_of(kit.views, number, env)
        except InvalidInput as error:
            raise kit.invalid(error) from None

    @app.get("/api/metrics/timeline", response_model=DeliveryOverTime, tags=["audit"])
    @kit.answers.cached
    def metrics_timeline(
        _: Reader,
        env: Env = None,
        service: Annotated[
            str | None, Query(min_length=1, max_length=253, description="Only this service.")
        ] = None,
        bucket: Annotated[
            Literal["day", "week", "month"],
            Query(description="UTC days, ISO weeks (from Monday) or months."),
        ] = "week",
    ) -> dict[str, Any]:
        """The DORA figures (as ``GET /api/metrics``) per day, week or month: deployments,
        median lead time, change failure rate, median time to restore."""
        from projections.metrics_timeline import metrics_over_time

        try:
            return metrics_over_time(kit.views, env, service, bucket)
        except InvalidInput as error:
            raise kit.invalid(error) from None

    @app.get("/api/exposure/timeline", response_model=ExposureOverTime, tags=["audit"])
    @kit.answers.validated
    def exposure_timeline(
        _: Reader,
        id_: Annotated[
            str,
            Query(alias="id", min_length=1, max_length=128, description="CVE, GHSA, OSV… id."),
        ],
        env: Env = None,
    ) -> dict[str, Any]:
        """Hosts exposed to an advisory (or any alias of it) over time, per env, up to now
        (so it depends on the clock: validated, never kept)."""
        from projections.exposure_timeline import exposure_over_time

        try:
            return exposure_over_time(kit.views, id_, env=env, cpe_map=kit.cpe_map())
        except InvalidInput as error:
            raise kit.invalid(error) from None
