"""Shared plumbing of the benchmark scripts: device, clocks, memory, records, tables.

Every script measures anomalyflow and, in the same process, anomalib 2.7's corresponding component
(when ``anomalib`` is importable: ``make bench`` installs it into ``.venv-bench``), prints a table and
appends one JSON line per run to ``bench/records/<name>.jsonl`` (the history that shows regressions).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RECORDS = BENCH_DIR / "records"


# ---------------------------------------------------------------------------------------------- setup


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def anomalib_available(wanted: bool = True) -> bool:
    """True when anomalib can be imported (and is wanted); prints a note otherwise."""
    if not wanted:
        return False
    try:
        import anomalib  # noqa: F401
    except Exception as error:  # ImportError, or a broken optional dependency
        print(f"note: anomalib is not importable ({type(error).__name__}: {error}); measuring anomalyflow only "
              "(make bench installs anomalib 2.7 into .venv-bench)")
        return False
    return True


def anomalib_version() -> str | None:
    try:
        import anomalib
    except Exception:
        return None
    return getattr(anomalib, "__version__", "?")


def loadavg() -> list[float] | None:
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def wait_for_quiet(threshold: float = 0.8, max_wait: float = 900.0, poll: float = 15.0) -> list[float] | None:
    """Wait (up to ``max_wait`` s) until the 1-minute load average is below ``threshold``; return the last load."""
    start = time.monotonic()
    load = loadavg()
    while load is not None and load[0] >= threshold and time.monotonic() - start < max_wait:
        print(f"waiting for a quiet machine: loadavg {load[0]:.2f} >= {threshold}", flush=True)
        time.sleep(poll)
        load = loadavg()
    return load


def git_commit() -> str | None:
    """HEAD (``+dirty-src`` when src/ has uncommitted changes); ``ANOMALYFLOW_COMMIT`` where it is set, for a copy
    of the checkout without its .git (the GPU machine's: bench/README.md, "GPU check")."""
    if os.environ.get("ANOMALYFLOW_COMMIT"):
        return os.environ["ANOMALYFLOW_COMMIT"]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "src"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty-src" if dirty else "") if commit else None


def anomalyflow_source() -> str:
    """Where anomalyflow was imported from (a PYTHONPATH checkout of another commit shows here)."""
    import anomalyflow

    return str(Path(anomalyflow.__file__).resolve().parents[1])


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(device: torch.device) -> dict:
    """What the numbers depend on: device, versions, threads, commit, date, load at the start."""
    info = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "loadavg_start": loadavg(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "anomalib": anomalib_version(),
        "anomalyflow_src": anomalyflow_source(),
    }
    return info


# ---------------------------------------------------------------------------------------------- clocks


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], object], device: torch.device, *, repeats: int, warmup: int = 1) -> list[float]:
    """Wall seconds of ``repeats`` calls of ``fn`` after ``warmup`` unclocked ones (device synchronised)."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def summary(times: list[float]) -> dict:
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "repeats": len(times),
            "times_s": [round(t, 6) for t in times]}


class PeakMemory:
    """Peak memory of a block: CUDA ``max_memory_allocated`` on a GPU, else the process's peak RSS increase.

    On the CPU a thread samples ``/proc/self/statm`` every ``interval`` s (the RSS high-water mark of
    ``getrusage`` cannot be reset between measurements); the value is the peak minus the RSS at entry.
    """

    def __init__(self, device: torch.device, interval: float = 0.005):
        self.device, self.interval = device, interval
        self.peak_bytes: int | None = None
        self._stop = threading.Event()

    @staticmethod
    def rss() -> int:
        try:
            pages = int(Path("/proc/self/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            return 0
        return pages * os.sysconf("SC_PAGE_SIZE")

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._max = max(self._max, self.rss())
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            self._base = self._max = self.rss()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device) - self._base
        else:
            self._stop.set()
            self._thread.join()
            self._max = max(self._max, self.rss())
            self.peak_bytes = self._max - self._base

    @property
    def kind(self) -> str:
        return "cuda_max_memory_allocated" if self.device.type == "cuda" else "cpu_peak_rss_increase"


def peak_gpu_bytes(device: torch.device) -> int | None:
    return torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None


@contextlib.contextmanager
def gpu_peak(device: torch.device) -> Iterator[dict]:
    """``{"peak_gpu_bytes": …}`` filled at exit (None on the CPU)."""
    out: dict = {"peak_gpu_bytes": None}
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    yield out
    if device.type == "cuda":
        synchronize(device)
        out["peak_gpu_bytes"] = torch.cuda.max_memory_allocated(device)


# ---------------------------------------------------------------------------------------------- output


def ratio(theirs: float | None, ours: float | None) -> float | None:
    """How many times faster anomalyflow is (their time / our time)."""
    if theirs is None or ours is None or ours <= 0:
        return None
    return theirs / ours


def fmt(value, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if unit == "s":
            return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"
        return f"{value:.3g}{unit}"
    return f"{value}{unit}"


def print_table(title: str, header: list[str], rows: list[list]) -> None:
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    print(f"\n{title}")
    for n, row in enumerate(cells):
        print("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))
    sys.stdout.flush()


def write_record(name: str, env: dict, settings: dict, results: list[dict], *, records: Path | None = None,
                 note: str | None = None) -> Path:
    """Append one JSON line ``{name, env, settings, results, note}`` to ``records/<name>.jsonl``."""
    record = {"benchmark": name, **env, "loadavg_end": loadavg(), "settings": settings, "results": results}
    if note:
        record["note"] = note
    path = append_record(record, records or RECORDS)
    print(f"record appended to {path}")
    return path


def append_record(record: dict, folder: Path) -> Path:
    """Append ``record`` as one JSON line to ``folder/<benchmark>.jsonl``, atomically (the history is rewritten
    through a temporary file, so a run killed mid-write leaves the previous history, never half a line)."""
    from anomalyflow.atomic import write_text

    path = Path(folder) / f"{record['benchmark']}.jsonl"
    previous = path.read_text() if path.is_file() else ""
    write_text(path, previous + json.dumps(record, default=str) + "\n")
    return path


def common_arguments(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N")
    parser.add_argument("--no-anomalib", action="store_true", help="measure anomalyflow only")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (a smoke test, not a measurement)")
    parser.add_argument("--records", type=Path, default=None, help="folder of the .jsonl history (bench/records)")
    parser.add_argument("--no-record", action="store_true", help="print only, append nothing to the history")
    parser.add_argument("--note", default=None, help="free text stored with the record")
    return parser


def finish(name: str, device: torch.device, env: dict, settings: dict, results: list[dict], args) -> dict:
    record = {"benchmark": name, **env, "settings": settings, "results": results}
    if not args.no_record and not args.tiny:
        write_record(name, env, settings, results, records=args.records, note=args.note)
    return record


def measure(name: str, args, run: Callable[..., tuple[dict, list[dict]]], table: Callable[[list[dict]], None], *,
            tiny: dict, full: dict) -> dict:
    """The body of a one-device benchmark's ``main()``: ``run(device, **kwargs)`` with the ``tiny`` or ``full``
    keyword arguments (``with_anomalib`` defaults to whether anomalib is asked for and importable), the
    table, the record."""
    device = resolve_device(args.device)
    env = environment(device)
    kwargs = {"with_anomalib": anomalib_available(not args.no_anomalib), **(tiny if args.tiny else full)}
    settings, results = run(device, **kwargs)
    table(results)
    return finish(name, device, env, settings, results, args)


#: ``--tiny`` for both EfficientAD benchmarks: 64² input. anomalib's encoder has a fixed 8×8 kernel that needs
#: 256², so anomalyflow only.
EFFICIENTAD_TINY = {"sizes": ("s",), "batches": (1, 2), "repeats": {1: 1, 2: 1}, "warmup": {1: 0, 2: 0},
                    "image_size": 64, "with_anomalib": False}


def mib(value) -> str:
    """Bytes as MiB for a table cell; a dash when unmeasured."""
    return "—" if value is None else f"{value / 2**20:.0f} MiB"


def efficientad_table(results: list[dict], title: str, *, rate: str, rate_format: str, time_label: str,
                      rate_label: str) -> None:
    """The EfficientAD benchmarks' table: per model, precision and batch, ours vs anomalib, time and ``rate``."""
    rows = []
    for r in results:
        theirs = r.get("theirs")
        rows.append([f"EfficientAD-{r['size'].upper()}", r["precision"], r["batch"],
                     fmt(r["ours"]["median_s"], "s"), format(r["ours"][rate], rate_format),
                     fmt(theirs["median_s"], "s") if theirs else "—",
                     format(theirs[rate], rate_format) if theirs else "—",
                     f"{r['speedup']:.2f}×" if theirs else "—",
                     mib(r["ours"].get("peak_gpu_bytes")), mib(theirs.get("peak_gpu_bytes")) if theirs else "—"])
    print_table(title, ["model", "precision", "batch", f"ours{time_label}", f"ours {rate_label}",
                        f"anomalib{time_label}", f"anomalib {rate_label}", "speedup", "ours GPU peak",
                        "anomalib GPU peak"], rows)
