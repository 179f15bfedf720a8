# odh-appliance developer entry points. `make test` is what CI runs (through .ci/run).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: doctor up test lint unit integration e2e clean

# Create or update the virtualenv when pyproject.toml changes; the package is installed editable.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# Install into .venv and check that this host can run the appliance (the bring-up entry point
# until `appliance up` lands).
doctor: $(STAMP)
	$(BIN)/appliance doctor

lint: $(STAMP)
	$(BIN)/ruff check appliance tui tests benchmarks
	$(BIN)/ruff format --check appliance tui tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP)
	$(BIN)/pytest tests/integration

# Lint, then unit + integration tests. pytest exits 5 when it collects nothing, which fails the build.
test: lint
	$(BIN)/pytest tests/unit tests/integration

# Bring the cluster up: builds the kind node image from source the first time (cached afterwards).
up: $(STAMP)
	$(BIN)/appliance up

# The real kind cluster tier (opt-in): builds (or confirms) the node image, then runs tests/e2e.
e2e: $(STAMP)
	$(BIN)/appliance images node
	$(BIN)/pytest tests/e2e

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
