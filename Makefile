# Developer entry points. Both targets create (or reuse) the local virtual environment .venv
# and install vitaccel with everything it needs; nothing has to be installed beforehand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.vitaccel-installed

.PHONY: demo test install lint

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/vitaccel demo

test: $(STAMP)
	$(BIN)/python -m ruff check vitaccel tests benchmarks examples
	$(BIN)/python -m pytest -n 2 -q
