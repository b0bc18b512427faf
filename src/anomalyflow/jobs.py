"""The frame every workflow job runs in: its log file, thread count, and one-line error reporting.

Rule scripts are a few lines: ``with job(snakemake.log[0], threads=snakemake.threads): library_call(...)``.
This module knows nothing of Snakemake; it takes plain values.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

from anomalyflow.errors import user_errors
from anomalyflow.logs import get_logger, setup_logging


@contextlib.contextmanager
def job(log_file: str | os.PathLike | None, *, name: str = "job", threads: int | None = None) -> Iterator[None]:
    setup_logging(log_file)
    if threads:
        import torch

        torch.set_num_threads(max(1, int(threads)))
    log = get_logger("job")
    started = time.perf_counter()
    with user_errors(f"anomalyflow[{name}]"):
        yield
        log.info("%s finished in %.1f s", name, time.perf_counter() - started)
