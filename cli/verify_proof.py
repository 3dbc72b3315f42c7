"""``ledger verify-proof``: check a proof with a public key alone, as an outsider would.

This path opens no store and imports none of the ledger's application, stores or event
models: an auditor, a host agent or a second site checks a proof (``ledger prove``'s
JSON) with the ledger's verifier key and nothing else. Exit codes: 0 the proof holds,
2 the document or the key is malformed, 3 the proof is refused.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any

import click

from cli import output
from cli.errors import TAMPERED

if TYPE_CHECKING:
    from ledger.checkpoint import Verifier

MAX_DOCUMENT = 1 << 20
"""A proof document is a few kilobytes; anything past a mebibyte is not one."""

key_option = click.option(
    "--key",
    "keys",
    multiple=True,
    envvar="LEDGER_CHECKPOINT_VKEY",  # read by click: no settings machinery on this path
    metavar="VKEY|FILE",
    help="The ledger's verifier key (`ledger keys show` prints it), or a file holding it "
    "(one per line during a rotation). May be repeated. Default: LEDGER_CHECKPOINT_VKEY, "
    "else the public half of LEDGER_CHECKPOINT_KEY.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
proof_argument = click.argument("proof_file", metavar="PROOF.json", type=click.File("rb"))


@click.group("verify-proof")
def verify_proof() -> None:
    """Check a proof against signed checkpoints and a public key alone (no ledger opened).

    Sizes and roots are taken from the signed checkpoints in the proof, never from its
    other fields: a proof holds only if the checkpoints verify with the key given and
    the proof's hashes lead to their roots. Exit 0 when it holds, 3 when it is refused,
    2 when the document or the key is malformed. PROOF.json may be - (standard input).

    \b
    Example:
      ledger prove inclusion 1234 > receipt.json
      ledger verify-proof inclusion receipt.json --key ledger.example.org/production+…
      ledger verify-proof consistency yesterday-to-today.json --key ledger.pub
    """


def _verifiers(keys: Sequence[str]) -> list[Verifier]:
    from ledger.checkpoint import load_verifiers, read_verifiers

    if not keys:
        return load_verifiers()
    return [verifier for key in keys for verifier in read_verifiers(key)]


def _document(proof_file: IO[bytes]) -> Any:
    import orjson

    from ledger.checkpoint import ProofDocumentError

    data = proof_file.read(MAX_DOCUMENT + 1)
    if len(data) > MAX_DOCUMENT:
        raise ProofDocumentError(f"{_name(proof_file)} is larger than 1 MiB: not a proof document")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise ProofDocumentError(f"{_name(proof_file)} is not JSON: {error}") from None


def _run(
    as_json: bool, check: Callable[[], tuple[str, dict[str, Any]]], proof_file: IO[bytes]
) -> None:
    """Print the verdict of ``check`` (its sentence, or its fields with --json); a
    refusal is printed as one line on standard error (and as JSON with --json) and
    ends with exit 3."""
    from ledger.checkpoint import CheckpointError, NoteError, ProofRefused
    from ledger.merkle import ProofError

    try:
        sentence, fields = check()
    except (NoteError, CheckpointError, ProofRefused, ProofError) as error:
        if as_json:
            output.print_json({"verified": False, "reason": str(error)})
        output.error_console().print(
            f"Refused: {_name(proof_file)}: {error}", markup=False, highlight=False
        )
        raise click.exceptions.Exit(TAMPERED) from None
    if as_json:
        output.print_json({"verified": True, **fields})
    else:
        click.echo(sentence)


def _name(file: IO[bytes]) -> str:
    name = getattr(file, "name", "<stdin>")
    return "standard input" if name in ("-", "<stdin>") else str(name)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@verify_proof.command("inclusion")
@proof_argument
@key_option
@json_option
def inclusion(proof_file: IO[bytes], keys: tuple[str, ...], as_json: bool) -> None:
    """Check that an event is in the ledger a signed checkpoint describes.

    PROOF.json is what `ledger prove inclusion` prints (or a receipt the API or the
    agent kept): the event's position, its chain hash, the proof's hashes and the
    signed checkpoint.

    \b
    Example:
      ledger verify-proof inclusion receipt.json --key ledger.example.org/production+…
      curl -s -H "Authorization: Bearer $TOKEN" '…/api/proof/inclusion?position=1234' \\
        | ledger verify-proof inclusion - --json
    """
    from ledger.checkpoint import check_inclusion

    verifiers = _verifiers(keys)
    document = _document(proof_file)

    def check() -> tuple[str, dict[str, Any]]:
        verdict = check_inclusion(document, verifiers)
        checkpoint = verdict.checkpoint
        sentence = (
            f"OK: position {verdict.position} (chain hash {verdict.chain_hash.hex()}) is in "
            f"{checkpoint.origin} at size {checkpoint.size}, root {_b64(checkpoint.root)}, "
            f"signed by {', '.join(verdict.signed_by)}."
        )
        return sentence, {
            "type": "inclusion",
            "origin": checkpoint.origin,
            "position": verdict.position,
            "leaf_index": verdict.leaf_index,
            "chain_hash": verdict.chain_hash.hex(),
            "tree_size": checkpoint.size,
            "root": checkpoint.root.hex(),
            "signed_by": verdict.signed_by,
        }

    _run(as_json, check, proof_file)


@verify_proof.command("consistency")
@proof_argument
@key_option
@json_option
def consistency(proof_file: IO[bytes], keys: tuple[str, ...], as_json: bool) -> None:
    """Check that a newer signed checkpoint extends an older one (nothing rewritten).

    PROOF.json is what `ledger prove consistency` prints: the two sizes, the proof's
    hashes and both signed checkpoints. It holds only if the tree of the old checkpoint
    is a prefix of the new one's: no event up to the old size was changed, removed or
    reordered since.

    \b
    Example:
      ledger verify-proof consistency yesterday-to-today.json --key ledger.pub
    """
    from ledger.checkpoint import check_consistency

    verifiers = _verifiers(keys)
    document = _document(proof_file)

    def check() -> tuple[str, dict[str, Any]]:
        verdict = check_consistency(document, verifiers)
        old, new = verdict.old, verdict.new
        sentence = (
            f"OK: {new.origin} at size {new.size} (root {_b64(new.root)}) extends size "
            f"{old.size} (root {_b64(old.root)}), signed by {', '.join(verdict.signed_by)}."
        )
        return sentence, {
            "type": "consistency",
            "origin": new.origin,
            "old_size": old.size,
            "old_root": old.root.hex(),
            "new_size": new.size,
            "new_root": new.root.hex(),
            "signed_by": verdict.signed_by,
        }

    _run(as_json, check, proof_file)
