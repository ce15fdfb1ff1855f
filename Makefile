# One entry point for users, developers and CI. Everything installs into the repo (.venv, .tools, node_modules).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
TOOLS := .tools
SAM := $(TOOLS)/bin/sam

.PHONY: help venv demo test test-unit test-integration test-workflow test-infra lint bench size tools clean

help:
	@echo "make demo   - run a full local reconciliation of a generated day (moto, no AWS account)"
	@echo "make test   - lint + every test suite (unit, integration, workflow, infrastructure)"
	@echo "make lint   - ruff + mypy"
	@echo "make bench  - benchmarks (figures and ratios)"
	@echo "make size   - unzipped size of the common layer and each function against Lambda's 250 MB budget"

$(STAMP): requirements/dev.txt requirements/dataframe.txt layers/common/requirements.txt layers/common/requirements-pdf.txt $(wildcard functions/*/requirements.txt) pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements/dev.txt
	$(PIP) install --quiet --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP)

# SAM CLI lives in its own virtualenv: it pins boto3 and friends differently from our runtime.
$(SAM): requirements/tools.txt
	@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --upgrade pip
	$(TOOLS)/bin/pip install --quiet -r requirements/tools.txt
	@touch $(SAM)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error

tools: $(SAM) node_modules/.package-lock.json

demo: $(STAMP)
	$(VENV)/bin/recon demo --out demo-out

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy layers/common/recon local/recon_local functions benchmarks

test-unit: $(STAMP)
	$(VENV)/bin/pytest tests/unit -q

test-integration: $(STAMP)
	$(VENV)/bin/pytest tests/integration -q

test-workflow: $(STAMP)
	$(VENV)/bin/pytest tests/workflow -q

test-infra: $(STAMP) tools
	PATH="$(CURDIR)/$(TOOLS)/bin:$$PATH" $(VENV)/bin/pytest tests/infrastructure -q

test: lint tools
	PATH="$(CURDIR)/$(TOOLS)/bin:$$PATH" $(VENV)/bin/pytest tests -q

bench: $(STAMP)
	$(PY) -m benchmarks

size: $(STAMP)
	$(PY) -m recon_local.size_report

clean:
	rm -rf $(VENV) $(TOOLS) node_modules demo-out .pytest_cache .mypy_cache .ruff_cache
