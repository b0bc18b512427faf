"""Batches that shrink when the GPU runs out of memory, instead of failing the job.

A batch size that fits one GPU (or one image size) may not fit another. Feature extraction and
scoring therefore run their per-batch work through :class:`AdaptiveBatch`: on
``torch.cuda.OutOfMemoryError`` it frees the CUDA cache, halves the batch size, logs one line, and
retries the same items; the smaller size is kept for the rest of the pass, so the cost of finding it
is paid once. Every model here treats the images of a batch independently (no batch norm in
training mode at inference), so a halved pass computes the same numbers as an unhalved one (bit for bit
on the CPU, which the tests check; GPU kernels chosen per batch shape may differ in the last bits).

:func:`map_batches` is the usual entry point: it streams images from disk with one DataLoader
(:func:`~anomalyflow.data.loader.iterate_batches`) and applies ``fn`` to each batch adaptively::

    for rows, (scores, maps) in map_batches(model.predict, paths, model.transform(), 16,
                                            device=model.device, what="scoring"):
        all_scores[rows] = scores

A batch is a tensor ``[B, ...]`` or, for a transform that gives several views of an image (an
ensemble: each member's input size), a tuple of them with a common first dimension; slicing and
moving to the device apply to every view (:func:`batch_length`, :func:`map_tensors`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

import torch

from anomalyflow.errors import ConfigError
from anomalyflow.logs import get_logger

log = get_logger(__name__)

R = TypeVar("R")


class Sliceable(Protocol):
    def __len__(self) -> int: ...

    def __getitem__(self, index: slice) -> Any: ...


def map_tensors(fn: Callable[[torch.Tensor], torch.Tensor], batch):
    """``fn`` applied to a tensor, or to every tensor of a (nested) tuple or list of them; tuples come back."""
    if isinstance(batch, torch.Tensor):
        return fn(batch)
    if isinstance(batch, (tuple, list)):
        return tuple(map_tensors(fn, view) for view in batch)
    raise TypeError(f"a batch must be a tensor or a tuple of tensors, not {type(batch).__name__}")


def batch_length(batch) -> int:
    """Items in a batch: the first dimension of a tensor, or of the first view of a tuple of them."""
    return batch.shape[0] if isinstance(batch, torch.Tensor) else batch_length(batch[0])


class _Views:
    """A tuple of views of the same images, sliceable along the images (for :class:`AdaptiveBatch`)."""

    def __init__(self, views):
        self.views = views

    def __len__(self) -> int:
        return batch_length(self.views)

    def __getitem__(self, index: slice):
        return map_tensors(lambda view: view[index], self.views)


def is_out_of_memory(error: BaseException) -> bool:
    """True for a CUDA allocation failure (the only error a smaller batch can cure)."""
    return isinstance(error, torch.cuda.OutOfMemoryError)


class AdaptiveBatch:
    """A batch size that halves on CUDA out-of-memory errors and remembers the size that worked.

    ``what`` names the pass in the log line and in the error raised when even one item does not fit.
    """

    def __init__(self, batch_size: int, *, what: str = "batch"):
        if int(batch_size) < 1:
            raise ConfigError(f"batch_size: must be at least 1, got {batch_size}")
        self.size = int(batch_size)
        self.what = what

    def run(self, fn: Callable[[Any], R], items: Sliceable) -> list[tuple[slice, R]]:
        """``fn`` on consecutive slices of ``items`` (at most :attr:`size` long): ``[(slice, fn(items[slice]))]``.

        On an out-of-memory error the failed slice is retried at half the size; ``fn`` must not
        have side effects that a retry would repeat (return results, do not append them).
        """
        results: list[tuple[slice, R]] = []
        start, total = 0, len(items)
        while start < total:
            part = slice(start, min(start + self.size, total))
            try:
                result = fn(items[part])
            except Exception as error:
                if not is_out_of_memory(error):
                    raise
                # Leave the except block first: the traceback holds the failed batch's activations.
                failed = True
            else:
                failed = False
            if failed:
                self._halve()
                continue
            results.append((part, result))
            start = part.stop
        return results

    def _halve(self) -> None:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if self.size == 1:
            raise ConfigError(f"{self.what}: out of GPU memory even with one image per batch; lower image_size "
                              "in the config, free the GPU, or run on a larger one (device: cpu also works)")
        old, self.size = self.size, max(1, self.size // 2)
        log.warning("%s: CUDA out of memory at batch size %d; retrying with batch size %d", self.what, old, self.size)


def map_batches(
    fn: Callable[[torch.Tensor], R],
    paths: Sequence[str],
    transform,
    batch_size: int,
    *,
    device: torch.device | str = "cpu",
    num_workers: int = 0,
    desc: str | None = None,
    what: str | None = None,
) -> Iterator[tuple[slice, R]]:
    """Yield ``(rows, fn(images))`` over ``paths`` in order; ``rows`` indexes ``paths``.

    Images are decoded and transformed ``batch_size`` at a time; ``fn`` sees sub-batches once an
    out-of-memory error has halved the size. ``desc`` labels the progress bar (None: no bar).
    """
    from anomalyflow.data.loader import iterate_batches

    adaptive = AdaptiveBatch(batch_size, what=what or desc or "batch")
    for rows, batch in iterate_batches(paths, transform, batch_size, num_workers=num_workers, device=device,
                                       desc=desc):
        items = batch if isinstance(batch, torch.Tensor) else _Views(batch)
        for part, result in adaptive.run(fn, items):
            yield slice(rows.start + part.start, rows.start + part.stop), result


__all__ = ["AdaptiveBatch", "batch_length", "is_out_of_memory", "map_batches", "map_tensors"]
