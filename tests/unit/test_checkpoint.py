"""Signed notes, keys and checkpoints against the C2SP specifications' own examples and
Go's golang.org/x/mod/sumdb/note reference vector, plus round trips and tampering."""

from __future__ import annotations

import contextlib
import os
import pickle
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cli.main import root
from ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    CheckpointKeyError,
    KeySettings,
    NoteError,
    Signer,
    Verifier,
    check_log_name,
    key_id,
    load_signer,
    load_verifier,
    load_verifiers,
    open_checkpoint,
    open_note,
    read_verifiers,
    sign_checkpoint,
    sign_note,
)
from ledger.errors import InvalidInput

# c2sp.org/signed-note, "Verifier keys", Example.
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n"
    "\n"
    "— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXm"
    "RKuwHjG1Yu72IneyaQM=\n"
)
# c2sp.org/signed-note's first example: signed by a key the spec does not publish.
QUASIMODO_SIGNATURE = (
    "— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouF"
    "SQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
)
# golang.org/x/mod/sumdb/note's documented example (package doc and note_test.go).
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT
    + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfq"
    "dngotpRZb6KE6RyyBwJnAM=\n"
)
# The checkpoint bodies of c2sp.org/tlog-checkpoint, tlog-witness and tlog-proof.
SPEC_CHECKPOINTS = [
    ("example.com/behind-the-sofa", 20852163, "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="),
    ("example.com/behind-the-sofa", 14, "/CcKVZM9n65aH7jLaIZuUB4/MSlEFQ4+ldwUC21rDHM="),
    ("example.com/fancylog", 109482, "sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08="),
]

NAME = "ledger.example.org/production"


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate(NAME)


def test_the_spec_vkey_verifies_the_spec_note() -> None:
    verifier = Verifier.parse(SPEC_VKEY)
    assert (verifier.name, verifier.key_id) == ("example.com/foo", 0x530D903A)
    assert verifier.vkey == SPEC_VKEY
    assert open_note(SPEC_NOTE, [verifier]) == (
        "This is an example message.\n",
        ["example.com/foo"],
    )


def test_the_key_id_is_the_one_the_spec_recommends() -> None:
    verifier = Verifier.parse(SPEC_VKEY)
    assert key_id("example.com/foo", verifier.public_key) == 0x530D903A


def test_gos_reference_key_signs_its_reference_note_byte_for_byte() -> None:
    """Ed25519 is deterministic: the same key and text give Go's very note."""
    signer = Signer.parse(GO_SKEY)
    assert signer.verifier_key == GO_VKEY
    assert signer.sign(GO_TEXT) == GO_NOTE
    assert open_note(GO_NOTE, [Verifier.parse(GO_VKEY)]) == (GO_TEXT, ["PeterNeumann"])


def test_a_note_signed_only_by_an_unknown_key_is_refused() -> None:
    note = "Ognuno sta solo sul cuor della terra\n\n" + QUASIMODO_SIGNATURE
    with pytest.raises(NoteError, match="no signature on the note is by a trusted key"):
        open_note(note, [Verifier.parse(SPEC_VKEY)])


def test_unknown_signatures_are_ignored_beside_a_known_one(signer: Signer) -> None:
    note = signer.sign("hello\n") + QUASIMODO_SIGNATURE
    assert open_note(note, [signer.verifier]) == ("hello\n", [NAME])
    # The same name with another key id is another key: ignored too.
    other = Signer.generate(NAME)
    assert other.key_id != signer.key_id
    both = sign_note("hello\n", [other, signer])
    assert open_note(both, [signer.verifier]) == ("hello\n", [NAME])
    assert open_note(both, [signer.verifier, other.verifier])[1] == [NAME]


def test_a_known_signature_that_does_not_verify_refuses_the_note(signer: Signer) -> None:
    forged = signer.sign("pay 10\n").replace("pay 10\n", "pay 99\n", 1)
    with pytest.raises(NoteError, match=f"the signature by {NAME} .* does not verify"):
        open_note(forged, [signer.verifier])


def single_byte_changes(note: str, flips: tuple[int, ...]) -> Iterator[tuple[str, str]]:
    """Every text ``note`` becomes with one byte changed (the change, the text); the
    changes that are no longer UTF-8 are not notes at all and are left out."""
    data = note.encode()
    for offset in range(len(data)):
        for flip in flips:
            changed = bytearray(data)
            changed[offset] ^= flip
            with contextlib.suppress(UnicodeDecodeError):
                yield f"byte {offset} ^ {flip:#04x}", changed.decode()


def accepted(open_: Callable[[str], object], text: str) -> bool:
    try:
        open_(text)
    except InvalidInput:
        return False
    return True


@pytest.mark.parametrize("note", [SPEC_NOTE, GO_NOTE])
def test_a_change_of_any_single_byte_is_refused(note: str) -> None:
    verifiers = [Verifier.parse(SPEC_VKEY), Verifier.parse(GO_VKEY)]
    assert accepted(lambda text: open_note(text, verifiers), note)
    changes = list(single_byte_changes(note, (0x01, 0x20, 0x80)))
    assert len(changes) > len(note)
    assert [c for c, text in changes if accepted(lambda t: open_note(t, verifiers), text)] == []


def test_a_checkpoint_note_with_any_byte_changed_is_refused(signer: Signer) -> None:
    note = sign_checkpoint(Checkpoint(NAME, 1234, bytes(range(32))), signer)
    assert accepted(lambda text: open_checkpoint(text, signer.verifier), note)
    changes = list(single_byte_changes(note, (0x01, 0x02, 0x40)))
    assert len(changes) > len(note)
    assert [
        c for c, text in changes if accepted(lambda t: open_checkpoint(t, signer.verifier), text)
    ] == []


@pytest.mark.parametrize(
    ("note", "reason"),
    [
        ("no blank line\n— example.com/foo AAAA\n", "no blank line"),
        ("text\n\n", "must each end in a newline"),
        ("text\n\n— example.com/foo Uw2QOkn8", "must each end in a newline"),
        ("text\n\n-- example.com/foo Uw2QOkn8srV1\n", "does not start with '— '"),
        ("text\n\n— example.com/foo not+base64!\n", "signature line 1 is not"),
        ("text\n\n— example.com/foo AAAA\n", "signature line 1 is not"),  # 3 bytes: no id
        ("text\n\n—  AAAAAAA=\n", "signature line 1 is not"),  # no name
        ("te\txt\n\n— example.com/foo AAAAAAA=\n", "control character"),
        ("te\rxt\n\n— example.com/foo AAAAAAA=\n", "control character"),
    ],
)
def test_malformed_notes_are_refused_saying_why(note: str, reason: str) -> None:
    with pytest.raises(NoteError, match=reason):
        open_note(note, [Verifier.parse(SPEC_VKEY)])


def test_more_than_100_signatures_are_not_read(signer: Signer) -> None:
    known = "t\n\n" + signer.signature_line("t\n")
    stranger = Signer.generate("stranger.example/x").signature_line("t\n")
    assert open_note(known + stranger * 99, [signer.verifier])[1] == [NAME]
    with pytest.raises(NoteError, match="at most 100"):
        open_note(known + stranger * 100, [signer.verifier])


def test_a_note_text_may_hold_blank_lines(signer: Signer) -> None:
    text = "first\n\nthird\n\n"
    assert open_note(signer.sign(text), [signer.verifier]) == (text, [NAME])


@pytest.mark.parametrize(("origin", "size", "root"), SPEC_CHECKPOINTS)
def test_the_spec_checkpoints_parse_and_print_back(origin: str, size: int, root: str) -> None:
    body = f"{origin}\n{size}\n{root}\n"
    checkpoint = Checkpoint.parse(body)
    assert (checkpoint.origin, checkpoint.size, len(checkpoint.root)) == (origin, size, 32)
    assert checkpoint.body() == body


def test_checkpoints_round_trip_signed(signer: Signer) -> None:
    for checkpoint in (
        Checkpoint(NAME, 0, bytes(32)),
        Checkpoint(NAME, 1, os.urandom(32)),
        Checkpoint(NAME, 2**64 - 1, os.urandom(32), ("extension one", "Timestamp: 1")),
    ):
        assert Checkpoint.parse(checkpoint.body()) == checkpoint
        assert open_checkpoint(sign_checkpoint(checkpoint, signer), signer.verifier) == checkpoint


ROOT = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (f"o\n1\n{ROOT}", "must end in a newline"),
        ("o\n1\n", "has 2 lines"),
        (f"\n1\n{ROOT}\n", "line 1 \\(origin\\) is empty"),
        (f"o\n01\n{ROOT}\n", "line 2 \\(tree size\\) '01'"),
        (f"o\n-1\n{ROOT}\n", "line 2 \\(tree size\\)"),
        (f"o\n+1\n{ROOT}\n", "line 2 \\(tree size\\)"),
        (f"o\n 1\n{ROOT}\n", "line 2 \\(tree size\\)"),
        (f"o\n{2**64}\n{ROOT}\n", "line 2 \\(tree size\\)"),
        (f"o\n١\n{ROOT}\n", "line 2 \\(tree size\\)"),  # an Arabic-Indic one: not ASCII
        ("o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n", "line 3 \\(root hash\\)"),
        ("o\n1\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n", "line 3 \\(root hash\\)"),
        ("o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n", "line 3 \\(root hash\\)"),
        ("o\n1\nAAAA\n", "line 3 \\(root hash\\)"),  # 3 bytes
        (f"o\n1\n{ROOT}\next\n\n", "line 5 \\(an extension line\\) is empty"),
    ],
)
def test_malformed_checkpoints_are_refused_naming_the_line(body: str, reason: str) -> None:
    with pytest.raises(CheckpointError, match=reason):
        Checkpoint.parse(body)


def test_a_checkpoint_is_signed_only_by_its_origins_key(signer: Signer) -> None:
    with pytest.raises(CheckpointError, match="is not the key's name"):
        sign_checkpoint(Checkpoint("other.example/log", 1, bytes(32)), signer)
    # A note of another origin signed by this key (not through sign_checkpoint): refused.
    note = signer.sign(Checkpoint("other.example/log", 1, bytes(32)).body())
    with pytest.raises(CheckpointError, match="another log's checkpoint"):
        open_checkpoint(note, signer.verifier)


def test_another_key_of_the_same_name_does_not_open_a_checkpoint(signer: Signer) -> None:
    note = sign_checkpoint(Checkpoint(NAME, 3, bytes(32)), signer)
    with pytest.raises(NoteError, match="no signature on the note is by a trusted key"):
        open_checkpoint(note, Signer.generate(NAME).verifier)


def test_mangled_verifier_keys_are_refused() -> None:
    """As Go's TestNewVerifier: every proper substring and every byte + 1 is refused."""
    for start in range(len(GO_VKEY)):
        for end in range(start + 1, len(GO_VKEY) + 1):
            if (start, end) != (0, len(GO_VKEY)):
                with pytest.raises(CheckpointKeyError):
                    Verifier.parse(GO_VKEY[start:end])
    for offset in range(len(GO_VKEY)):
        changed = GO_VKEY[:offset] + chr(ord(GO_VKEY[offset]) + 1) + GO_VKEY[offset + 1 :]
        with pytest.raises(CheckpointKeyError):
            Verifier.parse(changed)


def test_mangled_private_keys_are_refused_without_showing_them() -> None:
    secret = GO_SKEY.rsplit("+", 1)[1]
    for offset in range(len(GO_SKEY)):
        changed = GO_SKEY[:offset] + chr(ord(GO_SKEY[offset]) + 1) + GO_SKEY[offset + 1 :]
        with pytest.raises(CheckpointKeyError) as caught:
            Signer.parse(changed)
        assert secret[:12] not in str(caught.value)
        assert changed.rsplit("+", 1)[-1][:12] not in str(caught.value)


def test_keys_never_show_in_reprs_strs_or_pickles(tmp_path: Path) -> None:
    signer = Signer.parse(GO_SKEY)
    secret = GO_SKEY.rsplit("+", 1)[1]
    for text in (repr(signer), str(signer), f"{signer}", repr(signer.verifier)):
        assert secret not in text
        assert secret[4:20] not in text
    assert repr(signer) == "Signer(name='PeterNeumann', key_id=c74f20a3)"
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(signer)


def test_a_saved_key_loads_back_is_private_and_is_never_overwritten(tmp_path: Path) -> None:
    signer = Signer.generate(NAME)
    path = tmp_path / "checkpoint.key"
    old_umask = os.umask(0)
    try:
        signer.save(path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith(f"PRIVATE+KEY+{NAME}+{signer.key_id:08x}+")
    loaded = Signer.load(path)
    assert loaded.verifier_key == signer.verifier_key
    assert open_note(loaded.sign("x\n"), [signer.verifier])[1] == [NAME]
    with pytest.raises(CheckpointKeyError, match="refusing to overwrite") as caught:
        Signer.generate(NAME).save(path)
    assert "PRIVATE" not in str(caught.value)
    assert Signer.load(path).verifier_key == signer.verifier_key


def test_a_key_file_others_may_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.key"
    Signer.generate(NAME).save(path)
    path.chmod(0o640)
    with pytest.raises(CheckpointKeyError, match="chmod 600") as caught:
        Signer.load(path)
    assert path.read_text().strip() not in str(caught.value)


def test_settings_name_the_keys_and_say_what_to_do_without_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEDGER_CHECKPOINT_KEY", raising=False)
    monkeypatch.delenv("LEDGER_CHECKPOINT_VKEY", raising=False)
    with pytest.raises(CheckpointKeyError, match="ledger keys generate"):
        load_signer(KeySettings())
    with pytest.raises(CheckpointKeyError, match="LEDGER_CHECKPOINT_VKEY"):
        load_verifier(KeySettings())
    path = tmp_path / "k"
    signer = Signer.generate(NAME)
    signer.save(path)
    monkeypatch.setenv("LEDGER_CHECKPOINT_KEY", str(path))
    assert load_signer().verifier_key == signer.verifier_key
    assert load_verifier() == signer.verifier  # the public half of the private key
    monkeypatch.setenv("LEDGER_CHECKPOINT_VKEY", SPEC_VKEY)
    assert load_verifier() == Verifier.parse(SPEC_VKEY)
    keys = tmp_path / "keys.pub"
    keys.write_text(f"# rotation: old, then new\n{SPEC_VKEY}\n\n{signer.verifier_key}\n")
    monkeypatch.setenv("LEDGER_CHECKPOINT_VKEY", str(keys))
    assert load_verifiers() == [Verifier.parse(SPEC_VKEY), signer.verifier]
    monkeypatch.setenv("LEDGER_CHECKPOINT_KEY", str(tmp_path / "missing"))
    with pytest.raises(CheckpointKeyError, match="does not exist"):
        load_signer()


def test_read_verifiers_says_when_a_value_is_neither_key_nor_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointKeyError, match="neither a verifier key"):
        read_verifiers(str(tmp_path / "absent.pub"))
    with pytest.raises(CheckpointKeyError, match="not a verifier key"):
        read_verifiers("example.com/foo+zz+AAAA")


@pytest.mark.parametrize(
    "name",
    ["ledger.example.org/production", "ledger.example.org", "a.b:8443/x/y-z_1.2~3"],
)
def test_ledger_names_are_schema_less_urls(name: str) -> None:
    assert check_log_name(name) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("https://ledger.example.org/p", "has a scheme"),
        ("ledger example", "spaces"),
        ("ledger.example.org/a+b", "'\\+'"),
        ("", "must not be empty"),
        ("production", "not a schema-less URL"),
        ("Ledger.Example.org/p", "not a schema-less URL"),
        ("ledger.example.org/", "not a schema-less URL"),
        ("ledger.example.org/a//b", "not a schema-less URL"),
    ],
)
def test_other_ledger_names_are_refused_saying_why(name: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        check_log_name(name)


def test_keys_generate_writes_a_private_file_and_prints_only_the_vkey(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEDGER_CHECKPOINT_VKEY", raising=False)
    key = tmp_path / "checkpoint.key"
    result = CliRunner().invoke(root, ["keys", "generate", NAME, "--out", str(key)])
    assert result.exit_code == 0, result.output
    vkey = result.stdout.strip()
    verifier = Verifier.parse(vkey)
    assert verifier.name == NAME
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (tmp_path / "checkpoint.key.pub").read_text() == vkey + "\n"
    secret = key.read_text().strip().rsplit("+", 1)[1]
    assert secret not in result.output
    assert Signer.load(key).verifier == verifier
    # Never overwritten: the same file again is refused and left as it was.
    before = key.read_bytes()
    again = CliRunner().invoke(root, ["keys", "generate", NAME, "--out", str(key)])
    assert again.exit_code == 2
    assert "refusing to overwrite" in again.output
    assert key.read_bytes() == before
    # `keys show` prints the configured key's vkey, and nothing secret.
    monkeypatch.setenv("LEDGER_CHECKPOINT_KEY", str(key))
    shown = CliRunner().invoke(root, ["keys", "show"])
    assert (shown.exit_code, shown.stdout) == (0, vkey + "\n")
    shown = CliRunner().invoke(root, ["keys", "show", "--json"])
    assert orjson.loads(shown.stdout) == [
        {"name": NAME, "key_id": f"{verifier.key_id:08x}", "vkey": vkey}
    ]


def test_keys_generate_refuses_a_name_that_is_not_a_schema_less_url(tmp_path: Path) -> None:
    key = tmp_path / "k"
    result = CliRunner().invoke(root, ["keys", "generate", "https://x.org/a", "--out", str(key)])
    assert result.exit_code == 2
    assert "has a scheme" in result.output
    assert not key.exists()


def test_keys_show_says_what_to_do_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEDGER_CHECKPOINT_KEY", raising=False)
    monkeypatch.delenv("LEDGER_CHECKPOINT_VKEY", raising=False)
    result = CliRunner().invoke(root, ["keys", "show"])
    assert result.exit_code == 2
    assert "no checkpoint key: run `ledger keys generate" in result.output


NOTE_CHARACTERS = st.characters(
    exclude_categories=["Cs"], exclude_characters=[chr(c) for c in range(32) if c != 10]
)
LINE = st.text(NOTE_CHARACTERS.filter(lambda c: c != "\n"), min_size=1, max_size=40)
HYPOTHESIS_SIGNER = Signer.generate(NAME)


@settings(max_examples=200, deadline=None)
@given(text=st.text(NOTE_CHARACTERS, max_size=200).map(lambda t: t + "\n"))
def test_any_note_text_round_trips(text: str) -> None:
    note = HYPOTHESIS_SIGNER.sign(text)
    assert open_note(note, [HYPOTHESIS_SIGNER.verifier]) == (text, [NAME])


@settings(max_examples=200, deadline=None)
@given(
    origin=LINE,
    size=st.integers(0, 2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(LINE, max_size=3).map(tuple),
)
def test_any_checkpoint_round_trips(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    checkpoint = Checkpoint(origin, size, root, extensions)
    assert Checkpoint.parse(checkpoint.body()) == checkpoint
