"""Checkpoints and proofs from the command line, on both backends: `ledger checkpoint`
signs and keeps the tree head, `ledger prove` answers proofs that `ledger.merkle`, `ledger
verify-proof` and an independent RFC 9162 implementation written here all accept, and a
ledger rewritten from some position or cut off fails `ledger verify --checkpoint` and
the consistency proof against a checkpoint signed before."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result

from cli.errors import BAD_INPUT, TAMPERED
from cli.main import root
from ledger import checkpoints, merkle
from ledger.application import Ledger
from ledger.chain import GENESIS, content_digest, entry_hash
from ledger.checkpoint import Signer, Verifier, open_checkpoint
from ledger.index import INDEX_TABLE, MERKLE_TABLE
from ledger.store import locate
from tests.conftest import checkpoint_key_in_env, with_query
from tests.factories import make_event
from tests.integration.test_tamper import RawSQL

NAME = "ledger.example.org/test"
EVENTS = 12


def run(url: str, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(root, ["--ledger", url, *args], input=input)


@pytest.fixture
def signer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Signer:
    """The ledger's checkpoint key, in a file named by LEDGER_CHECKPOINT_KEY."""
    return checkpoint_key_in_env(NAME, tmp_path, monkeypatch)


def fill(ledger: Ledger, first: int, last: int, prefix: str = "web") -> None:
    ledger.append(
        [
            make_event("activation_completed", host=f"{prefix}-{i:03}")
            for i in range(first, last + 1)
        ]
    )


@pytest.fixture
def filled(ledger: Ledger, signer: Signer) -> Ledger:
    fill(ledger, 1, EVENTS)
    return ledger


def checkpoint_file(url: str, path: Path) -> Path:
    result = run(url, "checkpoint")
    assert result.exit_code == 0, result.output
    path.write_text(result.stdout)
    return path


def proof(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def verify_proof(kind: str, document: dict[str, Any], key: str, tmp_path: Path) -> Result:
    path = tmp_path / f"proof-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(document))
    return CliRunner().invoke(root, ["verify-proof", kind, str(path), "--key", key])


# An RFC 9162 §2.1.1 Merkle tree hash written from the RFC's definition, recursively,
# sharing no code with ledger.merkle.
def mth(leaf_inputs: list[bytes]) -> bytes:
    if not leaf_inputs:
        return hashlib.sha256(b"").digest()
    if len(leaf_inputs) == 1:
        return hashlib.sha256(b"\x00" + leaf_inputs[0]).digest()
    k = 1
    while k * 2 < len(leaf_inputs):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(leaf_inputs[:k]) + mth(leaf_inputs[k:])).digest()


def signed_root(note: str) -> tuple[int, bytes]:
    """The size and root of a checkpoint note, read by hand (lines 2 and 3)."""
    lines = note.split("\n")
    return int(lines[1]), base64.b64decode(lines[2])


def test_checkpoint_signs_the_head_keeps_it_and_is_idempotent(
    filled: Ledger, signer: Signer
) -> None:
    url = filled.location.url
    first = run(url, "checkpoint")
    assert first.exit_code == 0, first.output
    note = first.stdout
    checkpoint = open_checkpoint(note, Verifier.parse(signer.verifier_key))
    assert (checkpoint.origin, checkpoint.size) == (NAME, EVENTS)
    assert checkpoint.root == filled.tree_head().root
    assert checkpoints.latest(filled) == note
    assert run(url, "checkpoint").stdout == note  # nothing new: the same checkpoint
    fill(filled, EVENTS + 1, EVENTS + 2)
    as_json = json.loads(run(url, "checkpoint", "--json").stdout)
    assert (as_json["size"], as_json["origin"]) == (EVENTS + 2, NAME)
    assert as_json["root"] == filled.tree_head().root.hex()
    assert checkpoints.at_size(filled, EVENTS) == note
    assert checkpoints.latest(filled) == as_json["note"]


def test_checkpoint_without_a_key_says_how_to_make_one(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEDGER_CHECKPOINT_KEY", raising=False)
    result = run(ledger.location.url, "checkpoint")
    assert result.exit_code == BAD_INPUT
    assert "ledger keys generate" in result.output
    assert checkpoints.latest(ledger) is None


def test_kept_checkpoints_are_append_only(filled: Ledger, signer: Signer) -> None:
    checkpoints.issue(filled, signer)
    raw = RawSQL(filled)
    table = checkpoints._table(filled)
    for sql in (f"UPDATE {table} SET note = 'x'", f"DELETE FROM {table}"):
        with pytest.raises(Exception, match="append-only"), raw.cursor(bypass_triggers=False) as c:
            c.execute(sql)


def test_a_size_is_kept_with_one_root(filled: Ledger, signer: Signer, tmp_path: Path) -> None:
    note = checkpoints.issue(filled, signer)
    size, root = signed_root(note)
    other = Signer.generate(NAME)  # same name, another key: same text, other signature
    from ledger.checkpoint import Checkpoint, sign_checkpoint

    same = sign_checkpoint(Checkpoint(NAME, size, root), other)
    assert checkpoints.keep(filled, same) == note
    forged = sign_checkpoint(Checkpoint(NAME, size, bytes(32)), other)
    with pytest.raises(checkpoints.CheckpointConflict, match="another root"):
        checkpoints.keep(filled, forged)


def test_inclusion_proofs_verify_three_ways(filled: Ledger, signer: Signer, tmp_path: Path) -> None:
    url = filled.location.url
    checkpoint_file(url, tmp_path / "cp")
    facts = list(filled.facts())
    for fact in facts:
        target = fact.event["event_id"] if fact.position % 2 else str(fact.position)
        answer = proof(run(url, "prove", "inclusion", target))
        assert (answer["type"], answer["position"], answer["leaf_index"]) == (
            "inclusion", fact.position, fact.position - 1,
        )  # fmt: skip
        assert answer["chain_hash"] == fact.hash
        size, root = signed_root(answer["checkpoint"])
        assert answer["tree_size"] == size == EVENTS
        leaf = bytes.fromhex(answer["leaf_hash"])
        assert leaf == hashlib.sha256(b"\x00" + bytes.fromhex(fact.hash)).digest()
        hashes = [bytes.fromhex(h) for h in answer["hashes"]]
        merkle.verify_inclusion(answer["leaf_index"], size, leaf, hashes, root)
        verdict = verify_proof("inclusion", answer, signer.verifier_key, tmp_path)
        assert verdict.exit_code == 0, verdict.output
        # A changed proof hash is refused.
        if hashes:
            bad = {**answer, "hashes": ["00" * 32, *answer["hashes"][1:]]}
            assert verify_proof("inclusion", bad, signer.verifier_key, tmp_path).exit_code == 3
    # The same root from the exported chain alone, with code that shares nothing.
    lines = [json.loads(line) for line in run(url, "log", "--chain").stdout.splitlines()]
    prev = GENESIS
    for line in lines:
        assert line["prev_hash"] == prev
        hashed = {k: line[k] for k in ("position", "prev_hash", "event")}
        canonical = json.dumps(hashed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256(canonical.encode()).hexdigest() == line["chain_hash"]
        prev = line["chain_hash"]
    assert [line["position"] for line in lines] == list(range(1, EVENTS + 1))
    note = checkpoints.latest(filled)
    assert note is not None
    assert mth([bytes.fromhex(line["chain_hash"]) for line in lines]) == signed_root(note)[1]


def test_inclusion_against_a_given_checkpoint(
    filled: Ledger, signer: Signer, tmp_path: Path
) -> None:
    url = filled.location.url
    old = checkpoint_file(url, tmp_path / "old.cp")
    fill(filled, EVENTS + 1, EVENTS + 5)
    run(url, "checkpoint")
    answer = proof(run(url, "prove", "inclusion", "3", "--checkpoint", str(old)))
    assert answer["tree_size"] == EVENTS
    assert answer["checkpoint"] == old.read_text()
    assert verify_proof("inclusion", answer, signer.verifier_key, tmp_path).exit_code == 0
    beyond = run(url, "prove", "inclusion", str(EVENTS + 1), "--checkpoint", str(old))
    assert beyond.exit_code == BAD_INPUT
    assert f"not covered by the checkpoint of size {EVENTS}" in beyond.output


def test_prove_inclusion_refuses_what_it_cannot_prove(filled: Ledger, signer: Signer) -> None:
    url = filled.location.url
    none_yet = run(url, "prove", "inclusion", "1")
    assert none_yet.exit_code == BAD_INPUT
    assert "run `ledger checkpoint` first" in none_yet.output
    run(url, "checkpoint")
    fill(filled, EVENTS + 1, EVENTS + 1)
    later = run(url, "prove", "inclusion", str(EVENTS + 1))
    assert later.exit_code == BAD_INPUT
    assert f"came after the latest checkpoint (size {EVENTS})" in later.output
    unknown = run(url, "prove", "inclusion", str(uuid.uuid4()))
    assert unknown.exit_code == BAD_INPUT
    assert "is not in this ledger" in unknown.output
    for bad, says in (("0", "there is no position 0"), ("99", "there is no position 99"),
                      ("web-001", "neither a position")):  # fmt: skip
        result = run(url, "prove", "inclusion", bad)
        assert result.exit_code == BAD_INPUT, result.output
        assert says in result.output
        assert "Traceback" not in result.output


def test_consistency_proofs_verify(filled: Ledger, signer: Signer, tmp_path: Path) -> None:
    url = filled.location.url
    old = checkpoint_file(url, tmp_path / "old.cp")
    fill(filled, EVENTS + 1, EVENTS + 8)
    new = checkpoint_file(url, tmp_path / "new.cp")
    for args in ((str(old),), (str(old), str(new))):
        answer = proof(run(url, "prove", "consistency", *args))
        old_size, old_root = signed_root(answer["old_checkpoint"])
        new_size, new_root = signed_root(answer["new_checkpoint"])
        assert (
            (answer["old_size"], answer["new_size"]) == (old_size, new_size) == (EVENTS, EVENTS + 8)
        )
        hashes = [bytes.fromhex(h) for h in answer["hashes"]]
        merkle.verify_consistency(old_size, new_size, old_root, new_root, hashes)
        assert verify_proof("consistency", answer, signer.verifier_key, tmp_path).exit_code == 0
    backwards = run(url, "prove", "consistency", str(new), str(old))
    assert backwards.exit_code == BAD_INPUT
    assert f"no consistency proof from size {EVENTS + 8} to size {EVENTS}" in backwards.output


def test_verify_checkpoint_on_an_intact_ledger(
    filled: Ledger, signer: Signer, tmp_path: Path
) -> None:
    url = filled.location.url
    cp = checkpoint_file(url, tmp_path / "cp")
    fill(filled, EVENTS + 1, EVENTS + 3)  # a ledger that grew still extends it
    result = run(url, "verify", "--checkpoint", str(cp), "--key", signer.verifier_key)
    assert result.exit_code == 0, result.output
    assert f"Checkpoint: size {EVENTS}" in result.output
    as_json = json.loads(run(url, "verify", "--checkpoint", str(cp), "--json").stdout)
    assert as_json["intact"] is True
    assert as_json["checkpoint"]["problem"] is None
    other = Signer.generate("ledger.example.org/other")
    wrong_key = run(url, "verify", "--checkpoint", str(cp), "--key", other.verifier_key)
    assert wrong_key.exit_code == BAD_INPUT
    assert "no signature on the note is by a trusted key" in wrong_key.output
    altered = tmp_path / "altered.cp"
    altered.write_text(cp.read_text().replace(f"\n{EVENTS}\n", f"\n{EVENTS - 1}\n"))
    forged = run(url, "verify", "--checkpoint", str(altered), "--key", signer.verifier_key)
    assert forged.exit_code == BAD_INPUT
    assert "does not verify" in forged.output


def rewrite_from(ledger: Ledger, k: int, *, rebuild_tree: bool = True) -> None:
    """Rewrite every event from position ``k`` on, with raw SQL, recompute their chain
    hashes and index digests, and (``rebuild_tree``) rebuild the stored Merkle tree to
    match: a rewrite that the ledger's own tables cannot reveal (plain `ledger verify`
    passes)."""
    raw = RawSQL(ledger)
    facts = list(ledger.facts())
    prev = facts[k - 2].hash if k > 1 else GENESIS
    for fact in facts[k - 1 :]:
        host = fact.event["host"]
        forged = {**fact.event, "host": f"evil-{host}"}
        new_hash = entry_hash(fact.position, prev, forged)
        state = (
            raw.state(fact.position)
            .replace(f'"{host}"'.encode(), f'"evil-{host}"'.encode())
            .replace(fact.hash.encode(), new_hash.encode())
            .replace(fact.prev_hash.encode(), prev.encode())
        )
        raw.run(
            f"UPDATE {raw.table} SET state = ? WHERE originator_version = ?", state, fact.position
        )
        raw.run(
            f"UPDATE {raw.index} SET digest = ? WHERE position = ?",
            content_digest(forged),
            fact.position,
        )
        prev = new_hash
    if rebuild_tree:
        raw.run(f"DELETE FROM {raw.index.replace(INDEX_TABLE, MERKLE_TABLE)}")
        ledger.build_tree()  # nothing when the ledger is smaller than the lowest level kept


def test_a_rewrite_that_leaves_the_tree_fails_plain_verify(filled: Ledger) -> None:
    """The issue's probe: a history rewritten from position 100 on, chain and index
    consistently, passed `ledger verify`; the tree written at append time catches it."""
    fill(filled, EVENTS + 1, 130)
    rewrite_from(filled, 100, rebuild_tree=False)
    assert filled.verify().intact  # the chain and the index alone agree
    result = run(filled.location.url, "verify")
    assert result.exit_code == TAMPERED, result.output
    assert "Merkle tree node over positions 97-112 does not match the chain" in result.output


def test_a_rewrite_from_k_passes_verify_but_not_the_checkpoint(
    filled: Ledger, signer: Signer, tmp_path: Path
) -> None:
    url = filled.location.url
    size = 40  # enough for the store to keep tree nodes, rebuilt by the intruder
    fill(filled, EVENTS + 1, size)
    cp = checkpoint_file(url, tmp_path / "cp")
    rewrite_from(filled, 5)
    plain = filled.verify(check_tree=True)
    assert (plain.intact, plain.tree_checked) == (True, True)  # chain, index and tree agree
    assert run(url, "verify").exit_code == 0
    result = run(url, "verify", "--checkpoint", str(cp))
    assert result.exit_code == TAMPERED, result.output
    assert f"Merkle root of the chain hashes of positions 1–{size}" in result.output
    assert f"history up to position {size} was rewritten" in result.output
    as_json = json.loads(run(url, "verify", "--checkpoint", str(cp), "--json").stdout)
    assert as_json["intact"] is False
    assert "rewritten" in as_json["checkpoint"]["problem"]


def test_a_tree_changed_on_its_own_fails_the_checkpoint(
    filled: Ledger, signer: Signer, tmp_path: Path
) -> None:
    url = filled.location.url
    fill(filled, EVENTS + 1, 40)
    cp = checkpoint_file(url, tmp_path / "cp")
    raw = RawSQL(filled)
    merkle_table = raw.index.replace(INDEX_TABLE, MERKLE_TABLE)
    raw.run(f"UPDATE {merkle_table} SET hash = ?", bytes(32))
    assert filled.verify().intact  # the chain alone is intact
    plain = run(url, "verify")  # but `ledger verify` recomputes the stored tree too
    assert plain.exit_code == TAMPERED, plain.output
    assert "Merkle tree node over positions 1-16 does not match the chain" in plain.output
    assert run(url, "verify", "--checkpoint", str(cp)).exit_code == TAMPERED
    signed = open_checkpoint(cp.read_text(), signer.verifier)
    with pytest.raises(checkpoints.CheckpointConflict, match="stored Merkle tree of size 40"):
        checkpoints.check_ledger(filled, signed, filled.verify(root_at=40))


def test_a_chain_that_fails_verify_fails_with_the_checkpoint_unchecked(
    filled: Ledger, signer: Signer, tmp_path: Path
) -> None:
    url = filled.location.url
    cp = checkpoint_file(url, tmp_path / "cp")
    raw = RawSQL(filled)
    state = raw.state(3).replace(b"web-003", b"web-666")
    raw.run(f"UPDATE {raw.table} SET state = ? WHERE originator_version = ?", state, 3)
    result = run(url, "verify", "--checkpoint", str(cp), "--json")
    assert result.exit_code == TAMPERED
    answer = json.loads(result.stdout)
    assert (answer["intact"], answer["bad_position"]) == (False, 3)
    assert answer["checkpoint"]["problem"].startswith("not checked")
    assert run(url, "verify", "--checkpoint", str(cp)).exit_code == TAMPERED


def test_a_cut_off_ledger_fails_the_checkpoint_and_the_consistency_proof(
    filled: Ledger, signer: Signer, tmp_path: Path
) -> None:
    url = filled.location.url
    cp = checkpoint_file(url, tmp_path / "cp")
    raw = RawSQL(filled)
    raw.run(f"DELETE FROM {raw.table} WHERE originator_version > ?", 8)
    raw.run(f"DELETE FROM {raw.index} WHERE position > ?", 8)
    merkle_table = raw.index.replace(INDEX_TABLE, MERKLE_TABLE)
    raw.run(f"DELETE FROM {merkle_table} WHERE ((idx + 1) << level) > ?", 8)
    assert run(url, "verify").exit_code == 0  # what is left is consistent
    result = run(url, "verify", "--checkpoint", str(cp))
    assert result.exit_code == TAMPERED, result.output
    assert f"ends at position 8 but the checkpoint covers {EVENTS} events" in result.output
    consistency = run(url, "prove", "consistency", str(cp))
    assert consistency.exit_code == TAMPERED
    assert "events after 8 were cut off" in consistency.output
    again = run(url, "checkpoint")  # never signs over a cut
    assert again.exit_code == TAMPERED
    assert "cut off" in again.output


@pytest.fixture
def fork_url(ledger_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A second, empty ledger on the same backend."""
    if locate(ledger_url).backend == "sqlite":
        yield str(tmp_path / "fork.db")
        return
    server = str(request.getfixturevalue("postgres_server_url"))
    schema = f"fork_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield with_query(server, schema=schema)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def test_a_history_rewritten_with_its_tree_fails_the_consistency_proof(
    filled: Ledger, signer: Signer, fork_url: str, tmp_path: Path
) -> None:
    """The rewrite an intruder with the database and the key would make: the same
    events up to position 4, others from 5 on, the tree rebuilt to match, and a new
    checkpoint signed. Against the checkpoint signed before, it fails."""
    url = filled.location.url
    old = checkpoint_file(url, tmp_path / "old.cp")
    exported = run(url, "log", "--json").stdout.splitlines(keepends=True)
    assert run(fork_url, "init").exit_code == 0
    assert run(fork_url, "ingest", "-", input="".join(exported[:4])).exit_code == 0
    fork = Ledger(locate(fork_url))
    try:
        fill(fork, 5, EVENTS + 3, prefix="evil")
        assert fork.tree_head(4).root == filled.tree_head(4).root  # the shared prefix
        new = checkpoint_file(fork_url, tmp_path / "new.cp")
        refused = run(fork_url, "prove", "consistency", str(old), str(new))
        assert refused.exit_code == TAMPERED
        assert f"history up to position {EVENTS} was rewritten" in refused.output
        check = run(fork_url, "verify", "--checkpoint", str(old))
        assert check.exit_code == TAMPERED
        # The fork's own proof, put against the old checkpoint, does not verify.
        made = fork.consistency_proof(EVENTS, EVENTS + 3)
        old_size, old_root = signed_root(old.read_text())
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(old_size, EVENTS + 3, old_root, made.new_root, made.hashes)
        document = {
            "type": "consistency", "old_size": EVENTS, "new_size": EVENTS + 3,
            "hashes": [h.hex() for h in made.hashes],
            "old_checkpoint": old.read_text(), "new_checkpoint": new.read_text(),
        }  # fmt: skip
        verdict = verify_proof("consistency", document, signer.verifier_key, tmp_path)
        assert verdict.exit_code == TAMPERED
    finally:
        fork.close()


def test_log_chain_lists_positions_and_hashes(filled: Ledger) -> None:
    url = filled.location.url
    facts = list(filled.facts())
    lines = [json.loads(x) for x in run(url, "log", "--chain", "--limit", "2").stdout.splitlines()]
    assert lines == [
        {"position": f.position, "prev_hash": f.prev_hash, "chain_hash": f.hash, "event": f.event}
        for f in facts[-2:]
    ]
    plain = run(url, "log", "--json", "--limit", "1").stdout
    assert json.loads(plain) == facts[-1].event  # --json alone keeps the ingestible form
