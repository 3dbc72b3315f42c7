"""``python -m bench.proofs``: checkpoints and proofs as ``ledger checkpoint``, ``ledger
prove``, the HTTP API and receipts give them, each next to the raw call (or the plain
request) it is built on, in the same run, on a large ledger (issue 19).

For each backend (``--backends``), a ledger of ``--events`` small events
(``bench.events.small_events``) built with ``Ledger.append`` in batches of 10,000 as
``bench.merkle`` builds it, so the tree is the one appends maintain. ``--ledger FILE``
keeps the SQLite ledger there: built or topped up to ``--events``, then reused by the
next run; each run works on a copy in a scratch folder, since it writes (checkpoints,
tokens, the events it appends and posts), so the kept file never changes.

Each pair is ``--repeat`` samples; in a sample both calls run once, each timed alone,
and which one goes first alternates, so that the machine's load drifts over both alike.
The figures are the median and the max of the samples, and the ratio of the medians:

1. checkpoint — one small event is appended before each sample (not timed), so each
   checkpoint signs a new size, as ``ledger checkpoint`` and the checkpoint collector
   do: ``checkpoints.issue`` (the newest kept checkpoint read and checked against the
   tree by one consistency read, the head signed with Ed25519, one INSERT) vs
   ``Ledger.tree_head()``.
2. inclusion proof — random positions, against the newest kept checkpoint:
   ``checkpoints.inclusion_answer`` (what ``ledger prove inclusion`` and the endpoint
   run: the proof, its root checked against the checkpoint's, the JSON document) vs
   ``Ledger.inclusion_proof(position, size)``.
3. consistency proof — from checkpoints signed and kept at random sizes (before the
   timing) to the newest: ``checkpoints.consistency_answer`` vs
   ``Ledger.consistency_proof(old, new)``.
4. HTTP — ``ledger serve --no-project`` in a subprocess (so the views are not brought
   up to date meanwhile; tokens from ``ledger token create``), one keep-alive
   connection (``http.client``), the JSON answer parsed: ``GET /api/checkpoint``,
   ``/api/proof/inclusion?position=P`` and ``/api/proof/consistency?old=S`` vs what the
   endpoint calls, in this process (the notes read as it reads them: ``latest``,
   ``at_size``). The answer over HTTP is checked against the in-process one first.
5. receipts — ``POST /api/events`` of ``--post-batch`` new small events
   (application/x-ndjson) with ``?receipt=true`` (a checkpoint signed and kept, a proof
   per event) vs without, per event (request time / batch).
6. verify — the real CLI in a subprocess on the same ledger, the server stopped:
   ``ledger verify --checkpoint FILE --key VKEY`` (the newest kept checkpoint) vs
   ``ledger verify``, wall time with the process start; best (and worst) of
   ``--verify-runs``, taking turns.

Targets (issue 19): a proof at most 50 ms, a checkpoint at most 1 s. The commit and the
files of ``ledger``, ``api``, ``cli`` and ``projections`` that differ from it, the
machine and the load average at start and end are printed with the figures, as a
Markdown section ready to paste (``--markdown FILE`` writes it there too).
``--events 2000 --repeat 3 --verify-runs 1`` makes a run of seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.api import children_cpu, code_state, free_port, ledger_command, server
from bench.cli import ledger_command as ledger_program
from bench.events import small_events
from bench.machine import describe
from bench.memory import ROOT
from bench.merkle import BUILD_BATCH, build
from bench.postgres import create_schema, drop_schema, ledger_url, postgres_server, server_settings
from ledger import checkpoints
from ledger.application import Ledger
from ledger.checkpoint import Checkpoint, Signer, sign_checkpoint
from ledger.merkle import leaf_hash, verify_consistency, verify_inclusion
from ledger.store import locate

ORIGIN = "bench.example.org/ledger"
PROOF_TARGET_MS = 50.0
CHECKPOINT_TARGET_MS = 1000.0
ROWS = (
    "checkpoint",
    "inclusion proof",
    "consistency proof",
    "GET /api/checkpoint",
    "GET /api/proof/inclusion",
    "GET /api/proof/consistency",
    "POST /api/events?receipt=true, per event",
    "ledger verify --checkpoint",
)
"""The rows of each backend's table, in order (the smoke test checks each is printed)."""


@dataclass(frozen=True)
class Pair:
    """One row: a call timed next to its baseline in the same samples (milliseconds)."""

    row: str
    candidate: str
    baseline: str
    candidate_ms: list[float]
    baseline_ms: list[float]
    target_ms: float | None = None
    best_of: bool = False  # verify: the best run, not the median
    cpu_ms: tuple[list[float], list[float]] | None = None  # verify: the CLI process's CPU

    def typical(self, samples: list[float]) -> float:
        return min(samples) if self.best_of else statistics.median(samples)

    @property
    def ratio(self) -> float:
        return self.typical(self.candidate_ms) / self.typical(self.baseline_ms)

    def verdict(self) -> str:
        if self.target_ms is None:
            return ""
        limit = (
            f"≤ {self.target_ms / 1000:g} s"
            if self.target_ms >= 1000
            else f"≤ {self.target_ms:g} ms"
        )
        if max(self.candidate_ms) <= self.target_ms:
            return f"{limit}: met (max too)"
        if self.typical(self.candidate_ms) <= self.target_ms:
            return f"{limit}: met (median; max over)"
        return f"{limit}: **not met**"


@dataclass(frozen=True)
class Run:
    backend: str
    events: int  # at the start of the timings
    build_seconds: float
    pairs: list[Pair]


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def duration(ms: float) -> str:
    return f"{ms / 1000:.2f} s" if ms >= 1000 else f"{ms:.2f} ms"


def in_turns(
    samples: int,
    candidate: Callable[[int], object],
    baseline: Callable[[int], object],
    before: Callable[[int], object] | None = None,
) -> tuple[list[float], list[float]]:
    """Both calls once per sample, each timed alone, the first of them alternating;
    ``before`` runs untimed at the start of each sample. Milliseconds."""
    timings: tuple[list[float], list[float]] = ([], [])
    for i in range(samples):
        if before is not None:
            before(i)
        order = [(candidate, timings[0]), (baseline, timings[1])]
        for call, out in order if i % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            call(i)
            out.append((time.perf_counter() - start) * 1000)
    return timings


# --- 1-3: the core calls -------------------------------------------------------------


def keep_old_checkpoints(ledger: Ledger, signer: Signer, sizes: list[int]) -> None:
    """Sign and keep checkpoints at ``sizes`` (what ``ledger checkpoint`` left earlier)."""
    for size in sorted(set(sizes)):
        root = ledger.tree_head(size).root
        checkpoints.keep(ledger, sign_checkpoint(Checkpoint(signer.name, size, root), signer))


def core_pairs(ledger: Ledger, signer: Signer, repeat: int, olds: list[int]) -> list[Pair]:
    grow = iter(small_events(repeat))
    cand, base = in_turns(
        repeat,
        lambda _: checkpoints.issue(ledger, signer),
        lambda _: ledger.tree_head(),
        before=lambda _: ledger.append([next(grow)]),
    )
    checkpoint = Pair(ROWS[0], "`checkpoints.issue`", "`Ledger.tree_head()`", cand, base,
                      CHECKPOINT_TARGET_MS)  # fmt: skip
    note = checkpoints.latest(ledger)
    assert note is not None
    size = checkpoints.parse_unverified(note).size
    rng = random.Random(19)
    positions = [rng.randint(1, size) for _ in range(repeat)]
    for position in positions[:10]:
        check_inclusion(checkpoints.inclusion_answer(ledger, position, note))
    cand, base = in_turns(
        repeat,
        lambda i: checkpoints.inclusion_answer(ledger, positions[i], note),
        lambda i: ledger.inclusion_proof(positions[i], size),
    )
    inclusion = Pair(ROWS[1], "`checkpoints.inclusion_answer`", "`Ledger.inclusion_proof`",
                     cand, base, PROOF_TARGET_MS)  # fmt: skip
    old_notes = [checkpoints.at_size(ledger, old) or "" for old in olds]
    for old_note in old_notes[:10]:
        check_consistency(checkpoints.consistency_answer(ledger, old_note, note))
    cand, base = in_turns(
        repeat,
        lambda i: checkpoints.consistency_answer(ledger, old_notes[i], note),
        lambda i: ledger.consistency_proof(olds[i], size),
    )
    consistency = Pair(ROWS[2], "`checkpoints.consistency_answer`",
                       "`Ledger.consistency_proof`", cand, base, PROOF_TARGET_MS)  # fmt: skip
    return [checkpoint, inclusion, consistency]


def check_inclusion(answer: dict[str, Any]) -> None:
    """The proof leads to its checkpoint's root (``verify_inclusion`` raises otherwise)."""
    root = checkpoints.parse_unverified(answer["checkpoint"]).root
    hashes = [bytes.fromhex(h) for h in answer["hashes"]]
    leaf = leaf_hash(bytes.fromhex(answer["chain_hash"]))
    verify_inclusion(answer["leaf_index"], answer["tree_size"], leaf, hashes, root)


def check_consistency(answer: dict[str, Any]) -> None:
    old = checkpoints.parse_unverified(answer["old_checkpoint"])
    new = checkpoints.parse_unverified(answer["new_checkpoint"])
    hashes = [bytes.fromhex(h) for h in answer["hashes"]]
    verify_consistency(old.size, new.size, old.root, new.root, hashes)


# --- 4-5: HTTP -----------------------------------------------------------------------


def token(url: str, role: str) -> str:
    name = f"bench-proofs-{role}-{time.time_ns()}"
    done = subprocess.run(
        ledger_command(url, "token", "create", name, "--role", role, "--json"),
        cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    return str(json.loads(done.stdout)["token"])


class Client:
    """One keep-alive HTTP connection to the server, with a bearer token."""

    def __init__(self, port: int, secret: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"Bearer {secret}"}

    def call(self, method: str, path: str, body: bytes | None = None) -> Any:
        headers = self.headers | ({"Content-Type": "application/x-ndjson"} if body else {})
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
        return json.loads(data)


def http_pairs(ledger: Ledger, client: Client, repeat: int, olds: list[int]) -> list[Pair]:
    size = ledger.count()
    rng = random.Random(9162)
    positions = [rng.randint(1, size) for _ in range(repeat)]

    def checkpoint(_: int) -> dict[str, Any]:
        note = checkpoints.latest(ledger)
        assert note is not None
        parsed = checkpoints.parse_unverified(note)
        return {"origin": parsed.origin, "size": parsed.size, "root": parsed.root.hex(),
                "note": note}  # fmt: skip

    def inclusion(i: int) -> dict[str, Any]:
        note = checkpoints.latest(ledger)
        assert note is not None
        return checkpoints.inclusion_answer(ledger, positions[i], note)

    def consistency(i: int) -> dict[str, Any]:
        old, new = checkpoints.at_size(ledger, olds[i]), checkpoints.latest(ledger)
        assert old is not None
        assert new is not None
        return checkpoints.consistency_answer(ledger, old, new)

    routes = [
        (ROWS[3], "/api/checkpoint", checkpoint, "`checkpoints.latest` + parse", None),
        (ROWS[4], "/api/proof/inclusion?position={}", inclusion,
         "`latest` + `inclusion_answer`", positions),
        (ROWS[5], "/api/proof/consistency?old={}", consistency,
         "`at_size` + `latest` + `consistency_answer`", olds),
    ]  # fmt: skip
    pairs = []
    for row, path, core, name, values in routes:

        def over_http(i: int, path: str = path, values: list[int] | None = values) -> Any:
            return client.call("GET", path.format(values[i]) if values else path)

        if over_http(0) != core(0):
            raise RuntimeError(f"{row}: the HTTP answer differs from the in-process one")
        cand, base = in_turns(repeat, over_http, core)
        pairs.append(Pair(row, "the endpoint over HTTP", name, cand, base, PROOF_TARGET_MS))
    return pairs


def receipt_pair(writer: Client, repeat: int, batch: int) -> Pair:
    bodies = [
        b"".join(e.model_dump_json().encode() + b"\n" for e in small_events(batch))
        for _ in range(2 * repeat)
    ]

    def post(i: int, receipt: bool) -> None:
        answer = writer.call("POST", "/api/events?receipt=true" if receipt else "/api/events",
                             bodies[2 * i + receipt])  # fmt: skip
        if answer["stored"] != batch:
            raise RuntimeError(f"POST stored {answer['stored']} of {batch} events")
        if receipt and len(answer.get("receipts") or []) != batch:
            raise RuntimeError(f"no receipts: {answer.get('receipt_problem')}")

    cand, base = in_turns(repeat, lambda i: post(i, True), lambda i: post(i, False))
    return Pair(ROWS[6], f"`?receipt=true`, batches of {batch}", "the same POST without",
                [t / batch for t in cand], [t / batch for t in base])  # fmt: skip


# --- 6: the CLI ------------------------------------------------------------------------


def verify_pair(url: str, note: str, signer: Signer, runs: int, workdir: Path) -> Pair:
    checkpoint_file = workdir / "newest.cp"
    checkpoint_file.write_text(note)
    plain = [*ledger_program(), "--ledger", url, "verify"]
    signed = [*plain, "--checkpoint", str(checkpoint_file), "--key", signer.verifier_key]

    cpu: tuple[list[float], list[float]] = ([], [])

    def run(argv: list[str], cpu_ms: list[float]) -> None:
        before = children_cpu()
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
        cpu_ms.append((children_cpu() - before) * 1000)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[-4:])} exited {done.returncode}:\n{done.stdout}"
                               f"{done.stderr}")  # fmt: skip

    cand, base = in_turns(runs, lambda _: run(signed, cpu[0]), lambda _: run(plain, cpu[1]))
    size = checkpoints.parse_unverified(note).size
    return Pair(ROWS[7], f"the CLI, checkpoint of size {size:,}", "`ledger verify`",
                cand, base, best_of=True, cpu_ms=cpu)  # fmt: skip


# --- one backend -----------------------------------------------------------------------


def measure(
    backend: str, url: str, build_seconds: float, args: argparse.Namespace, workdir: Path
) -> Run:
    ledger = Ledger(locate(url), create=True)
    try:
        events = ledger.count()
        say(f"{backend}: {events:,} events; checkpoints kept at {args.repeat} random sizes")
        signer = Signer.generate(ORIGIN)
        key = workdir / f"checkpoint-{backend}.key"
        signer.save(key)
        rng = random.Random(1)
        olds = [rng.randint(1, events) for _ in range(args.repeat)]
        keep_old_checkpoints(ledger, signer, olds)
        say(f"{backend}: checkpoint, inclusion, consistency ({args.repeat} samples each)")
        pairs = core_pairs(ledger, signer, args.repeat, olds)
        say(f"{backend}: the HTTP endpoints and receipts")
        reader, writer = token(url, "reader"), token(url, "writer")
        port = free_port()
        signing = {**os.environ, "LEDGER_CHECKPOINT_KEY": str(key)}  # for the receipts
        log = workdir / f"serve-{backend}.log"
        with server(url, port, reader, log, "--no-project", env=signing):
            pairs += http_pairs(ledger, Client(port, reader), args.repeat, olds)
            pairs.append(receipt_pair(Client(port, writer), args.repeat, args.post_batch))
        say(f"{backend}: ledger verify --checkpoint vs ledger verify, {args.verify_runs} each")
        note = checkpoints.latest(ledger)
        assert note is not None
        pairs.append(verify_pair(url, note, signer, args.verify_runs, workdir))
    finally:
        ledger.close()
    for pair in pairs:
        say(f"  {pair.row}: {duration(pair.typical(pair.candidate_ms))} vs "
            f"{duration(pair.typical(pair.baseline_ms))} ({pair.ratio:.2f})")  # fmt: skip
    return Run(backend, events, build_seconds, pairs)


def built(url: str, events: int) -> float:
    """Top the ledger at ``url`` up to ``events`` events; the seconds it took."""
    ledger = Ledger(locate(url), create=True)
    try:
        if ledger.count() < events:
            say(f"building a {events:,}-event ledger at {locate(url).display}")
        return build(ledger, events)
    finally:
        ledger.close()


def sqlite_copy(kept: Path, workdir: Path) -> str:
    """A copy of the kept SQLite ledger (and its WAL) to run on."""
    for suffix in ("", "-wal"):
        source = kept.with_name(kept.name + suffix)
        if source.exists():
            shutil.copyfile(source, workdir / f"ledger.db{suffix}")
    return str(workdir / "ledger.db")


# --- the run ---------------------------------------------------------------------------


def code_digest() -> str:
    """A digest of the uncommitted changes to the code measured (``git diff HEAD``), to
    tell whether another engineer's edit landed during the run."""
    done = subprocess.run(
        ["git", "diff", "HEAD", "--", "ledger", "api", "cli", "projections"],
        cwd=ROOT, check=False, capture_output=True,
    )  # fmt: skip
    return hashlib.sha256(done.stdout).hexdigest()[:12]


def markdown(runs: list[Run], facts: dict[str, Any], command: str) -> str:
    machine, code = facts["machine"], facts["code"]
    start, end = facts["load"]
    changed = ", ".join(code["changed"]) or "none"
    lines = [
        "## Checkpoints and proofs as the CLI, the API and receipts answer them (issue 19)",
        "",
        f"{facts['date']}, at `{code['commit']}` (files of ledger/, api/, cli/, projections/ "
        f"that differ from it: {changed}; `git diff HEAD` of them: sha256 {code['digest']}…); "
        f"{machine.cpu}, {machine.cores} cores, "
        f"{machine.ram_gib:.1f} GiB RAM; Python {machine.python}, SQLite {machine.sqlite}"
        + (f", PostgreSQL {machine.postgres['server_version']}" if machine.postgres else "")
        + f". **Load {start[0]:.2f} / {start[1]:.2f} / {start[2]:.2f} at start, "
        f"{end[0]:.2f} / {end[1]:.2f} / {end[2]:.2f} at the end** (1 / 5 / 15 min).",
        "",
        "```sh",
        command,
        "```",
        "",
        "Each row: the operation next to its baseline in the same samples, taking turns; "
        "median and max of the samples (verify: best and worst of the runs, wall time "
        "with the process start), ratio of the medians (verify: of the best).",
    ]
    for run in runs:
        lines += [
            "",
            f"{run.backend}, {run.events:,} small events (built with `Ledger.append` in "
            f"batches of {BUILD_BATCH:,}"
            + (f", {run.build_seconds:.0f} s" if run.build_seconds >= 1 else "")
            + "):",
            "",
            "| operation | timed | baseline | samples | median | max | baseline median | "
            "baseline max | ratio | target |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for p in run.pairs:
            lines.append(
                f"| {p.row} | {p.candidate} | {p.baseline} | {len(p.candidate_ms)} | "
                f"{duration(p.typical(p.candidate_ms))} | {duration(max(p.candidate_ms))} | "
                f"{duration(p.typical(p.baseline_ms))} | {duration(max(p.baseline_ms))} | "
                f"{p.ratio:.2f} | {p.verdict()} |"
            )
        lines += [
            "",
            *(f"{p.row}: CPU time of the CLI process (user + system; on PostgreSQL the "
              f"server's is not in it), best {duration(min(p.cpu_ms[0]))} vs "
              f"{duration(min(p.cpu_ms[1]))}, ratio {min(p.cpu_ms[0]) / min(p.cpu_ms[1]):.2f}."
              for p in run.pairs if p.cpu_ms),
        ]  # fmt: skip
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.proofs", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the ledger")
    parser.add_argument("--ledger", type=Path, help="a SQLite ledger to build or top up, kept")
    parser.add_argument("--repeat", type=int, default=200, help="samples of each pair")
    parser.add_argument("--post-batch", type=int, default=10, help="events per POST")
    parser.add_argument("--verify-runs", type=int, default=2, help="runs of each verify")
    parser.add_argument(
        "--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres"
    )
    parser.add_argument("--markdown", type=Path, help="also write the Markdown section here")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.events < 1 or args.verify_runs < 1 or args.post_batch < 1:
        parser.error("--events, --repeat, --post-batch and --verify-runs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    backends = args.backends.split(",")
    load_start = os.getloadavg()
    say("load average {:.2f} {:.2f} {:.2f}".format(*load_start))
    code, digest = code_state(), code_digest()
    runs: list[Run] = []
    settings: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-proofs-") as folder:
        workdir = Path(folder)
        if "sqlite" in backends:
            kept = args.ledger or workdir / "ledger.db"
            seconds = built(str(kept), args.events)
            url = sqlite_copy(kept, workdir) if args.ledger else str(kept)
            runs.append(measure("SQLite", url, seconds, args, workdir))
        if "postgres" in backends:
            with postgres_server(workdir) as server:
                schema = create_schema(server, "bench_proofs")
                try:
                    url = ledger_url(server, schema)
                    runs.append(measure("PostgreSQL", url, built(url, args.events), args, workdir))
                    settings = server_settings(server)
                finally:
                    drop_schema(server, schema)
    code["digest"] = digest
    if code_digest() != digest:
        code["changed"].append("(and they changed during the run)")
    facts = {
        "machine": describe(load_start, settings),
        "code": code,
        "load": (load_start, os.getloadavg()),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    text = markdown(runs, facts, (".venv/bin/python -m bench.proofs " + " ".join(argv)).strip())
    print(text)
    if args.markdown:
        args.markdown.write_text(text)


if __name__ == "__main__":
    main()
