# The README's two commands, plus the linters and the benchmark.
.PHONY: demo test lint bench schema

demo:
	python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/ledger demo

test:
	python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

bench:
	.venv/bin/python -m bench

schema:
	.venv/bin/ledger schema > docs/schema/ledger-event.schema.json
