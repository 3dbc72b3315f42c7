"""ledger serve (the HTTP API and dashboard) and ledger token (who may use it)."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import threading
from pathlib import Path

import click

from api.tokens import ROLES, create_tables, create_token, revoke_token, tokens
from cli import output
from cli.collect import log_to_stderr
from cli.params import default_actor
from cli.session import Session, pass_session

log = logging.getLogger("ledger.serve")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option(
    "--allow-anonymous-read", is_flag=True,
    help="Let requests without a token read (never write). Off: every endpoint needs one.",
)  # fmt: skip
@click.option(
    "--max-body", type=click.IntRange(1024), default=16 * 1024 * 1024, show_default=True,
    help="Largest request body accepted, in bytes (POST /api/events).",
)  # fmt: skip
@click.option(
    "--no-project", is_flag=True,
    help="Do not bring the views up to date here (`ledger project --follow` runs elsewhere).",
)  # fmt: skip
@click.option(
    "--threads", type=click.IntRange(1, 256), default=8, show_default=True,
    help="Requests answered at once (the thread pool the queries run in; on PostgreSQL "
    "keep it within the connection pool, 15).",
)  # fmt: skip
@click.option(
    "--cache-answers", type=click.IntRange(0), default=1024, show_default=True,
    help="Read answers kept per views position (0: keep none; ETags still answer 304).",
)  # fmt: skip
@click.option(
    "--cache-mib", type=click.IntRange(1), default=64, show_default=True,
    help="Memory the kept answers may take, in MiB.",
)  # fmt: skip
@click.option(
    "--cpe-map", type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="LEDGER_CPE_MAP", show_envvar=True,
    help="NVD products named otherwise than their packages (see `ledger exposure --help`).",
)  # fmt: skip
@pass_session
def serve(
    session: Session,
    /,
    host: str,
    port: int,
    allow_anonymous_read: bool,
    max_body: int,
    no_project: bool,
    threads: int,
    cache_answers: int,
    cache_mib: int,
    cpe_map: Path | None,
) -> None:
    """Serve the HTTP API and the live dashboard.

    Every /api endpoint needs a bearer token (`ledger token create`) unless
    --allow-anonymous-read is given, which lets requests without one read. The
    dashboard is at /, the OpenAPI document at /openapi.json, interactive docs at
    /docs. Stop with Ctrl-C. See docs/api.md.

    \b
    Example:
      ledger token create dashboards --role reader
      ledger --ledger postgresql://ledger@db/ledger serve --host 0.0.0.0 --port 8080
    """
    import anyio.to_thread
    import uvicorn

    from api.app import ServerSettings, create_app

    log_to_stderr(session.debug)
    # The address is taken here, before anything is announced: a port in use is an
    # error naming it, and "serving" is logged only once the server listens.
    sock = _bind(host, port)
    try:
        views = session.views()
    except BaseException:
        sock.close()
        raise
    create_tables(views.recorder)
    settings = ServerSettings(
        allow_anonymous_read=allow_anonymous_read, max_body_bytes=max_body,
        project=not no_project, cache_entries=cache_answers, cache_bytes=cache_mib * 2**20,
        cpe_map=cpe_map,
    )  # fmt: skip
    app = create_app(views, settings)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False,
        limit_concurrency=1000, timeout_graceful_shutdown=5,
    )  # fmt: skip
    listening = sock.getsockname()[1]
    url = f"http://{f'[{host}]' if ':' in host else host}:{listening}/"

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                log.info(
                    "serving %s on %s%s", views.ledger.location.display, url,
                    " (anonymous reads allowed)" if allow_anonymous_read else "",
                )  # fmt: skip

    server = Server(config)

    async def main() -> None:
        # The queries run in the thread pool: this many at once.
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        await server.serve(sockets=[sock])

    def stop(signum: int, frame: object) -> None:
        server.should_exit = True  # finish the requests in hand, then return

    # The server runs in a thread, so uvicorn leaves the signals to us (it would re-raise
    # them after its shutdown, and the command would not exit 0 after a clean stop).
    for name in ("SIGINT", "SIGTERM"):
        signal.signal(getattr(signal, name), stop)
    thread = threading.Thread(target=lambda: asyncio.run(main()), name="ledger-serve")
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.5)
    finally:
        sock.close()
        views.recorder.datastore.close()
        views.ledger.close()
    if not server.started:
        raise click.ClickException(f"could not serve on {host}:{port}; see the log above")
    log.info("stopped")


def _bind(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (as uvicorn binds: address reuse on, so a restart
    does not wait for old connections), or an error that says why not."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as error:
        raise click.ClickException(f"cannot listen on {where}: {error.strerror or error}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as error:
        sock.close()
        cause = error.strerror or str(error)
        if error.errno == errno.EADDRINUSE:
            cause = "address already in use (another server listens there: stop it or use --port)"
        raise click.ClickException(f"cannot listen on {where}: {cause}") from None
    return sock


@click.group()
def token() -> None:
    """Create, list and revoke the API's bearer tokens.

    Roles: reader (dashboards, auditors: read only), writer (agents, CI: may also append
    events), admin (may also tag generations and plan rollbacks). The secret is shown
    once, when created; only its SHA-256 is kept, and it is never logged.

    \b
    Example:
      ledger token create grafana --role reader
      ledger token list
      ledger token revoke grafana
    """


@token.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="reader", show_default=True)
@click.option("--by", default=default_actor, show_default="user@host", help="Who creates it.")
@click.option("--json", "as_json", is_flag=True, help="Print the token as JSON.")
@pass_session
def token_create(session: Session, name: str, role: str, by: str, as_json: bool) -> None:
    """Create a token called NAME; prints its secret once.

    \b
    Example:
      ledger token create ci-pipeline --role writer
    """
    store = session.open_views().recorder
    create_tables(store)
    secret = create_token(store, name, role, by=by)
    if as_json:
        output.print_json({"name": name, "role": role, "token": secret})
        return
    output.console().print(
        f"Created {role} token {output.escape(name)}. Its secret, shown only now:\n{secret}",
        soft_wrap=True,
    )


@token.command("list")
@click.option("--all", "everything", is_flag=True, help="Include revoked tokens.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@pass_session
def token_list(session: Session, everything: bool, as_json: bool) -> None:
    """List the tokens (never their secrets).

    \b
    Example:
      ledger token list --all
    """
    store = session.open_views().recorder
    create_tables(store)
    rows = [t.row() for t in tokens(store, revoked=everything)]
    columns = [("name", "name"), ("role", "role"), ("created_at", "created (UTC)"),
               ("created_by", "by")]  # fmt: skip
    if everything:
        columns += [("revoked_at", "revoked (UTC)"), ("revoked_by", "revoked by")]
    output.answer(
        rows, columns, as_json=as_json,
        empty="No tokens yet: `ledger token create NAME --role reader`.",
    )  # fmt: skip


@token.command("revoke")
@click.argument("name")
@click.option("--by", default=default_actor, show_default="user@host", help="Who revokes it.")
@pass_session
def token_revoke(session: Session, name: str, by: str) -> None:
    """Revoke the token NAME: the server refuses it within 5 seconds.

    \b
    Example:
      ledger token revoke grafana
    """
    store = session.open_views().recorder
    create_tables(store)
    revoked = revoke_token(store, name, by=by)
    output.console().print(f"Revoked {revoked.role} token {output.escape(name)}.")
