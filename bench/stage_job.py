"""One measured stage of bench/real_scale.py in a process of its own: ``python bench/stage_job.py JOB.json``.

Only the standard library is imported at the top, so that the process's peak memory counts what the stage's
library call imports (as the workflow's job would: the sample table job never imports torch); torch comes in
for the step clock only where the stage trains. JOB.json holds the call (``module:function``, arguments),
the threads, the log file, whether to clock optimiser steps, and where to write the result.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from pathlib import Path


class PrefixDone(BaseException):
    """Ends a stage after its measured prefix. A BaseException, so that the job frame's error handler (which
    turns every Exception into a one-line exit) lets it through, as it does KeyboardInterrupt."""


class StepClock:
    """The call's wall time and, with ``steps``, the end of every optimiser step in the process (torch's global
    post-step hook), raising :class:`PrefixDone` after ``stop_after`` of them when given."""

    def __init__(self, steps: bool = False, stop_after: int | None = None):
        self.steps, self.stop_after = steps, stop_after
        self.ends: list[float] = []
        self.stopped = False

    def _hook(self, optimizer, args, kwargs) -> None:
        self.ends.append(time.perf_counter() - self.start)
        if self.stop_after is not None and len(self.ends) >= self.stop_after:
            raise PrefixDone

    def __enter__(self) -> StepClock:
        self.handle = None
        if self.steps:
            from torch.optim.optimizer import register_optimizer_step_post_hook

            self.handle = register_optimizer_step_post_hook(self._hook)
        self.start = time.perf_counter()
        return self

    def __exit__(self, kind, value, traceback) -> bool:
        self.call_s = time.perf_counter() - self.start
        if self.handle is not None:
            self.handle.remove()
        self.stopped = kind is PrefixDone
        return self.stopped

    def result(self) -> dict:
        return {"call_s": self.call_s, "step_ends_s": self.ends, "stopped": self.stopped}


def execute(call: dict, *, threads: int | None, log_file: str | None, steps: bool = False,
            stop_after: int | None = None) -> dict:
    """Make one stage's library call inside the workflow's job frame (:func:`anomalyflow.jobs.job`, which sets
    torch's threads where the rule script passes them); its clock."""
    from anomalyflow.jobs import job

    module, _, name = call["function"].partition(":")
    function = getattr(importlib.import_module(module), name)
    with StepClock(steps, stop_after) as clock, job(log_file, name=call["stage"], threads=threads):
        function(*call.get("args", ()), **call.get("kwargs", {}))
    return clock.result()


def pin(cores: int) -> list[int] | None:
    """Restrict this process to ``cores`` of the CPUs it may use (so a big machine measures a small one)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) > cores:
        os.sched_setaffinity(0, allowed[:cores])
    return sorted(os.sched_getaffinity(0))


def peak_rss() -> int | None:
    """This process's peak resident set size in bytes: ``VmHWM``, the high-water mark of its own address space.

    Not ``getrusage``'s ``ru_maxrss``: Linux carries that over ``exec`` from the forked parent, so every stage
    process would report at least its parent's size (the parent has imported torch: ~0.9 GB)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def samples_job(layout: str, root: str, category: str, out: str, *, workers: int, dataset: str) -> None:
    """What workflow/scripts/data_samples.py runs (write_verified_samples; LOCO has its own validation folder)."""
    from anomalyflow.data.check import verified_samples
    from anomalyflow.data.table import write_samples

    write_samples(verified_samples(layout, root, category, workers=workers, dataset=dataset), out)


def evaluate_job(samples: str, scores: str, maps: str, out: str, **kwargs) -> None:
    """workflow/scripts/results_metrics.py's two calls."""
    from anomalyflow.evaluate import evaluate_category, write_metrics

    write_metrics(out, evaluate_category(samples, scores, maps, **kwargs))


def main(job_file: str) -> None:
    spec = json.loads(Path(job_file).read_text())
    cpus = pin(spec["cores"])
    result = execute(spec["call"], threads=spec["threads"], log_file=spec["log"], steps=spec["steps"],
                     stop_after=spec["stop_after"])
    Path(spec["result"]).write_text(json.dumps({**result, "cpus": cpus, "peak_bytes": peak_rss()}))


if __name__ == "__main__":
    main(sys.argv[1])
