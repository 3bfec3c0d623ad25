# ferroloop: every command creates its own virtualenv and installs what it needs.
#   make run                 build (release) and run the demo
#   make test                cargo test, wheels, pytest, CPython conformance, short soak,
#                            third-party suites (CI's part)
#   make conformance PY=python3.13
#   make bench               ferroloop beside the stdlib loop, uvloop and the other loops
#   make lint                cargo fmt, clippy, and stubtest of the native module's stubs
#   make wheels              a manylinux wheel for every installed CPython 3.11-3.15, in dist/
#   make soak                a soak that loses nothing, on the stdlib loop and ferroloop
#   make thirdparty          aiohttp's, httpx's and httpcore's suites on both loops

PY ?= python3
# The CPython versions ferroloop supports (pyproject.toml says the same).
SUPPORTED := 3.11 3.12 3.13 3.14 3.15
# pyenv's shim for `python3.13` may exist yet refuse to run; take the first candidate that runs.
find_python = $(shell for p in $$(command -v $(1)) $$(ls $$HOME/.pyenv/versions/*/bin/$(1) 2>/dev/null); do \
	$$p -c 'import sys' >/dev/null 2>&1 && { echo $$p; break; }; done)
PYTHON := $(call find_python,$(PY))
# Every supported CPython installed here (evaluated only by the targets that use it).
WHEEL_PYTHONS = $(foreach v,$(SUPPORTED),$(call find_python,python$(v)))
ifeq ($(PYTHON),)
$(error $(PY) not found)
endif
PYVER := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
VENV ?= $(if $(filter python3,$(PY)),.venv,.venv-$(PYVER))
VPY := $(VENV)/bin/python
export PYO3_PYTHON := $(abspath $(VPY))

.PHONY: run test build loadgen wrk tmux rivals cargo-test pytest conformance bench lint clean wheels \
	soak thirdparty

$(VENV)/.deps: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -r requirements-dev.txt
	touch $@

build: $(VENV)/.deps
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/maturin develop --release -q

run: build
	$(VPY) -m ferroloop

# A CPython installed from Debian's packages (../shared/tools/cpython-debian.sh) brings its
# own glibc in <prefix>/sysroot: a test binary that embeds its libpython runs under that
# glibc's loader, told where the library and the standard library are.
PYPREFIX = $(shell $(PYTHON) -c 'import sys; print(sys.base_prefix)')
SYSROOT_LIB = $(PYPREFIX)/sysroot/usr/lib/x86_64-linux-gnu

cargo-test: $(VENV)/.deps
	if [ -d "$(SYSROOT_LIB)" ]; then \
		export PYTHONHOME="$(PYPREFIX)" \
		CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="$(SYSROOT_LIB)/ld-linux-x86-64.so.2 --library-path $(SYSROOT_LIB):$(PYPREFIX)/lib/x86_64-linux-gnu"; \
	fi; cargo test --lib -q

loadgen:
	cargo build --release -q -p ferroloop-loadgen

pytest: build loadgen wrk tmux
	$(VPY) -m pytest -q tests

conformance: build
	$(VPY) conformance/run.py

# Wheels first: tests/test_wheels.py installs each one into a fresh virtualenv. Then the
# shorter soak and the part of the third-party suites CI runs (make soak and
# make thirdparty run all of them).
test: cargo-test wheels pytest conformance
	$(VPY) soak/run.py --short
	$(VPY) thirdparty/run.py --ci

# maturin links with zig (the ziglang package), for glibc 2.17 (manylinux2014), in a target
# directory of its own so that it does not rebuild the development build's.
wheels: $(VENV)/.deps
	rm -rf dist
	test -n "$(WHEEL_PYTHONS)"
	for p in $(WHEEL_PYTHONS); do \
		CARGO_TARGET_DIR=target/wheels PYO3_PYTHON=$$p PATH=$(abspath $(VENV))/bin:$$PATH \
			$(VENV)/bin/maturin build --release --zig --compatibility manylinux2014 -q \
			-i $$p -o dist || exit 1; \
	done

# SOAK=--short is the shorter run CI makes.
soak: build
	$(VPY) soak/run.py $(SOAK)

# Each suite gets a virtualenv of its own (under .thirdparty/) with ferroloop's build on its
# path; THIRDPARTY=--ci runs the part CI runs.
thirdparty: build
	$(VPY) thirdparty/run.py $(THIRDPARTY)

# BENCH="--rounds 3 --json out.json" passes options to bench/run.py.
bench: build loadgen wrk rivals
	$(VPY) bench/run.py $(BENCH)

# The other loops the bench times: each one that will not install is UNAVAILABLE there.
rivals: $(VENV)/.deps
	$(VPY) bench/loops.py install

# wrk (Debian's package) loads the HTTP rows of the bench.
wrk:
	command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

# The monitor's terminal view is tested in tmux.
tmux:
	command -v tmux >/dev/null || { apt-get update -qq && apt-get install -y -qq tmux; }

$(VENV)/.lint: requirements-lint.txt $(VENV)/.deps
	$(VPY) -m pip install -q -r requirements-lint.txt
	touch $@

# Formatting, clippy (with the lints Cargo.toml denies), and the native module's stubs
# against the built module.
lint: build $(VENV)/.lint
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cd / && $(abspath $(VPY)) -m mypy.stubtest ferroloop._ferroloop

clean:
	rm -rf target .venv .venv-* .thirdparty
