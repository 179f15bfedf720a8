# odh-appliance developer entry points. `make test` is what CI runs (through .ci/run).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: doctor up test lint unit integration e2e clean pipelines-runtime

# Create or update the virtualenv when pyproject.toml changes; the package is installed editable.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

# The Python that runs pipeline tasks (kfp + minio): its own virtualenv, because every kfp 2.x pins
# kubernetes<31 and we pin 34.1.0 (see appliance/pipelines/task-requirements.txt).
KFP_VENV  ?= .venv-kfp
KFP_STAMP := $(KFP_VENV)/.installed
$(KFP_STAMP): appliance/pipelines/task-requirements.txt
	test -x $(KFP_VENV)/bin/python || $(PYTHON) -m venv $(KFP_VENV)
	$(KFP_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(KFP_VENV)/bin/python -m pip install --quiet -r appliance/pipelines/task-requirements.txt
	touch $(KFP_STAMP)

pipelines-runtime: $(KFP_STAMP)

# Install into .venv and check that this host can run the appliance (the bring-up entry point
# until `appliance up` lands).
doctor: $(STAMP)
	$(BIN)/appliance doctor

lint: $(STAMP)
	$(BIN)/ruff check appliance tui tests benchmarks examples
	$(BIN)/ruff format --check appliance tui tests benchmarks examples
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest tests/unit

integration: $(STAMP) $(KFP_STAMP)
	$(BIN)/pytest tests/integration

# Lint, then unit + integration tests. pytest exits 5 when it collects nothing, which fails the build.
test: lint $(KFP_STAMP)
	$(BIN)/pytest tests/unit tests/integration

# Bring the platform up: the platform images (base image by debootstrap, MinIO from Go source, ...) and
# the kind node image are built from source the first time and cached afterwards (a warm build: seconds).
up: $(STAMP)
	$(BIN)/appliance images build
	$(BIN)/appliance up

# The real kind cluster tier (opt-in): builds (or confirms) the node image, then runs tests/e2e.
e2e: $(STAMP)
	$(BIN)/appliance images node
	$(BIN)/pytest tests/e2e

clean:
	rm -rf $(VENV) $(KFP_VENV) .mypy_cache .ruff_cache .pytest_cache
