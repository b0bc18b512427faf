"""Resumable training: an atomic checkpoint beside the output, used only when the settings match.

A checkpoint is a torch file ``{"step", "settings", "state", "rng"}``: ``step`` = iterations done,
``settings`` = the JSON-able parameters (and input fingerprints) of the run, ``state`` = the
caller's state dicts (networks, optimizer, loss scaler), ``rng`` = torch's global CPU (and CUDA)
generator states, which dropout draws from. Everything else a loop draws is seeded by position
(:mod:`anomalyflow.efficientad.sampling`), so a run killed after checkpoint k and resumed ends with
the same weights as an uninterrupted one.

It lives at ``<output>.ckpt`` *beside* the output (``teacher.pt.ckpt``; ``efficientad_s.ckpt`` for a
model folder), not inside it: Snakemake deletes a job's outputs before rerunning it. A checkpoint
with other settings is ignored (and overwritten at the next save); it is deleted on success.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from anomalyflow.atomic import save_torch
from anomalyflow.errors import NumericalError
from anomalyflow.logs import get_logger

log = get_logger(__name__)


def checkpoint_path(output: str | os.PathLike) -> Path:
    """``<output>.ckpt`` (for a folder ``out/``: the file ``out.ckpt`` beside it)."""
    path = Path(output)
    return path.with_name(path.name + ".ckpt")


def canonical(settings: dict) -> str:
    return json.dumps(settings, sort_keys=True, default=str)


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (fingerprints the teacher and statistics a run depends on)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def paths_digest(paths) -> str:
    """SHA-256 of a list of paths (fingerprints a training set)."""
    return hashlib.sha256("\n".join(str(p) for p in paths).encode()).hexdigest()


def rng_state(device: torch.device) -> dict[str, Any]:
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def save_checkpoint(path: Path, step: int, settings: dict, state: dict[str, Any], device: torch.device) -> None:
    save_torch(path, {"step": step, "settings": canonical(settings), "state": state, "rng": rng_state(device)})


def end_step(step: int, iterations: int, loss: torch.Tensor, bar, *, checkpoint_every: int, path: Path,
             settings: dict, state: Callable[[], dict[str, Any]], device: torch.device, failure: str) -> None:
    """A training loop's bookkeeping after optimiser step ``step``: progress bar, loss check, checkpoint.

    The loss is read (a GPU sync) only every 10 steps, at the end and at checkpoints; a non-finite one
    stops with ``failure``, its ``{value}`` and ``{step}`` filled in. ``state`` builds what to save.
    """
    bar.update(1)
    done = step + 1
    save_now = done % checkpoint_every == 0 and done < iterations
    if step % 10 == 0 or done == iterations or save_now:
        value = loss.item()
        if not math.isfinite(value):
            raise NumericalError(failure.replace("{value}", str(value)).replace("{step}", str(step)))
        bar.set_postfix(loss=f"{value:.4f}")
    if save_now:
        save_checkpoint(path, done, settings, state(), device)


def load_checkpoint(path: Path, settings: dict) -> dict[str, Any] | None:
    """The checkpoint at ``path`` if it exists, is readable and was written with ``settings``."""
    if not path.is_file():
        return None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a damaged checkpoint only costs the progress it held
        log.warning("%s: unreadable checkpoint ignored (%s: %s)", path, type(error).__name__, error)
        return None
    if not isinstance(checkpoint, dict) or checkpoint.get("settings") != canonical(settings):
        log.warning("%s: checkpoint from other settings or inputs ignored; training starts afresh", path)
        return None
    log.info("%s: resuming after %d iterations", path, checkpoint["step"])
    return checkpoint


__all__ = ["checkpoint_path", "end_step", "file_digest", "load_checkpoint", "paths_digest", "save_checkpoint",
           "set_rng_state"]
