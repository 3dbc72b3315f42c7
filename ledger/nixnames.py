"""Nix package identity: a store path's name split into package name, version and output.

A multi-output derivation named ``openssl-3.0.13`` with outputs out, bin, dev and man
puts four paths in the store: ``…-openssl-3.0.13``, ``…-openssl-3.0.13-bin``,
``…-openssl-3.0.13-dev`` and ``…-openssl-3.0.13-man`` (the output's name is appended to
the derivation's, except for ``out``; ``outputPathName`` in Nix's
``src/libstore/derivations.cc``). They are one package version, openssl 3.0.13, while
``builtins.parseDrvName`` of the path names puts the output into the version
(``3.0.13-dev``). When the deriver is known (``nix path-info`` prints it) the
derivation's own name settles it; without one the output is recognised by name.
"""

from __future__ import annotations

from ledger.errors import InvalidInput
from ledger.importers.storepath import parse_store_path, split_name

DRV_SUFFIX = ".drv"

OUTPUT_NAMES: frozenset[str] = frozenset(
    {
        # nixpkgs' multiple-output framework (pkgs/build-support/setup-hooks/
        # multiple-outputs.sh and doc/stdenv/multiple-output.chapter.md): outputDev,
        # outputBin, outputLib, outputDoc, outputDevdoc, outputMan, outputDevman,
        # outputInfo, and the default out.
        "out",
        "bin",
        "dev",
        "lib",
        "doc",
        "devdoc",
        "man",
        "devman",
        "info",
        # separateDebugInfo = true
        "debug",
        # static libraries (zlib, libxml2, …)
        "static",
        # Python bindings (libxml2 and libxslt call it py) and built wheels (dist)
        "python",
        "py",
        "dist",
        # gcc's runtime library, terminal descriptions (kitty, foot, …), util-linux's
        # split-out tools
        "libgcc",
        "terminfo",
        "login",
        "mount",
        "swap",
    }
)
"""Output names nixpkgs uses, recognised at the end of a path name without a deriver.

Not every output name: any name is allowed, and a path name ending in one of these can
also be a one-output package's version (``foo-1.0-dev``). Only the deriver is certain.
"""


class NotAnOutput(InvalidInput):
    """A store path's name does not fit the derivation said to have produced it."""


def parse_drv_name(name: str) -> tuple[str, str]:
    """Package name and version, exactly as Nix's ``builtins.parseDrvName``.

    The version starts after the first dash *not* followed by a letter (``DrvName`` in
    Nix's ``src/libexpr/names.cc``): ``glibc-2.38-44`` is glibc 2.38-44, ``bash--1-2``
    is bash -1-2, ``api-config`` has no version.
    """
    return split_name(name)


def derivation_name(deriver: str) -> str:
    """The name of a ``.drv`` store path without ``.drv``: what the derivation is called.

    Raises ``NotAStorePath`` for a string that is no store path, ``NotAnOutput`` for a
    store path that is no derivation.
    """
    path = parse_store_path(deriver)
    full_name = deriver.rsplit("/", 1)[1][len(path.hash) + 1 :]
    if not full_name.endswith(DRV_SUFFIX) or full_name == DRV_SUFFIX:
        raise NotAnOutput(f"{deriver} is not a derivation (a store path ending in {DRV_SUFFIX})")
    return full_name.removesuffix(DRV_SUFFIX)


def split_output(path_name: str, *, deriver_name: str | None) -> tuple[str, str, str]:
    """Package name, version and output of a store path's name (the part after the hash).

    With ``deriver_name`` (the derivation's name: ``openssl-3.0.13`` for
    ``…-openssl-3.0.13.drv``) it is certain: the derivation's name is the package
    name and version, and the output is the rest of the path's name (``dev`` for
    ``openssl-3.0.13-dev``), or ``out`` when the names are the same; ``NotAnOutput``
    when the path's name is neither. Without, the path's name is split as
    ``parse_drv_name`` does, and a version ending in ``-`` and one of
    ``OUTPUT_NAMES`` gives that output; anything else is ``out``.
    """
    if deriver_name is not None:
        if path_name == deriver_name:
            return *parse_drv_name(deriver_name), "out"
        prefix = f"{deriver_name}-"
        output = path_name.removeprefix(prefix)
        # out is the one output whose name is not appended (outputPathName).
        if not path_name.startswith(prefix) or output in ("", "out"):
            raise NotAnOutput(
                f"{path_name!r} is not an output of a derivation named {deriver_name!r} "
                f"(its outputs are named {deriver_name} and {deriver_name}-<output>)"
            )
        return *parse_drv_name(deriver_name), output
    _, version = parse_drv_name(path_name)
    _, dash, output = version.rpartition("-")
    if dash and output in OUTPUT_NAMES:
        # The output is part of the version, so what is left is the derivation's name.
        return *parse_drv_name(path_name[: -len(output) - 1]), output
    return *parse_drv_name(path_name), "out"
