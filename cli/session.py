"""What every command is handed: where the ledger and its views are, and whether to
show tracebacks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ledger.application import Ledger
    from projections.runner import Views

CATCH_UP_BAR = 5_000
"""Show a progress bar when a query first has to bring the views this far forward."""


# The ledger and the views are imported when a command opens them, not when `ledger`
# starts: `ledger --help`, `--version` and `X --help` need neither.
@dataclass
class Session:
    url: str
    debug: bool
    views_url: str | None = None

    def open(self, *, create: bool = False) -> Ledger:
        from ledger.application import Ledger
        from ledger.store import locate

        return Ledger(locate(self.url), create=create)

    def open_views(self, ledger: Ledger | None = None) -> Views:
        from ledger.store import locate
        from projections.runner import Views

        ledger = ledger or self.open()
        return Views(ledger, locate(self.views_url) if self.views_url else None)

    def views(self) -> Views:
        """The views, ready to answer: brought up to date first when they are embedded
        (SQLite); otherwise as the runner (`ledger project --follow`) left them, with a
        warning when they are behind."""
        from cli import output

        views = self.open_views()
        if views.embedded:
            lag = views.lag()
            if lag < CATCH_UP_BAR:
                views.catch_up()
            else:
                with output.progress_bar("updating views", lag, unit="events") as advance:
                    views.catch_up(advance)
        elif (lag := views.lag()) > 0:
            output.error_console().print(
                f"[yellow]note[/yellow]: the views are {lag} events behind the ledger; "
                "is `ledger project --follow` running?"
            )
        return views


pass_session = click.make_pass_decorator(Session)
