"""Checkpoints and the signed notes that carry them: what an outsider trusts the ledger by.

A checkpoint (C2SP tlog-checkpoint) is the text ``origin\\nsize\\nbase64(root)\\n`` plus
optional extension lines; it is published as a signed note (C2SP signed-note): the text,
a blank line, then one line per signature, ``— <key name> base64(key id ‖ Ed25519
signature)``. Keys use the text forms of Go's golang.org/x/mod/sumdb/note, so Go's
tools and this module read each other's keys and notes:

- verifier key (vkey): ``<name>+<hex key id>+base64(0x01 ‖ 32-byte public key)``;
- private key: ``PRIVATE+KEY+<name>+<hex key id>+base64(0x01 ‖ 32-byte seed)``;
- key id: the first four bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key), big-endian.

The private key lives only in a file (mode 0600) named by ``LEDGER_CHECKPOINT_KEY``: it
is never stored in the ledger, and no repr or error message of this module shows it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger import merkle
from ledger.errors import InvalidInput

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

    from ledger.merkle import ConsistencyProof, InclusionProof

    class KeySettings(BaseSettings):  # what type checkers see; defined in __getattr__
        checkpoint_key: Path | None = None
        checkpoint_vkey: str | None = None


ED25519 = 0x01
"""The signature type byte of Ed25519 notes (C2SP signed-note)."""
SIGNATURE_PREFIX = "\u2014 "
"""What every signature line starts with: an em dash (U+2014) and a space."""
MAX_SIGNATURES = 100
"""Notes with more signature lines are refused unread, as Go's note package does."""
MAX_SIZE = 2**64 - 1
"""The largest tree size a checkpoint line may hold (an unsigned 64-bit integer)."""
ROOT_SIZE = 32
PRIVATE_PREFIX = "PRIVATE+KEY+"

_NOT_IN_NOTES = re.compile("[\x00-\x09\x0b-\x1f\ud800-\udfff]")
_SIZE_LINE = re.compile(r"0|[1-9][0-9]*")
_KEY_ID = re.compile(r"[0-9a-fA-F]{8}")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_LOG_NAME = re.compile(
    rf"(?P<host>{_LABEL}(?:\.{_LABEL})+)(?::[0-9]{{1,5}})?(?P<path>(?:/[A-Za-z0-9._~-]+)*)"
)


class CheckpointError(InvalidInput):
    """A checkpoint's text is not a C2SP tlog-checkpoint: the line and the reason."""


class NoteError(InvalidInput):
    """A signed note is malformed, or no trusted key's signature on it verifies."""


class CheckpointKeyError(InvalidInput):
    """A key (private or verifier) is malformed or cannot be read; never shows the key."""


def _b64decode(text: str) -> bytes | None:
    """Standard base64 with padding, refused when not canonical (None): a root or a
    signature has exactly one text form."""
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return decoded if base64.b64encode(decoded).decode() == text else None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def valid_key_name(name: str) -> bool:
    """A note key name: non-empty, no Unicode space, no plus (C2SP signed-note)."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def check_log_name(name: str) -> str:
    """``name`` if it is a schema-less URL fit to name a ledger (``ledger.example.org/
    production``): the origin line of its checkpoints and the name of its key. Stricter
    than the note format requires, so that two ledgers' names never collide by accident
    and every verifier can type the name."""
    if "://" in name:
        raise InvalidInput(f"the key name {name!r} has a scheme: drop everything up to '://'")
    if not valid_key_name(name):
        raise InvalidInput(f"the key name {name!r} must not be empty, hold spaces or '+'")
    if not _LOG_NAME.fullmatch(name):
        raise InvalidInput(
            f"the key name {name!r} is not a schema-less URL such as "
            "ledger.example.org/production (a lowercase host name with a dot, then "
            "optional /path segments of letters, digits, '.', '_', '~' or '-')"
        )
    return name


def key_id(name: str, public_key: bytes) -> int:
    """The key id C2SP signed-note recommends and Go's note package requires."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def _check_text(text: str, what: str, error: type[InvalidInput]) -> None:
    """Notes are UTF-8 with no control character but newline (C2SP signed-note)."""
    if found := _NOT_IN_NOTES.search(text):
        char, offset = found.group(), found.start()
        if char >= "\ud800":
            raise error(f"{what} is not valid UTF-8 (a lone surrogate at {offset})")
        raise error(f"{what} holds a control character (U+{ord(char):04X}) at {offset}")


class Verifier:
    """A public key trusted to sign notes, read from its vkey text."""

    __slots__ = ("_public", "key_id", "name", "public_key")

    def __init__(self, name: str, public_key: bytes) -> None:
        if not valid_key_name(name):
            raise CheckpointKeyError(f"the key name {name!r} must not be empty, hold spaces or '+'")
        if len(public_key) != 32:
            raise CheckpointKeyError("an Ed25519 public key is 32 bytes")
        self.name = name
        self.public_key = public_key
        self.key_id = key_id(name, public_key)
        """The 32-bit key id (an int): with the name, what signature lines are matched by."""
        self._public = Ed25519PublicKey.from_public_bytes(public_key)

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """A verifier from ``<name>+<hex id>+<base64(0x01 ‖ key)>``; the id must be the
        one the name and key give (as Go's note.NewVerifier checks)."""
        name, _, rest = vkey.strip().partition("+")
        hex_id, _, key_text = rest.partition("+")
        if not valid_key_name(name) or not _KEY_ID.fullmatch(hex_id):
            raise CheckpointKeyError(
                "not a verifier key: expected NAME+KEYID+KEY, e.g. "
                "ledger.example.org/production+530d903a+AekyeR…"
            )
        key = _b64decode(key_text)
        if key is None or not key:
            raise CheckpointKeyError(f"the verifier key of {name} is not standard base64")
        if key[0] != ED25519 or len(key) != 33:
            raise CheckpointKeyError(
                f"the verifier key of {name} is not an Ed25519 key (type 0x01)"
            )
        verifier = cls(name, key[1:])
        if verifier.key_id != int(hex_id, 16):
            raise CheckpointKeyError(
                f"the verifier key of {name} says key id {hex_id.lower()}, but its name and "
                f"key give {verifier.key_id:08x}: it was altered"
            )
        return verifier

    @property
    def vkey(self) -> str:
        return f"{self.name}+{self.key_id:08x}+{_b64(bytes([ED25519]) + self.public_key)}"

    def verify(self, text: str, signature: bytes) -> bool:
        try:
            self._public.verify(signature, text.encode())
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"Verifier({self.vkey!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Verifier) and (self.name, self.public_key) == (
            other.name,
            other.public_key,
        )

    def __hash__(self) -> int:
        return hash((self.name, self.public_key))


class Signer:
    """The private key that signs the ledger's checkpoints. Its repr, its errors and its
    ``str`` name the key, never show it; only ``save`` writes it, to a 0600 file."""

    __slots__ = ("_private", "name", "verifier")

    def __init__(self, name: str, seed: bytes) -> None:
        if not valid_key_name(name):
            raise CheckpointKeyError(f"the key name {name!r} must not be empty, hold spaces or '+'")
        if len(seed) != 32:
            raise CheckpointKeyError("an Ed25519 private key seed is 32 bytes")
        self.name = name
        self._private = Ed25519PrivateKey.from_private_bytes(seed)
        self.verifier = Verifier(name, self._private.public_key().public_bytes_raw())

    @classmethod
    def generate(cls, name: str) -> Signer:
        return cls(name, Ed25519PrivateKey.generate().private_bytes_raw())

    @classmethod
    def parse(cls, text: str) -> Signer:
        """A signer from Go's private key text, ``PRIVATE+KEY+<name>+<hex id>+<base64(0x01
        ‖ seed)>``; the id must match the name and key."""
        text = text.strip()
        if not text.startswith(PRIVATE_PREFIX):
            raise CheckpointKeyError("not a private key: it does not start with PRIVATE+KEY+")
        name, _, rest = text.removeprefix(PRIVATE_PREFIX).partition("+")
        hex_id, _, key_text = rest.partition("+")
        key = _b64decode(key_text)
        if not valid_key_name(name) or not _KEY_ID.fullmatch(hex_id) or key is None:
            raise CheckpointKeyError("not a private key: expected PRIVATE+KEY+NAME+KEYID+KEY")
        if len(key) != 33 or key[0] != ED25519:
            raise CheckpointKeyError(f"the private key of {name} is not an Ed25519 key (type 0x01)")
        signer = cls(name, key[1:])
        if signer.key_id != int(hex_id, 16):
            raise CheckpointKeyError(
                f"the private key of {name} does not match its key id {hex_id}"
            )
        return signer

    @classmethod
    def load(cls, path: Path | str) -> Signer:
        """The signer kept in ``path``, refused when others than its owner may read it
        (as ssh refuses such a key): a checkpoint key readable by all is no secret."""
        path = Path(path)
        try:
            mode = path.stat().st_mode
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CheckpointKeyError(f"the checkpoint key file {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as error:
            raise CheckpointKeyError(
                f"the checkpoint key file {path} cannot be read: {error}"
            ) from None
        if os.name == "posix" and stat.S_IMODE(mode) & 0o077:
            raise CheckpointKeyError(
                f"the checkpoint key file {path} may be read by others "
                f"(mode {stat.S_IMODE(mode):04o}): run chmod 600 {path}"
            )
        try:
            return cls.parse(text)
        except CheckpointKeyError as error:
            raise CheckpointKeyError(f"{path}: {error}") from None

    def save(self, path: Path | str) -> None:
        """Write the private key text to a new file of mode 0600; never overwrite one
        (a lost key cannot be recovered from anywhere else)."""
        path = Path(path)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise CheckpointKeyError(f"{path} exists: refusing to overwrite a key") from None
        except OSError as error:
            raise CheckpointKeyError(f"cannot create {path}: {error.strerror}") from None
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), 0o600)  # whatever the umask
            seed = self._private.private_bytes_raw()
            file.write(f"{PRIVATE_PREFIX}{self.name}+{self.key_id:08x}+")
            file.write(_b64(bytes([ED25519]) + seed) + "\n")

    @property
    def key_id(self) -> int:
        return self.verifier.key_id

    @property
    def verifier_key(self) -> str:
        return self.verifier.vkey

    def signature_line(self, text: str) -> str:
        """This key's signature line for note text ``text``."""
        signature = self._private.sign(text.encode())
        return f"{SIGNATURE_PREFIX}{self.name} {_b64(self.key_id.to_bytes(4, 'big') + signature)}\n"

    def sign(self, text: str) -> str:
        """The signed note of ``text`` (which must end in a newline) with this key."""
        return sign_note(text, [self])

    def __repr__(self) -> str:
        return f"Signer(name={self.name!r}, key_id={self.key_id:08x})"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Signer is not pickled: it would copy the private key")


def sign_note(text: str, signers: Sequence[Signer]) -> str:
    """The signed note of ``text`` with every key of ``signers`` (two during a key
    rotation, so that verifiers of either key accept it)."""
    if not text.endswith("\n"):
        raise NoteError("a note's text must end in a newline")
    _check_text(text, "the note's text", NoteError)
    if not signers:
        raise NoteError("a note needs at least one signer")
    return text + "\n" + "".join(signer.signature_line(text) for signer in signers)


def open_note(note: str, verifiers: Sequence[Verifier]) -> tuple[str, list[str]]:
    """The text of ``note`` and the names of the ``verifiers`` whose signatures on it
    verify. Signatures by keys not among ``verifiers`` are ignored (a witness's
    cosignature, a rotated key); one by a known key that does not verify refuses the
    whole note, as does a note no known key signed."""
    _check_text(note, "the note", NoteError)
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("the note has no blank line between its text and its signatures")
    text, signatures = note[: split + 1], note[split + 2 :]
    if not signatures or not signatures.endswith("\n"):
        raise NoteError("the note's signature lines must each end in a newline")
    known = {(v.name, v.key_id): v for v in verifiers}
    verified: list[str] = []
    lines = signatures[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"the note has {len(lines)} signatures; at most {MAX_SIGNATURES} are read")
    for number, line in enumerate(lines, 1):
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError(f"signature line {number} does not start with '— ' (an em dash)")
        name, _, encoded = line.removeprefix(SIGNATURE_PREFIX).partition(" ")
        signature = _b64decode(encoded)
        if not valid_key_name(name) or signature is None or len(signature) < 5:
            raise NoteError(
                f"signature line {number} is not '— NAME BASE64' with a key id and signature"
            )
        verifier = known.get((name, int.from_bytes(signature[:4], "big")))
        if verifier is None:
            continue
        if not verifier.verify(text, signature[4:]):
            raise NoteError(
                f"the signature by {name} (key {verifier.key_id:08x}) does not verify: "
                "the note was altered or signed by another key"
            )
        if name not in verified:
            verified.append(name)
    if not verified:
        names = ", ".join(f"{v.name} ({v.key_id:08x})" for v in verifiers) or "none"
        raise NoteError(f"no signature on the note is by a trusted key (trusted: {names})")
    return text, verified


@dataclass(frozen=True)
class Checkpoint:
    """A Merkle tree head as C2SP tlog-checkpoint text: origin, size, root."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise CheckpointError("a checkpoint's origin must be one non-empty line")
        _check_text(self.origin, "the origin", CheckpointError)
        if isinstance(self.size, bool) or not 0 <= self.size <= MAX_SIZE:
            raise CheckpointError(f"a checkpoint's size must be 0 to {MAX_SIZE}")
        if len(self.root) != ROOT_SIZE:
            raise CheckpointError(f"a checkpoint's root must be {ROOT_SIZE} bytes (SHA-256)")
        for extension in self.extensions:
            if not extension or "\n" in extension:
                raise CheckpointError("a checkpoint's extension lines must be non-empty lines")
            _check_text(extension, "an extension line", CheckpointError)

    def body(self) -> str:
        lines = [self.origin, str(self.size), _b64(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        """A checkpoint from its note text (without signatures), refused with the line
        that is wrong and why."""
        if not body.endswith("\n"):
            raise CheckpointError("the checkpoint text must end in a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError(
                f"the checkpoint has {len(lines)} lines; it needs origin, size and root"
            )
        origin, size, root, *extensions = lines
        if not origin:
            raise CheckpointError("line 1 (origin) is empty")
        if not _SIZE_LINE.fullmatch(size) or int(size) > MAX_SIZE:
            raise CheckpointError(
                f"line 2 (tree size) {size[:30]!r} is not a decimal number without leading "
                f"zeroes, at most {MAX_SIZE}"
            )
        decoded = _b64decode(root)
        if decoded is None or len(decoded) != ROOT_SIZE:
            raise CheckpointError(
                f"line 3 (root hash) {root[:60]!r} is not the standard base64 of 32 bytes"
            )
        for number, extension in enumerate(extensions, 4):
            if not extension:
                raise CheckpointError(f"line {number} (an extension line) is empty")
        return cls(origin, int(size), decoded, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    """The signed note of ``checkpoint``; its origin must be the key's name, so that a
    verifier knows which ledger a signature vouches for."""
    if checkpoint.origin != signer.name:
        raise CheckpointError(
            f"the checkpoint's origin {checkpoint.origin!r} is not the key's name "
            f"{signer.name!r}: sign a ledger's checkpoints with its own key"
        )
    return signer.sign(checkpoint.body())


def open_checkpoint(note: str, verifier: Verifier | Sequence[Verifier]) -> Checkpoint:
    """The checkpoint in ``note``, once a signature by ``verifier`` (or one of several,
    during a rotation) verifies and its origin is that key's name."""
    return open_signed_checkpoint(note, verifier)[0]


def open_signed_checkpoint(
    note: str, verifier: Verifier | Sequence[Verifier]
) -> tuple[Checkpoint, list[str]]:
    """``open_checkpoint``, with the names of the keys whose signatures verified."""
    verifiers = [verifier] if isinstance(verifier, Verifier) else list(verifier)
    text, names = open_note(note, verifiers)
    checkpoint = Checkpoint.parse(text)
    if checkpoint.origin not in names:
        raise CheckpointError(
            f"the checkpoint's origin {checkpoint.origin!r} is not the name of the key that "
            f"signed it ({', '.join(names)}): it is another log's checkpoint"
        )
    return checkpoint, names


def read_verifiers(value: str) -> list[Verifier]:
    """The verifier keys in ``value``: a vkey, or a file holding one per line (blank
    lines and ``#`` comments skipped; several during a key rotation)."""
    path = Path(value)
    try:
        is_file = path.is_file()
    except (OSError, ValueError):  # a name too long or with a NUL: not a file
        is_file = False
    if "+" not in value or is_file:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise CheckpointKeyError(
                f"{value!r} is neither a verifier key (NAME+KEYID+KEY) nor a readable file "
                f"holding one ({getattr(error, 'strerror', None) or error})"
            ) from None
        lines = [line.strip() for line in text.splitlines()]
        keys = [line for line in lines if line and not line.startswith("#")]
        if not keys:
            raise CheckpointKeyError(f"{value} holds no verifier key")
        try:
            return [Verifier.parse(key) for key in keys]
        except CheckpointKeyError as error:
            raise CheckpointKeyError(f"{value}: {error}") from None
    return [Verifier.parse(value)]


def __getattr__(name: str) -> Any:
    """``KeySettings`` is made on first use, so that importing this module does not
    import pydantic-settings (100 ms, 400 ms on a busy machine): `ledger verify-proof
    --key` (an auditor looping over receipts) never needs it."""
    if name != "KeySettings":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from pydantic_settings import BaseSettings, SettingsConfigDict

    class KeySettings(BaseSettings):
        """Where the checkpoint keys are: environment variables ``LEDGER_CHECKPOINT_KEY``
        (the private key FILE) and ``LEDGER_CHECKPOINT_VKEY`` (a vkey, or a file of them)."""

        # An empty LEDGER_CHECKPOINT_KEY= (as an environment file may leave it) is unset,
        # not the current directory.
        model_config = SettingsConfigDict(
            env_prefix="LEDGER_", extra="ignore", frozen=True, env_ignore_empty=True
        )

        checkpoint_key: Path | None = None
        checkpoint_vkey: str | None = None

    KeySettings.__module__, KeySettings.__qualname__ = __name__, "KeySettings"
    globals()["KeySettings"] = KeySettings
    return KeySettings


def key_settings() -> KeySettings:
    """The key settings read from the environment now."""
    made = globals().get("KeySettings") or __getattr__("KeySettings")
    settings: KeySettings = made()
    return settings


def load_signer(settings: KeySettings | None = None) -> Signer:
    """The configured private key, with what to do when there is none."""
    if settings is None:
        settings = key_settings()
    if settings.checkpoint_key is None:
        raise CheckpointKeyError(
            "no checkpoint key: run `ledger keys generate NAME --out FILE` and set "
            "LEDGER_CHECKPOINT_KEY=FILE"
        )
    try:
        return Signer.load(settings.checkpoint_key)
    except CheckpointKeyError as error:
        raise CheckpointKeyError(f"{error} (LEDGER_CHECKPOINT_KEY)") from None


def load_verifiers(settings: KeySettings | None = None) -> list[Verifier]:
    """The configured verifier keys: ``LEDGER_CHECKPOINT_VKEY``, or else the public half
    of ``LEDGER_CHECKPOINT_KEY``."""
    if settings is None:
        settings = key_settings()
    if settings.checkpoint_vkey:
        try:
            return read_verifiers(settings.checkpoint_vkey)
        except CheckpointKeyError as error:
            raise CheckpointKeyError(f"{error} (LEDGER_CHECKPOINT_VKEY)") from None
    if settings.checkpoint_key is not None:
        return [load_signer(settings).verifier]
    raise CheckpointKeyError(
        "no verifier key: pass --key or set LEDGER_CHECKPOINT_VKEY to the line "
        "`ledger keys show` prints (or a file holding it)"
    )


def load_verifier(settings: KeySettings | None = None) -> Verifier:
    """The configured verifier key (the first, when a file holds several)."""
    return load_verifiers(settings)[0]


# Proof documents: the JSON `ledger prove` prints, /api/proof/* answers and
# `ledger verify-proof` reads. Only the proof hashes are taken from it on trust: every size
# and root is the one a signed checkpoint holds.

MAX_PROOF_HASHES = 128
"""More hashes than any proof in a tree of 2^64 leaves has: the document is refused."""
_HEX_HASH = re.compile(r"[0-9a-f]{64}")


class ProofDocumentError(InvalidInput):
    """A proof document is not what the contract says: the field and the reason."""


class ProofRefused(InvalidInput):
    """A well-formed proof document does not hold: its claims and its signed
    checkpoints disagree (a size, a leaf hash, two logs)."""


class InclusionVerdict(NamedTuple):
    position: int
    leaf_index: int
    chain_hash: bytes
    checkpoint: Checkpoint
    signed_by: list[str]


class ConsistencyVerdict(NamedTuple):
    old: Checkpoint
    new: Checkpoint
    signed_by: list[str]


def inclusion_document(proof: InclusionProof, note: str) -> dict[str, Any]:
    """The JSON form of ``proof`` with the signed checkpoint ``note`` of its tree."""
    return {
        "type": "inclusion",
        "position": proof.position,
        "leaf_index": proof.leaf_index,
        "tree_size": proof.tree_size,
        "chain_hash": proof.chain_hash.hex(),
        "leaf_hash": proof.leaf_hash.hex(),
        "hashes": [item.hex() for item in proof.hashes],
        "checkpoint": note,
    }


def consistency_document(proof: ConsistencyProof, old_note: str, new_note: str) -> dict[str, Any]:
    """The JSON form of ``proof`` with the signed checkpoints of its two trees."""
    return {
        "type": "consistency",
        "old_size": proof.old_size,
        "new_size": proof.new_size,
        "hashes": [item.hex() for item in proof.hashes],
        "old_checkpoint": old_note,
        "new_checkpoint": new_note,
    }


def _field(document: Mapping[str, Any], name: str) -> Any:
    if name not in document:
        raise ProofDocumentError(f"field {name!r} is missing")
    return document[name]


def _count(document: Mapping[str, Any], name: str) -> int:
    value = _field(document, name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SIZE:
        raise ProofDocumentError(f"field {name!r} must be a whole number from 0 to {MAX_SIZE}")
    return value


def _hash(value: Any, name: str) -> bytes:
    if not isinstance(value, str) or not _HEX_HASH.fullmatch(value):
        raise ProofDocumentError(f"field {name} must be 64 lowercase hex digits (SHA-256)")
    return bytes.fromhex(value)


def _hashes(document: Mapping[str, Any]) -> list[bytes]:
    value = _field(document, "hashes")
    if not isinstance(value, list) or len(value) > MAX_PROOF_HASHES:
        raise ProofDocumentError(f"field 'hashes' must be a list of at most {MAX_PROOF_HASHES}")
    return [_hash(item, f"'hashes'[{number}]") for number, item in enumerate(value)]


def _note(document: Mapping[str, Any], name: str) -> str:
    value = _field(document, name)
    if not isinstance(value, str) or not value:
        raise ProofDocumentError(f"field {name!r} must be the signed checkpoint's text")
    return value


def _typed(document: object, kind: str) -> Mapping[str, Any]:
    if not isinstance(document, dict):
        raise ProofDocumentError("a proof document is a JSON object")
    if document.get("type") != kind:
        raise ProofDocumentError(
            f"field 'type' is {document.get('type')!r}, not {kind!r}: "
            f"use `ledger verify-proof {document.get('type')}` for that"
            if document.get("type") in ("inclusion", "consistency")
            else f"field 'type' must be {kind!r}"
        )
    return document


def check_inclusion(document: object, verifiers: Sequence[Verifier]) -> InclusionVerdict:
    """Check an inclusion proof document against its signed checkpoint: raises
    ``ProofDocumentError`` when it is malformed, ``NoteError``/``CheckpointError`` when
    the checkpoint is not signed by a trusted key, ``ProofRefused`` or ``ProofError``
    when its claims do not hold."""
    proof = _typed(document, "inclusion")
    position, leaf_index = _count(proof, "position"), _count(proof, "leaf_index")
    tree_size = _count(proof, "tree_size")
    chain_hash = _hash(_field(proof, "chain_hash"), "'chain_hash'")
    leaf = _hash(_field(proof, "leaf_hash"), "'leaf_hash'")
    hashes = _hashes(proof)
    checkpoint, signed_by = open_signed_checkpoint(_note(proof, "checkpoint"), verifiers)
    if leaf_index != position - 1:
        raise ProofRefused(f"leaf_index {leaf_index} is not position {position} - 1")
    if leaf != merkle.leaf_hash(chain_hash):
        raise ProofRefused("leaf_hash is not SHA-256(0x00 ‖ chain_hash)")
    if tree_size != checkpoint.size:
        raise ProofRefused(
            f"tree_size {tree_size} is not the signed checkpoint's size {checkpoint.size}"
        )
    merkle.verify_inclusion(leaf_index, checkpoint.size, leaf, hashes, checkpoint.root)
    return InclusionVerdict(position, leaf_index, chain_hash, checkpoint, signed_by)


def check_consistency(document: object, verifiers: Sequence[Verifier]) -> ConsistencyVerdict:
    """Check a consistency proof document against its two signed checkpoints (errors as
    ``check_inclusion``'s)."""
    proof = _typed(document, "consistency")
    old_size, new_size = _count(proof, "old_size"), _count(proof, "new_size")
    hashes = _hashes(proof)
    old = open_checkpoint(_note(proof, "old_checkpoint"), verifiers)
    new, signed_by = open_signed_checkpoint(_note(proof, "new_checkpoint"), verifiers)
    if old.origin != new.origin:
        raise ProofRefused(f"the checkpoints are of two logs: {old.origin!r} and {new.origin!r}")
    if old_size != old.size:
        raise ProofRefused(f"old_size {old_size} is not the old checkpoint's size {old.size}")
    if new_size != new.size:
        raise ProofRefused(f"new_size {new_size} is not the new checkpoint's size {new.size}")
    merkle.verify_consistency(old.size, new.size, old.root, new.root, hashes)
    return ConsistencyVerdict(old, new, signed_by)
