"""A Riemann stand-in for the tests: a TCP server speaking Riemann's protocol.

No Riemann server can be installed here, so the tests run this receiver: each message
is a 4-byte big-endian length and a protobuf ``Msg``, decoded with the classes
riemann-client ships, and answered with ``Msg(ok=True)`` — as Riemann's TCP server
does. It records every event it receives (with the time its message arrived), can be
stopped and started again on the same port, can speak TLS, and can be told to
misbehave:

- ``"error"``: answer ``ok=False`` with an error, recording nothing;
- ``"drop"``: record the events, then close the connection without answering (Riemann
  got them, the client never hears so);
- ``"hang"``: record the events and never answer.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import ssl
import struct
import subprocess
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

with warnings.catch_warnings():  # its generated module uses deprecated protobuf calls
    warnings.simplefilter("ignore", DeprecationWarning)
    from riemann_client import riemann_pb2  # type: ignore[import-untyped]

Mode = Literal["ok", "error", "drop", "hang"]
Event = Any  # riemann_pb2.Event


@dataclass(frozen=True)
class Arrival:
    at: float  # time.time() when the message holding the event had arrived
    event: Any  # the event, or what ``record`` kept of it


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    receiver: RiemannReceiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away, a failed TLS handshake: part of the tests


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        receiver = self.server.receiver
        conn: socket.socket = self.request
        if receiver.tls is not None:
            conn = receiver.tls.wrap_socket(conn, server_side=True)
        receiver.opened(conn)
        try:
            while (body := _read_frame(conn)) is not None:
                if not receiver.answer(conn, body, time.time()):
                    return
        finally:
            receiver.closed(conn)


def _read(conn: socket.socket, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        try:
            chunk = conn.recv(size - len(data))
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _read_frame(conn: socket.socket) -> bytes | None:
    """One message's bytes: a 4-byte big-endian length, then that many bytes."""
    header = _read(conn, 4)
    if header is None:
        return None
    (length,) = struct.unpack("!I", header)
    return _read(conn, length)


def count_events(body: bytes) -> int:
    """The events in an encoded ``Msg`` (field 6), counted from the wire format
    without decoding them."""
    count, at, end = 0, 0, len(body)
    while at < end:
        key, at = _varint(body, at)
        wire = key & 7
        if wire == 0:
            _, at = _varint(body, at)
        elif wire == 2:
            length, at = _varint(body, at)
            at += length
        elif wire in (1, 5):
            at += 8 if wire == 1 else 4
        else:
            raise ValueError(f"wire type {wire} is not in Riemann's protocol")
        count += key >> 3 == 6
    return count


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


class RiemannReceiver:
    """Listens on 127.0.0.1 (a free port unless one is given) once started.

    ``record``: what to keep of each event (the event itself by default).
    ``count_only``: decode nothing, keep nothing, only count the events (for
    benchmarks, where decoding with the pure-Python protobuf would be the bottleneck).
    """

    def __init__(
        self,
        port: int = 0,
        *,
        tls: ssl.SSLContext | None = None,
        record: Callable[[Event], Any] | None = None,
        count_only: bool = False,
    ) -> None:
        self.port = port
        self.tls = tls
        self.mode: Mode = "ok"
        self.record = record
        self.count_only = count_only
        self.messages = 0
        self._counted = 0
        self._arrivals: list[Arrival] = []
        self._changed = threading.Condition()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> RiemannReceiver:
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.receiver = self
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening and close every connection, as a Riemann that went down."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        with self._changed:
            connections, self._connections = list(self._connections), set()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    # --- what arrived ---------------------------------------------------------------

    def arrivals(self) -> list[Arrival]:
        with self._changed:
            return list(self._arrivals)

    def count(self) -> int:
        with self._changed:
            return self._counted + len(self._arrivals)

    def events(self) -> list[Any]:
        return [a.event for a in self.arrivals()]

    def wait_for(self, count: int, timeout: float = 60.0) -> list[Any]:
        """The events, once at least ``count`` have arrived; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while (arrived := self._counted + len(self._arrivals)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{arrived} of {count} events arrived in {timeout} s")
                self._changed.wait(left)
            return [a.event for a in self._arrivals]

    def clear(self) -> None:
        with self._changed:
            self._arrivals.clear()
            self._counted = 0

    # --- called by the connections ----------------------------------------------------

    def opened(self, conn: socket.socket) -> None:
        with self._changed:
            self._connections.add(conn)

    def closed(self, conn: socket.socket) -> None:
        with self._changed:
            self._connections.discard(conn)
        conn.close()

    def answer(self, conn: socket.socket, body: bytes, at: float) -> bool:
        """Record and answer one message that arrived ``at``; whether to keep the
        connection open."""
        mode = self.mode
        if mode == "error":
            self._reply(conn, ok=False, error="the receiver was told to refuse")
            return True
        arrivals: list[Arrival] = []
        counted = 0
        if self.count_only:
            counted = count_events(body)
        else:
            message = riemann_pb2.Msg()
            message.ParseFromString(body)
            keep = self.record
            arrivals = [Arrival(at, keep(e) if keep else e) for e in message.events]
        with self._changed:
            self.messages += 1
            self._counted += counted
            self._arrivals.extend(arrivals)
            self._changed.notify_all()
        if mode == "drop":
            return False
        if mode == "hang":
            while _read(conn, 1) is not None:  # until the client gives up
                pass
            return False
        self._reply(conn, ok=True)
        return True

    @staticmethod
    def _reply(conn: socket.socket, *, ok: bool, error: str = "") -> None:
        reply = riemann_pb2.Msg()
        reply.ok = ok
        if error:
            reply.error = error
        data = reply.SerializeToString()
        conn.sendall(struct.pack("!I", len(data)) + data)


# --- TLS --------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all PEM."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def server_context(self, *, require_client_cert: bool = True) -> ssl.SSLContext:
        """What a Riemann TLS listener holds: its certificate, and the CA that client
        certificates must be signed by."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_cert, self.server_key)
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.ca)
        return context


def make_certificates(folder: Path, name: str = "test") -> Certificates:
    """A fresh CA and certificates signed by it, made with the ``openssl`` command."""
    folder.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str | Path) -> None:
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)

    def key_and_request(stem: str, subject: str) -> None:
        openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", folder / f"{stem}.key", "-out", folder / f"{stem}.csr",
                "-subj", subject)  # fmt: skip

    def sign(stem: str, extensions: str) -> None:
        (folder / f"{stem}.ext").write_text(extensions)
        openssl("x509", "-req", "-in", folder / f"{stem}.csr", "-CA", folder / "ca.pem",
                "-CAkey", folder / "ca.key", "-CAcreateserial", "-days", "2",
                "-out", folder / f"{stem}.pem", "-extfile", folder / f"{stem}.ext")  # fmt: skip

    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", folder / "ca.key", "-out", folder / "ca.pem", "-days", "2",
            "-subj", f"/CN={name} CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    key_and_request("server", "/CN=riemann")
    sign("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    key_and_request("client", "/CN=ledger-collector")
    sign("client", "extendedKeyUsage=clientAuth\n")
    return Certificates(
        folder / "ca.pem",
        folder / "server.pem",
        folder / "server.key",
        folder / "client.pem",
        folder / "client.key",
    )


# --- for the tests ------------------------------------------------------------------


def attributes(event: Event) -> dict[str, str]:
    return {a.key: a.value for a in event.attributes}


@pytest.fixture(name="riemann")
def riemann_fixture() -> Iterator[RiemannReceiver]:
    """A receiver speaking Riemann's protocol, started for one test."""
    receiver = RiemannReceiver().start()
    yield receiver
    receiver.stop()
