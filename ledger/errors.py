"""The ledger's exceptions. The library raises these; only ``cli/`` prints them."""

from __future__ import annotations


class LedgerError(Exception):
    """Base class of every error the ledger raises on purpose."""


class InvalidInput(LedgerError):
    """Input was refused: nothing was stored."""


class EventConflict(InvalidInput):
    """An event contradicts what is stored (same event_id, other content; a taken number)."""


class StoreNotInitialised(LedgerError):
    """The store has no ledger tables yet."""


class StoreUnavailable(LedgerError):
    """The store could not be reached or answered with an error."""


class UnknownName(InvalidInput):
    """A question names something the ledger has never seen: an environment, a package."""
