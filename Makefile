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

.PHONY: venv demo test test-quick lint report bench bench-venv clean-results

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

# Benchmarks (bench/README.md) run in their own environment, .venv-bench: anomalyflow plus anomalib, which
# every benchmark measures side by side; anomalib never enters .venv. BENCH_ARGS go to bench/run_all.py.
BENCH_VENV ?= .venv-bench
ANOMALIB   ?= anomalib==2.7.0
BENCH_ARGS ?=
BENCH_BIN   := $(BENCH_VENV)/bin
BENCH_STAMP := $(BENCH_VENV)/.anomalyflow-installed

bench-venv: $(BENCH_STAMP)

$(BENCH_STAMP): pyproject.toml Makefile
	@test -x $(BENCH_BIN)/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_BIN)/python -m pip install -q --upgrade pip
	@$(BENCH_BIN)/python -c "import torch, torchvision" 2>/dev/null || $(BENCH_BIN)/python -m pip install -q $(TORCH)
	$(BENCH_BIN)/python -m pip install -q -e ".[$(FAISS),workflow]" $(ANOMALIB)
	@$(BENCH_BIN)/python -c "import torch, sys; v = torch.__version__.split('+')[0]; \
	  sys.exit(0 if '$(TORCH)'.startswith('torch==' + v) else f'anomalib replaced torch: {v}')"
	@touch $@

bench: bench-venv
	$(BENCH_BIN)/python bench/run_all.py $(BENCH_ARGS)

clean-results:
	rm -rf results logs benchmarks .snakemake
