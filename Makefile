# Two entry points on a fresh machine:
#   make book PROFILE=quick   set up, execute every chapter, build the HTML book
#   make test                 unit tests and notebook tests (nbval)
#   make check-book           open every built page in headless Chromium
PYTHON ?= python3
VENV ?= .venv
PROFILE ?= quick
BIN := $(VENV)/bin

# Where ../shared/data exists (offline development and CI machines) it holds
# the real ground truths and split masks; elsewhere hsilib downloads them.
ifneq ($(wildcard ../shared/data),)
export HSILIB_DATA_DIR ?= $(abspath ../shared/data)
endif

.PHONY: setup notebooks book test check-book chromium clean

# torch is pinned first: 2.13.0 is a CPU wheel on these machines, and the
# package's looser range then installs nothing more.
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[book,dev]"
	touch $@

setup: $(BIN)/.installed

# RESULTS=ARCHIVE (from `hsilib results pack`, e.g. a cluster's full run):
# verified and unpacked into the store first, so the chapters train nothing
# it holds.
notebooks: setup
	$(if $(RESULTS),$(BIN)/hsilib results unpack $(RESULTS))
	$(BIN)/hsilib book run --profile $(PROFILE)

book: notebooks
	$(BIN)/jupyter-book build . --warningiserror --keep-going
	@echo "book: $(CURDIR)/_build/html/index.html"

# The system's Chromium (Debian's package; Playwright, from the dev extra,
# drives it and downloads no browser of its own). Installed with apt-get
# where this runs as root; elsewhere the message says what to install.
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    { apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }; }; } || \
	  { echo "check-book needs Chromium: apt-get install chromium (as root)" >&2; exit 1; }

# Every page of the built book (make book first): a console error, a missing
# image, an unresolved internal link or a table overflowing the page fails it;
# a screenshot of each page goes to _build/screenshots/.
check-book: setup chromium
	$(BIN)/hsilib book check _build/html --screenshots _build/screenshots

test: setup
	$(BIN)/python -m pytest -q --nbval-lax tests notebooks

clean:
	rm -rf _build book/*.ipynb
