"""The verifiable log over HTTP against a real server, on both backends: the latest
checkpoint, inclusion and consistency proofs that verify with `ledger.merkle` and with
`ledger verify-proof`, the 404s and 422s, and receipts from `POST /api/events` and the
host agent."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner

from cli.main import root
from ledger import checkpoints, merkle
from ledger.application import Ledger
from ledger.checkpoint import Signer, Verifier, open_checkpoint
from tests.conftest import checkpoint_key_in_env
from tests.factories import event_dict, jsonl, make_event
from tests.integration.test_host_agent import profiles
from tests.services.api import ApiServer, api_server_fixture  # noqa: F401 (fixture)

NAME = "ledger.example.org/api-test"
EVENTS = 9


@pytest.fixture
def signer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Signer:
    """The server's checkpoint key (LEDGER_CHECKPOINT_KEY, read when it signs)."""
    return checkpoint_key_in_env(NAME, tmp_path, monkeypatch)


@pytest.fixture
def filled(ledger: Ledger) -> Ledger:
    ledger.append([make_event("health_reported", host=f"web-{i:03}") for i in range(EVENTS)])
    return ledger


def get(server: ApiServer, path: str, role: str | None = "reader", **params: Any) -> Any:
    headers = server.headers(role) if role else {}
    return httpx.get(server.base + path, headers=headers, params=params, timeout=30)


def verifier(signer: Signer) -> Verifier:
    return Verifier.parse(signer.verifier_key)


def check_inclusion(answer: dict[str, Any], signer: Signer) -> None:
    """The proof leads to the root its signed checkpoint names."""
    checkpoint = open_checkpoint(answer["checkpoint"], verifier(signer))
    assert answer["tree_size"] == checkpoint.size
    leaf = bytes.fromhex(answer["leaf_hash"])
    assert leaf == merkle.leaf_hash(bytes.fromhex(answer["chain_hash"]))
    hashes = [bytes.fromhex(h) for h in answer["hashes"]]
    merkle.verify_inclusion(answer["leaf_index"], checkpoint.size, leaf, hashes, checkpoint.root)


def verify_proof(kind: str, document: dict[str, Any], key: str, tmp_path: Path) -> int:
    path = tmp_path / f"proof-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(document))
    result = CliRunner().invoke(root, ["verify-proof", kind, str(path), "--key", key])
    return result.exit_code


def test_the_latest_checkpoint(api_server: ApiServer, filled: Ledger, signer: Signer) -> None:
    none_yet = get(api_server, "/api/checkpoint")
    assert none_yet.status_code == 404
    assert "run `ledger checkpoint`" in none_yet.json()["message"]
    note = checkpoints.issue(filled, signer)
    answer = get(api_server, "/api/checkpoint").json()
    assert answer["note"] == note
    checkpoint = open_checkpoint(answer["note"], verifier(signer))
    assert (answer["origin"], answer["size"], answer["root"]) == (
        NAME, EVENTS, checkpoint.root.hex(),
    )  # fmt: skip
    assert get(api_server, "/api/checkpoint", role=None).status_code == 401


def test_inclusion_proofs(
    api_server: ApiServer, filled: Ledger, signer: Signer, tmp_path: Path
) -> None:
    old = checkpoints.issue(filled, signer)
    filled.append([make_event("health_reported", host="web-100")])
    checkpoints.issue(filled, signer)
    facts = list(filled.facts())
    for fact in facts:
        answer = get(api_server, "/api/proof/inclusion", position=fact.position).json()
        assert answer["tree_size"] == EVENTS + 1
        assert answer["chain_hash"] == fact.hash
        check_inclusion(answer, signer)
    by_id = get(api_server, "/api/proof/inclusion", event_id=facts[2].event["event_id"])
    assert by_id.json()["position"] == 3
    assert verify_proof("inclusion", by_id.json(), signer.verifier_key, tmp_path) == 0
    sized = get(api_server, "/api/proof/inclusion", position=2, size=EVENTS).json()
    assert sized["checkpoint"] == old
    check_inclusion(sized, signer)


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"position": 1, "size": 4}, 404, "no checkpoint of size 4 was kept"),
        ({"position": EVENTS + 1}, 404, f"not covered by the checkpoint of size {EVENTS}"),
        ({"event_id": str(uuid.UUID(int=7))}, 404, "is not in this ledger"),
        ({}, 422, "give either position or event_id"),
        ({"position": 1, "event_id": str(uuid.UUID(int=7))}, 422, "either position or"),
        ({"position": "1.0"}, 422, "position"),
        ({"position": 0}, 422, "position"),
        ({"event_id": "not-a-uuid"}, 422, "event_id"),
    ],
)
def test_inclusion_refusals(
    api_server: ApiServer, filled: Ledger, signer: Signer, params: dict[str, Any], status: int,
    says: str,
) -> None:  # fmt: skip
    checkpoints.issue(filled, signer)
    answer = get(api_server, "/api/proof/inclusion", **params)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["message"]


def test_consistency_proofs(
    api_server: ApiServer, filled: Ledger, signer: Signer, tmp_path: Path
) -> None:
    assert get(api_server, "/api/proof/consistency", old=3).status_code == 404
    checkpoints.issue(filled, signer)
    filled.append([make_event("health_reported", host=f"db-{i}") for i in range(5)])
    checkpoints.issue(filled, signer)
    wanted: list[dict[str, Any]] = [{"old": EVENTS}, {"old": EVENTS, "new": EVENTS + 5}]
    for params in wanted:
        answer = get(api_server, "/api/proof/consistency", **params).json()
        old = open_checkpoint(answer["old_checkpoint"], verifier(signer))
        new = open_checkpoint(answer["new_checkpoint"], verifier(signer))
        assert (old.size, new.size) == (EVENTS, EVENTS + 5)
        hashes = [bytes.fromhex(h) for h in answer["hashes"]]
        merkle.verify_consistency(old.size, new.size, old.root, new.root, hashes)
        assert verify_proof("consistency", answer, signer.verifier_key, tmp_path) == 0
    missing = get(api_server, "/api/proof/consistency", old=EVENTS - 1)
    assert missing.status_code == 404
    assert f"no checkpoint of size {EVENTS - 1} was kept" in missing.json()["message"]
    assert get(api_server, "/api/proof/consistency").status_code == 422
    assert get(api_server, "/api/proof/consistency", old="x").status_code == 422
    backwards = get(api_server, "/api/proof/consistency", old=EVENTS + 5, new=EVENTS)
    assert backwards.status_code == 404
    assert "no consistency proof from size" in backwards.json()["message"]


def post_events(server: ApiServer, body: bytes, **params: str) -> Any:
    headers = {**server.headers("writer"), "Content-Type": "application/x-ndjson"}
    return httpx.post(
        server.base + "/api/events", headers=headers, content=body, params=params, timeout=30
    )


def test_receipts(api_server: ApiServer, ledger: Ledger, signer: Signer, tmp_path: Path) -> None:
    events = [event_dict("health_reported", host=f"web-{i}") for i in range(3)]
    first = post_events(api_server, jsonl(*events), receipt="true")
    assert first.status_code == 201, first.text
    answer = first.json()
    assert answer["receipt_problem"] is None
    assert [r["event_id"] for r in answer["receipts"]] == [e["event_id"] for e in events]
    for receipt, stored in zip(answer["receipts"], answer["events"], strict=True):
        assert receipt["position"] == stored["position"]
        check_inclusion(receipt, signer)
        assert verify_proof("inclusion", receipt, signer.verifier_key, tmp_path) == 0
    assert checkpoints.latest(ledger) == answer["receipts"][0]["checkpoint"]
    again = post_events(api_server, jsonl(*events), receipt="true")  # a retry: receipts too
    assert again.status_code == 200
    assert [r["position"] for r in again.json()["receipts"]] == [1, 2, 3]
    plain = post_events(api_server, jsonl(event_dict("health_reported")))
    assert "receipts" not in plain.json()
    assert (
        post_events(api_server, jsonl(event_dict("health_reported")), receipt="yes").status_code
        == 422
    )
    schemas = httpx.get(f"{api_server.base}/openapi.json").json()["components"]["schemas"]
    described = schemas["Appended"]["properties"]
    assert {"receipts", "receipt_problem"} <= described.keys()
    assert set(answer["receipts"][0]) == set(schemas["Receipt"]["properties"])


def test_no_receipt_without_a_key(
    api_server: ApiServer, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEDGER_CHECKPOINT_KEY", raising=False)
    answer = post_events(api_server, jsonl(event_dict("health_reported")), receipt="true")
    assert answer.status_code == 201
    assert answer.json()["receipts"] is None
    assert "no checkpoint key" in answer.json()["receipt_problem"]
    assert ledger.count() == 1  # stored all the same


def test_the_host_agent_keeps_its_receipts(
    api_server: ApiServer, ledger: Ledger, signer: Signer, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text(api_server.tokens["writer"])
    kept = tmp_path / "state" / "receipts.jsonl"
    (tmp_path / "p").mkdir()
    directory = profiles(tmp_path / "p")
    for _ in range(2):
        result = CliRunner().invoke(
            root,
            ["agent", "run", "web-001", "--env", "production", "--profiles",
             str(directory), "--http", api_server.base, "--token-file",
             str(token), "--receipts", str(kept), "--once"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    receipts = [orjson.loads(line) for line in kept.read_bytes().splitlines()]
    facts = list(ledger.facts())
    assert [r["event_id"] for r in receipts] == [f.event["event_id"] for f in facts]
    for receipt in receipts:
        check_inclusion(receipt, signer)
    kafka = CliRunner().invoke(
        root,
        ["agent", "run", "h", "--env", "e", "--profiles", str(directory),
         "--kafka", "127.0.0.1:1", "--receipts", str(kept), "--once"],
    )  # fmt: skip
    assert kafka.exit_code == 2
    assert "--receipts needs --http" in kafka.output
