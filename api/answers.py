"""Read answers kept per (question, views position), their ETags, and 304 Not Modified.

An answer of a read endpoint is a function of its route, its parameters and the state of
the views, and the views' state is named by the positions their tracking records have
reached (one row per view, written in the same transaction as the view's rows). So the
JSON bytes of an answer are kept under (route, path parameters, query parameters, views
positions): the same question asked again before the views move is answered from memory,
and once any view moves the key moves with it, so a kept answer is never served stale.
The positions are read from the database on every request (one small query), not from
the stream's thread, so the key is right however the views moved: by this server, or by
``ledger project`` or another server in another process.

Every answer (kept or not) carries a strong ``ETag`` (a hash of its body) and
``Cache-Control: private, no-cache``; a request whose ``If-None-Match`` holds it gets
``304 Not Modified`` without a body. Answers that depend on the clock (health turning
stale) are never kept, only validated: see ``Answers.validated``. Errors are raised
through, so they are never kept.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from fastapi import Request, Response
from fastapi.exceptions import ResponseValidationError
from fastapi.routing import APIRoute

from projections.runner import Views
from projections.store import tracking_name

CACHE_CONTROL = "private, no-cache"
"""Clients and proxies may keep an answer, but must ask again (with ``If-None-Match``)
before using it: tokens guard the data, and the views may have moved."""
MAX_ENTRIES = 1024
MAX_BYTES = 64 * 1024 * 1024
_REQUEST = "answers_request_"
"""The name under which the wrapped endpoint gets the request (for its key and its
``If-None-Match``); taken out before the endpoint itself is called."""

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
Position = tuple[tuple[str, int], ...]
Key = tuple[Any, ...]


@dataclass(frozen=True)
class Answer:
    body: bytes
    etag: str


def answer_of(body: bytes) -> Answer:
    """A strong ETag from the body: it changes exactly when the answer does."""
    return Answer(body, f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"')


class AnswerCache:
    """The answers' bytes, least recently used first out, within ``entries`` answers and
    ``size`` bytes. Thread-safe: sync endpoints run in the server's thread pool."""

    def __init__(self, entries: int = MAX_ENTRIES, size: int = MAX_BYTES) -> None:
        self.entries = entries
        self.size = size
        self.bytes = 0
        self._answers: OrderedDict[Key, Answer] = OrderedDict()
        self._position: Position | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, key: Key) -> Answer | None:
        with self._lock:
            answer = self._answers.get(key)
            if answer is not None:
                self._answers.move_to_end(key)
            return answer

    def put(self, position: Position, key: Key, answer: Answer) -> None:
        """Keep ``answer``; once the views have moved, the answers kept at other
        positions can never be asked for again, so they go first."""
        if len(answer.body) > self.size // 8:  # one answer must not empty the cache
            return
        with self._lock:
            if position != self._position:
                self._position = position
                for old in [k for k in self._answers if k[0] != position]:
                    self.bytes -= len(self._answers.pop(old).body)
            previous = self._answers.pop(key, None)
            if previous is not None:
                self.bytes -= len(previous.body)
            self._answers[key] = answer
            self.bytes += len(answer.body)
            while len(self._answers) > self.entries or self.bytes > self.size:
                _, dropped = self._answers.popitem(last=False)
                self.bytes -= len(dropped.body)


def views_position(views: Views) -> Position:
    """Where every view stands: (tracking name, notification id) for each view that has
    processed something, in one query on the views' tracking table."""
    table = getattr(views.recorder, "tracking_table_name", "tracking")
    with views.read() as tx:
        rows = tx.tuples(
            f"SELECT application_name, MAX(notification_id) FROM {table} "
            "WHERE application_name LIKE ? GROUP BY application_name ORDER BY application_name",
            (f"{tracking_name('')}%",),
        )
    return tuple((str(name), int(position)) for name, position in rows)


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (weak comparison, as RFC 9110
    asks for this header; ``*`` matches any)."""
    if not if_none_match:
        return False
    tags = [t.strip() for t in if_none_match.split(",")]
    return any(t == "*" or t.removeprefix("W/") == etag for t in tags)


def respond(request: Request, answer: Answer, state: str | None) -> Response:
    headers = {"ETag": answer.etag, "Cache-Control": CACHE_CONTROL}
    if state is not None:
        headers["X-Cache"] = state
    if matches(request.headers.get("if-none-match"), answer.etag):
        return Response(status_code=304, headers=headers)
    return Response(answer.body, media_type="application/json", headers=headers)


def render(request: Request, content: Any) -> bytes:
    """The endpoint's answer as FastAPI would send it: validated against the route's
    response model, then dumped to JSON bytes (its ``dump_json`` path)."""
    route = request.scope.get("route")
    field = route.response_field if isinstance(route, APIRoute) else None
    if field is None:
        raise RuntimeError(f"{request.url.path}: a cached endpoint needs a response model")
    value, errors = field.validate(content, {}, loc=("response",))
    if errors:
        raise ResponseValidationError(errors=errors, body=content)
    return bytes(field.serialize_json(value, by_alias=True))


def question(request: Request, position: Position) -> Key:
    """The key of an answer: the views' position, the route, and its parameters as
    validated (each query parameter is given at most once), in a fixed order: the order
    a client writes them in does not split the cache."""
    route = request.scope.get("route")
    path = route.path if isinstance(route, APIRoute) else request.url.path
    return (
        position,
        path,
        tuple(sorted(request.path_params.items())),
        tuple(sorted(request.query_params.multi_items())),
    )


class Answers:
    """Decorators for read endpoints (under ``@app.get``): ``cached`` keeps answers per
    views position; ``validated`` only gives them an ETag and answers 304."""

    def __init__(self, views: Views, cache: AnswerCache) -> None:
        self.views = views
        self.cache = cache

    def cached(self, endpoint: Endpoint) -> Endpoint:
        """Answer from the cache when the same question was answered at the same views
        position. Runs after the endpoint's dependencies (token, role, parameters): a
        caller is checked before anything kept is served."""

        def answer(request: Request, call: Callable[[], Any]) -> Response:
            position = views_position(self.views)
            key = question(request, position)
            kept = self.cache.get(key)
            if kept is not None:
                return respond(request, kept, "hit")
            fresh = answer_of(render(request, call()))
            # Kept only if the views did not move while it was computed: it then holds
            # exactly the state ``position`` names.
            if views_position(self.views) == position:
                self.cache.put(position, key, fresh)
            return respond(request, fresh, "miss")

        return _wrap(endpoint, answer)

    def validated(self, endpoint: Endpoint) -> Endpoint:
        """An ETag and 304, the answer computed every time: for answers that depend on
        the clock as well as on the views (health marked stale once its report is older
        than its time to live), which a kept copy could not follow."""

        def answer(request: Request, call: Callable[[], Any]) -> Response:
            return respond(request, answer_of(render(request, call())), None)

        return _wrap(endpoint, answer)


def _wrap(endpoint: Endpoint, answer: Callable[[Request, Callable[[], Any]], Response]) -> Endpoint:
    """``endpoint`` given the request too (FastAPI fills in one request parameter per
    endpoint: the endpoint's own if it has one, else one added here); every other
    parameter, and so every dependency and check, stays as it was."""
    signature = inspect.signature(endpoint)
    own = [n for n, p in signature.parameters.items() if p.annotation is Request]
    name = own[0] if own else _REQUEST

    @functools.wraps(endpoint)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        request = kwargs[name] if own else kwargs.pop(name)
        return answer(request, lambda: endpoint(*args, **kwargs))

    if not own:
        extra = inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=Request)
        signature = signature.replace(parameters=[*signature.parameters.values(), extra])
    wrapper.__signature__ = signature  # type: ignore[attr-defined]
    return cast(Endpoint, wrapper)
