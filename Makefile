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

.PHONY: venv demo export test test-quick lint report bench bench-venv gpu-wheels gpu-check gpu-command clean-results

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -c "import torch, torchvision" 2>/dev/null || $(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[$(FAISS),workflow,dev,export]"
	@touch $@

demo: venv
	$(BIN)/snakemake --cores $(CORES) results/demo/all.csv results/demo/exports/exports.csv
	@echo; echo "results table: results/demo/all.csv"; $(BIN)/python -m anomalyflow.results_table --show results/demo/all.csv

# The demo's models as ONNX files (results/demo/exports/<category>/<method>.onnx), scored without torch by
# `anomalyflow predict --model <file>.onnx`; exports.csv says which methods have none and why.
export: venv
	$(BIN)/snakemake --cores $(CORES) results/demo/exports/exports.csv

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-quick: venv
	$(BIN)/python -m pytest -m "not slow and not slurm" $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check src tests workflow bench
	$(BIN)/snakemake --lint

report: venv
	$(BIN)/snakemake --cores $(CORES) results/demo/all.csv results/demo/exports/exports.csv
	$(BIN)/snakemake --report report.html results/demo/all.csv results/demo/exports/exports.csv

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

# GPU check (bench/README.md, "GPU check"): one command that measures every GPU figure on the GPU machine.
# `make gpu-wheels` fetches what that machine lacks (bench/gpu_wheels.txt) as wheels for its Python into
# GPU_WHEELS (ignored; the device tool's carry list names it), afresh each time so that one version of each
# name travels, and stops when they would not fit the tool's 64 MiB working-tree limit beside the checkout.
# `make gpu-check GPU_OUT=dir` runs the check where it is (GPU_CHECK_ARGS=--tiny: the CPU smoke run).
GPU_WHEELS ?= .whl
GPU_PY     ?= 3.12
GPU_PLATFORMS := manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
                 manylinux1_x86_64
GPU_WHEELS_MIB ?= 48
GPU_OUT    ?= gpu-check-out
GPU_CHECK_ARGS ?=
# The check's Python: .venv's where it exists (a development machine), else $(PYTHON) (the GPU machine's own).
GPU_CHECK_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))

gpu-wheels:
	rm -rf $(GPU_WHEELS) && mkdir -p $(GPU_WHEELS)
	$(PYTHON) -m pip download -q --no-deps --only-binary=:all: --python-version $(GPU_PY) --implementation cp \
	  $(addprefix --platform ,$(GPU_PLATFORMS)) -d $(GPU_WHEELS) -r bench/gpu_wheels.txt
	@# FrEIA (anomalib's flow models, imported by anomalib.models) publishes only an sdist: pure Python, built here.
	$(PYTHON) -m pip wheel -q --no-deps -w $(GPU_WHEELS) freia==0.2
	@du -cm $(GPU_WHEELS)/*.whl | tail -1 | awk '{ print "wheels: " $$1 " MiB (at most $(GPU_WHEELS_MIB))"; \
	  exit ($$1 > $(GPU_WHEELS_MIB)) }'

gpu-check:
	PYTHON=$(GPU_CHECK_PYTHON) bash bench/gpu_check.sh $(GPU_CHECK_ARGS) $(GPU_OUT)

# The device tool's call for the GPU machine, with this checkout's commit filled in (its copy has no .git).
gpu-command:
	@echo 'run: carry [".whl"], timeout_s 420, command:'
	@echo 'ANOMALYFLOW_COMMIT=$(shell git rev-parse HEAD)$(if $(shell git status --porcelain --untracked-files=no src),+dirty-src) bash bench/gpu_check.sh "$$OUT"'

clean-results:
	rm -rf results logs benchmarks .snakemake
