"""Benchmarks of the deployment ledger: run them all with ``python -m bench``.

* ``bench.ingest``: batched ingest throughput (what ``ledger ingest FILE`` does, both
  passes) on SQLite and PostgreSQL, next to a raw baseline that inserts the same stored
  rows with one ``executemany`` in one transaction;
* ``bench.latency``: single-event ``Ledger.append`` latency (p50, p99) on both backends;
* ``bench.memory``: peak RSS of a child process ingesting a large file into SQLite.

The events come from ``ledger.demo.demo_fleet`` (``bench.events``). PostgreSQL is started
with ``pgserver`` in a temporary directory unless ``LEDGER_BENCH_POSTGRES_URL`` is set
(``bench.postgres``). Nothing here asserts anything about speed: it only measures.
"""
