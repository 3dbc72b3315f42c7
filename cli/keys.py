"""``ledger keys``: the Ed25519 key pair that signs the ledger's checkpoints.

The private key is written to a file only (mode 0600, never overwritten) and read from
the file ``LEDGER_CHECKPOINT_KEY`` names; what is printed is only the public verifier
key (vkey), which auditors, witnesses and host agents are given. No store is opened.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from cli import output

KEY_VARIABLE = "LEDGER_CHECKPOINT_KEY"
DEFAULT_KEY_FILE = "checkpoint.key"


@click.group()
def keys() -> None:
    """Make the Ed25519 key pair that signs checkpoints (the private key stays in a file).

    The key's NAME is the origin line of every checkpoint the ledger signs: a
    schema-less URL naming this ledger. Keep the private key file out of the database,
    out of backups others read and out of logs; hand the verifier key (vkey) printed
    to auditors, witnesses and agents. See docs/design.md for rotation.

    \b
    Example:
      ledger keys generate ledger.example.org/production --out /etc/ledger/checkpoint.key
      export LEDGER_CHECKPOINT_KEY=/etc/ledger/checkpoint.key
      ledger keys show
    """


@keys.command("generate")
@click.argument("name")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=lambda: os.environ.get(KEY_VARIABLE) or DEFAULT_KEY_FILE,
    show_default=f"${KEY_VARIABLE}, else ./{DEFAULT_KEY_FILE}",
    metavar="FILE",
    help="Where to write the private key (mode 0600; never overwritten). The vkey goes "
    "to FILE.pub.",
)
@click.option("--json", "as_json", is_flag=True, help="Print name, key id, vkey and files as JSON.")
def generate(name: str, out: Path, as_json: bool) -> None:
    """Make a new key pair called NAME; prints its verifier key (vkey).

    NAME is a schema-less URL naming this ledger, such as
    ledger.example.org/production: it becomes the origin line of its checkpoints.
    The private key goes to FILE (mode 0600; an existing file is never overwritten),
    the vkey to FILE.pub and standard output.

    \b
    Example:
      ledger keys generate ledger.example.org/production --out /etc/ledger/checkpoint.key
    """
    from ledger.checkpoint import Signer, check_log_name
    from ledger.errors import InvalidInput

    signer = Signer.generate(check_log_name(name))
    public = out.with_name(out.name + ".pub")
    if public.exists():
        raise InvalidInput(f"{public} exists: refusing to overwrite a key; choose another --out")
    signer.save(out)
    with public.open("x", encoding="utf-8") as file:
        file.write(signer.verifier_key + "\n")
    if as_json:
        output.print_json(
            {
                "name": signer.name,
                "key_id": f"{signer.key_id:08x}",
                "vkey": signer.verifier_key,
                "key_file": str(out),
                "vkey_file": str(public),
            }
        )
        return
    click.echo(signer.verifier_key)
    output.error_console().print(
        f"Private key written to {out} (mode 0600): keep it there, never in the database. "
        f"Verifier key written to {public}. Sign with it: export {KEY_VARIABLE}={out}",
        markup=False,
    )


@keys.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print name, key id and vkey as JSON.")
def show(as_json: bool) -> None:
    """Print the verifier key (vkey) of the configured checkpoint key.

    The key is the private key file LEDGER_CHECKPOINT_KEY names; without one, the
    verifier key(s) LEDGER_CHECKPOINT_VKEY holds. Only the public key is printed.

    \b
    Example:
      LEDGER_CHECKPOINT_KEY=/etc/ledger/checkpoint.key ledger keys show
    """
    from ledger.checkpoint import KeySettings, load_signer, load_verifiers

    settings = KeySettings()
    if settings.checkpoint_key is not None or not settings.checkpoint_vkey:
        verifiers = [load_signer(settings).verifier]  # says what to do without a key
    else:
        verifiers = load_verifiers(settings)
    if as_json:
        output.print_json(
            [{"name": v.name, "key_id": f"{v.key_id:08x}", "vkey": v.vkey} for v in verifiers]
        )
        return
    for verifier in verifiers:
        click.echo(verifier.vkey)
