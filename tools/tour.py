"""Refresh the README's tour: run every ``$ …`` command of its console blocks, in order,
in a fresh directory, and put the real output under each command.

    .venv/bin/python tools/tour.py            # rewrites README.md

Some output differs from run to run by nature (head hashes include when each event was
recorded, generations planned by the tour are dated now); the rest is deterministic.

The commands run with ``bash`` in a temporary directory where ``ledger`` is this
checkout's, and where the files the tour names exist (``bad.jsonl``, ``closure.json``,
``sbom.cdx.json``). A line ``$ # … the same command again:`` runs the previous command
again. Commands that change the ledger run in README order, as a reader would run them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
AGAIN = "$ # … the same command again:"
FILES = {
    "closure.json": ROOT / "tests/fixtures/nix/path-info.json",
    "sbom.cdx.json": ROOT / "tests/fixtures/cyclonedx/environment.cdx.json",
    "nvdcve-2.0-fleet.json": ROOT / "docs/examples/nvdcve-2.0-fleet.json",
    "cpe-map.txt": ROOT / "docs/examples/cpe-map.txt",
}
BAD_JSONL = (
    '{"kind": "health_reported", "event_id": "6f1c3a52-1d5e-4d8f-9a0b-7c2e4b9d1f30", '
    '"env": "production", "occurred_at": "2026-03-11T14:10:00", "actor": "agent", '
    '"host": "web\\u0007", "state": "on fire"}\n'
    "{nope\n"
)


def commands(block: list[str]) -> list[list[str]]:
    """The block's commands, each with its continuation lines."""
    found: list[list[str]] = []
    for line in block:
        if line.startswith("$ "):
            found.append([line])
        elif found and found[-1][-1].endswith("\\"):
            found[-1].append(line)
    return found


def run(command: list[str], workdir: Path) -> str:
    text = "\n".join(command)[2:]
    env = {**os.environ, "PATH": f"{ROOT / '.venv/bin'}:{os.environ['PATH']}"}
    env.pop("LEDGER_URL", None)
    result = subprocess.run(
        ["bash", "-c", text], cwd=workdir, env=env, capture_output=True, text=True, check=False
    )
    output = result.stdout + result.stderr
    # Tables pad every row to the widest; the README keeps lines without the padding.
    return "\n".join(line.rstrip() for line in output.rstrip("\n").split("\n"))


def refresh(text: str, workdir: Path) -> str:
    lines = text.split("\n")
    out: list[str] = []
    index, previous = 0, None
    while index < len(lines):
        line = lines[index]
        out.append(line)
        index += 1
        if line != "```" or index >= len(lines) or not lines[index].startswith("$ "):
            continue
        end = lines.index("```", index)
        for number, command in enumerate(commands(lines[index:end])):
            if number and command[0] != AGAIN:
                out.append("")  # a blank line between one command's output and the next
            out.extend(command)
            if command[0] == AGAIN:
                assert previous is not None, "nothing to run again"
                output = run(previous, workdir)
            else:
                output, previous = run(command, workdir), command
            if output:
                out.append(output)
        out.append("```")
        index = end + 1
    return "\n".join(out)


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    with tempfile.TemporaryDirectory(prefix="ledger-tour-") as folder:
        workdir = Path(folder)
        for name, source in FILES.items():
            shutil.copy(source, workdir / name)
        (workdir / "bad.jsonl").write_text(BAD_JSONL)
        README.write_text(refresh(README.read_text(), workdir))


if __name__ == "__main__":
    main()
