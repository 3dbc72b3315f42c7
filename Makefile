# The README's two commands, plus the linters and the benchmark.
.PHONY: demo test lint bench bench-views bench-rollback schema bench-imports tour fuzz truth

demo:
	python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/ledger demo

test:
	sh tools/system-deps.sh && python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest

# The fuzz suite with 10,000 examples per target (the test run has a few hundred);
# prints how many inputs each target accepted and refused.
fuzz:
	FUZZ_EXAMPLES=10000 .venv/bin/python -m pytest tests/fuzz -q -p no:cacheprovider --timeout=0

# The truth tests (views against an independent replay of the raw events, on random
# streams with late facts, both backends) with 300 streams each (the test run has 10-40).
truth:
	TRUTH_EXAMPLES=300 .venv/bin/python -m pytest -q -p no:cacheprovider --timeout=0 \
		tests/integration/test_audit_truth.py tests/integration/test_exposure_truth.py \
		tests/integration/test_fleet_summary.py tests/integration/test_chart_data.py

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

bench:
	.venv/bin/python -m bench

# Views at fleet scale: 10,000 hosts, 1,000,000 events; takes a while.
bench-views:
	.venv/bin/python -m bench.views

bench-rollback:
	.venv/bin/python -m bench.rollback

# Importing a synthetic 5,000-path Nix closure, next to json.loads; under a minute.
bench-imports:
	.venv/bin/python -m bench.imports

schema:
	.venv/bin/ledger schema > docs/schema/ledger-event.schema.json

tour:
	.venv/bin/python tools/tour.py

# The Riemann collector: throughput next to raw riemann-client, and added latency; a few minutes.
.PHONY: bench-collectors
bench-collectors:
	.venv/bin/python -m bench.collectors

# Kafka publishing: ledger publish next to raw kafka-python, against a Tansu broker; a few minutes.
.PHONY: bench-kafka
bench-kafka:
	.venv/bin/python -m bench.kafka

# Kafka ingest rate, 1 and 2 workers on PostgreSQL, with raw baselines (issue 6).
.PHONY: bench-kafka-ingest
bench-kafka-ingest:
	.venv/bin/python -m bench.kafka_ingest

# GET /api/where?name=openssl on the 10,000-host fleet: wrk, 20 clients and 1, next to the
# same answer built in process; SQLite and PostgreSQL. Generating the fleet takes minutes
# (--keep DIR reuses it); needs wrk (apt-get install -y wrk).
.PHONY: bench-api
bench-api:
	.venv/bin/python -m bench.api

# Start-up, a query on the demo and `log` into a pipe, against their baselines.
.PHONY: bench-cli
bench-cli:
	.venv/bin/python -m bench.cli

# exposure and vulns on the 10,000-host fleet with 20,000 advisories, next to where
# --summary (issue 17); SQLite and PostgreSQL. Generating the fleet takes a while
# (--keep DIR reuses it).
.PHONY: bench-exposure
bench-exposure:
	.venv/bin/python -m bench.exposure --postgres

# The dashboard's first screen on the kept bench fleet, in headless Chromium.
.PHONY: bench-dashboard
bench-dashboard:
	.venv/bin/python -m bench.dashboard --keep $(or $(KEEP),bench-fleet)
