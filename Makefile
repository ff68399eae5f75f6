# Townhall: one command to run the local twin, one to run every test.
#   make dev    installs what is missing, then serves the whole twin on loopback
#   make test   installs what is missing, then runs lint, types and every test

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
DATA ?= .twin
NODES ?= 1
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PATH := $(CURDIR)/$(BIN):$(CURDIR)/node_modules/.bin:$(PATH)

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: dev test setup system-deps turn-deps lint typecheck pytest synth bench clean fuzz

dev: setup turn-deps
	$(BIN)/python -m infra.twin --host 127.0.0.1 --port $(PORT) --data $(DATA) --nodes $(NODES) --turn

test: setup system-deps lint typecheck pytest

setup: $(VENV)/.installed node_modules/.installed

# Reinstalls when pyproject.toml changes. uv resolves and installs the same PyPI releases as
# pip would, from its cache in seconds (pip took over a minute for a fresh venv); pip stays
# in the venv for the Lambda layer's bundling (infra/stacks/layer.py).
$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip "uv>=0.9,<1"
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e ".[dev]"
	@touch $@

# npm packages pinned by package-lock.json: the CDK CLI (deploys) and axe-core (the
# accessibility scan in the browser tests).
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# coturn, the twin's TURN server (infra/twin/turn.py).
turn-deps:
	@command -v turnserver >/dev/null 2>&1 || { \
	  echo "installing Debian's coturn for the twin's TURN server"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends coturn; }

# Debian's packages the tests drive: Chromium for the browser tests (Playwright drives it; it
# never downloads a browser), Janus Gateway for the SFU benchmark's reference target (and the
# test that keeps that target working), iproute2 for the network namespaces Janus and the TURN
# test run in, nftables for the firewall in the TURN test's namespace, coturn (the twin's TURN
# server), certutil (libnss3-tools) to make that test's Chromium trust the twin's CA, and an
# emoji font so reactions render in the screenshots of headless Chromium.
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v turnserver >/dev/null 2>&1 || missing="$$missing coturn"; \
	command -v nft >/dev/null 2>&1 || missing="$$missing nftables"; \
	command -v certutil >/dev/null 2>&1 || missing="$$missing libnss3-tools"; \
	test -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf || missing="$$missing fonts-noto-color-emoji"; \
	command -v janus >/dev/null 2>&1 || missing="$$missing janus"; \
	command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian's$$missing for the tests"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check functions contracts infra media_fleet egress tests bench
	PYTHONPATH=functions $(BIN)/lint-imports

# mypy's cache outlives a clean clone (like pip's): it rechecks what changed, by content.
MYPY_CACHE_DIR ?= $(HOME)/.cache/townhall/mypy
typecheck:
	$(BIN)/mypy --cache-dir $(MYPY_CACHE_DIR) functions contracts infra media_fleet egress bench tests

pytest:
	$(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

synth: setup
	CDK_OUTDIR=cdk.out $(BIN)/python -m infra.app

bench: setup
	PYTHONPATH=functions:. $(BIN)/python -m bench.control_plane
	PYTHONPATH=functions:. $(BIN)/python -m bench.sfu_compare

# The long fuzzing pass (tests/fuzz/README.md): FUZZ_SECONDS per target (default 600, so
# about 70 minutes for all), FUZZ_TARGETS to pick some; new inputs and crashes in build/fuzz/.
fuzz: setup
	$(BIN)/python -m tests.fuzz.run --seconds $${FUZZ_SECONDS:-600} $${FUZZ_TARGETS:-}

clean:
	rm -rf cdk.out build .mypy_cache .ruff_cache .pytest_cache
