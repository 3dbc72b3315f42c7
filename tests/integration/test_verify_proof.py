"""`ledger verify-proof` checks proofs with a public key alone: proofs over random trees
(made with ledger.merkle's own generation functions) and their signed checkpoints hold;
every tampering — a hash, a size, a signature, another key, another log, a split view —
is refused with exit 3, a malformed document with exit 2 naming the field; and no
ledger is ever opened."""

from __future__ import annotations

import os
import random
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from cli.main import root
from ledger import merkle
from ledger.checkpoint import (
    Checkpoint,
    Signer,
    consistency_document,
    inclusion_document,
    sign_checkpoint,
)

NAME = "ledger.example.org/production"
Document = dict[str, Any]


class Tree:
    """A random ledger's Merkle tree: chain hashes, leaf hashes, signed checkpoints."""

    def __init__(self, size: int, signer: Signer, rng: random.Random) -> None:
        self.signer = signer
        self.chain = [rng.randbytes(32) for _ in range(size)]
        self.leaves = [merkle.leaf_hash(chain_hash) for chain_hash in self.chain]

    def note(self, size: int) -> str:
        checkpoint = Checkpoint(self.signer.name, size, merkle.root_of(self.leaves[:size]))
        return sign_checkpoint(checkpoint, self.signer)

    def inclusion(self, position: int, size: int) -> Document:
        index = position - 1
        proof = merkle.InclusionProof(
            position,
            index,
            size,
            self.chain[index],
            self.leaves[index],
            merkle.inclusion_proof_of(self.leaves, index, size),
            merkle.root_of(self.leaves[:size]),
        )
        return inclusion_document(proof, self.note(size))

    def consistency(self, old: int, new: int) -> Document:
        proof = merkle.ConsistencyProof(
            old,
            new,
            merkle.consistency_proof_of(self.leaves, old, new),
            merkle.root_of(self.leaves[:old]),
            merkle.root_of(self.leaves[:new]),
        )
        return consistency_document(proof, self.note(old), self.note(new))


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate(NAME)


@pytest.fixture
def rng() -> random.Random:
    seed = random.randrange(2**32)
    print(f"random seed {seed}")  # shown when a test fails
    return random.Random(seed)


def run(kind: str, document: Document | bytes, *args: str, key: str | None = None) -> Result:
    data = document if isinstance(document, bytes) else orjson.dumps(document)
    options = ["--key", key] if key else []
    return CliRunner().invoke(root, ["verify-proof", kind, "-", *options, *args], input=data)


def holds(kind: str, document: Document, signer: Signer) -> Result:
    result = run(kind, document, key=signer.verifier_key)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: ")
    return result


def refused(kind: str, document: Document | bytes, key: str, reason: str) -> None:
    result = run(kind, document, key=key)
    assert result.exit_code == 3, result.output
    assert reason in result.output, result.output


def flip(hex_hash: str, bit: int) -> str:
    value = bytearray(bytes.fromhex(hex_hash))
    value[bit // 8] ^= 1 << (bit % 8)
    return value.hex()


def test_inclusion_proofs_over_random_trees_hold_and_every_hash_changed_is_refused(
    signer: Signer, rng: random.Random
) -> None:
    key = signer.verifier_key
    for size in [1, 2, 3, 7, 8, 9, *rng.sample(range(10, 300), 6)]:
        tree = Tree(size, signer, rng)
        for position in {1, size, rng.randint(1, size)}:
            document = tree.inclusion(position, size)
            holds("inclusion", document, signer)
            for number in range(len(document["hashes"])):
                changed = [*document["hashes"]]
                changed[number] = flip(changed[number], rng.randrange(256))
                refused("inclusion", {**document, "hashes": changed}, key, "leads to root")
            if document["hashes"]:
                refused("inclusion", {**document, "hashes": document["hashes"][:-1]}, key, "few")
            refused(
                "inclusion",
                {**document, "hashes": [*document["hashes"], "00" * 32]},
                key,
                "too many",
            )


def test_an_inclusion_proof_refuses_any_claim_its_checkpoint_does_not_back(
    signer: Signer, rng: random.Random
) -> None:
    key = signer.verifier_key
    tree = Tree(40, signer, rng)
    document = tree.inclusion(17, 33)
    holds("inclusion", document, signer)
    chain = flip(document["chain_hash"], 3)
    refused("inclusion", {**document, "chain_hash": chain}, key, "leaf_hash is not")
    with_leaf = {
        **document,
        "chain_hash": chain,
        "leaf_hash": merkle.leaf_hash(bytes.fromhex(chain)).hex(),
    }
    refused("inclusion", with_leaf, key, "leads to root")
    refused("inclusion", {**document, "tree_size": 34}, key, "is not the signed checkpoint's size")
    refused("inclusion", {**document, "position": 18}, key, "is not position")
    moved = {**document, "position": 18, "leaf_index": 17}
    refused("inclusion", moved, key, "leads to root")
    # The same proof with the checkpoint of another size (genuinely signed): refused.
    other = {**document, "checkpoint": tree.note(34), "tree_size": 34}
    refused("inclusion", other, key, "")
    # The proof's own checkpoint, but the other tree's claims are not in it.
    refused("inclusion", {**document, "checkpoint": tree.note(34)}, key, "tree_size 33")


def test_a_signature_changed_another_key_or_another_log_is_refused(
    signer: Signer, rng: random.Random, tmp_path: Path
) -> None:
    tree = Tree(12, signer, rng)
    document = tree.inclusion(5, 12)
    note: str = document["checkpoint"]
    text, _, line = note.rpartition("\n\n")
    encoded = line.split(" ")[-1].strip()
    forged = encoded[:10] + ("A" if encoded[10] != "A" else "B") + encoded[11:]
    bad_signature = {**document, "checkpoint": f"{text}\n\n— {NAME} {forged}\n"}
    refused("inclusion", bad_signature, signer.verifier_key, "does not verify")
    same_name = Signer.generate(NAME)
    refused("inclusion", document, same_name.verifier_key, "no signature on the note is by a")
    # Another log's checkpoint proving the same leaves: signed by its own key, not ours.
    other_log = Signer.generate("ledger.example.org/staging")
    other_tree = Tree(0, other_log, rng)
    other_tree.chain, other_tree.leaves = tree.chain, tree.leaves
    foreign = {**document, "checkpoint": other_tree.note(12)}
    refused("inclusion", foreign, signer.verifier_key, "no signature on the note is by a")
    # Trusting both keys, the checkpoints of two logs still make no consistency proof.
    both = tmp_path / "rotation.pub"  # several keys in one file, as during a rotation
    both.write_text(f"{signer.verifier_key}\n{other_log.verifier_key}\n")
    mixed = {**tree.consistency(5, 12), "old_checkpoint": other_tree.note(5)}
    refused("consistency", mixed, str(both), "two logs")
    assert run("inclusion", foreign, key=str(both)).exit_code == 0


def test_consistency_proofs_over_random_trees_hold_and_tampering_is_refused(
    signer: Signer, rng: random.Random
) -> None:
    key = signer.verifier_key
    for new in [1, 2, 5, 8, 13, *rng.sample(range(14, 300), 5)]:
        tree = Tree(new, signer, rng)
        for old in {1, new, rng.randint(1, new)}:
            document = tree.consistency(old, new)
            holds("consistency", document, signer)
            for number in range(len(document["hashes"])):
                changed = [*document["hashes"]]
                changed[number] = flip(changed[number], rng.randrange(256))
                refused("consistency", {**document, "hashes": changed}, key, "")
            if old < new:
                refused("consistency", {**document, "new_size": new + 1}, key, "new_size")
                refused("consistency", {**document, "old_size": old + 1}, key, "old_size")
                swapped = {
                    **document,
                    "old_checkpoint": document["new_checkpoint"],
                    "new_checkpoint": document["old_checkpoint"],
                    "old_size": new,
                    "new_size": old,
                }
                refused("consistency", swapped, key, "larger than the new size")


def test_a_split_view_is_refused(signer: Signer, rng: random.Random) -> None:
    """Two trees that share their first 20 leaves and then differ (a rewritten ledger):
    a proof from one's old checkpoint to the other's new one never holds."""
    honest = Tree(60, signer, rng)
    forked = Tree(60, signer, rng)
    forked.chain[:20], forked.leaves[:20] = honest.chain[:20], honest.leaves[:20]
    for old in (21, 30, 32, 45):
        document = forked.consistency(old, 60)
        holds("consistency", document, signer)
        spliced = {**document, "old_checkpoint": honest.note(old)}
        refused("consistency", spliced, signer.verifier_key, "the consistency proof leads to")
    # Up to the fork both are the same tree: that proof holds.
    holds("consistency", {**forked.consistency(20, 60), "old_checkpoint": honest.note(20)}, signer)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: b"{not json", "is not JSON"),
        (lambda d: b"[1, 2]", "a proof document is a JSON object"),
        (lambda d: {k: v for k, v in d.items() if k != "hashes"}, "field 'hashes' is missing"),
        (lambda d: {**d, "type": "consistency"}, "use `ledger verify-proof consistency`"),
        (lambda d: {**d, "type": "other"}, "field 'type' must be 'inclusion'"),
        (lambda d: {**d, "position": "5"}, "field 'position' must be a whole number"),
        (lambda d: {**d, "tree_size": -1}, "field 'tree_size' must be a whole number"),
        (lambda d: {**d, "tree_size": True}, "field 'tree_size' must be a whole number"),
        (lambda d: {**d, "hashes": ["ab" * 31]}, "field 'hashes'[0] must be 64 lowercase hex"),
        (lambda d: {**d, "hashes": [d["hashes"][0].upper()]}, "'hashes'[0] must be 64"),
        (lambda d: {**d, "hashes": "ab"}, "field 'hashes' must be a list"),
        (lambda d: {**d, "chain_hash": None}, "field 'chain_hash' must be 64"),
        (lambda d: {**d, "checkpoint": 5}, "field 'checkpoint' must be the signed checkpoint"),
    ],
)
def test_a_malformed_document_is_refused_naming_the_field(
    signer: Signer,
    rng: random.Random,
    change: Callable[[Document], Document | bytes],
    reason: str,
) -> None:
    document = Tree(6, signer, rng).inclusion(3, 6)
    result = run("inclusion", change(document), key=signer.verifier_key)
    assert result.exit_code == 2, result.output
    assert reason in result.output
    assert "Traceback" not in result.output


def test_json_verdicts_say_what_was_proven_and_why_not(signer: Signer, rng: random.Random) -> None:
    tree = Tree(9, signer, rng)
    result = run("inclusion", tree.inclusion(4, 9), "--json", key=signer.verifier_key)
    assert result.exit_code == 0, result.output
    verdict = orjson.loads(result.stdout)
    assert verdict == {
        "verified": True,
        "type": "inclusion",
        "origin": NAME,
        "position": 4,
        "leaf_index": 3,
        "chain_hash": tree.chain[3].hex(),
        "tree_size": 9,
        "root": merkle.root_of(tree.leaves).hex(),
        "signed_by": [NAME],
    }
    result = run("consistency", tree.consistency(3, 9), "--json", key=signer.verifier_key)
    assert orjson.loads(result.stdout)["new_root"] == merkle.root_of(tree.leaves).hex()
    bad = {**tree.inclusion(4, 9), "tree_size": 8}
    result = run("inclusion", bad, "--json", key=signer.verifier_key)
    assert result.exit_code == 3
    assert orjson.loads(result.stdout) == {
        "verified": False,
        "reason": "tree_size 8 is not the signed checkpoint's size 9",
    }


def test_the_key_comes_from_a_file_or_the_environment(
    signer: Signer, rng: random.Random, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = Tree(5, signer, rng).inclusion(2, 5)
    vkey_file = tmp_path / "ledger.pub"
    vkey_file.write_text(signer.verifier_key + "\n")
    assert run("inclusion", document, key=str(vkey_file)).exit_code == 0
    monkeypatch.delenv("LEDGER_CHECKPOINT_KEY", raising=False)
    monkeypatch.setenv("LEDGER_CHECKPOINT_VKEY", signer.verifier_key)
    assert run("inclusion", document).exit_code == 0
    monkeypatch.setenv("LEDGER_CHECKPOINT_VKEY", Signer.generate(NAME).verifier_key)
    assert run("inclusion", document).exit_code == 3
    monkeypatch.delenv("LEDGER_CHECKPOINT_VKEY")
    result = run("inclusion", document)
    assert result.exit_code == 2
    assert "no verifier key: pass --key or set LEDGER_CHECKPOINT_VKEY" in result.output
    result = run("inclusion", document, key="example.com/x+123+AAAA")
    assert result.exit_code == 2
    assert "not a verifier key" in result.output


def test_verify_proof_opens_no_ledger(signer: Signer, rng: random.Random, tmp_path: Path) -> None:
    """Run as `ledger` runs, with LEDGER_URL naming a database that cannot exist: the
    proof is checked, nothing is created, and no store code is even imported."""
    proof = tmp_path / "proof.json"
    proof.write_bytes(orjson.dumps(Tree(30, signer, rng).consistency(11, 30)))
    missing = tmp_path / "no-such-dir" / "ledger.db"
    script = (
        "import sys\n"
        "from cli.main import root\n"
        "try:\n"
        "    root(sys.argv[1:], prog_name='ledger')\n"
        "except SystemExit as end:\n"
        "    print('exit', end.code)\n"
        "print('modules', ' '.join(sorted(sys.modules)))\n"
    )
    args = ["verify-proof", "consistency", str(proof), "--key", signer.verifier_key]
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "LEDGER_URL": str(missing)},
    )
    assert "OK: " in done.stdout, done.stdout + done.stderr
    assert "exit 0" in done.stdout
    modules = set(done.stdout.rsplit("modules ", 1)[1].split())
    assert "ledger.checkpoint" in modules, "the check must see the proof checked"
    # Nor pydantic: with --key given, no settings are read (an auditor's loop stays fast).
    store = {"eventsourcing", "sqlite3", "psycopg", "psycopg_pool", "projections", "collectors"}
    store |= {"pydantic", "pydantic_settings"}
    assert sorted(m for m in modules if m.split(".")[0] in store) == []
    assert {"ledger.application", "ledger.store", "ledger.events"} & modules == set()
    assert not missing.parent.exists()


DESIGN = Path(__file__).parents[2] / "docs" / "design.md"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "notes"


def worked_example() -> str:
    text = DESIGN.read_text()
    start = text.index("### A worked example an auditor can follow by hand")
    end = text.find("\n## ", start)
    return text[start : end if end > 0 else len(text)]


def test_the_worked_examples_commands_print_what_the_design_says() -> None:
    """Every `$ python3 -c '…'` of the worked example, run, prints the lines written
    under it: the example an auditor follows by hand is the truth."""
    blocks = re.findall(r"```sh\n(.*?)```", worked_example(), re.DOTALL)
    commands = [
        found
        for block in blocks
        for found in re.findall(r"^\$ (python3 -c '.*?')\n(.*?)(?=^\$ |\Z)", block, re.S | re.M)
    ]
    assert len(commands) == 5
    for command, expected in commands:
        code = shlex.split(command.removeprefix("python3 -c "))[0]
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        )
        assert done.stdout == expected, command


def test_the_worked_examples_proof_verifies_and_matches_the_design() -> None:
    document = orjson.loads((FIXTURES / "worked-example-inclusion.json").read_bytes())
    vkey = (FIXTURES / "worked-example.pub").read_text().strip()
    result = run("inclusion", document, key=vkey)
    assert result.exit_code == 0, result.output
    example = worked_example()
    assert vkey in example
    assert document["checkpoint"] in example
    assert document["chain_hash"] in example
    assert all(item in example for item in document["hashes"])
    # The consistency proof from 3 to 4 the text gives ([L3, L4, n12]) holds.
    leaves = [bytes.fromhex(document["leaf_hash"]), bytes.fromhex(document["hashes"][0])]
    n12 = bytes.fromhex(document["hashes"][1])
    merkle.verify_consistency(
        3,
        4,
        merkle.node_hash(n12, leaves[0]),
        merkle.node_hash(n12, merkle.node_hash(*leaves)),
        [*leaves, n12],
    )


def test_proofs_the_ledger_itself_makes_verify_without_it(signer: Signer, tmp_path: Path) -> None:
    """End to end: a real SQLite ledger's tree heads and proofs (Ledger's contract
    methods), signed, then checked by `verify-proof` alone."""
    from ledger.application import Ledger
    from ledger.store import locate
    from tests.story import Story, openssl

    story = Story()
    build = story.build("api", "1.0", openssl("3.0.13"))
    for number, host in enumerate(["h1", "h2", "h3"], 1):
        story.plan(number, {(host, "api"): build})
        story.activate(host, "api", build, number)
    ledger = Ledger(locate(str(tmp_path / "ledger.db")), create=True)
    try:
        story.record(ledger)
        head = ledger.tree_head()
        assert head.size == ledger.count() == 10

        def note(size: int) -> str:
            return sign_checkpoint(Checkpoint(NAME, size, ledger.tree_head(size).root), signer)

        for position in range(1, head.size + 1):
            included = ledger.inclusion_proof(position)
            holds("inclusion", inclusion_document(included, note(head.size)), signer)
        for old in range(1, head.size + 1):
            extended = ledger.consistency_proof(old)
            document = consistency_document(extended, note(old), note(head.size))
            holds("consistency", document, signer)
    finally:
        ledger.close()
