# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/livevis

test: $(STAMP)
	$(BIN)/ruff check .
	QT_QPA_PLATFORM=offscreen OPENCV_LOG_LEVEL=ERROR $(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/livevis bench --model alexnet --weights none --source synthetic --frames 200

clean:
	rm -rf $(VENV) out
