# copyloop — the two README commands are `make run` and `make test`; everything else helps them.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
GEN_TMP := build/gen
PROTOS := $(wildcard protos/copyloop/v1/*.proto)

.PHONY: setup protos protoset lint run test bench bench-all clean

# Virtualenv with the pinned stack (torch 2.13.0 CPU comes from the machine's wheel dir via pip's
# find-links), generated stubs, and the package installed in editable mode.
setup: $(VENV)/.installed services/copyloop/v1/__init__.py clients/node/node_modules/.installed

# The TypeScript client's packages (npm registry only); skipped where npm is missing.
clients/node/node_modules/.installed: clients/node/package-lock.json
	@if command -v npm >/dev/null; then cd clients/node && npm ci --no-audit --no-fund && touch node_modules/.installed; \
	else echo "npm not found: the TypeScript client test will skip"; fi

$(VENV)/.installed: requirements.lock pyproject.toml clients/python/pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (pyenv or apt)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel setuptools
	$(PIP) install -q -r requirements.lock
	$(PIP) install -q --no-deps -e . -e clients/python
	touch $@

# Python stubs (grpcio-tools) and type stubs (mypy-protobuf) into services/copyloop/v1 = copyloop.v1.
services/copyloop/v1/__init__.py: $(PROTOS) $(VENV)/.installed
	rm -rf $(GEN_TMP) services/copyloop/v1 && mkdir -p $(GEN_TMP)
	PATH=$(VENV)/bin:$$PATH $(PY) -m grpc_tools.protoc -Iprotos --python_out=$(GEN_TMP) --grpc_python_out=$(GEN_TMP) \
		--mypy_out=$(GEN_TMP) --mypy_grpc_out=$(GEN_TMP) $(PROTOS)
	mv $(GEN_TMP)/copyloop/v1 services/copyloop/v1 && rm -rf $(GEN_TMP)
	echo '"""Generated from protos/copyloop/v1 by `make protos`; do not edit."""' > $@

protos: services/copyloop/v1/__init__.py

# Descriptor set for ghz (deploy/loadtest/copyloop.protoset), so it works without reflection.
protoset: services/copyloop/v1/__init__.py
	PYTHON=$(PY) deploy/loadtest/build_protoset.sh

# Everything static, in the order that fails fastest: formatting and lint rules (ruff), types
# (mypy over copyloop and copyloop_client as configured in pyproject.toml; its cache in
# .mypy_cache makes a re-run take seconds), then the protos (buf STANDARD lint and formatting).
lint: setup
	$(VENV)/bin/ruff format --check
	$(VENV)/bin/ruff check
	$(VENV)/bin/mypy
	$(VENV)/bin/buf lint
	$(VENV)/bin/buf format --diff --exit-code

run: setup
	$(PY) -m copyloop.main

# Lint first: a lint failure fails the tests (CI runs `make test`).
test: setup lint
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: setup
	$(PY) bench/profile_ingest.py

clean:
	rm -rf $(VENV) build services/copyloop/v1 var
