# Two entry points (see README): `make serve` runs the server with the example functions,
# `make test` runs the test suite. Both set up everything they need first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup serve test test-long bench bench-cluster clean proto

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup-system.sh
	bash scripts/setup-system.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

serve: setup
	$(VENV)/bin/runner serve --examples $(ARGS)

test: setup
	bash scripts/test.sh $(ARGS)

# The reliability suite at the sizes the hardening issue measured (tests/reliability/).
test-long: setup
	bash scripts/test.sh tests/reliability --long $(ARGS)

bench: setup
	$(PY) bench/run.py $(ARGS)

# --workers N against --workers 1 and a bare echo in N processes (docs/cluster.md).
bench-cluster: setup
	$(PY) bench/cluster_bench.py $(ARGS)

proto: setup
	$(PY) scripts/gen_proto.py

clean:
	rm -rf $(VENV) build *.egg-info
