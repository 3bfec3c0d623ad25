# ferroloop: every command creates its own virtualenv and installs what it needs.
#   make run                 build (release) and run the demo
#   make test                cargo test + pytest + CPython conformance
#   make conformance PY=python3.13
#   make bench               stdlib vs uvloop vs ferroloop, interleaved

PY ?= python3
# pyenv's shim for `python3.13` may exist yet refuse to run; take the first candidate that runs.
PYTHON := $(shell for p in $$(command -v $(PY)) $$(ls $$HOME/.pyenv/versions/*/bin/$(PY) 2>/dev/null); do \
	$$p -c 'import sys' >/dev/null 2>&1 && { echo $$p; break; }; done)
ifeq ($(PYTHON),)
$(error $(PY) not found)
endif
PYVER := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
VENV ?= $(if $(filter python3,$(PY)),.venv,.venv-$(PYVER))
VPY := $(VENV)/bin/python
export PYO3_PYTHON := $(abspath $(VPY))

.PHONY: run test build loadgen wrk cargo-test pytest conformance bench lint clean

$(VENV)/.deps: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -r requirements-dev.txt
	touch $@

build: $(VENV)/.deps
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/maturin develop --release -q

run: build
	$(VPY) -m ferroloop

cargo-test: $(VENV)/.deps
	cargo test --lib -q

loadgen:
	cargo build --release -q -p ferroloop-loadgen

pytest: build loadgen wrk
	$(VPY) -m pytest -q tests

conformance: build
	$(VPY) conformance/run.py

test: cargo-test pytest conformance

bench: build loadgen wrk
	$(VPY) bench/run.py

# wrk (Debian's package) loads the HTTP rows of the bench.
wrk:
	command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

lint: $(VENV)/.deps
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

clean:
	rm -rf target .venv .venv-*
