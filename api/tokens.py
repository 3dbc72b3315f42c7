"""API tokens (``ledger token create|list|revoke``): a name, a role, and the SHA-256 of
the secret, kept in the ledger's database beside the alert tables.

A token is 32 random bytes (``secrets.token_urlsafe``), shown once when it is created
and stored only as its hash: with that much entropy a plain SHA-256 cannot be guessed
back, and a lookup by hash is one indexed query per request. Tokens are revoked, never
deleted, so the audit trail keeps who had access when.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal, get_args

from collectors.alert_tables import iso
from ledger.errors import InvalidInput
from projections.store import AnyViewRecorder

Role = Literal["reader", "writer", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
RANK = {role: rank for rank, role in enumerate(ROLES)}
"""Each role may do what the ones before it may: a writer reads, an admin writes."""
PREFIX = "dl_"

TABLES = (
    "CREATE TABLE IF NOT EXISTS api_tokens ("
    "name TEXT PRIMARY KEY, role TEXT NOT NULL, secret_hash TEXT NOT NULL UNIQUE, "
    "created_at DOUBLE PRECISION NOT NULL, created_by TEXT NOT NULL, "
    "revoked_at DOUBLE PRECISION, revoked_by TEXT)",
)


@dataclass(frozen=True)
class Token:
    name: str
    role: Role
    created_at: float
    created_by: str
    revoked_at: float | None = None
    revoked_by: str | None = None

    def may(self, role: Role) -> bool:
        """Whether this token's role includes ``role``."""
        return RANK[self.role] >= RANK[role]

    def row(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "created_at": iso(self.created_at),
            "created_by": self.created_by,
            "revoked_at": None if self.revoked_at is None else iso(self.revoked_at),
            "revoked_by": self.revoked_by,
        }


def create_tables(store: AnyViewRecorder) -> None:
    with store.transaction(commit=True) as tx:
        for statement in TABLES:
            tx.execute(statement)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(store: AnyViewRecorder, name: str, role: str, *, by: str) -> str:
    """A new token's secret (shown once; only its hash is kept)."""
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    if not name or len(name) > 100 or not name.isprintable() or name != name.strip():
        raise InvalidInput("a token name is 1 to 100 printable characters, no outer spaces")
    secret = PREFIX + secrets.token_urlsafe(32)
    with store.transaction(commit=True) as tx:
        if tx.query("SELECT name FROM api_tokens WHERE name = ?", (name,)):
            raise InvalidInput(
                f"there is a token called {name!r} already (revoked ones keep their "
                "name): choose another name"
            )
        tx.execute(
            "INSERT INTO api_tokens (name, role, secret_hash, created_at, created_by) "
            "VALUES (?, ?, ?, ?, ?)",
            (name, role, digest(secret), time.time(), by),
        )
    return secret


def tokens(store: AnyViewRecorder, *, revoked: bool = False) -> list[Token]:
    clause = "" if revoked else "WHERE revoked_at IS NULL"
    with store.transaction(commit=False) as tx:
        rows = tx.query(
            "SELECT name, role, created_at, created_by, revoked_at, revoked_by "
            f"FROM api_tokens {clause} ORDER BY created_at, name"
        )
    return [Token(**row) for row in rows]


def revoke_token(store: AnyViewRecorder, name: str, *, by: str) -> Token:
    with store.transaction(commit=True) as tx:
        rows = tx.query(
            "SELECT name, role, created_at, created_by, revoked_at, revoked_by "
            "FROM api_tokens WHERE name = ?",
            (name,),
        )
        if not rows:
            raise InvalidInput(f"no token called {name!r}: `ledger token list` shows them")
        token = Token(**rows[0])
        if token.revoked_at is not None:
            raise InvalidInput(f"token {name!r} is revoked already")
        now = time.time()
        tx.execute(
            "UPDATE api_tokens SET revoked_at = ?, revoked_by = ? WHERE name = ?",
            (now, by, name),
        )
    return Token(**{**rows[0], "revoked_at": now, "revoked_by": by})


def authenticate(store: AnyViewRecorder, secret: str) -> Token | None:
    """The live token with this secret, or None."""
    if not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    with store.transaction(commit=False) as tx:
        rows = tx.query(
            "SELECT name, role, created_at, created_by, revoked_at, revoked_by "
            "FROM api_tokens WHERE secret_hash = ? AND revoked_at IS NULL",
            (digest(secret),),
        )
    return Token(**rows[0]) if rows else None
