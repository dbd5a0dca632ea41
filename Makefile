# kwsc — the two commands of the README: `make demo` (the main job) and `make test`.
# Each one sets up everything itself on a fresh machine: .venv, pinned Python packages, apt packages.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
DATA ?=
JOBS ?= $(shell nproc)

# Debian packages the tests and the demo use (cross compilers, emulators, graphviz, PortAudio).
APT_PACKAGES := gcc-arm-none-eabi gcc-arm-linux-gnueabihf gcc-aarch64-linux-gnu qemu-user qemu-system-arm graphviz portaudio19-dev libsndfile1

.PHONY: all venv apt test demo bench fuzz clean lint

all: test

$(STAMP): pyproject.toml requirements/constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c requirements/constraints.txt -e '.[train,audio,dev]'
	@touch $(STAMP)

venv: $(STAMP)

apt:
	@bash tools/install_apt.sh $(APT_PACKAGES)

test: venv apt
	$(PY) -m pytest -n $(JOBS) --dist loadgroup -q

demo: venv apt
	$(PY) -m kwsc.demo $(if $(DATA),--data $(DATA),) $(if $(ARCH),--arch $(ARCH),) --outdir demo-out

bench: venv apt
	$(PIP) install --quiet -c requirements/constraints.txt -e '.[bench]'
	$(PY) -m pytest benchmarks -q -s --benchmark-columns=median,min,max --benchmark-sort=name

# >= 10,000 mutated models and wavs through the CLI; tally per format and outcome in fuzz-out/tally.{json,txt}.
FUZZ_CASES ?= 10000
FUZZ_JOBS ?= 2
fuzz: venv
	nice -n 10 $(PY) -m tests.fuzz --cases $(FUZZ_CASES) --jobs $(FUZZ_JOBS) --out fuzz-out

clean:
	rm -rf $(VENV) demo-out fuzz-out .pytest_cache build *.egg-info
