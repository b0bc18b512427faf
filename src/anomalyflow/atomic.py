"""Atomic file output: write to a temporary sibling, then rename over the target.

A job killed at any point (SIGKILL, pre-emption, out of memory) leaves either the previous complete
file or no file, never a truncated one that looks finished. Every artifact anomalyflow writes goes
through :func:`atomic_path`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on error remove it.

    The temporary name keeps the target's suffix (libraries such as numpy and tifffile choose the
    format from it). With ``directory=True`` a temporary directory is yielded and swapped in whole.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{target.stem}.tmp-"
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=target.suffix, dir=target.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        if directory:
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        else:
            _fsync(tmp)
            os.replace(tmp, target)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):  # a read-only parameters object (anomalyflow.params.Params)
        return dict(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def write_csv(path: str | os.PathLike, frame, **kwargs) -> None:
    """Write a pandas DataFrame as CSV (no index unless asked)."""
    kwargs.setdefault("index", False)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **kwargs)


def save_npz(path: str | os.PathLike, **arrays) -> None:
    import numpy as np

    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
