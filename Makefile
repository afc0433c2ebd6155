# pickspin: `make setup` once, then `make up` / `make test`.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
FUNCTIONS := gateway classifier selector telemetry responder

.PHONY: setup setup-llamacpp chart-test up down status test test-fast lint stage unstage schemas bench train

setup: ## install pickspin, its test tools and Debian's prometheus
	$(PIP) install -q -e '.[dev,cluster,semantic,train]'
	@command -v promtool >/dev/null || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq prometheus)

# FORCE=1 rebuilds even when the installed build looks portable
setup-llamacpp: ## the real llama.cpp backend for Gemma 3 270M, built for any x86-64 CPU (~5-7 minutes, once)
	$(PIP) install -q -e .
	$(PYTHON) -m pickspin.local.llamabuild $(if $(FORCE),--force)

up: setup setup-llamacpp ## start the embedded default and send a first request
	pickspin up
	@$(PYTHON) -m pickspin.local.first_request

down: ## stop what `make up` started
	pickspin down

status:
	pickspin status

test: setup ## every test, the real-process ones included
	$(PYTHON) -m pytest -q

test-fast: setup ## without the tests that start real processes
	$(PYTHON) -m pytest -q -m "not integration"

chart-test: ## the charts and the scaling policy only
	$(PYTHON) -m pytest -q tests/charts tests/policy

lint:
	ruff check .
	mypy

stage: ## copy the pickspin library into each function's build context (for kn func build)
	@for f in $(FUNCTIONS); do rm -rf functions/$$f/pickspin; cp -r shared/pickspin functions/$$f/pickspin; \
	  find functions/$$f/pickspin -name __pycache__ -prune -exec rm -rf {} +; echo "staged functions/$$f/pickspin"; done

unstage:
	rm -rf $(foreach f,$(FUNCTIONS),functions/$(f)/pickspin)

schemas: ## write the event data JSON schemas published in shared/pickspin/schemas
	$(PYTHON) -m pickspin.core.events

bench: ## gateway overhead benchmark (prints p50/p99 and writes reports/)
	$(PYTHON) benchmarks/gateway_overhead.py

train: ## reproduce the committed complexity classifier and its quality table
	pickspin train --write-quality
