# Two entry points (see README): `make serve` runs the server with the example functions,
# `make test` runs the test suite. Both set up everything they need first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup serve test test-long bench bench-cluster clean proto

# The npm references of tests/differential (workflows, issue 21): aws-local-stepfunctions and
# asl-validator, pinned by package-lock.json; node_modules is not committed.
REFS   := tests/differential/node_modules/.installed

setup: $(STAMP) $(REFS)

$(STAMP): pyproject.toml scripts/setup-system.sh
	bash scripts/setup-system.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(REFS): tests/differential/package.json tests/differential/package-lock.json
	cd tests/differential && npm ci --no-audit --no-fund --loglevel=error
	touch $(REFS)

serve: setup
	$(VENV)/bin/runner serve --examples $(ARGS)

test: setup
	bash scripts/test.sh $(ARGS)

# The reliability suite at the sizes the hardening issue measured (tests/reliability/).
test-long: setup
	bash scripts/test.sh tests/reliability --long $(ARGS)

bench: setup
	$(PY) bench/run.py $(ARGS)
	$(PY) bench/events_bench.py --quick

# --workers N against --workers 1 and a bare echo in N processes (docs/cluster.md).
bench-cluster: setup
	$(PY) bench/cluster_bench.py $(ARGS)

proto: setup
	$(PY) scripts/gen_proto.py

clean:
	rm -rf $(VENV) build *.egg-info
