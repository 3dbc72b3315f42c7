"""Nix store paths: ``/nix/store/<hash>-<name>`` split into hash, name and version."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ledger.errors import InvalidInput

STORE_DIR = "/nix/store"
HASH_LENGTH = 32

# Nix's base32 alphabet leaves out e, o, u and t; a name is at most 211 characters of
# letters, digits and + - . _ ? = (checkName and StorePath in Nix's src/libstore/path.cc).
_STORE_PATH = re.compile(
    rf"{re.escape(STORE_DIR)}/([0-9a-df-np-sv-z]{{{HASH_LENGTH}}})-([A-Za-z0-9+\-._?=]{{1,211}})"
)
# Nix's DrvName (src/libexpr/names.cc, also builtins.parseDrvName): the name is
# everything up to the first dash *not* followed by a letter, the version the rest.
# So the dash before a digit splits (hello-2.12.1), and so does one before any other
# non-letter (bash--1-2 is bash and -1-2); a dash at the very end does not.
_VERSION_DASH = re.compile(r"-[^A-Za-z]")


class NotAStorePath(InvalidInput):
    """A string that should be a Nix store path is not one."""


@dataclass(frozen=True)
class StorePath:
    path: str
    hash: str
    """The hash part: 32 characters of Nix base32, what names the path's inputs."""
    name: str
    version: str


def split_name(name: str) -> tuple[str, str]:
    """Name and version of a store path's name part, exactly as Nix splits them."""
    dash = _VERSION_DASH.search(name)
    if dash is None:
        return name, ""
    return name[: dash.start()], name[dash.start() + 1 :]


def parse_store_path(text: str) -> StorePath:
    """The parts of a store path; ``NotAStorePath`` says why ``text`` is not one."""
    match = _STORE_PATH.fullmatch(text)
    if match is None:
        raise NotAStorePath(
            f"{text!r} is not a Nix store path ({STORE_DIR}/<32-character hash>-<name>, "
            "the name made of letters, digits and + - . _ ? =)"
        )
    hash_part, full_name = match.groups()
    name, version = split_name(full_name)
    return StorePath(text, hash_part, name, version)
