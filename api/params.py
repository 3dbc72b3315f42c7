"""What the API accepts from a request before any endpoint runs: whole numbers written
in ASCII digits and within range, text without control or invisible characters, only
the query parameters an endpoint declares (each once), and JSON bodies without
duplicate keys.

Everything here refuses with a 422 that names the parameter, so that nothing hostile
reaches a query: an integer past SQLite's and PostgreSQL's 64 bits, a NUL that
PostgreSQL cannot hold, a ``²`` that ``str.isdigit`` takes for a digit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from api.events import BodyTooLarge, read_body

MAX_NUMBER = 2**62
"""The largest generation number, position, offset or count accepted: as large as an
event's generation number may be (``ledger.events``), well inside a signed 64-bit
database integer."""
MAX_TEXT = 1024
"""The longest query or path value, in characters."""
MAX_BODY = 64 * 1024
"""The largest body of an admin request (tags, rollback), in bytes."""

_DIGITS = re.compile(r"[0-9]{1,40}")
# Control characters (Unicode Cc), and the invisible ones that make a name display as
# another: zero-width, bidi controls, line and paragraph separators, the BOM.
_HIDDEN = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)


def _whole_number(value: object) -> object:
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise PydanticCustomError(
            "whole_number", "Input should be a whole number written with the digits 0-9"
        )
    return value


def _true_or_false(value: object) -> object:
    if isinstance(value, str) and value not in ("true", "false"):
        raise PydanticCustomError("true_or_false", "Input should be true or false")
    return value


WholeNumber = BeforeValidator(_whole_number)
"""For ``Annotated[int, WholeNumber, Query(ge=…, le=…)]``: only ASCII digits (pydantic
alone also takes ``1.0``, ``5_0`` and surrounding spaces)."""
TrueOrFalse = BeforeValidator(_true_or_false)
"""For ``Annotated[bool, TrueOrFalse]``: only ``true`` or ``false``."""


class ParameterRefused(Exception):
    """A query or path parameter that no endpoint should see; ``field`` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _query_names(dependant: Dependant) -> frozenset[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return frozenset(names)


def check_parameters(request: Request) -> None:
    """Refuse an undeclared or repeated query parameter, and any query or path value
    over ``MAX_TEXT`` characters or holding control or invisible characters."""
    route = request.scope.get("route")
    declared = route.query_names if isinstance(route, StrictRoute) else None
    seen: set[str] = set()
    for name, value in request.query_params.multi_items():
        if declared is not None and name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise ParameterRefused(
                plain(name), f"unknown query parameter; this endpoint takes: {known}"
            )
        if name in seen:
            raise ParameterRefused(name, "given more than once; give it once")
        seen.add(name)
        check_text(name, value)
    for name, value in request.path_params.items():
        if isinstance(value, str):
            check_text(name, value)


def check_text(field: str, value: str) -> None:
    if len(value) > MAX_TEXT:
        raise ParameterRefused(field, f"at most {MAX_TEXT:,} characters, not {len(value):,}")
    hidden = _HIDDEN.search(value)
    if hidden:
        raise ParameterRefused(
            field, f"holds the control or invisible character U+{ord(hidden.group()):04X}"
        )


def plain(text: str, limit: int = 60) -> str:
    """``text`` fit to quote in an error: hidden characters escaped, cut to ``limit``."""
    shown = _HIDDEN.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _single_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise json.JSONDecodeError(f"duplicate key {plain(key)!r}", "", 0)
        data[key] = value
    return data


class StrictJSONRequest(Request):
    """A request whose body is at most ``MAX_BODY`` bytes and whose JSON refuses
    duplicate keys: a reader that keeps the first would see another request than the
    ledger acted on. (``POST /api/events`` streams its own body, to its own limit.)"""

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            try:
                self._body = await read_body(self, MAX_BODY)
            except BodyTooLarge as error:
                raise HTTPException(413, str(error)) from None
        return self._body

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json.loads(await self.body(), object_pairs_hook=_single_keys)
        return self._json


class StrictRoute(APIRoute):
    """A route that parses JSON bodies with ``StrictJSONRequest`` and knows the query
    parameters it declares (``query_names``)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.query_names = _query_names(self.dependant)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict
