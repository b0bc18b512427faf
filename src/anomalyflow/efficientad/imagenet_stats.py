"""ImageNet-side inputs of EfficientAD: image lists, and the channel statistics of the target Ψ (A3).

``compute_imagenet_stats`` writes a torch file (:func:`anomalyflow.atomic.save_torch`) holding a dict:

- ``mean``, ``std``: float32 ``[384]``, the per-channel μ and σ of Ψ,
- ``variant`` (``"p"``/``"n"``), ``backbone``, ``weights`` (as given), ``image_size`` (the PDN's input
  side; Ψ ran on twice that), ``n_images`` (how many images were used), ``grayscale`` (see below).

μ = mean over images of each image's spatial mean of Ψ; σ = sqrt(mean over images of the spatial
mean of (Ψ − μ)²) — A3, as both official codes compute it. Both codes run two passes (one for μ, one
for σ) and so evaluate Ψ twice; here one pass accumulates each image's spatial means of Ψ and Ψ² in
float64, and σ² = mean(E[Ψ²]) − μ², which is the same quantity (every image has the same number of
positions) at half the cost.

The images: ``n_images`` paths drawn without replacement with ``seed`` (all of them if fewer). P
draws 10,000 indices *with* replacement (``torch.randint``, seed 42); N takes the first 10,000 of a
shuffled loader. Both compute the statistics through their distillation transform, so each image is
turned grayscale with probability 0.1 first; ``grayscale=0.1`` keeps that (0 switches it off).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from anomalyflow.atomic import save_torch
from anomalyflow.data.images import is_image_name, load_image
from anomalyflow.data.loader import image_transform, worker_error
from anomalyflow.device import resolve_device
from anomalyflow.efficientad.sampling import mixed_seed
from anomalyflow.efficientad.target import TeacherTarget, check_variant
from anomalyflow.errors import ConfigError, DataError, NumericalError
from anomalyflow.logs import get_logger
from anomalyflow.params import teacher_settings

log = get_logger(__name__)


def list_images(root: str | os.PathLike) -> list[str]:
    """Every image file under ``root`` (recursive; hidden files skipped), sorted.

    ImageNet's ``train/<wnid>/*.JPEG`` works as is, as does any folder of pictures.
    """
    folder = Path(root)
    if not folder.is_dir():
        raise DataError(f"{folder}: image folder not found")
    paths = sorted(str(Path(dirpath) / name) for dirpath, _, names in os.walk(folder, followlinks=True)
                   for name in names if is_image_name(name))
    if not paths:
        raise DataError(f"{folder}: no images (.png, .jpg, .jpeg, .bmp, .tif, .tiff) found in this folder")
    return paths


def resolve_paths(paths: Sequence[str | os.PathLike] | str | os.PathLike, what: str) -> list[str]:
    """A folder (listed with :func:`list_images`) or a sequence of image paths, as strings."""
    if isinstance(paths, str | os.PathLike):
        return list_images(paths)
    result = [str(p) for p in paths]
    if not result:
        raise DataError(f"{what}: no images given")
    return result


def select_images(paths: Sequence[str], n_images: int, seed: int) -> list[str]:
    """``n_images`` of ``paths`` drawn without replacement with ``seed``, in drawing order (all if fewer)."""
    if n_images >= len(paths):
        return list(paths)
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randperm(len(paths), generator=generator)[:n_images]
    return [paths[i] for i in picks.tolist()]


class FlaggedImages(Dataset):
    """Images addressed by ``(index, grayscale)`` pairs: the sampler decides the grayscale coin.

    ``transform`` maps the (possibly grayscale) RGB PIL image to a tensor or a tuple of tensors. The
    grayscale conversion is PIL's luma replicated to three channels (what ``transforms.RandomGrayscale``
    does). It happens on the full-size image (A3: "apply random grayscale once to the PIL image, then
    resize it"), or after ``before`` where given (A5.4's penalty: resize to 2s, grayscale, crop).
    """

    def __init__(self, paths: Sequence[str], transform, *, before=None):
        self.paths = list(paths)
        self.transform = transform
        self.before = before

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, item: tuple[int, bool]):
        index, gray = item
        image = load_image(self.paths[index])
        if self.before is not None:
            image = self.before(image)
        if gray:
            image = image.convert("L").convert("RGB")
        return self.transform(image)


def flagged_loader(dataset: Dataset, sampler, batch_size: int, *, num_workers: int, device: torch.device,
                   seed: int) -> DataLoader:
    """One DataLoader over ``(index, flag)`` pairs; its own generator keeps torch's global RNG untouched."""
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      pin_memory=device.type == "cuda", persistent_workers=num_workers > 0,
                      generator=torch.Generator().manual_seed(seed))


def next_batch(iterator):
    """``next(iterator)`` with a worker's DataError reduced to its one-line message."""
    try:
        return next(iterator)
    except DataError:
        raise
    except StopIteration:
        raise
    except Exception as error:
        raise worker_error(error) from None


@torch.no_grad()
def compute_imagenet_stats(
    paths: Sequence[str | os.PathLike] | str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    n_images: int,
    seed: int,
    variant: str,
    backbone: str,
    weights: str | os.PathLike | None,
    image_size: int,
    batch_size: int = 16,
    device: str | torch.device = "auto",
    num_workers: int = 0,
    grayscale: float = 0.1,
) -> dict[str, Any]:
    """Per-channel μ, σ of Ψ (``variant``) over ``n_images`` of ``paths``; write and return the stats dict.

    ``paths`` is a folder (searched recursively) or a list of image files. Ψ runs on images resized to
    ``2 × image_size`` (512 for the paper's 256) and ImageNet-normalised. The settings have no defaults here:
    :func:`teacher_stats` takes them from a teacher's config entry, with the schema's.
    """
    variant = check_variant(variant)
    if n_images < 1:
        raise ConfigError(f"n_images: must be at least 1, got {n_images}")
    device = resolve_device(device)
    chosen = select_images(resolve_paths(paths, "ImageNet statistics"), n_images, seed)
    flags = (torch.rand(len(chosen), generator=torch.Generator().manual_seed(mixed_seed(seed, 1))) < grayscale)
    target = TeacherTarget(variant, backbone, weights).to(device)
    dataset = FlaggedImages(chosen, image_transform(2 * image_size))
    loader = flagged_loader(dataset, list(zip(range(len(chosen)), flags.tolist(), strict=True)), batch_size,
                            num_workers=num_workers, device=device, seed=seed)
    sum_mean = sum_square = None
    count = 0
    iterator = iter(loader)
    with tqdm(total=len(chosen), desc="Ψ statistics", unit="img", leave=False) as bar:
        while True:
            try:
                batch = next_batch(iterator)
            except StopIteration:
                break
            features = target(batch.to(device, non_blocking=True)).double()
            means = features.mean(dim=(2, 3)).sum(dim=0)
            squares = features.square().mean(dim=(2, 3)).sum(dim=0)
            sum_mean = means if sum_mean is None else sum_mean + means
            sum_square = squares if sum_square is None else sum_square + squares
            count += features.shape[0]
            bar.update(features.shape[0])
    mean = sum_mean / count
    std = (sum_square / count - mean.square()).clamp_min(0).sqrt()
    if not (torch.isfinite(mean).all() and torch.isfinite(std).all()):
        raise NumericalError(f"{out_path}: Ψ gave non-finite features; check the images and the backbone weights")
    stats = {"mean": mean.float().cpu(), "std": std.float().cpu(), "variant": variant, "backbone": backbone,
             "weights": str(weights), "image_size": int(image_size), "n_images": count, "grayscale": float(grayscale)}
    save_torch(out_path, stats)
    log.info("Ψ statistics (%s, %s) over %d images written to %s", variant, backbone, count, out_path)
    return stats


def teacher_stats(paths: Sequence[str | os.PathLike] | str | os.PathLike, out_path: str | os.PathLike,
                  teacher: Mapping | None, *, device: str | torch.device = "auto",
                  num_workers: int = 0) -> dict[str, Any]:
    """:func:`compute_imagenet_stats` with a teacher's settings (``teachers.<name>``,
    :func:`anomalyflow.params.teacher_settings`: checked, unset keys from the schema): its ``n_images``,
    ``stats_seed``, ``variant``, ``backbone``, ``weights`` (a file, or ``none``) and ``image_size``."""
    s = teacher_settings(teacher)
    return compute_imagenet_stats(paths, out_path, n_images=s.n_images, seed=s.stats_seed, variant=s.variant,
                                  backbone=s.backbone, weights=s.weights, image_size=s.image_size, device=device,
                                  num_workers=num_workers)


def load_imagenet_stats(path: str | os.PathLike) -> dict[str, Any]:
    """Read a statistics file written by :func:`compute_imagenet_stats`."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{file}: Ψ statistics not found; run compute_imagenet_stats first")
    try:
        stats = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:
        raise DataError(f"{file}: not a readable statistics file ({type(error).__name__}: {error})") from None
    required = ("mean", "std", "variant", "backbone", "weights")
    missing = [k for k in required if not isinstance(stats, dict) or k not in stats]
    if missing:
        raise DataError(f"{file}: not a Ψ statistics file (missing {missing})")
    return stats


__all__ = ["FlaggedImages", "compute_imagenet_stats", "list_images", "load_imagenet_stats", "resolve_paths",
           "select_images", "teacher_stats"]
