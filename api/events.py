"""Reading ``POST /api/events`` bodies: size-limited, one JSON event or JSON Lines,
validated with the event models before anything is stored."""

from __future__ import annotations

from fastapi import Request

from ledger.events import Envelope
from ledger.importers.jsonl import IngestRefused, parse_lines

JSON_LINES = ("application/x-ndjson", "application/jsonl", "application/json-lines")


class BodyTooLarge(Exception):
    pass


class EventsRefused(Exception):
    """The body holds no valid batch; ``status`` 400, 415 or 422, ``details`` per line."""

    def __init__(self, status: int, message: str, details: list[dict[str, object]]) -> None:
        super().__init__(message)
        self.status = status
        self.details = details


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it is longer than ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is {int(declared):,} bytes; at most {limit:,} are accepted")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is over {limit:,} bytes; at most {limit:,} are accepted")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_body(body: bytes, content_type: str, actor: str) -> list[Envelope]:
    """Every event of the body, its actor set to ``actor`` (the token's name)."""
    media = content_type.split(";", maxsplit=1)[0].strip().lower()
    if media == "application/json":
        lines = [body.strip()]
    elif media in JSON_LINES:
        lines = body.split(b"\n")
    else:
        raise EventsRefused(
            415,
            f"send application/json (one event) or application/x-ndjson (one per line), "
            f"not {media or 'no content type'}",
            [],
        )
    try:
        parsed = parse_lines(lines)
    except IngestRefused as refused:
        details: list[dict[str, object]] = [
            {"line": e.line, "field": e.field, "reason": e.reason} for e in refused.errors
        ]
        raise EventsRefused(
            422, f"{refused.bad_lines} of {len(lines)} events are invalid, nothing was "
            f"stored; first: {refused.errors[0]}", details,
        ) from None  # fmt: skip
    events: list[Envelope] = [e.model_copy(update={"actor": actor}) for e in parsed]
    if not events:
        raise EventsRefused(400, "the body holds no event", [])
    return events
