"""Manifest files: the desired (or reported) placements that `deploy` and `report-host`
read.

A manifest file is JSON: either a list of entries, or an object with a ``manifest``
list — so the output of ``ledger generation N --json`` is itself a manifest file. Each
entry is a :class:`~ledger.events.ManifestEntry` (host, service, build_id, optional
artifact and depends_on):

    [{"host": "web-001", "service": "api", "build_id": "0c6kzph7…",
      "artifact": "/nix/store/0c6kzph7…-api-2.4.1", "depends_on": ["auth"]}]

A file written for one host (``report-host``) may leave ``host`` out of its entries.
A placement (host and service) may be listed once. Anything wrong is refused with the
file, the entry and the field: nothing is recorded from a file that is not entirely
right.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from ledger.errors import InvalidInput
from ledger.events import ManifestEntry, describe_error, duplicate_key

MAX_BYTES = 256 * 1024 * 1024
"""A manifest of 1,000,000 placements is about 200 MB; anything larger is refused unread."""


class ManifestRefused(InvalidInput):
    """A manifest file was refused; the message names the file, entry and field."""


def read_manifest(path: str, *, host: str | None = None) -> tuple[ManifestEntry, ...]:
    """The entries of the manifest file at ``path`` (``-`` reads stdin).

    With ``host``, entries may leave out their host (it is filled in) and any entry that
    names another host is refused.
    """
    name = "<stdin>" if path == "-" else path
    raw = _read(path, name)
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise ManifestRefused(
            f"{name}: not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    if (twice := duplicate_key(raw)) is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in twice[:-1])
        raise ManifestRefused(
            f"{name}: the key {twice[-1]!r} is given twice in one object (at "
            f"{where.lstrip('.') or 'the top level'}): a reader could take either copy"
        )
    entries = document.get("manifest") if isinstance(document, dict) else document
    if not isinstance(entries, list):
        raise ManifestRefused(
            f"{name}: expected a JSON list of manifest entries, or an object with a "
            "'manifest' list (as `ledger generation N --json` prints)"
        )
    manifest = tuple(_entry(name, index, item, host) for index, item in enumerate(entries))
    first: dict[tuple[str, str], int] = {}
    for index, entry in enumerate(manifest):
        earlier = first.setdefault((entry.host, entry.service), index)
        if earlier != index:
            raise ManifestRefused(
                f"{name}: manifest[{index}] places {entry.service} on {entry.host} again "
                f"(manifest[{earlier}] did)"
            )
    return manifest


def _read(path: str, name: str) -> bytes:
    try:
        if path == "-":
            raw = sys.stdin.buffer.read(MAX_BYTES + 1)
        else:
            with Path(path).open("rb") as file:
                raw = file.read(MAX_BYTES + 1)
    except OSError as error:
        raise ManifestRefused(f"{name}: cannot read it: {error.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise ManifestRefused(f"{name}: larger than {MAX_BYTES // 2**20} MiB")
    return raw


def _entry(name: str, index: int, item: Any, host: str | None) -> ManifestEntry:
    where = f"{name}: manifest[{index}]"
    if not isinstance(item, dict):
        raise ManifestRefused(f"{where}: expected an object with host, service and build_id")
    if host is not None:
        if item.get("host", host) != host:
            raise ManifestRefused(
                f"{where}.host: names host {item['host']!r}, not the reporting host {host!r}"
            )
        item = {**item, "host": host}
    try:
        # JSON mode: the models are strict, and JSON arrays are their tuples.
        return ManifestEntry.model_validate_json(orjson.dumps(item))
    except ValidationError as error:
        field, reason = describe_error(error.errors(include_url=False)[0])
        raise ManifestRefused(f"{where}{'.' + field if field else ''}: {reason}") from None
