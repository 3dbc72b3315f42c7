"""The fleet's first screen at scale: aggregate answers counted in the database
(``projections.fleet_summary``), so the dashboard's first request costs the same on the
300-host demo and on a 10,000-host fleet."""

from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query
from pydantic import Field

from api.app import MAX_PAGE, Kit
from api.models import Response
from api.params import WholeNumber
from api.tokens import Token
from projections.fleet_summary import ATTENTION_LIMIT, TILE_LIMIT, fleet_summary

Health = Literal["ok", "warning", "critical", "unknown"]


class HealthCounts(Response):
    """How many hosts (or placements, for a service) are at each health level; ``stale``
    counts those whose worst report outlived its ttl (they are also in their level)."""

    ok: int
    warning: int
    critical: int
    unknown: int = Field(description="No report at all.")
    stale: int


class ServiceCount(Response):
    """One service in a generation's hosts: its placements and their health."""

    service: str
    hosts: int
    placements: int
    health: HealthCounts = Field(description="Placements per health level.")


class GenerationCount(Response):
    """The hosts whose newest placement belongs to this generation."""

    generation: int
    hosts: int
    placements: int
    health: HealthCounts = Field(description="Hosts per health level (their worst).")
    services: list[ServiceCount]


class HostHealth(Response):
    """A host, by its worst placement's health and its newest placement's generation."""

    host: str
    health: Health
    stale: bool = Field(description="Every report at its worst level outlived its ttl.")
    generation: int
    placements: int


class Attention(Response):
    total: int = Field(description="Hosts at warning or critical.")
    hosts: list[HostHealth] = Field(
        description="The first of them: critical first, then warning, each by name."
    )


class EnvSummary(Response):
    env: str
    hosts: int
    placements: int
    health: HealthCounts = Field(description="Hosts per health level (their worst).")
    generations: list[GenerationCount] = Field(description="Newest first.")
    attention: Attention
    tiles: list[HostHealth] | None = Field(
        description=f"Every host, by name, when the env has at most tile_limit "
        f"({TILE_LIMIT}); null for a larger env (draw generations' counts instead)."
    )


class FleetSummary(Response):
    now: str = Field(description="The moment health was judged stale or not at.")
    tile_limit: int
    attention_limit: int
    envs: list[EnvSummary]


def add_routes(app: FastAPI, kit: Kit) -> None:
    """Add this module's routes to ``app``."""
    Reader = Annotated[Token, Depends(kit.reader)]

    @app.get("/api/topology/summary", response_model=FleetSummary, tags=["views"])
    @kit.answers.validated
    def topology_summary(
        _: Reader,
        env: Annotated[
            str | None, Query(description="Only this environment.", max_length=253)
        ] = None,
        attention_limit: Annotated[
            int,
            WholeNumber,
            Query(ge=0, le=MAX_PAGE, description="Hosts needing attention listed per env."),
        ] = ATTENTION_LIMIT,
    ) -> dict[str, Any]:
        """The topology counted per env and generation: hosts, placements, health (with
        the stale), services; the hosts at warning or critical, worst first; and for an
        env of at most tile_limit hosts, every host. Health turns stale with the clock:
        validated, never kept."""
        return fleet_summary(kit.views, env, attention_limit=attention_limit)
