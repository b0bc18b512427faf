# Two commands a newcomer needs: `make demo` and `make test`. Both create or refresh .venv first.
PYTHON ?= python3
VENV   ?= .venv
# torch comes first and pinned: a bare `torch` requirement would pull a multi-GB CUDA build from PyPI,
# while these releases are available as local wheels on the development machines and CI.
TORCH  ?= torch==2.14.1 torchvision==0.29.1
FAISS  ?= cpu
CORES  ?= 2
PYTEST_ARGS ?=

BIN := $(VENV)/bin
STAMP := $(VENV)/.anomalyflow-installed

.PHONY: venv demo test test-quick lint report bench clean-results

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -c "import torch, torchvision" 2>/dev/null || $(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[$(FAISS),workflow,dev]"
	@touch $@

demo: venv
	$(BIN)/snakemake --cores $(CORES) results/demo/all.csv
	@echo; echo "results table: results/demo/all.csv"; $(BIN)/python -m anomalyflow.aggregate --show results/demo/all.csv

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-quick: venv
	$(BIN)/python -m pytest -m "not slow and not slurm" $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check src tests workflow bench
	$(BIN)/snakemake --lint

report: venv
	$(BIN)/snakemake --cores $(CORES) results/demo/all.csv
	$(BIN)/snakemake --report report.html results/demo/all.csv

bench: venv
	$(BIN)/python bench/run_all.py

clean-results:
	rm -rf results logs benchmarks .snakemake
