"""Advisory import, parse side: a full-size NVD year file read by ``read_advisories``
(advisories/s, peak RSS), next to two baselines in the same run: ijson streaming the same
records without making events, and ``json.load`` of the whole document. Plus the stored
size per advisory (bytes of the event's canonical JSON form), and the whole
``ledger advisories import`` of the file into a fresh SQLite ledger (time, peak RSS, and
what the ledger and then the views grow per advisory).

    .venv/bin/python -m bench.advisories [--records 40000] [--json PATH]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ledger.advisories.files import read_advisories
from ledger.chain import canonical_json
from ledger.events import to_json_dict
from tests.unit.test_advisory_files import write_large_feed

FIXTURES = Path("tests/fixtures/advisories")  # run from the repository

# Each measurement runs in a child process of its own, so its peak RSS is its own.
_CHILD = """
import json, sys, time
from pathlib import Path
kind, path = sys.argv[1], Path(sys.argv[2])
if kind == "ledger":
    from ledger.advisories.files import read_advisories
elif kind == "ijson":
    import ijson
def peak():  # VmHWM: this process's own peak RSS (ru_maxrss keeps the parent's across exec)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
before = peak()
start = time.perf_counter()
if kind == "ledger":
    count = sum(1 for _ in read_advisories(path, actor="bench"))
elif kind == "ijson":
    with path.open("rb") as f:
        count = sum(1 for _ in ijson.items(f, "vulnerabilities.item", use_float=True))
else:
    with path.open("rb") as f:
        count = len(json.load(f)["vulnerabilities"])
seconds = time.perf_counter() - start
after = peak()
print(json.dumps({"count": count, "seconds": seconds, "peak_rss": after * 1024,
                  "rss_growth": (after - before) * 1024}))
"""


def measure(kind: str, path: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, kind, str(path)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    result: dict[str, float] = json.loads(done.stdout)
    result["per_second"] = result["count"] / result["seconds"]
    return result


def stored_sizes() -> dict[str, int]:
    sizes = {}
    for path in (FIXTURES / "nvdcve-2.0-heartbleed.json", FIXTURES / "osv"):
        for event in read_advisories(path, actor="bench"):
            sizes[event.advisory_id] = len(canonical_json(to_json_dict(event)))
    return sizes


def whole_import(feed: Path, folder: Path, records: int) -> dict[str, float]:
    """``ledger advisories import FEED`` into a fresh SQLite ledger, as a user runs it: wall
    time, peak RSS, and how much the ledger file grew; then ``ledger project``, and how much
    the views (in the same file) added."""
    command = str(Path(sys.executable).with_name("ledger"))  # this environment's
    ledger = [command, "--ledger", str(folder / "ledger.db")]
    subprocess.run([*ledger, "init"], check=True, capture_output=True)
    empty = (folder / "ledger.db").stat().st_size
    start = time.perf_counter()
    subprocess.run([*ledger, "advisories", "import", str(feed)], check=True, capture_output=True)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # init's, or this
    stored = (folder / "ledger.db").stat().st_size
    subprocess.run([*ledger, "project"], check=True, capture_output=True)
    projected = (folder / "ledger.db").stat().st_size
    return {
        "seconds": seconds,
        "per_second": records / seconds,
        "peak_rss": peak,
        "ledger_bytes_per_advisory": (stored - empty) / records,
        "views_bytes_per_advisory": (projected - stored) / records,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "nvdcve-2.0-2024.json"
        write_large_feed(plain, args.records)
        # First: its peak RSS is read from RUSAGE_CHILDREN, the largest of any child so far.
        whole = whole_import(plain, Path(tmp), args.records)
        gz = Path(tmp) / "nvdcve-2.0-2024.json.gz"
        gz.write_bytes(gzip.compress(plain.read_bytes(), compresslevel=6))
        generated = [
            len(canonical_json(to_json_dict(e))) for e in read_advisories(plain, actor="bench")
        ]
        results = {
            "records": args.records,
            "file_bytes": plain.stat().st_size,
            "gz_bytes": gz.stat().st_size,
            "load_at_start": load,
            "ledger_json": measure("ledger", plain),
            "ledger_gz": measure("ledger", gz),
            "ijson_baseline": measure("ijson", plain),
            "json_load_baseline": measure("json", plain),
            "whole_import_sqlite": whole,
            "load_at_end": os.getloadavg(),
            "stored_bytes_generated_mean": sum(generated) / len(generated),
            "stored_bytes": stored_sizes(),
        }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
