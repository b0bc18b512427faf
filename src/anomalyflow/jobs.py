"""The frame every workflow job runs in: its log file, thread count, one-line error reporting, and run options.

A rule script is a few lines, the same frame around one library call::

    with rule_job(snakemake) as run:
        fit_patchcore(snakemake.input.samples, folder, snakemake.params.method, device=run.device,
                      num_workers=run.num_workers)

:func:`rule_job` reads what it needs from the script's ``snakemake`` object (``log``, ``rule``, ``threads``,
``config``, ``wildcards``: plain attributes, nothing of Snakemake is imported) and gives the job its
:class:`RunOptions`: how it runs, not what it computes, so none of them is in the rule's ``params`` (the rerun
trigger). That is the one way a script receives them. :func:`job` is the same frame from plain values.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from anomalyflow.errors import user_errors
from anomalyflow.logs import get_logger, setup_logging


@dataclass(frozen=True)
class RunOptions:
    """How a job runs (config keys, defaults in the schema; changing one changes no result).

    ``device``: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (top-level ``device``); ``num_workers``: DataLoader
    worker processes (top-level ``num_workers``); ``checkpoint_every``: iterations between training checkpoints
    of the job's method (EfficientAD) or teacher, None for a job that trains nothing.
    """

    device: str
    num_workers: int
    checkpoint_every: int | None = None


def run_options(config: Mapping, wildcards: Mapping[str, str]) -> RunOptions:
    """The :class:`RunOptions` of a job with ``wildcards`` under a validated workflow ``config``."""
    from anomalyflow.config import method_params, teacher_params

    checkpoint_every = None
    if "teacher" in wildcards:
        checkpoint_every = teacher_params(config, wildcards["teacher"])["checkpoint_every"]
    elif {"dataset", "category", "method"} <= set(wildcards):
        params = method_params(config, wildcards["dataset"], wildcards["category"], wildcards["method"])
        checkpoint_every = params.get("checkpoint_every")
    return RunOptions(device=config["device"], num_workers=config["num_workers"], checkpoint_every=checkpoint_every)


@contextlib.contextmanager
def job(log_file: str | os.PathLike | None, *, name: str = "job", threads: int | None = None) -> Iterator[None]:
    """Log to ``log_file``, run torch on ``threads`` threads, report an anomalyflow error as one line naming
    ``name``, and log the job's duration."""
    setup_logging(log_file)
    if threads:
        import torch

        torch.set_num_threads(max(1, int(threads)))
    log = get_logger("job")
    started = time.perf_counter()
    with user_errors(f"anomalyflow[{name}]"):
        yield
        log.info("%s finished in %.1f s", name, time.perf_counter() - started)


@contextlib.contextmanager
def rule_job(script) -> Iterator[RunOptions]:
    """:func:`job` for a rule script's ``snakemake`` object: its log, rule name and threads; yields its
    :class:`RunOptions`."""
    log_file = script.log[0] if len(script.log) else None
    with job(log_file, name=script.rule, threads=script.threads):
        yield run_options(script.config, dict(script.wildcards.items()))


__all__ = ["RunOptions", "job", "rule_job", "run_options"]
