"""What the benchmarks ran on: CPU, cores, RAM, load, and software versions."""

from __future__ import annotations

import os
import platform
import sqlite3
import tempfile
from contextlib import closing
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path


@dataclass(frozen=True)
class Machine:
    cpu: str
    cores: int
    ram_gib: float
    load_average: tuple[float, float, float]
    python: str
    sqlite: str
    eventsourcing: str
    psycopg: str
    postgres: dict[str, str]


def _proc_field(path: str, name: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == name:
                return value.strip()
    except OSError:
        pass
    return "unknown"


def sqlite_description() -> str:
    """SQLite's version and the durability it runs with (the library only sets WAL)."""
    with (
        tempfile.TemporaryDirectory() as folder,
        closing(sqlite3.connect(Path(folder) / "probe.db")) as conn,
    ):
        conn.execute("PRAGMA journal_mode=WAL")
        synchronous = conn.execute("PRAGMA synchronous").fetchone()[0]
    level = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(synchronous, str(synchronous))
    return f"{sqlite3.sqlite_version} (WAL, synchronous={level})"


def describe(load_average: tuple[float, float, float], postgres: dict[str, str]) -> Machine:
    mem_kib = _proc_field("/proc/meminfo", "MemTotal").split()[0]
    return Machine(
        cpu=_proc_field("/proc/cpuinfo", "model name"),
        cores=os.cpu_count() or 0,
        ram_gib=int(mem_kib) / 1024**2 if mem_kib.isdigit() else 0.0,
        load_average=load_average,
        python=platform.python_version(),
        sqlite=sqlite_description(),
        eventsourcing=version("eventsourcing"),
        psycopg=version("psycopg"),
        postgres=postgres,
    )
