"""The HTTP API (FastAPI): read endpoints over the views, ``POST /api/events``, rollback
and tags for admins, the live stream, and the dashboard's static files.

Every ``/api`` endpoint needs ``Authorization: Bearer <token>`` (``ledger token
create``), unless the server was started with ``--allow-anonymous-read``, which lets
requests without a token read (never write). Roles: ``reader`` reads, ``writer`` also
appends events, ``admin`` also tags generations and plans rollbacks. Errors are JSON
(``api.models.Error``) with a fitting status; never a stack trace. Parameters and bodies
are checked at the edge (``api.params``): a bad one is a 422 naming it. Read answers
are kept per views position and carry an ETag (``api.answers``).
"""

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar
from urllib.parse import urlencode
from uuid import uuid4

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi import Path as InPath
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import models
from api.answers import MAX_BYTES, MAX_ENTRIES, AnswerCache, Answers
from api.events import BodyTooLarge, EventsRefused, parse_body, read_body
from api.params import (
    MAX_NUMBER,
    ParameterRefused,
    StrictRoute,
    TrueOrFalse,
    WholeNumber,
    check_parameters,
    plain,
)
from api.stream import Broadcaster
from api.tokens import Role, Token, authenticate, digest
from ledger.application import CheckState
from ledger.errors import EventConflict, InvalidInput, UnknownName
from ledger.events import GenerationTagged
from projections import drift as drift_query
from projections import queries
from projections.diff import diff as diff_query
from projections.metrics import metrics as metrics_query
from projections.planning import plan_rollback, planned_event
from projections.runner import Views
from projections.versions import parse_range

if TYPE_CHECKING:
    from projections.matching import CpeMap

log = logging.getLogger("ledger.serve")

STATIC = Path(__file__).parent / "static"
DOCS_UI = Path(__file__).parent / "docs_ui"
"""Swagger UI's files (``tools/vendor-swagger-ui.sh``; the version is in its VERSION)."""
MAX_PAGE = 1000
AUTH_CACHE_SECONDS = 5.0
"""A revoked token stops working within this many seconds."""
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
"""The dashboard loads nothing from other hosts, and nothing else may be injected."""
DOCS_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'").replace(
    "script-src 'self'", "script-src 'self' 'unsafe-inline'"
)
"""/docs: the same, but Swagger UI's page starts it with an inline script and styles."""
DOCS_ASSETS = "/docs/assets"
ANONYMOUS = Token("anonymous", "reader", 0.0, "--allow-anonymous-read")

T = TypeVar("T")


@dataclass
class ServerSettings:
    allow_anonymous_read: bool = False
    max_body_bytes: int = 16 * 1024 * 1024
    project: bool = True
    """Bring the views up to date in the server (off when ``ledger project --follow``
    runs elsewhere)."""
    stream_interval: float = 0.25
    auth_cache_seconds: float = AUTH_CACHE_SECONDS
    """How long a token check is remembered: a revoked token stops working after it."""
    cache_entries: int = MAX_ENTRIES
    """Read answers kept in memory (per server process; see ``api.answers``)."""
    cache_bytes: int = MAX_BYTES
    """Their bytes at most."""
    cpe_map: Path | None = None
    """NVD products named otherwise than their packages (``ledger exposure --cpe-map``)."""


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, details: Sequence[dict[str, object]] = ()
    ) -> None:
        self.status = status
        self.message = message
        self.details = list(details)


@dataclass(frozen=True)
class Kit:
    """What a group of routes kept in its own module (``api/*_routes.py``) needs from the
    app: the views, the answer cache, the role checks and the helpers of ``create_app``.
    Such a module has ``add_routes(app, kit)``; in it, ``Reader = Annotated[Token,
    Depends(kit.reader)]`` declares the role a route needs."""

    views: Views
    settings: ServerSettings
    answers: Answers
    reader: Callable[[Request], Token]
    writer: Callable[[Request], Token]
    admin: Callable[[Request], Token]
    page: Callable[[Request, Sequence[Any], int, int], dict[str, Any]]
    """A page of rows all at hand: ``page(request, rows, limit, offset)``."""
    cut: Callable[[Request, list[Any], int, int, int], dict[str, Any]]
    """A page counted elsewhere: ``cut(request, items, total, limit, offset)``."""
    invalid: Callable[[InvalidInput], "ApiError"]
    """The HTTP error for a refused question (404 for unknown names, else 400)."""
    when: Callable[[str | None, str], datetime | None]
    """An ISO 8601 parameter as a UTC time, or a 422 naming it."""
    cpe_map: Callable[[], "CpeMap"]


REASONS = {400: "bad request", 401: "unauthorized", 403: "forbidden", 404: "not found",
           405: "method not allowed", 409: "conflict", 413: "payload too large",
           415: "unsupported media type", 422: "unprocessable entity",
           500: "internal error", 503: "unavailable"}  # fmt: skip


def error_response(status: int, message: str, details: Sequence[dict[str, object]] = ()) -> Any:
    body = models.Error(error=REASONS.get(status, "error"), message=message, details=list(details))
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


@dataclass
class AuthCache:
    seconds: float
    entries: dict[str, tuple[Token | None, float]] = field(default_factory=dict)

    def lookup(self, views: Views, secret: str) -> Token | None:
        key, now = digest(secret), time.monotonic()
        cached = self.entries.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        token = authenticate(views.recorder, secret)
        if len(self.entries) > 10_000:
            self.entries.clear()
        self.entries[key] = (token, now + self.seconds)
        return token


def create_app(views: Views, settings: ServerSettings | None = None) -> FastAPI:
    settings = settings or ServerSettings()
    broadcaster = Broadcaster(views, project=settings.project, interval=settings.stream_interval)
    auth_cache = AuthCache(settings.auth_cache_seconds)
    answers = Answers(views, AnswerCache(settings.cache_entries, settings.cache_bytes))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        broadcaster.start(asyncio.get_running_loop())
        try:
            yield
        finally:
            broadcaster.close()

    app = FastAPI(
        title="deploy-ledger",
        summary="What is deployed where, now and at any past moment, from the ledger.",
        version="1",
        lifespan=lifespan,
        responses={code: {"model": models.Error} for code in (400, 401, 403, 404, 422)},
        # /docs is served below from local files (Swagger UI, vendored in api/docs_ui):
        # FastAPI's own page loads it from a CDN, blank on a machine without internet.
        # ReDoc has no such package: it is left out.
        docs_url=None,
        redoc_url=None,
    )
    app.router.route_class = StrictRoute

    # --- errors: JSON, a fitting status, no traceback -----------------------------

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> Any:
        return error_response(error.status, error.message, error.details)

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(_: Request, error: RequestValidationError) -> Any:
        details = [refusal(e) for e in error.errors()]
        first = details[0] if details else {"field": "?", "reason": "invalid"}
        return error_response(422, f"{first['field']}: {first['reason']}", details)

    @app.exception_handler(ParameterRefused)
    async def bad_parameter(_: Request, error: ParameterRefused) -> Any:
        return error_response(422, str(error), [{"field": error.field, "reason": error.reason}])

    @app.exception_handler(UnknownName)
    async def unknown_name(_: Request, error: UnknownName) -> Any:
        # An env or package the ledger never saw: 404, never an empty 200 answer.
        return error_response(404, str(error))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> Any:
        return error_response(error.status_code, str(error.detail))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, error: Exception) -> Any:
        log.error("unexpected %s: %s", type(error).__name__, error)
        return error_response(500, "the server failed; its log says why")

    # --- who is asking -----------------------------------------------------------

    def caller(request: Request) -> Token:
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if not header:
            if settings.allow_anonymous_read:
                return ANONYMOUS
            raise ApiError(401, "no token: send Authorization: Bearer <token>")
        if scheme.lower() != "bearer" or not secret.strip():
            raise ApiError(401, "the Authorization header must be: Bearer <token>")
        token = auth_cache.lookup(views, secret.strip())
        if token is None:
            raise ApiError(401, "the token is not valid (unknown or revoked)")
        return token

    def role(needed: Role) -> Callable[[Request], Token]:
        def check(request: Request) -> Token:
            token = caller(request)
            if not token.may(needed):
                raise ApiError(
                    403, f"this needs the {needed} role; {token.name!r} is a {token.role}"
                )
            # After the token: a caller without one learns nothing about parameters.
            check_parameters(request)
            return token

        return check

    @functools.cache
    def cpe_map() -> "CpeMap":
        """The server's CPE map, read once (a bad file fails the first answer needing it)."""
        from projections.matching import CpeMap

        return CpeMap.EMPTY if settings.cpe_map is None else CpeMap.load(settings.cpe_map)

    Reader = Annotated[Token, Depends(role("reader"))]
    Writer = Annotated[Token, Depends(role("writer"))]
    Admin = Annotated[Token, Depends(role("admin"))]
    Env = Annotated[str | None, Query(description="Only this environment.", max_length=253)]
    Limit = Annotated[int, WholeNumber, Query(ge=1, le=MAX_PAGE, description="Items per page.")]
    Offset = Annotated[int, WholeNumber, Query(ge=0, le=MAX_NUMBER, description="Items to skip.")]
    Number = Annotated[int, WholeNumber, InPath(ge=1, le=MAX_NUMBER, description="A generation.")]

    def page(request: Request, rows: Sequence[T], limit: int, offset: int) -> dict[str, Any]:
        """A page of ``rows``, all of them at hand."""
        return cut(request, list(rows[offset : offset + limit]), len(rows), limit, offset)

    def cut(
        request: Request, items: list[T], total: int, limit: int, offset: int
    ) -> dict[str, Any]:
        """A page: ``items`` from ``offset`` on, of ``total``."""
        end = offset + limit
        # Relative (path and query), so that it stays right behind a proxy or a prefix;
        # the other parameters sorted, so that the answer (kept per question, in any
        # order: ``api.answers``) does not depend on the order the caller wrote them in.
        others = sorted(
            (k, v) for k, v in request.query_params.multi_items() if k not in ("offset", "limit")
        )
        query = urlencode([*others, ("offset", end), ("limit", limit)])
        next_url = f"{request.url.path}?{query}" if end < total else None
        return {"items": items, "total": total, "limit": limit, "offset": offset,
                "next": next_url}  # fmt: skip

    def invalid(error: InvalidInput) -> ApiError:
        text = str(error)
        unknown = isinstance(error, UnknownName)
        status = 404 if unknown or " has no " in text or text.startswith("no ") else 400
        return ApiError(status, text)

    def when(value: str | None, name: str) -> datetime | None:
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(422, f"{name}: not an ISO 8601 time ({plain(value)!r})") from None
        if moment.tzinfo is None:
            raise ApiError(422, f"{name}: give a timezone (…Z or +02:00)")
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ApiError(422, f"{name}: out of range once in UTC ({plain(value)!r})") from None

    # --- reading -----------------------------------------------------------------

    @app.get("/api/status", response_model=models.Status, tags=["ledger"])
    def status(token: Reader) -> dict[str, Any]:
        """The ledger's head, how far the views are, the environments, and who you are."""
        head, _ = views.ledger.head()
        envs = [r["env"] for r in views.query(
            "SELECT DISTINCT env FROM generations ORDER BY env")]  # fmt: skip
        return {"head": head, "views": broadcaster.views_position, "envs": envs,
                "role": token.role, "token": token.name}  # fmt: skip

    @app.get("/api/topology", response_model=models.Page[models.Placement], tags=["views"])
    @answers.validated
    def topology(
        request: Request, _: Reader, env: Env = None, limit: Limit = 100, offset: Offset = 0
    ) -> dict[str, Any]:
        """Every active placement (env, host, service, build, generation, health)."""
        return page(request, queries.topology(views, env), limit, offset)

    @app.get("/api/hosts/{host}/manifest", response_model=list[models.HostService], tags=["views"])
    @answers.validated
    def manifest(host: str, _: Reader, env: Env = None) -> list[dict[str, Any]]:
        """What a host runs: builds, closures and dependencies."""
        rows = queries.manifest(views, host, env)
        if not rows:
            raise ApiError(404, f"nothing is active on host {host!r}")
        return rows

    @app.get(
        "/api/hosts/{host}/history", response_model=models.Page[models.HistoryEntry],
        tags=["views"],
    )  # fmt: skip
    @answers.cached
    def history(
        request: Request, host: str, _: Reader, service: str | None = None, env: Env = None,
        limit: Limit = 100, offset: Offset = 0,
    ) -> dict[str, Any]:  # fmt: skip
        """Everything that happened on a host (optionally to one service), in order."""
        return page(request, queries.history(views, host, service, env), limit, offset)

    @app.get("/api/generations", response_model=models.Page[models.Generation], tags=["views"])
    @answers.cached
    def generations(
        request: Request, _: Reader, env: Env = None, limit: Limit = 100, offset: Offset = 0
    ) -> dict[str, Any]:
        """Every generation, oldest first, with its parent, status and tags."""
        return page(request, queries.generations(views, env), limit, offset)

    @app.get("/api/generations/tree", response_model=list[models.GenerationNode], tags=["views"])
    @answers.cached
    def generation_tree(_: Reader, env: Env = None) -> list[dict[str, Any]]:
        """The generations as a tree per environment: rollbacks and failures included."""
        return tree(queries.generations(views, env))

    @app.get("/api/generations/{number}", response_model=models.GenerationDetail, tags=["views"])
    @answers.cached
    def generation(number: Number, _: Reader, env: Env = None) -> dict[str, Any]:
        """One generation with its desired manifest."""
        try:
            return queries.generation(views, number, env)
        except InvalidInput as error:
            raise invalid(error) from None

    @app.get("/api/diff", response_model=models.Diff, tags=["views"])
    @answers.cached
    def diff(
        _: Reader,
        a: Annotated[
            int, WholeNumber, Query(ge=1, le=MAX_NUMBER, description="The older generation.")
        ],
        b: Annotated[
            int, WholeNumber, Query(ge=1, le=MAX_NUMBER, description="The newer generation.")
        ],
        env: Env = None,
    ) -> dict[str, Any]:
        """What changed between two generations: services, and closures down to packages."""
        try:
            queries.require_generation(views, a, env)
            queries.require_generation(views, b, env)
            return diff_query(views, a, b, env)
        except InvalidInput as error:
            raise invalid(error) from None

    @app.get("/api/where", response_model=models.WhereAnswer, tags=["audit"])
    @answers.cached
    def where(
        request: Request,
        _: Reader,
        name: Annotated[str, Query(min_length=1, max_length=253, description="Package name.")],
        version: Annotated[str | None, Query(description="Exactly this version.")] = None,
        range_: Annotated[
            str | None, Query(alias="range", description="Versions, e.g. >=1.0.1,<1.0.2")
        ] = None,
        at: Annotated[str | None, Query(description="Active at this moment (ISO 8601).")] = None,
        known_at: Annotated[
            str | None, Query(description="As the ledger knew it at this moment.")
        ] = None,
        generation: Annotated[
            int | None,
            WholeNumber,
            Query(ge=1, le=MAX_NUMBER, description="In this generation's manifest."),
        ] = None,
        env: Env = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        """Which hosts run a package (any version, one, or a range): now, at a past moment,
        as known then, or in a generation."""
        try:
            version_range = parse_range(range_) if range_ else None
        except InvalidInput as error:
            raise ApiError(422, f"range: {error}") from None
        moment, known = when(at, "at"), when(known_at, "known_at")
        if known is not None and moment is None:
            raise ApiError(422, "known_at needs at")
        answer = {"name": name, "at": at, "known_at": known_at, "generation": generation}
        try:
            if generation is not None:  # a manifest: at most a generation's placements
                found = queries.where(
                    views, name, version=version, version_range=version_range,
                    generation_number=generation, env=env,
                )  # fmt: skip
                rows = [f.row() for f in found]
                summary = queries.where_summary(found)
                return {**answer, "summary": summary,
                        "placements": page(request, rows, limit, offset)}  # fmt: skip
            # Counted and cut in the database: a page costs a page, however many match.
            filters: dict[str, Any] = {"version": version, "version_range": version_range,
                                       "at": moment, "known_at": known, "env": env}  # fmt: skip
            summary = queries.where_counts(views, name, **filters)
            found, total = queries.where_page(views, name, limit=limit, offset=offset, **filters)
        except InvalidInput as error:
            raise invalid(error) from None
        placements = cut(request, [f.row() for f in found], total, limit, offset)
        return {**answer, "summary": summary, "placements": placements}

    @app.get("/api/where/timeline", response_model=models.VersionsOverTime, tags=["audit"])
    @answers.cached
    def where_timeline(
        _: Reader,
        name: Annotated[str, Query(min_length=1, max_length=253, description="Package name.")],
        env: Env = None,
    ) -> dict[str, Any]:
        """A package's versions over time: every change of the number of hosts running each
        version, and per version when it first and last ran (the dashboard's picture)."""
        from projections.timeline import versions_over_time

        try:
            return versions_over_time(views, name, env)
        except InvalidInput as error:
            raise invalid(error) from None

    @app.get("/api/failures", response_model=models.Page[models.Failure], tags=["audit"])
    @answers.cached
    def failures(
        request: Request,
        _: Reader,
        env: Env = None,
        kind: Annotated[str | None, Query(description="Only this kind.")] = None,
        newest_first: Annotated[bool, TrueOrFalse] = False,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        """Failed builds, distributions, activations and generations, timed-out drains, and
        facts that contradict the stream; in ledger order (or newest first)."""
        rows = queries.failures(views, env)
        if kind:
            rows = [r for r in rows if r["kind"] == kind]
        if newest_first:
            rows.reverse()
        return page(request, rows, limit, offset)

    @app.get("/api/drift", response_model=models.DriftAnswer, tags=["audit"])
    @answers.cached
    def drift(
        request: Request, _: Reader, env: Env = None, host: str | None = None,
        limit: Limit = 100, offset: Offset = 0,
    ) -> dict[str, Any]:  # fmt: skip
        """Hosts whose own reports differ from their generation's manifest."""
        report = drift_query.drift(views, env, host)
        return {"envs": report.envs, "problems": page(request, report.problems, limit, offset)}

    @app.get("/api/metrics", response_model=list[models.DeliveryMetrics], tags=["audit"])
    @answers.cached
    def metrics(_: Reader, env: Env = None) -> list[dict[str, Any]]:
        """Delivery metrics per env and service: deployments, lead time, change failure
        rate, time to restore."""
        return metrics_query(views, env)

    @app.get("/api/exposure", response_model=models.ExposureAnswer, tags=["audit"])
    @answers.validated
    def exposure(
        _: Reader,
        id_: Annotated[
            str,
            Query(alias="id", min_length=1, max_length=128, description="CVE, GHSA, OSV… id."),
        ],
        at: Annotated[str | None, Query(description="At this moment (ISO 8601).")] = None,
        known_at: Annotated[
            str | None, Query(description="As the ledger knew it at this moment.")
        ] = None,
        env: Env = None,
    ) -> dict[str, Any]:
        """Which hosts and services an advisory (or any alias of it) exposed: affected now
        or at a moment, and the windows, host-hours and time exposed once known. Without
        ``at`` the answer depends on the clock: validated, never kept."""
        from projections.exposure import exposure as exposure_of
        from projections.exposure import exposure_json

        try:
            answer = exposure_of(
                views, id_, env=env, at=when(at, "at"), known_at=when(known_at, "known_at"),
                cpe_map=cpe_map(),
            )  # fmt: skip
        except InvalidInput as error:
            raise invalid(error) from None
        return exposure_json(answer)

    @app.get("/api/vulns", response_model=list[models.Vulnerability], tags=["audit"])
    @answers.cached
    def vulns(
        _: Reader,
        at: Annotated[str | None, Query(description="At this moment (ISO 8601).")] = None,
        known_at: Annotated[
            str | None, Query(description="As the ledger knew it at this moment.")
        ] = None,
        min_severity: Annotated[
            Literal["low", "medium", "high", "critical"] | None,
            Query(description="Only advisories scored at least this."),
        ] = None,
        env: Env = None,
    ) -> list[dict[str, Any]]:
        """Every advisory affecting what runs (or ran at a moment), one per vulnerability,
        most severe first, then by hosts exposed."""
        from projections.vulns import vulns as vulns_of

        try:
            return vulns_of(
                views, env=env, at=when(at, "at"), known_at=when(known_at, "known_at"),
                min_severity=min_severity, cpe_map=cpe_map(),
            )  # fmt: skip
        except InvalidInput as error:
            raise invalid(error) from None

    # --- routes kept in their own modules ----------------------------------------

    from api import alert_routes, chart_routes, fleet_routes, proof_routes

    kit = Kit(
        views=views, settings=settings, answers=answers, reader=role("reader"),
        writer=role("writer"), admin=role("admin"), page=page, cut=cut, invalid=invalid,
        when=when, cpe_map=cpe_map,
    )  # fmt: skip
    for routes in (fleet_routes, chart_routes, alert_routes, proof_routes):
        routes.add_routes(app, kit)

    # --- writing -----------------------------------------------------------------

    @app.post(
        "/api/events", response_model=models.Appended, status_code=201, tags=["ledger"],
        responses={409: {"model": models.Error}, 413: {"model": models.Error}},
    )  # fmt: skip
    async def post_events(
        request: Request,
        token: Writer,
        receipt: Annotated[
            bool, TrueOrFalse, Query(description="Answer an inclusion proof per event too.")
        ] = False,
    ) -> Any:
        """Append one event (application/json) or a batch (application/x-ndjson, one per
        line), all or nothing: any bad event refuses the whole request (422, with line,
        field and reason), an event_id stored with other content or a taken generation
        number is a 409. Already stored events are skipped. The actor of every event is
        the token's name; 200 when nothing was new. With ``receipt=true`` the answer also
        holds ``receipts``: per event, its inclusion proof (as ``GET
        /api/proof/inclusion``, with ``event_id``) against a checkpoint signed now with
        the server's key; null, with ``receipt_problem`` saying why, when it has none."""
        try:
            body = await read_body(request, settings.max_body_bytes)
            events = parse_body(body, request.headers.get("content-type", ""), token.name)
        except BodyTooLarge as error:
            raise ApiError(413, str(error)) from None
        except EventsRefused as error:
            raise ApiError(error.status, str(error), error.details) from None

        def append() -> list[Any]:
            problems = views.ledger.check(events, CheckState())
            if problems:
                raise EventConflict("; ".join(p.message for p in problems[:10]))
            return views.ledger.append(events, source="http")

        try:
            results = await run_in_threadpool(append)
        except EventConflict as error:
            raise ApiError(409, f"nothing was stored: {error}") from None
        new = sum(1 for r in results if r.new)
        answer = models.Appended(
            stored=new, already_stored=len(results) - new,
            events=[models.Stored(event_id=str(r.event_id), position=r.position, new=r.new)
                    for r in results],
        )  # fmt: skip
        if receipt:
            made = await run_in_threadpool(proof_routes.receipts, views.ledger, results)
            reply = models.Appended.model_validate(answer.model_dump() | made).model_dump()
        else:
            reply = answer.model_dump(exclude={"receipts", "receipt_problem"})
        return JSONResponse(reply, status_code=201 if new else 200)

    @app.post(
        "/api/generations/{number}/tags", response_model=models.Stored, status_code=201,
        tags=["admin"],
    )  # fmt: skip
    def tag(number: Number, body: models.TagRequest, token: Admin, env: Env = None) -> Any:
        """Put labels on a generation (a generation_tagged event)."""
        try:
            env_name = queries.require_generation(views, number, env)
            event = GenerationTagged(
                event_id=uuid4(), env=env_name, occurred_at=datetime.now(UTC),
                actor=token.name, number=number, tags=tuple(body.tags),
            )  # fmt: skip
        except InvalidInput as error:
            raise invalid(error) from None
        except ValidationError as error:
            details = [refusal(e, located=False) for e in error.errors()]
            raise ApiError(422, f"{details[0]['field']}: {details[0]['reason']}", details) from None
        result = views.ledger.append([event], source="http")[0]
        return {"event_id": str(result.event_id), "position": result.position, "new": True}

    @app.post("/api/rollback", response_model=models.PlanAnswer, tags=["admin"])
    def rollback(body: models.RollbackRequest, token: Admin, env: Env = None) -> Any:
        """Plan a rollback to generation ``to`` from what is active now, and record it
        (a generation_planned event) unless ``dry_run``; executors carry the steps out
        and record their outcomes, as after ``ledger rollback --to N``."""
        if settings.project:
            views.catch_up()
        try:
            plan = plan_rollback(views, env, body.to, force=body.force)
        except InvalidInput as error:
            raise invalid(error) from None
        recorded = False
        if not body.dry_run:
            try:
                views.ledger.append([planned_event(plan, token.name)], source="http")
            except EventConflict as error:
                raise ApiError(409, f"nothing was recorded: {error}") from None
            recorded = True
        return {**plan.as_json(), "recorded": recorded}

    # --- the stream and the dashboard --------------------------------------------

    @app.get("/api/stream", tags=["ledger"], response_class=StreamingResponse)
    async def stream(
        _: Reader,
        last_event_id: Annotated[
            int | None,
            WholeNumber,
            Header(
                alias="Last-Event-ID", ge=0, le=MAX_NUMBER,
                description="The last position received: replay what came after it.",
            ),
        ] = None,
    ) -> StreamingResponse:  # fmt: skip
        """Server-Sent Events: ``ledger`` for each new event (id = its position; bulky
        lists counted), then ``views`` once the views include it. Reconnect with
        Last-Event-ID to get what was missed (up to 1,000 events)."""
        return StreamingResponse(
            broadcaster.subscribe(last_event_id),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @app.get("/docs", include_in_schema=False)
    def docs() -> Any:
        """Swagger UI on the OpenAPI document, every asset from this server."""
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title}: API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url="/favicon.svg",
        )

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        docs_page = request.url.path == "/docs"
        response.headers.setdefault("Content-Security-Policy", DOCS_CSP if docs_page else CSP)
        return response

    app.mount(DOCS_ASSETS, StaticFiles(directory=DOCS_UI), name="docs-assets")
    app.mount("/", StaticFiles(directory=STATIC, html=True), name="dashboard")
    app.state.broadcaster = broadcaster
    return app


def refusal(error: Any, *, located: bool = True) -> dict[str, object]:
    """A pydantic error as ``{"field", "reason"}``: the field without its location
    (query, path, header, body) when ``located``, the reason in words."""
    where, *path = error["loc"] if located else ("body", *error["loc"])
    if error["type"] == "json_invalid":
        return {"field": "body", "reason": f"not valid JSON: {error.get('ctx', {}).get('error')}"}
    return {"field": ".".join(str(p) for p in path) or str(where), "reason": error["msg"]}


def tree(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Generations nested under their parents, per env (roots: no parent)."""
    nodes = {(r["env"], r["number"]): {**r, "children": []} for r in rows}
    roots: list[dict[str, Any]] = []
    for (env, _), node in nodes.items():
        parent = nodes.get((env, node["parent"])) if node["parent"] is not None else None
        (parent["children"] if parent is not None else roots).append(node)
    return roots
