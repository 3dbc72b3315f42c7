"""What every command is handed: where the ledger is, and whether to show tracebacks."""

from __future__ import annotations

from dataclasses import dataclass

import click

from ledger.application import Ledger
from ledger.store import locate


@dataclass
class Session:
    url: str
    debug: bool

    def open(self, *, create: bool = False) -> Ledger:
        return Ledger(locate(self.url), create=create)


pass_session = click.make_pass_decorator(Session)
