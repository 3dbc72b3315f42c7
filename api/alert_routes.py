"""Alerts and silences for the dashboard's pages: the Slack collector's alert state, read
as ``ledger alerts --all`` and ``ledger silence list`` read it (``collectors.grouping``,
``collectors.silences``), plus what a page needs to link each alert to its hosts,
generation and advisory.

The alert state lives in the ledger's own database (where the collector keeps it), not
in the views' database when that is another one. Its answers depend on the wall clock
(a silence is active or not *now*) and on the collector's tables, which move without
the views moving: they are validated (ETag, 304), never kept per views position.
"""

import functools
import time
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request

from api.app import MAX_PAGE, Kit
from api.models import Page, Response
from api.params import MAX_NUMBER, TrueOrFalse, WholeNumber
from api.tokens import Token
from collectors.alert_tables import COLLECTOR, iso
from collectors.doctor import table_exists
from collectors.follower import tracking_name
from collectors.grouping import alert_rows
from collectors.kinds import ADVISORY, FIRING, RESOLVED
from collectors.silences import silences as read_silences
from ledger.application import batched
from ledger.errors import InvalidInput
from projections import queries
from projections.store import AnyViewRecorder, open_views
from projections.view import IN_LIST

ALERT_TABLES = ("alerts", "alert_hosts", "silences")
HOSTS_LISTED = 100
"""Host names given per alert (``hosts`` counts them all)."""
STATUS_ORDER = {FIRING: 0, "stale": 1, RESOLVED: 2}
"""Firing first: what an on-call engineer looks at; then stale, then resolved."""


class Alert(Response):
    """One alert of the Slack collector (as ``ledger alerts --json`` shows it), with
    the names of its hosts and what it is about, for links."""

    fingerprint: str
    env: str
    generation: int | None = None
    service: str | None = None
    kind: str
    status: str
    """firing, resolved, or stale (known only from health reports whose ttl ran out)."""
    hosts: int
    total_hosts: int | None = None
    summary: str
    resolution: str | None = None
    since: str | None = None
    silenced_by: list[str]
    notified: str | None = None
    """What Slack was last told of it (firing or resolved); null: not told yet."""
    notified_at: str | None = None
    detail: str
    changed_at: str | None = None
    host_names: list[str]
    """Its hosts, by name (the first ``HOSTS_LISTED``)."""
    advisory: str | None = None
    """An advisory alert's vulnerability (its key id)."""


class AlertsAnswer(Response):
    collector: bool
    """Whether a Slack collector has ever run on this ledger: without one there are no
    alerts to show, which is not "nothing failed"."""
    alerts: Page[Alert]


class SilenceRow(Response):
    """A silence (as ``ledger silence list --json`` shows it)."""

    id: str
    env: str | None = None
    service: str | None = None
    kind: str | None = None
    advisory: str | None = None
    starts_at: str
    ends_at: str
    active: bool
    comment: str
    created_by: str
    expired_by: str | None = None
    matches: str


def add_routes(app: FastAPI, kit: Kit) -> None:
    """Add this module's routes to ``app``."""
    Reader = Annotated[Token, Depends(kit.reader)]
    views = kit.views

    @functools.cache
    def alert_store() -> AnyViewRecorder:
        """The ledger's database, where the collector keeps the alert state: the views'
        own recorder when they share it, else one opened once for the server's life."""
        if views.location == views.ledger.location:
            return views.recorder
        return open_views(views.ledger.location)

    @app.get("/api/alerts", response_model=AlertsAnswer, tags=["alerts"])
    @kit.answers.validated
    def alerts(
        request: Request,
        _: Reader,
        env: Annotated[
            str | None, Query(description="Only this environment.", max_length=253)
        ] = None,
        status: Annotated[
            Literal["firing", "resolved", "stale"] | None, Query(description="Only this status.")
        ] = None,
        generation: Annotated[
            int | None,
            WholeNumber,
            Query(ge=1, le=MAX_NUMBER, description="Only alerts about this generation."),
        ] = None,
        limit: Annotated[
            int, WholeNumber, Query(ge=1, le=MAX_PAGE, description="Items per page.")
        ] = 100,
        offset: Annotated[
            int, WholeNumber, Query(ge=0, le=MAX_NUMBER, description="Items to skip.")
        ] = 0,
    ) -> dict[str, Any]:
        """The Slack collector's alerts, resolved ones included (``ledger alerts --all``):
        firing first, then stale, then resolved. Without a collector that ever ran,
        ``collector`` is false and the list empty."""
        store = alert_store()
        collector = bool(store.max_tracking_id(tracking_name(COLLECTOR)))
        rows: list[dict[str, Any]] = []
        if all(table_exists(store, table) for table in ALERT_TABLES):
            rows = alert_rows(store, time.time(), env=env, resolved=True)
        if status is not None:
            rows = [row for row in rows if row["status"] == status]
        if generation is not None:
            rows = [row for row in rows if row["generation"] == generation]
        rows.sort(key=lambda row: STATUS_ORDER.get(row["status"], len(STATUS_ORDER)))
        if not rows:
            refuse_unknown(env, generation)
        page = kit.page(request, rows, limit, offset)
        page["items"] = with_hosts(store, page["items"])
        return {"collector": collector, "alerts": page}

    @app.get("/api/silences", response_model=list[SilenceRow], tags=["alerts"])
    @kit.answers.validated
    def silences(
        _: Reader,
        ended: Annotated[bool, TrueOrFalse, Query(description="Also those that ended.")] = False,
    ) -> list[dict[str, Any]]:
        """The silences active or still to come, and with ``ended`` those that ended
        (``ledger silence list --all``); oldest first."""
        store = alert_store()
        if not table_exists(store, "silences"):
            return []
        now = time.time()
        return [
            {**s.row(now), "matches": s.describe()} for s in read_silences(store, now, ended=ended)
        ]

    def refuse_unknown(env: str | None, generation: int | None) -> None:
        """An empty answer for a name the ledger never saw is a 404, not "no alerts"."""
        try:
            queries.require_env_of(views, env, [])
            if generation is not None and env is not None:
                queries.require_generation(views, generation, env)
            elif generation is not None and not views.query(
                "SELECT 1 AS found FROM generations WHERE number = ?", (generation,)
            ):
                raise InvalidInput(f"no environment has a generation {generation}")
        except InvalidInput as error:
            raise kit.invalid(error) from None


def with_hosts(store: AnyViewRecorder, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The page's alerts with their host names, detail and last change (what
    ``alert_rows`` leaves out), read for the page's alerts only."""
    fingerprints = [row["fingerprint"] for row in rows]
    names: dict[str, list[str]] = {}
    extra: dict[str, dict[str, Any]] = {}
    with store.transaction(commit=False) as tx:
        for batch in batched(fingerprints, IN_LIST):
            marks = ", ".join("?" * len(batch))
            for row in tx.query(
                "SELECT fingerprint, detail, changed_at FROM alerts "
                f"WHERE fingerprint IN ({marks})",
                batch,
            ):
                extra[row["fingerprint"]] = row
            for row in tx.query(
                f"SELECT fingerprint, host FROM alert_hosts WHERE fingerprint IN ({marks}) "
                "ORDER BY fingerprint, host",
                batch,
            ):
                listed = names.setdefault(row["fingerprint"], [])
                if len(listed) < HOSTS_LISTED:
                    listed.append(row["host"])
    found = []
    for row in rows:
        more = extra.get(row["fingerprint"], {})
        detail = str(more.get("detail", ""))
        found.append(
            {
                **row,
                "detail": detail,
                "changed_at": iso(more.get("changed_at")),
                "host_names": names.get(row["fingerprint"], []),
                "advisory": detail if row["kind"] == ADVISORY and detail else None,
            }
        )
    return found
