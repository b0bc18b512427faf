"""Reading the networks' torch state files with one-line errors that name the file (every method)."""

from __future__ import annotations

from pathlib import Path

import torch

from anomalyflow.errors import DataError


def load_state(path: Path) -> dict:
    """A torch file of plain tensors/dicts (``weights_only``)."""
    if not path.is_file():
        raise DataError(f"{path}: model file not found; run the stage that trains it (or import weights) first")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unpickling failure means the same to the user
        raise DataError(f"{path}: not a readable torch file ({type(error).__name__}: {error})") from None


def load_into(module: torch.nn.Module, state: dict, path: Path, *, assign: bool = False) -> None:
    """Strict ``load_state_dict``; missing/unexpected keys or wrong shapes are reported against ``path``.

    ``assign=True`` adopts the stored tensors (for a module built on the meta device).
    """
    try:
        module.load_state_dict(state, assign=assign)
    except RuntimeError as error:
        lines = str(error).strip().splitlines()
        detail = " ".join(line.strip() for line in lines[1:3]) or lines[0]
        raise DataError(f"{path}: does not fit a {type(module).__name__} of this size ({detail})") from None


__all__ = ["load_into", "load_state"]
