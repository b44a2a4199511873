# Two entry points on a fresh machine:
#   make book PROFILE=quick   set up, execute every chapter, build the HTML book
#   make test                 unit tests and notebook tests (nbval)
PYTHON ?= python3
VENV ?= .venv
PROFILE ?= quick
BIN := $(VENV)/bin

# Where ../shared/data exists (offline development and CI machines) it holds
# the real ground truths and split masks; elsewhere hsilib downloads them.
ifneq ($(wildcard ../shared/data),)
export HSILIB_DATA_DIR ?= $(abspath ../shared/data)
endif

.PHONY: setup notebooks book test clean

# torch is pinned first: 2.13.0 is a CPU wheel on these machines, and the
# package's looser range then installs nothing more.
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[book,dev]"
	touch $@

setup: $(BIN)/.installed

notebooks: setup
	$(BIN)/hsilib book run --profile $(PROFILE)

book: notebooks
	$(BIN)/jupyter-book build . --warningiserror --keep-going
	@echo "book: $(CURDIR)/_build/html/index.html"

test: setup
	$(BIN)/python -m pytest -q --nbval-lax tests notebooks

clean:
	rm -rf _build book/*.ipynb
