"""The GPU check: every GPU figure of anomalyflow in one run, each record into one folder, then one summary.

    bash bench/gpu_check.sh OUT                  # on the GPU machine: installs the carried wheels, then this
    python bench/gpu_check.py --out OUT [--tiny] [--device auto|cpu|cuda] [--no-anomalib] [--budget-s 300]

A GPU is lent for a short, fixed time, so this is the one prepared command that measures everything (the
benchmarks' own scripts, with their GPU settings), in this order, the goal-bearing steps first:

1. preflight: versions and device; a full run stops here unless CUDA, faiss and anomalib are importable;
2. the CUDA tests: ``pytest -m cuda`` over the test files that use the marker;
3. ``efficientad_inference``: EfficientAD-S and -M, fp32 and fp16 autocast, batches 1, 16 and 64;
4. ``efficientad_training``: EfficientAD-S, AMP (fp16), batches 1 and 8, 200 clocked steps, loss falling;
5. ``coreset``: greedy 1% and 10% of 204,800 × 1,536 on the device, against anomalib's KCenterGreedy;
6. ``metrics``: AUPRO and pixel AUROC on 1,000 maps of 256² on the device;
7. ``scoring``: PatchCore (faiss GPU index and torch search) and PNI at batch 32, backbone included.

Each benchmark's record is appended to ``OUT/<benchmark>.jsonl`` as soon as it ends (peak GPU memory is in
every record), so a run cut short keeps what it measured; no benchmark starts after ``--budget-s`` seconds
(300 on a full run: the summary is then out within the device call's limit; none with ``--tiny``).
Last, ``OUT/summary.md``: the CUDA tests' result and the table of ``bench/summary.py`` with the goals.
``--tiny`` runs the same steps at the benchmarks' tiny sizes on the CPU in seconds (tests/test_gpu_check.py).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import importlib
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl
import summary


def steps(device: torch.device) -> list[tuple[str, str, list[str]]]:
    """(module, record name, its arguments): the issue's sizes; the repeats are the scripts' own."""
    amp = "fp16" if device.type == "cuda" else "fp32"  # CPU autocast is no training precision (and crawls)
    return [
        ("efficientad_inference", "efficientad_inference", ["--sizes", "s", "m", "--batches", "1", "16", "64"]),
        ("efficientad_training", "efficientad_training", ["--sizes", "s", "--batches", "1", "8", "--precisions", amp,
                                                          "--steps", "200"]),
        ("coreset", "coreset", ["--case", "204800:0.01", "--case", "204800:0.1"]),
        ("metrics_speed", "metrics", ["--sizes", "1000"]),
        # The transcription of PNI's official loop scores one image at a time with a CPU faiss search of every
        # entry (~1 s an image): 4 images, one pass, give its rate without spending a minute of the GPU on it.
        ("scoring", "scoring", ["--batch", "32", "--search", "faiss-gpu", "torch", "--reference-repeats", "1",
                                "--reference-images", "4"]),
    ]


STEP_NAMES = [name for name, _, _ in steps(torch.device("cpu"))]


def say(text: str) -> None:
    print(text, flush=True)


def preflight(device: torch.device, *, tiny: bool, with_anomalib: bool) -> tuple[dict, list[str]]:
    """What the figures depend on, printed; and the reasons a full run cannot go on (empty: it can)."""
    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "device": str(device), "anomalyflow": bl.anomalyflow_source(), "anomalib": bl.anomalib_version()}
    problems = []
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, capability=f"{props.major}.{props.minor}",
                    multiprocessors=props.multi_processor_count, memory_gib=round(props.total_memory / 2**30, 1),
                    cudnn=torch.backends.cudnn.version())
    elif not tiny:
        problems.append("no CUDA device is visible (--tiny runs the steps on the CPU)")
    try:
        import faiss

        from anomalyflow.patches.memory import faiss_gpu_available

        info["faiss"] = f"{faiss.__version__}, GPU index: {'yes' if faiss_gpu_available() else 'no'}"
    except ImportError as error:
        info["faiss"] = None
        problems.append(f"faiss is not importable ({error}): carry its wheel (make gpu-wheels)")
    if with_anomalib and not bl.anomalib_available():
        problems.append("anomalib is not importable: carry the wheels of `make gpu-wheels` (or pass --no-anomalib)")
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
        info["nvidia_smi"] = smi.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["nvidia_smi"] = None
    for key, value in info.items():
        say(f"  {key}: {value}")
    return info, ([] if tiny else problems)


def cuda_test_files(repo: Path) -> list[str]:
    """The test files that use the ``cuda`` marker: collecting only them keeps the step short, and a module
    that needs what the GPU machine lacks (snakemake) is never imported."""
    return sorted(str(p.relative_to(repo)) for p in (repo / "tests").glob("test_*.py")
                  if "pytest.mark.cuda" in p.read_text())


def cuda_tests(repo: Path, timeout: float) -> dict:
    """``pytest -m cuda`` in a child process (its own CUDA context); its output goes to this log."""
    files = cuda_test_files(repo)
    command = [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider", *files]
    say("$ " + " ".join(command))
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=timeout)
        output, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as error:  # its captured output is bytes, whatever text= says
        partial = error.stdout.decode(errors="replace") if isinstance(error.stdout, bytes) else error.stdout or ""
        output, code = f"{partial}\ntimed out after {timeout:.0f} s", None
    say(output.rstrip())
    # pytest's closing line, e.g. "5 passed, 2 skipped in 9.81s" (without its ===== frame)
    lines = [line.strip("= ") for line in output.splitlines() if re.search(r"\d+ (passed|failed|skipped|error)", line)]
    last = lines[-1] if lines else (output.strip().splitlines() or ["no output"])[-1]
    return {"files": files, "exit_code": code, "result": last,
            "seconds": round(time.perf_counter() - start, 1)}


def run_benchmark(module_name: str, argv: list[str], out: Path, note: str) -> dict:
    """One benchmark's ``main`` (nothing appended to bench/records), its record appended to ``out``."""
    record = importlib.import_module(module_name).main(argv)
    record = {**record, "loadavg_end": bl.loadavg(), "note": note}
    path = bl.append_record(record, out)
    say(f"record appended to {path}")
    return record


#: torch's precision flags as the process started: each benchmark sets its own (EfficientAD's turn TF32 off),
#: and a benchmark must not inherit the one before it's (scoring's convolutions would lose cuDNN's TF32 default).
FLAGS = {"cudnn.allow_tf32": torch.backends.cudnn.allow_tf32, "cudnn.benchmark": torch.backends.cudnn.benchmark,
         "matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32}


def reset(device: torch.device) -> None:
    """Between benchmarks: torch's flags as they started, the previous benchmark's memory freed."""
    torch.backends.cudnn.allow_tf32 = FLAGS["cudnn.allow_tf32"]
    torch.backends.cudnn.benchmark = FLAGS["cudnn.benchmark"]
    torch.backends.cuda.matmul.allow_tf32 = FLAGS["matmul.allow_tf32"]
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def write_summary(out: Path, info: dict, tests: dict | None, steps: list[dict], names: list[str], *,
                  tiny: bool) -> str:
    from anomalyflow.atomic import write_text

    lines = [f"# GPU check{' (--tiny: a smoke run, not a measurement)' if tiny else ''}", "",
             f"{_dt.datetime.now().astimezone().isoformat(timespec='seconds')}, "
             + ", ".join(f"{k} {v}" for k, v in info.items() if v is not None), ""]
    if tests is not None:
        lines += [f"CUDA tests (`pytest -m cuda`, {len(tests['files'])} files): {tests['result']} "
                  f"(exit code {tests['exit_code']}, {tests['seconds']} s)", ""]
    lines += ["| step | status | seconds |", "|---|---|---|"]
    lines += [f"| {s['name']} | {s['status']} | {s['seconds']} |" for s in steps]
    lines += ["", *summary.markdown(out, names)]
    text = "\n".join(lines) + "\n"
    write_text(out / "summary.md", text)
    return text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder of the records and summary.md")
    parser.add_argument("--tiny", action="store_true", help="the benchmarks' tiny sizes (a smoke run, CPU-able)")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N")
    parser.add_argument("--no-anomalib", action="store_true", help="measure anomalyflow only")
    parser.add_argument("--skip-tests", action="store_true", help="leave out the CUDA tests")
    parser.add_argument("--only", nargs="+", choices=STEP_NAMES, default=None)
    parser.add_argument("--budget-s", type=float, default=None,
                        help="start no benchmark after this many seconds of the run (default 300; --tiny: none)")
    parser.add_argument("--note", default="gpu_check", help="stored with every record")
    args = parser.parse_args(argv)
    budget = args.budget_s if args.budget_s is not None else (float("inf") if args.tiny else 300.0)
    start = time.perf_counter()
    device = bl.resolve_device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    say(f"== preflight ({'tiny, ' if args.tiny else ''}device {device})")
    info, problems = preflight(device, tiny=args.tiny, with_anomalib=not args.no_anomalib)
    if problems:
        say("gpu_check: cannot measure here: " + "; ".join(problems))
        return 2
    repo = bl.REPO
    tests = None
    if not args.skip_tests:
        say("\n== CUDA tests")
        tests = cuda_tests(repo, timeout=150)
    common = ["--device", str(device), "--no-record"] + (["--tiny"] if args.tiny else [])
    common += ["--no-anomalib"] if args.no_anomalib else []
    done, names = [], []
    for module_name, record_name, options in steps(device):
        if args.only and module_name not in args.only:
            continue
        names.append(record_name)
        elapsed = time.perf_counter() - start
        if elapsed > budget:
            say(f"\n== {module_name}: skipped, {elapsed:.0f} s > --budget-s {budget:.0f}")
            done.append({"name": module_name, "status": "skipped (time budget)", "seconds": 0})
            continue
        say(f"\n== {module_name} (at {elapsed:.0f} s)")
        began = time.perf_counter()
        try:
            run_benchmark(module_name, options + common, args.out, args.note)
            status = "ok"
        except Exception as error:  # one broken benchmark must not cost the others' figures
            status = f"FAILED: {type(error).__name__}: {error}"
            say(f"{module_name} {status}")
        done.append({"name": module_name, "status": status, "seconds": round(time.perf_counter() - began, 1)})
        reset(device)
    text = write_summary(args.out, info, tests, done, names, tiny=args.tiny)
    say("\n" + text + f"\ngpu_check: {time.perf_counter() - start:.0f} s; records and summary.md in {args.out}")
    tests_ok = tests is None or tests["exit_code"] == 0
    return 0 if tests_ok and all(s["status"] == "ok" for s in done) else 1


if __name__ == "__main__":
    sys.exit(main())
