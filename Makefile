# Every target is self-sufficient on a fresh machine: it creates the virtual environment
# and fetches what it needs (Kafka jars, OpenBao, grpcurl, chart tools) itself.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
# make image: the image's name and tag (the tag defaults to the chart's appVersion, the chart's default
# image.tag), the builder's base (empty = automatic), and a CA bundle the builder trusts (TLS-re-signing proxies)
IMAGE ?= quantumedge
TAG ?=
BASE ?=
CA_BUNDLE ?= $(SSL_CERT_FILE)

.PHONY: help venv run test unit integration lint fmt proto proto-check shape bench bench-compare secrets-scan browser \
        kafka-up kafka-down vault-up vault-down chart-test lock clean \
        docker-up docker-down image image-test cluster-build cluster-test chart-tools

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade uv
	@$(UV) pip install -q --python $(PY) -e '.[dev]'
	@touch $@

venv: $(STAMP) ## create .venv with the package and its dev tools

run: $(STAMP) ## run all four services in one process on the embedded defaults (bounded replay, then a summary)
	$(VENV)/bin/quantumedge up $(RUN_ARGS)

test: $(STAMP) lint proto-check secrets-scan browser ## the whole suite: lint, generated-code check, secret scan, chart tests, pytest (real Kafka, real Vault)
	$(MAKE) chart-test
	$(PY) -m pytest --ignore=tests/chart --ignore=tests/image --ignore=tests/cluster $(PYTEST_ARGS)

browser: ## Debian's chromium for the console's browser tests (apt-get when missing; else those tests skip, saying so)
	@command -v chromium >/dev/null 2>&1 || { (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
	  && echo "installed chromium for the browser tests" || echo "chromium could not be installed: the browser tests will skip"; }

unit: $(STAMP) ## fast tests only (in-process bus)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

integration: $(STAMP) ## integration tests (starts a local Kafka broker and Vault when none is given)
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

lint: $(STAMP) ## ruff, the import rules and the function/file length limits (docs/architecture.md)
	$(VENV)/bin/ruff check services tests tools bench
	$(VENV)/bin/ruff format --check services tests tools bench
	$(VENV)/bin/lint-imports
	$(PY) tools/shape_check.py --max-function 60 --max-file 500 services

fmt: $(STAMP) ## format the code
	$(VENV)/bin/ruff format services tests tools bench
	$(VENV)/bin/ruff check --fix services tests tools bench

shape: $(STAMP) ## function and file length limits in services/ (issue 13: functions <= 60 lines, files <= 500)
	$(PY) tools/shape_check.py --max-function 60 --max-file 500 services

proto: $(STAMP) ## regenerate services/quantumedge/v1 from proto/
	$(PY) tools/gen_proto.py

proto-check: $(STAMP) ## fail when the generated code is stale
	$(PY) tools/gen_proto.py --check

secrets-scan: $(STAMP) ## fail on any secret in the tree or anywhere in git history (gitleaks, built once with go install)
	$(PY) tools/secret_scan.py

bench: $(STAMP) ## print speed and memory figures (BENCH=word: only the benches whose name has it)
	$(PY) -m bench $(BENCH)

# make bench-compare: hftbacktest (with numba) in a venv of its own, separate from .venv, made once
BC_VENV := .cache/bench-compare/venv
HBT_VERSION ?= 2.4.4
$(BC_VENV)/.installed-stamp:
	@test -x $(BC_VENV)/bin/python || $(PYTHON) -m venv $(BC_VENV)
	@$(BC_VENV)/bin/python -m pip install -q 'hftbacktest==$(HBT_VERSION)' numba numpy
	@touch $@

bench-compare: $(STAMP) $(BC_VENV)/.installed-stamp ## QuantumEdge (full ML path) vs hftbacktest on the real BTCUSDT capture: events per CPU-second and their ratio
	$(PY) -m bench.compare $(BC_VENV)/bin/python

kafka-up: $(STAMP) ## start a local KRaft Kafka broker (jars from Maven, cached in .cache/)
	$(PY) tools/local_kafka.py up

kafka-down: $(STAMP) ## stop the local Kafka broker
	$(PY) tools/local_kafka.py down

vault-up: $(STAMP) ## start a local OpenBao dev server
	$(PY) tools/local_vault.py up

vault-down: $(STAMP) ## stop the local OpenBao dev server
	$(PY) tools/local_vault.py down

chart-test: $(STAMP) ## helm lint + template + offline schema validation + manifest tests
	$(PY) -m pytest tests/chart $(PYTEST_ARGS)

docker-up: $(STAMP) ## start the project's own Docker engine (socket in .cache/docker; no IP forwarding, no iptables)
	@$(PY) tools/docker_engine.py up
	@echo "export DOCKER_HOST=$$($(PY) tools/docker_engine.py host)"

docker-down: $(STAMP) ## stop the project's Docker engine (by its pid)
	$(PY) tools/docker_engine.py down

image: $(STAMP) ## build the image (IMAGE, TAG, BASE, CA_BUNDLE; a Debian base by debootstrap when no registry answers)
	PY=$(PY) IMAGE=$(IMAGE) TAG=$(TAG) BASE=$(BASE) CA_BUNDLE=$(CA_BUNDLE) bash tools/image/build.sh

image-test: image ## run the four services as containers of the image against a real Kafka; print size and cold starts
	IMAGE=$(IMAGE) TAG=$(TAG) $(PY) -m pytest tests/image -p no:cacheprovider -s $(PYTEST_ARGS)

cluster-build: $(STAMP) ## build (once) and cache kube-apiserver, controller manager, scheduler, etcd and kwok
	bash tools/cluster/build.sh

cluster-test: cluster-build chart-tools ## the chart's whole helm lifecycle on a real API server (PodSecurity restricted)
	$(PY) -m pytest tests/cluster -p no:cacheprovider -s $(PYTEST_ARGS)

chart-tools: $(STAMP)
	@$(PY) tools/chart_tools.py ensure > /dev/null

lock: $(STAMP) ## pin every runtime dependency with hashes into requirements.lock (the image installs from it)
	$(UV) pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes -q -o requirements.lock

clean: ## remove the venv and caches
	rm -rf $(VENV) .cache .pytest_cache .ruff_cache
