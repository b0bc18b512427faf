"""Batched image tensors for the networks: resize, ImageNet normalisation, a DataLoader built once.

Images are decoded by :func:`anomalyflow.data.images.load_image` (any mode → RGB, clear errors), resized
on the PIL image (bilinear with antialiasing, as torchvision's ``Resize`` in the official EfficientAD,
PUAD and PatchCore codes), converted and normalised (:mod:`anomalyflow.data.transforms`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from anomalyflow.batching import batch_length, map_tensors
from anomalyflow.data.transforms import IMAGENET_MEAN, IMAGENET_STD, image_transform
from anomalyflow.errors import DataError

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ImageDataset", "image_transform", "iterate_batches", "load_images",
           "worker_error"]


class ImageDataset(Dataset):
    """Images from a list of paths, each passed through ``transform``."""

    def __init__(self, paths: Sequence[str], transform):
        self.paths = [str(p) for p in paths]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        from anomalyflow.data.images import load_image

        return self.transform(load_image(self.paths[index]))


def iterate_batches(
    paths: Sequence[str],
    transform,
    batch_size: int,
    *,
    num_workers: int = 0,
    device: torch.device | str = "cpu",
    desc: str | None = None,
) -> Iterator[tuple[slice, torch.Tensor]]:
    """Yield ``(rows, batch)`` in path order, ``batch`` on ``device``; one DataLoader for the whole pass.

    ``batch`` is a tensor ``[B, ...]``, or a tuple of them when ``transform`` returns a tuple of views.
    """
    device = torch.device(device)
    loader = DataLoader(
        ImageDataset(paths, transform),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    begin = 0
    iterator = iter(loader)
    with tqdm(total=len(paths), desc=desc, unit="img", disable=desc is None, leave=False) as bar:
        while True:
            try:
                batch = next(iterator)
            except StopIteration:
                return
            except DataError:
                raise
            except Exception as error:
                raise worker_error(error) from None
            rows = slice(begin, begin + batch_length(batch))
            begin = rows.stop
            bar.update(rows.stop - rows.start)
            yield rows, map_tensors(lambda view: view.to(device, non_blocking=True), batch)


def worker_error(error: Exception) -> Exception:
    """A DataLoader worker re-raises our DataError with its traceback text; keep only the message."""
    text = str(error)
    marker = "DataError: "
    if marker in text:
        return DataError(text.rsplit(marker, 1)[1].strip().splitlines()[0])
    return error


def load_images(paths: Sequence[str], transform, *, num_workers: int = 0, batch_size: int = 32,
                desc: str | None = None) -> torch.Tensor:
    """All images as one CPU tensor ``[N, 3, H, W]`` (for training sets kept on the device)."""
    batches = [batch for _, batch in iterate_batches(paths, transform, batch_size, num_workers=num_workers,
                                                      desc=desc)]
    if not batches:
        raise DataError("no images to load")
    return torch.cat(batches)
