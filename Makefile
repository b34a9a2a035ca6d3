# The README's commands.  Each target installs what it needs, idempotently:
# Debian packages (when missing), .venv with torch==2.13.0 (CPU build) and lobfast[dev].
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := build-essential pkg-config libzstd-dev zlib1g-dev libwebsockets-dev zstd clang clang-format
SETUP_STAMP := $(VENV)/.lobfast-setup
CSRC := $(wildcard csrc/*/*.[ch] csrc/core/*/*.[ch])
SO_STAMP := lobfast/.built
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The recorder lobfast-collect is always built here (the tests and the demo use it); a plain
# `pip install` builds it only where pkg-config finds libwebsockets (setup.py, LOBFAST_COLLECTOR).
export LOBFAST_COLLECTOR := 1

.PHONY: all setup build test test-asan demo bench lint format clean

all: build

# --- set-up ---------------------------------------------------------------------------
setup: $(SETUP_STAMP)

$(SETUP_STAMP): pyproject.toml setup.py
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	$(PYTHON) -c "import ensurepip" 2>/dev/null || missing="$$missing python3-venv"; \
	$(PYTHON) -c "import os, sysconfig; assert os.path.exists(sysconfig.get_paths()['include'] + '/Python.h')" \
	  2>/dev/null || missing="$$missing python3-dev"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	# a venv left half-made by an earlier failure (no pip) is made again
	$(PY) -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	# exactly this torch: an unpinned one would pull gigabytes of CUDA packages
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(SO_STAMP) $@

# Rebuild the extension in place when C sources change (pip install -e built it once).
build: $(SO_STAMP)

$(SO_STAMP): $(SETUP_STAMP) $(CSRC) setup.py
	$(PY) setup.py -q build_ext --inplace --force
	touch $@

# --- the README's commands --------------------------------------------------------------
test: build
	$(PY) -m pytest -q tests

demo: build
	$(VENV)/bin/lobfast demo

bench: build
	$(PY) benchmarks/run.py

# ASan/UBSan build of the same suite (the interpreter itself is not instrumented, so
# libasan is preloaded; leaks in CPython/NumPy are not ours and are not reported).  The
# normal build is restored afterwards, whatever the result.
ASAN_ENV := LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	PYTHONMALLOC=malloc

test-asan: $(SETUP_STAMP)
	rm -f lobfast/_core*.so $(SO_STAMP)
	LOBFAST_SANITIZE=1 $(PY) setup.py -q build_ext --inplace --force -b build/asan -t build/asan/tmp
	ldd lobfast/_core*.so | grep -q libasan || { echo "error: not an ASan build"; exit 1; }
	$(ASAN_ENV) $(PY) -m pytest -q -x tests -p no:cacheprovider; status=$$?; \
	  rm -f lobfast/_core*.so; $(PY) setup.py -q build_ext --inplace --force && touch $(SO_STAMP); \
	  exit $$status

lint: $(SETUP_STAMP)
	$(VENV)/bin/ruff check lobfast tests benchmarks
	clang-format --dry-run -Werror $(CSRC)

format: $(SETUP_STAMP)
	$(VENV)/bin/ruff format lobfast tests benchmarks
	clang-format -i $(CSRC)

clean:
	rm -rf build lobfast/*.so $(SO_STAMP) .pytest_cache

# --- fuzzing: `make fuzz` (FUZZ_SECONDS=600 for a longer run) --------------------------------
# libFuzzer harnesses over the pure-C core (tests/fuzz), built with clang under ASan + UBSan
# where any report is a crash.  Seeds come from the first lines of tests/data/binance/*.gz;
# corpora grow under build/fuzz between runs, and a crashing input is saved there as
# crash-<sha1> (replay it with `build/fuzz/fuzz_binance build/fuzz/crash-...`).
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
FUZZ_DIR := build/fuzz
FUZZ_APT := clang pkg-config libzstd-dev zlib1g-dev
FUZZ_CFLAGS := -std=c11 -g -O1 -fno-omit-frame-pointer -Icsrc -Wall -Wextra -Wno-missing-field-initializers \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_RUN := -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/

.PHONY: fuzz fuzz-build
fuzz: fuzz-build $(FUZZ_DIR)/seeds.stamp
	@mkdir -p $(FUZZ_DIR)/corpus_binance $(FUZZ_DIR)/corpus_decimal
	@status=0; \
	$(FUZZ_DIR)/fuzz_binance $(FUZZ_RUN) -max_len=8192 -dict=tests/fuzz/binance.dict \
	  $(FUZZ_DIR)/corpus_binance $(FUZZ_DIR)/seeds_binance || status=1; \
	$(FUZZ_DIR)/fuzz_decimal $(FUZZ_RUN) -max_len=512 \
	  $(FUZZ_DIR)/corpus_decimal $(FUZZ_DIR)/seeds_decimal || status=1; \
	mkdir -p $(FUZZ_DIR)/corpus_book; \
	$(FUZZ_DIR)/fuzz_book $(FUZZ_RUN) -max_len=16388 $(FUZZ_DIR)/corpus_book || status=1; \
	mkdir -p $(FUZZ_DIR)/corpus_csv; \
	$(FUZZ_DIR)/fuzz_csv $(FUZZ_RUN) -max_len=4096 -dict=tests/fuzz/csv.dict \
	  $(FUZZ_DIR)/corpus_csv $(FUZZ_DIR)/seeds_csv || status=1; \
	mkdir -p $(FUZZ_DIR)/corpus_kernels; \
	$(FUZZ_DIR)/fuzz_kernels $(FUZZ_RUN) -max_len=8192 $(FUZZ_DIR)/corpus_kernels || status=1; \
	exit $$status

FUZZ_HARNESSES := binance decimal book csv kernels
fuzz-build: $(FUZZ_HARNESSES:%=$(FUZZ_DIR)/fuzz_%)

CORE_C := $(wildcard csrc/core/*.c csrc/core/*/*.c)
$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(wildcard csrc/core/*.[ch] csrc/core/*/*.[ch])
	@missing=""; for p in $(FUZZ_APT); do \
	  [ $$p = clang ] && command -v $(FUZZ_CC) >/dev/null && continue; \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $< $(CORE_C) $$(pkg-config --cflags --libs libzstd zlib) -lm -o $@

$(FUZZ_DIR)/seeds.stamp: tests/fuzz/make_seeds.py tests/fuzz/make_csv_seeds.py $(wildcard tests/data/binance/*.gz)
	rm -rf $(FUZZ_DIR)/seeds_binance $(FUZZ_DIR)/seeds_decimal $(FUZZ_DIR)/seeds_csv
	$(PYTHON) tests/fuzz/make_seeds.py $(FUZZ_DIR)/seeds_binance $(FUZZ_DIR)/seeds_decimal
	$(PYTHON) tests/fuzz/make_csv_seeds.py $(FUZZ_DIR)/seeds_csv
	@mkdir -p $(FUZZ_DIR) && touch $@
