PYTHON ?= python3

.PHONY: install dev test lint bench schemas

install:  ## the package and its CLI
	$(PYTHON) -m pip install -e .

dev:  ## the package with what the tests and linters need (through uv: seconds instead of minutes; pip if uv fails)
	$(PYTHON) -m pip install -q uv && $(PYTHON) -m uv pip install -q --compile-bytecode --python $(PYTHON) -e '.[test]' \
	  || $(PYTHON) -m pip install -e '.[test]'

test: dev  ## everything CI runs: lint, types, tests (PostgreSQL and Azurite are started if needed)
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-azurite.sh
	$(PYTHON) -m ruff check mlops_gitops tests benchmarks
	$(PYTHON) -m mypy
	$(PYTHON) -m pytest

lint:
	$(PYTHON) -m ruff check mlops_gitops tests benchmarks
	$(PYTHON) -m mypy

bench:  ## prints the figures quoted in the README
	$(PYTHON) benchmarks/bench_validate.py 1000
	$(PYTHON) benchmarks/bench_plan_apply.py 1000
	$(PYTHON) benchmarks/bench_pipeline.py 20
	command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get install -y -q wrk || (apt-get update -q && apt-get install -y -q wrk)); } || echo "install wrk (apt-get install wrk) for the serving benchmark"
	$(PYTHON) benchmarks/bench_serving.py 15
	$(PYTHON) benchmarks/bench_env_build.py
	$(PYTHON) benchmarks/bench_batch.py
	$(PYTHON) benchmarks/bench_convert.py
	$(PYTHON) benchmarks/bench_drift.py

schemas:  ## regenerate schemas/ from the pydantic models
	$(PYTHON) -m mlops_gitops.spec.jsonschema
