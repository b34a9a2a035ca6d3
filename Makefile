# The README's commands.  Each target installs what it needs, idempotently:
# Debian packages (when missing), .venv with torch==2.13.0 (CPU build) and lobfast[dev].
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := pkg-config libzstd-dev zlib1g-dev libwebsockets-dev zstd
SETUP_STAMP := $(VENV)/.lobfast-setup
CSRC := $(wildcard csrc/*/*.c csrc/*/*.h)
SO_STAMP := lobfast/.built
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all setup build test test-asan demo bench lint format clean

all: build

# --- set-up ---------------------------------------------------------------------------
setup: $(SETUP_STAMP)

$(SETUP_STAMP): pyproject.toml setup.py
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
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
	$(PY) -m pytest -q -p no:cacheprovider --nbmake notebooks -o filterwarnings=

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
	clang-format --dry-run -Werror csrc/*/*.c csrc/*/*.h

format: $(SETUP_STAMP)
	$(VENV)/bin/ruff format lobfast tests benchmarks
	clang-format -i csrc/*/*.c csrc/*/*.h

clean:
	rm -rf build lobfast/*.so $(SO_STAMP) .pytest_cache
