# Two entry points do all the set-up on a fresh machine: `make demo` and `make test`.
# Each creates .venv when missing and re-installs only when pyproject.toml changed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: demo test lint bench bench-all sysdeps clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_PINS)
	SAM2_BUILD_CUDA=0 $(BIN)/python -m pip install -q --no-build-isolation sam2==1.1.0 $(TORCH_PINS)
	$(BIN)/python -m pip install -q -e ".[gui,test,train,bench,sam2]" $(TORCH_PINS)
	touch $(STAMP)

venv: $(STAMP)

sysdeps:
	bash scripts/ensure-system-deps.sh

demo: $(STAMP)
	$(BIN)/fob demo --out demo_out

test: $(STAMP) sysdeps
	QT_QPA_PLATFORM=xcb $(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

bench-all: $(STAMP)
	$(BIN)/python bench/run_all.py --all

clean-venv:
	rm -rf $(VENV)
