"""What every build importer shares: the refusal, builds as events, recording them once.

An importer reads a whole file, builds and validates every event first, and appends
them in one ``Ledger.append`` call: a refused file records nothing. Event ids are
derived from what the build is (env, kind, build id, service), so importing the same
file again records nothing new; an id already stored is reported as already recorded
even if this import would give it other content (a default time of "now", say).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid5

from pydantic import ValidationError

from ledger.application import Ledger
from ledger.errors import InvalidInput
from ledger.events import BuildRecorded, Component, describe_error

EVENT_ID_NAMESPACE = UUID("5b0c7a52-3d1e-4f0a-9a43-6f1d2c8e7b19")
"""uuid5 namespace of imported events' ids; changing it would re-record every import."""


class ImportRefused(InvalidInput):
    """An import file is invalid at some position; nothing was recorded from it."""

    def __init__(self, file: str, position: str, reason: str) -> None:
        self.file = file
        self.position = position
        self.reason = reason
        where = f"{file}: {position}" if position else file
        super().__init__(f"{where}: {reason}; nothing was recorded from it")


@dataclass(frozen=True)
class ImportedBuild:
    """A build read from a file, before it becomes an event.

    ``position`` says where in the file it came from, for refusals; ``occurred_at`` is
    None when the file does not say when it was built.
    """

    position: str
    build_id: str
    service: str
    version: str
    artifact: str
    closure: tuple[Component, ...]
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class RecordedBuild:
    """One build of an import and where it is in the ledger."""

    service: str
    version: str
    build_id: str
    artifact: str
    paths: int
    event_id: UUID
    position: int
    new: bool
    """False when the ledger already held this build's event."""


@dataclass(frozen=True)
class ImportReport:
    builds: list[RecordedBuild]
    skipped_components: list[str]
    """Components that could not be recorded (CycloneDX components without a purl)."""

    @property
    def recorded(self) -> int:
        return sum(1 for build in self.builds if build.new)

    @property
    def already_recorded(self) -> int:
        return sum(1 for build in self.builds if not build.new)


def event_id(env: str, build_id: str, service: str) -> UUID:
    """The same build of the same service in the same env always gets the same id."""
    return uuid5(EVENT_ID_NAMESPACE, json.dumps(["build_recorded", env, build_id, service]))


def decode(file: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ImportRefused(file, f"byte {error.start}", "not valid UTF-8") from None


def load_json(file: str, data: bytes) -> Any:
    """The parsed document, or the refusal saying at which line and column it breaks."""
    text = decode(file, data)
    if not text.strip():
        raise ImportRefused(file, "", "the file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        reason = f"not valid JSON ({error.msg})"
        if error.pos >= len(text.rstrip()) or error.msg.startswith("Unterminated"):
            reason += ": the file ends before the JSON does (truncated?)"
        raise ImportRefused(file, f"line {error.lineno}, column {error.colno}", reason) from None
    except RecursionError:
        raise ImportRefused(file, "", "JSON nested too deeply") from None


def component(
    file: str, position: str, fields: dict[str, Any], names: Mapping[str, str] | None = None
) -> Component:
    """A closure component, or the refusal naming its position and the bad field.

    ``names`` maps the model's field names to the file's, for the message (hash → narHash).
    """
    try:
        return Component.model_validate(fields)
    except ValidationError as error:
        raise refusal(file, position, error, names or {}) from None


def refusal(
    file: str, position: str, error: ValidationError, names: Mapping[str, str]
) -> ImportRefused:
    field, reason = describe_error(error.errors(include_url=False)[0])
    field = names.get(field, field)
    where = f"{position}.{field}" if position and field else position or field
    return ImportRefused(file, where, reason)


def record(
    ledger: Ledger,
    file: str,
    builds: Sequence[ImportedBuild],
    *,
    env: str,
    actor: str,
    at: datetime | None = None,
    skipped_components: Sequence[str] = (),
) -> ImportReport:
    """Validate every build as an event, then append the new ones in one transaction.

    ``at`` is when builds happened whose file does not say (default: now).
    """
    default_time = at or datetime.now(UTC)
    events: list[BuildRecorded] = []
    for build in builds:
        try:
            events.append(
                BuildRecorded.model_validate(
                    {
                        "event_id": event_id(env, build.build_id, build.service),
                        "env": env,
                        "actor": actor,
                        "occurred_at": build.occurred_at or default_time,
                        "build_id": build.build_id,
                        "service": build.service,
                        "version": build.version,
                        "artifact": build.artifact,
                        "closure": build.closure,
                    }
                )
            )
        except ValidationError as error:
            raise refusal(file, build.position, error, {}) from None
    stored = ledger.stored(e.event_id for e in events)
    appended = {
        result.event_id: result.position
        for result in ledger.append(
            [e for e in events if e.event_id not in stored], source="import"
        )
    }
    return ImportReport(
        [
            RecordedBuild(
                service=e.service,
                version=e.version,
                build_id=e.build_id,
                artifact=e.artifact,
                paths=len(e.closure),
                event_id=e.event_id,
                position=stored[e.event_id] if e.event_id in stored else appended[e.event_id],
                new=e.event_id not in stored,
            )
            for e in events
        ],
        list(skipped_components),
    )
