"""Package identity: which ecosystem a component belongs to, and how its name is compared.

An ecosystem is a package URL (purl) type in lower case (``pypi``, ``deb``, ``npm``,
``maven``, …), or ``nix`` for a component built by Nix: a component with a Nix store path
is ``nix`` whatever its purl says, since its version is the Nix package's; a component
with neither a store path nor a readable purl is ``generic``.

Each ecosystem compares names its own way (``normalise_name``), following the type
definitions of the purl specification (github.com/package-url/purl-spec, ``types/``):

- ``pypi``: PEP 503, as pip does: lower case, and runs of ``-``, ``_`` and ``.`` are one
  ``-`` (``Foo_Bar`` and ``foo.bar`` are ``foo-bar``);
- ``pub``: lower case, anything but ``a-z`` and ``0-9`` becomes ``_``;
- ``hackage``: case-sensitive, ``_`` becomes ``-`` (kebab-case);
- lower case, as the spec marks them not case-sensitive: ``alpm``, ``apk``, ``bitbucket``,
  ``bitnami``, ``brew``, ``chrome-extension``, ``composer``, ``deb``, ``github``, ``hex``,
  ``luarocks``, ``oci``, ``otp``, ``vscode-extension``; and ``nuget``, which the spec
  marks case-sensitive while noting that NuGet ids are case-insensitive, as NuGet
  compares them;
- every other ecosystem keeps names as written: ``nix`` (Nix names are case-sensitive),
  ``npm`` (mixed-case names from before 2015 are distinct packages), ``cargo``, ``gem``,
  ``maven``, ``golang`` (module paths are case-sensitive, whatever older purl texts say),
  ``rpm``, ``generic``, ….

``match_name`` is the one string a component is looked up by. Where an ecosystem's own
tools name a package with its namespace, the namespace is part of it, written the
ecosystem's way: npm ``@scope/name``, Maven ``group:artifact``, Go's module path
``github.com/owner/repo``, ``vendor/name`` for Composer, ``owner/name`` for GitHub,
Bitbucket, Hugging Face and Swift, ``publisher.name`` for VS Code extensions. Elsewhere
the namespace is a distribution or vendor (Debian's ``debian``, RPM's ``fedora``,
Docker's registry path), not part of the name, and is left out: ``pkg:deb/debian/openssl``
is ``openssl``, as ``openssl`` is in Nix.

A bare name asked for (``ledger where Pygments``) matches a component when
``lookup_name(component's ecosystem, text)`` equals its match_name, so it finds PyPI's
``Pygments`` as ``pygments`` while finding only Nix's ``Pygments``; ``lookup_names(text)``
is every match_name it can stand for, to select candidates by. A purl asked for
(``ledger where pkg:pypi/pygments``) matches its own ecosystem's components whose
match_name equals ``parse_purl(text).match_name``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from packageurl import PackageURL
from packaging.utils import canonicalize_name

from ledger.errors import InvalidInput

NIX = "nix"
"""The ecosystem of components built by Nix (with a store path, or a ``pkg:nix`` purl)."""

GENERIC = "generic"
"""The ecosystem of components with neither a store path nor a readable purl."""

PURL_EXAMPLE = "pkg:pypi/pygments@2.17.2"

_LOWER_CASE_NAMES = frozenset(
    {
        "alpm",
        "apk",
        "bitbucket",
        "bitnami",
        "brew",
        "chrome-extension",
        "composer",
        "deb",
        "github",
        "hex",
        "luarocks",
        "nuget",
        "oci",
        "otp",
        "vscode-extension",
    }
)

_LOWER_CASE_NAMESPACES = frozenset(
    {
        "alpm",
        "apk",
        "bitbucket",
        "brew",
        "composer",
        "deb",
        "github",
        "hex",
        "luarocks",
        "qpkg",
        "rpm",
        "vscode-extension",
        "yocto",
    }
)

_QUALIFIED_BY = {
    "bitbucket": "/",
    "composer": "/",
    "github": "/",
    "golang": "/",
    "huggingface": "/",
    "maven": ":",
    "npm": "/",
    "swift": "/",
    "vscode-extension": ".",
}
"""Ecosystems whose match names carry the namespace, and what joins it to the name."""


@dataclass(frozen=True)
class PackageRef:
    """A package (and maybe one version of it) as a purl names it, parts as written."""

    ecosystem: str
    namespace: str | None
    name: str
    version: str | None

    @property
    def match_name(self) -> str:
        return match_name(self.ecosystem, self.namespace, self.name)


def _refuse(text: str, reason: str) -> InvalidInput:
    return InvalidInput(
        f"{text!r} is not a valid package URL ({reason}): write pkg:TYPE/NAMESPACE/NAME@VERSION, "
        f"such as {PURL_EXAMPLE!r}"
    )


def parse_purl(text: str) -> PackageRef:
    """Read a package URL; raise InvalidInput saying what is wrong with a malformed one.

    The parts are percent-decoded but otherwise kept as written (``pkg:pypi/Foo_Bar`` has
    the name ``Foo_Bar``): normalising is match_name's job. Qualifiers and subpath are
    checked but not kept; nothing checks a type's rules (a namespace for Maven, say).
    """
    stripped = text.strip()
    try:
        purl = PackageURL.from_string(stripped, normalize_purl=False)
    except ValueError as error:
        raise _refuse(text, str(error).rstrip(".")) from None
    namespace = "/".join(
        segment
        for segment in (unquote(part).strip() for part in (purl.namespace or "").split("/"))
        if segment
    )
    name = unquote(purl.name).strip()
    if not name:
        raise _refuse(text, "its name is empty")
    version = unquote(purl.version).strip() if purl.version else ""
    return PackageRef(purl.type, namespace or None, name, version or None)


def ecosystem_of(store_path: str | None, purl: str | None) -> str:
    """The ecosystem of a component with this store path and purl (either may be missing).

    Never raises: a purl that cannot be read makes the component ``generic``, so a view
    can always file it.
    """
    if store_path:
        return NIX
    if purl:
        try:
            return parse_purl(purl).ecosystem
        except InvalidInput:
            return GENERIC
    return GENERIC


def normalise_name(ecosystem: str, name: str) -> str:
    """``name`` as ``ecosystem`` compares it: equal names are the same package there."""
    if ecosystem == "pypi":
        return str(canonicalize_name(name))
    if ecosystem == "pub":
        return re.sub(r"[^a-z0-9]", "_", name.lower())
    if ecosystem == "hackage":
        return name.replace("_", "-")
    if ecosystem in _LOWER_CASE_NAMES:
        return name.lower()
    return name


def _normalise_namespace(ecosystem: str, namespace: str) -> str:
    if ecosystem in _LOWER_CASE_NAMESPACES:
        namespace = namespace.lower()
    if ecosystem == "npm" and not namespace.startswith("@"):
        # A scope is always written with its @, which some purls leave out.
        namespace = "@" + namespace
    return namespace


def match_name(ecosystem: str, namespace: str | None, name: str) -> str:
    """The string a component of ``ecosystem`` is looked up by (see the module docstring)."""
    normalised = normalise_name(ecosystem, name)
    joiner = _QUALIFIED_BY.get(ecosystem)
    if joiner is None or not namespace:
        return normalised
    return _normalise_namespace(ecosystem, namespace) + joiner + normalised


def lookup_name(ecosystem: str, text: str) -> str:
    """The match_name a bare ``text`` asked for stands for in ``ecosystem``.

    ``text`` is written as the ecosystem's tools write the package (``@scope/name``,
    ``group:artifact``, ``github.com/owner/repo``); it is split into namespace and name
    the same way match_name joins them, so both sides are normalised alike.
    """
    joiner = _QUALIFIED_BY.get(ecosystem)
    if joiner is None:
        return normalise_name(ecosystem, text)
    if ecosystem == "npm" and not text.startswith("@"):
        return match_name(ecosystem, None, text)
    if joiner == ".":
        namespace, _, name = text.partition(joiner)
    else:
        namespace, _, name = text.rpartition(joiner)
    if not namespace or not name:
        return match_name(ecosystem, None, text)
    return match_name(ecosystem, namespace, name)


def lookup_names(text: str) -> set[str]:
    """Every match_name a bare ``text`` can stand for, in any ecosystem.

    What to select candidate components by before checking each against
    ``lookup_name(its ecosystem, text)``: ``Foo_Bar`` gives ``Foo_Bar`` (Nix and every
    case-sensitive ecosystem), ``foo_bar`` (lower-case ones) and ``foo-bar`` (PyPI).
    """
    ecosystems = {
        NIX,
        "pypi",
        "pub",
        "hackage",
        *_LOWER_CASE_NAMES,
        *_LOWER_CASE_NAMESPACES,
        *_QUALIFIED_BY,
    }
    return {lookup_name(ecosystem, text) for ecosystem in ecosystems}
