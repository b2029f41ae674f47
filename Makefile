# ClosedLoop — every command a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PY := .venv/bin/python
BUF := node_modules/.bin/buf

.PHONY: help install run test lint format proto proto-check bench demo migrate deadletters clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.tools/bin/uv:
	python3 -m venv .tools && .tools/bin/pip install -q "uv==$(UV_VERSION)"

.venv/.synced: uv.lock pyproject.toml $(wildcard */*/pyproject.toml) | $(UV)
	$(UV) sync --all-packages --frozen
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: .venv/.synced ## create .venv and install the workspace (uv, from uv.lock)

run: .venv/.synced ## start the whole platform locally (bundled NATS + SQLite under .closedloop/)
	$(PY) -m loopkit.cli run

migrate: .venv/.synced ## apply every service's migrations (CLOSEDLOOP_DATABASE_URL or SQLite)
	$(PY) -m loopkit.cli migrate

test: .venv/.synced ## run the whole test suite (real nats-server, PostgreSQL and SQLite)
	$(PY) -m pytest

lint: .venv/.synced proto-check ## ruff, mypy, import rules, proto lint + wire compatibility
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/lint-imports

format: .venv/.synced ## apply ruff's fixes and formatting
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

proto: .venv/.synced ## regenerate gen/python from proto/
	$(PY) scripts/gen_proto.py

proto-check: .venv/.synced node_modules/.installed ## fail on stale generated code, lint or breaking proto changes
	$(PY) scripts/gen_proto.py --check
	cd proto && ../$(BUF) lint
	scripts/proto_breaking.sh

bench: .venv/.synced ## run the benchmarks (needs PostgreSQL)
	$(PY) bench/identity_resolve.py
	$(PY) bench/lead_capture.py
	$(PY) bench/segments.py
	$(PY) bench/funnel.py
	$(PY) bench/assignment.py
	$(PY) bench/relay.py
	$(PY) bench/gateway_send.py

demo: .venv/.synced ## drive synthetic customers through the running platform (start `make run` first)
	PYTHONPATH=scripts $(PY) scripts/demo.py $(DEMO_ARGS)

deadletters: .venv/.synced ## list dead-lettered events (replay: closedloop deadletters replay --all)
	$(PY) -m loopkit.cli deadletters list

.PHONY: images
images: .venv/.synced ## build a container image per service of services.toml (needs docker; IMAGE_REGISTRY, IMAGE_TAG)
	@command -v docker >/dev/null || { echo "make images needs a Docker engine (docker build)"; exit 2; }
	@for s in $$($(PY) -c 'from loopkit.servicelist import listed_services; print(*(s.name for s in listed_services()))'); do \
	  img="$${IMAGE_REGISTRY:-ghcr.io/closedloop}/closedloop-$$s:$${IMAGE_TAG:-dev}"; \
	  echo "building $$img"; \
	  docker build -f deploy/docker/Dockerfile --build-arg SERVICE=$$s -t "$$img" . || exit 1; \
	done

clean: ## remove local state (.closedloop/) — keeps .venv
	rm -rf .closedloop
