"""Advisory files as people download them, read as ``advisory_recorded`` events.

A path is a JSON file (``.json``), a gzipped one (``.json.gz``, as NVD serves its feeds),
a zip archive (``.zip``, as osv.dev serves an ecosystem; its ``*.json`` members are read),
or a folder, read recursively in sorted order (its ``.json``, ``.json.gz`` and ``.zip``
files). A given file is recognised by its first bytes, whatever its name. What a
document holds is told by its content: an object with ``format``/``vulnerabilities`` (NVD
CVE JSON 2.0), an object with ``id``/``modified`` (one OSV record) or a list (OSV
records).

Memory stays bounded whatever the file size: NVD's ``vulnerabilities`` and OSV lists are
streamed with ijson, one record at a time, so a year of NVD (hundreds of MB) costs what
its largest record does. A document is read twice: a first look at its opening keys to
tell what it is, then the records.

Event ids: ``uuid5(EVENT_ID_NAMESPACE, "advisory/{database}/{id}/{modified}/{digest}")``
where the digest is ``ledger.chain.content_digest`` of the event's JSON form without the
envelope (event id, times, actor, source, schema version): the same record imported
again, by anyone, is the same event (stored once), and a record the database changed
without changing ``modified`` is a new fact rather than a clash.
"""

from __future__ import annotations

import gzip
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, cast
from uuid import UUID, uuid5

import ijson  # type: ignore[import-untyped]
import orjson
from pydantic import ValidationError

from ledger.advisories import Content, RecordProblem, nvd, osv
from ledger.chain import content_digest
from ledger.events import AdvisoryRecorded, describe_error, to_json_dict
from ledger.importers.base import EVENT_ID_NAMESPACE, ImportRefused

Progress = Callable[[int], None]
DocumentKind = Literal["nvd", "osv", "osv-list"]

SUFFIXES = (".json", ".json.gz", ".zip")
"""The files of a folder that are read; anything else in it (a README) is left alone."""

_ENVELOPE = ("event_id", "occurred_at", "recorded_at", "actor", "source", "schema_version")
_PLACEHOLDER_ID = "00000000-0000-4000-8000-000000000000"
_NVD_KEYS = frozenset({"vulnerabilities", "resultsPerPage", "startIndex", "totalResults"})
_OSV_KEYS = frozenset(
    {"id", "modified", "schema_version", "published", "withdrawn", "aliases", "affected"}
)
_SBOM_KEYS = frozenset({"bomFormat", "spdxVersion"})
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"
_CHUNK = 64 * 1024
_STREAM_ERRORS = (
    ijson.JSONError,
    UnicodeDecodeError,
    OSError,  # gzip.BadGzipFile too
    EOFError,
    zlib.error,
    zipfile.BadZipFile,  # a member whose CRC does not check out
    NotImplementedError,  # a zip member compressed by a method zipfile cannot undo
)


def total_bytes(path: Path) -> int:
    """What ``progress`` counts up to: the size of PATH, or of the files read in a folder."""
    return sum(_size(file) for file in _files(path))


def read_advisories(
    path: Path, *, actor: str, progress: Progress | None = None
) -> Iterator[AdvisoryRecorded]:
    """Every advisory in PATH (see the module docstring), one event per record, in file
    order. ``progress(n)`` is called with the bytes of PATH consumed so far (compressed
    bytes for ``.gz`` and ``.zip``; for a folder, summed over its files), ending at
    ``total_bytes(path)``. Raises ``ImportRefused`` naming the file, the position (the
    zip member; the record's index, counted from 0 as in the JSON list, and its id) and
    the reason (the field, as the record names it, and what is wrong) on the first bad
    record: events already yielded are the caller's to discard."""
    report = progress or (lambda _: None)
    done = 0
    for file in _files(path):
        size = _size(file)
        yield from _read_file(file, actor, _offset(report, done, size))
        done += size
        report(done)


def _offset(report: Progress, start: int, size: int) -> Progress:
    """Progress within one file of a folder, as progress over the folder."""
    return lambda n: report(start + min(n, size))


def _files(path: Path) -> list[Path]:
    """The files PATH stands for; the refusal if there is nothing there."""
    if path.is_dir():
        return _folder_files(path)
    if not path.exists():
        raise ImportRefused(str(path), "", "no such file or folder")
    return [path]


def _size(file: Path) -> int:
    try:
        return file.stat().st_size
    except OSError as error:
        raise ImportRefused(str(file), "", f"cannot be read ({error.strerror})") from None


def _folder_files(folder: Path) -> list[Path]:
    return sorted(
        (
            file
            for file in folder.rglob("*")
            if file.is_file() and file.name.lower().endswith(SUFFIXES)
        ),
        key=lambda file: file.relative_to(folder).as_posix(),
    )


# --- files and their documents ------------------------------------------------------


class _Counted:
    """A binary stream that reports how far it has been read, scaled to bytes of the file
    (a zip member's decompressed bytes, times its compression ratio)."""

    def __init__(self, stream: IO[bytes], report: Progress, base: int = 0, scale: float = 1):
        self._stream = stream
        self._report = report
        self._base = base
        self._scale = scale
        self._read = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if data:
            self._read += len(data)
            self._report(self._base + int(self._read * self._scale))
        return data


@dataclass(frozen=True)
class _Document:
    """One JSON document to read: a file, a gzipped file or a zip member."""

    file: str
    member: str | None
    open: Callable[[Progress], AbstractContextManager[Any]]


def _read_file(file: Path, actor: str, report: Progress) -> Iterator[AdvisoryRecorded]:
    name = str(file)
    try:
        with file.open("rb") as raw:
            magic = raw.read(4)
    except OSError as error:
        raise ImportRefused(name, "", f"cannot be read ({error.strerror})") from None
    if magic.startswith(_ZIP_MAGIC):
        yield from _read_zip(file, actor, report)
        return
    opener = _open_gzip if magic.startswith(_GZIP_MAGIC) else _open_plain
    yield from _read_document(
        _Document(name, None, lambda counted: opener(file, counted)), actor, report
    )


@contextmanager
def _open_plain(file: Path, report: Progress) -> Iterator[_Counted]:
    with file.open("rb") as raw:
        yield _Counted(raw, report)


@contextmanager
def _open_gzip(file: Path, report: Progress) -> Iterator[gzip.GzipFile]:
    with file.open("rb") as raw:
        counted = cast(IO[bytes], _Counted(raw, report))  # read() is all GzipFile uses
        with gzip.GzipFile(fileobj=counted, mode="rb") as gz:
            yield gz


def _read_zip(file: Path, actor: str, report: Progress) -> Iterator[AdvisoryRecorded]:
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError) as error:
        raise ImportRefused(str(file), "", f"not a readable zip archive ({error})") from None
    with archive:
        members = sorted(
            (info for info in archive.infolist() if not info.is_dir()),
            key=lambda info: info.filename,
        )
        done = 0
        for info in members:
            if not info.filename.lower().endswith(".json"):
                done += info.compress_size
                continue
            scale = info.compress_size / info.file_size if info.file_size else 0.0
            base = done

            @contextmanager
            def member(
                counted: Progress,
                info: zipfile.ZipInfo = info,
                base: int = base,
                scale: float = scale,
            ) -> Iterator[_Counted]:
                with archive.open(info) as stream:
                    yield _Counted(stream, counted, base, scale)

            yield from _read_document(_Document(str(file), info.filename, member), actor, report)
            done += info.compress_size
            report(done)


# --- documents and their records ------------------------------------------------------


def _read_document(document: _Document, actor: str, report: Progress) -> Iterator[AdvisoryRecorded]:
    where = f"member {document.member}, " if document.member else ""
    kind = _kind(document)
    index, record_id = -1, None
    try:
        with ExitStack() as stack:
            stream = stack.enter_context(document.open(report))
            if kind == "nvd":
                records = ijson.items(
                    stream, "vulnerabilities.item", use_float=True, buf_size=_CHUNK
                )
            elif kind == "osv-list":
                records = ijson.items(stream, "item", use_float=True, buf_size=_CHUNK)
            else:
                records = ijson.items(stream, "", use_float=True, buf_size=_CHUNK)
            for index, record in enumerate(records):
                record_id = _record_id(kind, record)
                position = f"{where}record {index}" + (f" ({record_id})" if record_id else "")
                yield _event(document.file, position, kind, record, actor)
    except _STREAM_ERRORS as error:
        after = (
            f"after record {index}" + (f" ({record_id})" if record_id else "")
            if index >= 0
            else "before the first record"
        )
        raise ImportRefused(document.file, where + after, _unreadable(error)) from None


def _kind(document: _Document) -> DocumentKind:
    """What the document holds, from its opening keys (read without reporting progress)."""
    where = f"member {document.member}" if document.member else ""
    try:
        with document.open(lambda _: None) as stream:
            events = ijson.parse(stream, use_float=True, buf_size=_CHUNK)
            for prefix, event, value in events:
                if prefix == "" and event == "start_array":
                    return "osv-list"
                if prefix != "" or event != "map_key":
                    continue
                if value == "format":
                    _, _, given = next(events)
                    if given != nvd.FORMAT:
                        raise ImportRefused(
                            document.file,
                            where,
                            f"format {given!r} is not NVD CVE JSON ({nvd.FORMAT!r})",
                        )
                    return "nvd"
                if value in _NVD_KEYS:
                    return "nvd"
                if value in _OSV_KEYS:
                    return "osv"
                if value in _SBOM_KEYS:
                    raise ImportRefused(
                        document.file, where, "an SBOM, not an advisory file (NVD CVE or OSV)"
                    )
    except _STREAM_ERRORS as error:
        raise ImportRefused(document.file, where, _unreadable(error)) from None
    raise ImportRefused(
        document.file,
        where,
        "neither NVD CVE JSON 2.0 (an object with format NVD_CVE and vulnerabilities) nor "
        "OSV (a record with id and modified, or a list of them)",
    )


def _unreadable(error: BaseException) -> str:
    said = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, UnicodeDecodeError):
        return "not valid UTF-8"
    if isinstance(error, ijson.JSONError):
        return f"not valid JSON ({said}); is the file complete?"
    return f"cannot be read ({said})"


def _record_id(kind: DocumentKind, record: Any) -> str | None:
    holder = record.get("cve") if kind == "nvd" and isinstance(record, dict) else record
    value = holder.get("id") if isinstance(holder, dict) else None
    return value if isinstance(value, str) else None


# --- records and their events -------------------------------------------------------


def _event(
    file: str, position: str, kind: DocumentKind, record: Any, actor: str
) -> AdvisoryRecorded:
    try:
        read = nvd.content(record) if kind == "nvd" else osv.content(record)
    except RecordProblem as problem:
        raise ImportRefused(file, position, str(problem)) from None
    return advisory_event(read, actor=actor, file=file, position=position)


def advisory_event(read: Content, *, actor: str, file: str, position: str) -> AdvisoryRecorded:
    """The event of one record's content, with its id (see the module docstring); a field
    the event model refuses is named as the record names it."""
    fields = {
        **read.fields,
        "kind": "advisory_recorded",
        "event_id": _PLACEHOLDER_ID,
        "env": "*",
        "occurred_at": read.fields.get("modified"),
        "actor": actor,
        "source": "import",
    }
    try:
        event = AdvisoryRecorded.model_validate_json(orjson.dumps(fields))
    except ValidationError as error:
        path, reason = describe_error(error.errors(include_url=False)[0])
        raise ImportRefused(file, position, f"{_source(read, path)}: {reason}") from None
    return event.model_copy(update={"event_id": event_id_of(event)})


def _source(read: Content, path: str) -> str:
    """The record's name for the event field at PATH: the nearest field the parser said
    it filled from, with the event's own path when the two differ."""
    if path in ("occurred_at",):
        path = "modified"
    probe = path
    while probe:
        if probe in read.sources:
            source = read.sources[probe]
            return source if probe == path else f"{source} (the event's {path})"
        cut = max(probe.rfind("."), probe.rfind("["))
        probe = probe[:cut] if cut > 0 else ""
    return path


def event_id_of(event: AdvisoryRecorded) -> UUID:
    """The id ``read_advisories`` gives EVENT's content (for tests and re-checks)."""
    form = to_json_dict(event)
    digest = content_digest({k: v for k, v in form.items() if k not in _ENVELOPE})
    name = f"advisory/{event.database}/{event.advisory_id}/{form['modified']}/{digest}"
    return uuid5(EVENT_ID_NAMESPACE, name)
