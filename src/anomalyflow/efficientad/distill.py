"""Teacher distillation (docs/methods.md A3): a padded PDN learns to regress the normalised target Ψ.

Loop, as both official codes: draw a batch of ImageNet images; turn each grayscale with p = 0.1 (on
the full-size image, then resize it twice: to ``2 × image_size`` for Ψ and to ``image_size`` for
the PDN); loss = mean((PDN(x) − (Ψ(x) − μ)/σ)²); Adam (lr 1e-4, wd 1e-5), batch 16, 60,000
iterations, constant lr. AMP (bf16 autocast, fp16 + loss scaling where bf16 is missing) on CUDA;
fp32 on the CPU.

Two data paths:

- **streaming** (a real ImageNet): one DataLoader, built once, over an endless seeded index stream
  (:class:`~anomalyflow.efficientad.sampling.StreamSampler`); the grayscale coin is drawn by the
  sampler, so workers change nothing. Ψ (a WRN-101 at 512²) runs every step and dominates the cost.
- **cached** (at most ``cache_limit`` images, e.g. the demo's few dozen): the PDN inputs and the
  normalised Ψ targets are computed once per image and colour mode (colour, and grayscale when
  ``grayscale`` > 0) and kept on the device, so a step costs one PDN forward/backward. Memory:
  n × 2 × (3·s² + 384·(s/4)²) × 4 bytes, about 12.6 MB per image at s = 256 (0.8 GB for 64).

Output: ``out_path`` holds the PDN's state dict (P's ``teacher.pt`` format, keys ``conv1.weight`` …),
which loads into the unpadded PDN used for anomaly detection. A checkpoint ``<out_path>.ckpt`` is
written every ``checkpoint_every`` iterations and resumed when the settings match
(:mod:`anomalyflow.efficientad.checkpoint`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from anomalyflow.atomic import save_torch
from anomalyflow.data.loader import image_transform
from anomalyflow.device import resolve_device
from anomalyflow.efficientad.checkpoint import (
    checkpoint_path,
    end_step,
    file_digest,
    load_checkpoint,
    paths_digest,
    set_rng_state,
)
from anomalyflow.efficientad.imagenet_stats import (
    FlaggedImages,
    flagged_loader,
    load_imagenet_stats,
    next_batch,
    resolve_paths,
)
from anomalyflow.efficientad.sampling import IndexStream, StreamSampler
from anomalyflow.efficientad.target import TeacherTarget, check_variant
from anomalyflow.errors import ConfigError
from anomalyflow.logs import get_logger
from anomalyflow.nets.pdn import build_pdn, normalize_size
from anomalyflow.params import teacher_settings
from anomalyflow.precision import amp_dtype, autocast, grad_scaler, scaled_step

log = get_logger(__name__)

_STD_FLOOR = 1e-6


def check_stats(stats: dict, stats_path, *, variant: str, backbone: str, weights, image_size: int) -> None:
    """The statistics must describe the same Ψ that the loop will compute."""
    wanted = {"variant": variant, "backbone": backbone, "weights": _weights_key(weights)}
    found = {"variant": stats["variant"], "backbone": stats["backbone"], "weights": _weights_key(stats["weights"])}
    if "image_size" in stats:
        wanted["image_size"], found["image_size"] = int(image_size), int(stats["image_size"])
    for key, value in wanted.items():
        if found[key] != value:
            raise ConfigError(f"{stats_path}: statistics were computed with {key}={found[key]!r}, but "
                              f"{key}={value!r} was asked for; recompute them with the same settings")


def _weights_key(weights) -> str:
    text = str(weights)
    return text if text in ("none", "imagenet", "None") else os.path.realpath(text)


def normalise_target(target: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(Ψ − μ)/σ per channel. σ is floored: a channel constant on the data has Ψ = μ there, so 0/floor = 0."""
    return (target.float() - mean.view(1, -1, 1, 1)) / std.clamp_min(_STD_FLOOR).view(1, -1, 1, 1)


def _pair_transform(image_size: int):
    big, small = image_transform(2 * image_size), image_transform(image_size)

    def transform(image):
        return big(image), small(image)

    return transform


@torch.no_grad()
def build_target_cache(paths: Sequence[str], target: TeacherTarget, mean: torch.Tensor, std: torch.Tensor, *,
                       image_size: int, grayscale: bool, batch_size: int, device: torch.device,
                       num_workers: int = 0, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """PDN inputs ``[n, m, 3, s, s]`` and normalised Ψ targets ``[n, m, 384, s/4, s/4]`` on ``device``.

    ``m`` = 2 (index 0 colour, 1 grayscale) when ``grayscale``, else 1.
    """
    modes = (False, True) if grayscale else (False,)
    items = [(i, mode) for mode in modes for i in range(len(paths))]
    loader = DataLoader(FlaggedImages(paths, _pair_transform(image_size)), batch_size=batch_size,
                        sampler=items, num_workers=num_workers)
    inputs, targets = [], []
    iterator = iter(loader)
    with tqdm(total=len(items), desc="caching Ψ targets", unit="img", leave=False) as bar:
        while True:
            try:
                big, small = next_batch(iterator)
            except StopIteration:
                break
            with autocast(device, dtype):
                psi = target(big.to(device))
            targets.append(normalise_target(psi, mean, std))
            inputs.append(small.to(device))
            bar.update(len(small))
    m, n = len(modes), len(paths)
    stacked_inputs = torch.cat(inputs).reshape(m, n, *inputs[0].shape[1:]).transpose(0, 1).contiguous()
    stacked_targets = torch.cat(targets).reshape(m, n, *targets[0].shape[1:]).transpose(0, 1).contiguous()
    return stacked_inputs, stacked_targets


def distill_teacher(
    paths: Sequence[str | os.PathLike] | str | os.PathLike,
    stats_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    size: str,
    iterations: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
    variant: str,
    backbone: str,
    weights: str | os.PathLike | None,
    image_size: int,
    cache_limit: int,
    checkpoint_every: int,
    device: str | torch.device = "auto",
    num_workers: int = 0,
    grayscale: float = 0.1,
) -> None:
    """Distil Ψ into a padded PDN of ``size`` and write its state dict to ``out_path`` (A3).

    ``paths``: a folder of ImageNet-like images (searched recursively) or a list of image files.
    ``stats_path``: the file written by :func:`~anomalyflow.efficientad.imagenet_stats.compute_imagenet_stats`
    with the same ``variant``, ``backbone``, ``weights`` and ``image_size``. Sets of at most
    ``cache_limit`` images are distilled from cached targets (0 disables the cache). The settings have no
    defaults here: :func:`fit_teacher` takes them from a teacher's config entry, with the schema's.
    """
    size = normalize_size(size)
    variant = check_variant(variant)
    if iterations < 0 or batch_size < 1 or checkpoint_every < 1:
        raise ConfigError("iterations, batch_size and checkpoint_every must be ≥ 0, ≥ 1 and ≥ 1")
    device = resolve_device(device)
    images = resolve_paths(paths, "teacher distillation")
    stats = load_imagenet_stats(stats_path)
    check_stats(stats, stats_path, variant=variant, backbone=backbone, weights=weights, image_size=image_size)
    mean, std = stats["mean"].to(device), stats["std"].to(device)
    if (std <= _STD_FLOOR).any():
        log.warning("%s: %d Ψ channels have σ≈0 (constant on these images); their targets are 0",
                    stats_path, int((std <= _STD_FLOOR).sum()))
    cached = len(images) <= cache_limit
    settings = {"size": size, "iterations": iterations, "batch_size": batch_size, "lr": lr,
                "weight_decay": weight_decay, "seed": seed, "variant": variant, "backbone": backbone,
                "weights": _weights_key(weights), "image_size": image_size, "grayscale": grayscale,
                "cached": cached, "paths": paths_digest(images), "stats": file_digest(stats_path)}

    target = TeacherTarget(variant, backbone, weights).to(device)
    torch.manual_seed(seed)
    pdn = build_pdn(size, 384, padding=True).to(device)
    optimizer = torch.optim.Adam(pdn.parameters(), lr=lr, weight_decay=weight_decay)
    dtype = amp_dtype(device)
    scaler = grad_scaler(device, dtype)
    ckpt_file = checkpoint_path(out_path)
    start = 0
    checkpoint = load_checkpoint(ckpt_file, settings)
    if checkpoint is not None:
        pdn.load_state_dict(checkpoint["state"]["pdn"])
        optimizer.load_state_dict(checkpoint["state"]["optimizer"])
        scaler.load_state_dict(checkpoint["state"]["scaler"])
        set_rng_state(checkpoint["rng"], device)
        start = int(checkpoint["step"])

    if cached:
        stream = IndexStream(len(images), seed, flag_p=grayscale, start=start * batch_size)

        def batches():  # a generator: the cache is built on the first batch, not for a finished run
            inputs, targets = build_target_cache(images, target, mean, std, image_size=image_size,
                                                 grayscale=grayscale > 0, batch_size=batch_size, device=device,
                                                 num_workers=num_workers, dtype=dtype)
            while True:
                index, gray = stream.take(batch_size)
                mode = gray.long() if grayscale > 0 else torch.zeros_like(index)
                index, mode = index.to(device), mode.to(device)
                yield inputs[index, mode], targets[index, mode]
    else:
        sampler = StreamSampler(len(images), seed, flag_p=grayscale, start=start * batch_size)
        loader = flagged_loader(FlaggedImages(images, _pair_transform(image_size)), sampler, batch_size,
                                num_workers=num_workers, device=device, seed=seed)

        def batches():
            iterator = iter(loader)  # one iterator for the whole run (N's InfiniteDataloader, not P's per step)
            while True:
                big, small = next_batch(iterator)
                with torch.no_grad(), autocast(device, dtype):
                    psi = target(big.to(device, non_blocking=True))
                yield small.to(device, non_blocking=True), normalise_target(psi, mean, std)

    log.info("distilling Ψ (%s, %s) into PDN-%s: %d images (%s), %d iterations from %d, on %s", variant, backbone,
             size.upper(), len(images), "cached targets" if cached else "streamed", iterations, start, device)
    pdn.train()
    source = batches()
    with tqdm(total=iterations, initial=start, desc=f"distilling PDN-{size.upper()}", unit="it") as bar:
        for step in range(start, iterations):
            x, y = next(source)
            with autocast(device, dtype):
                prediction = pdn(x)
            if prediction.shape[-2:] != y.shape[-2:]:
                raise ConfigError(f"image_size: {image_size} gives a {tuple(prediction.shape[-2:])} PDN grid but a "
                                  f"{tuple(y.shape[-2:])} Ψ grid; use a multiple of 8 (256 in the paper)")
            loss = (prediction.float() - y).square().mean()
            scaled_step(loss, optimizer, scaler)
            end_step(step, iterations, loss, bar, checkpoint_every=checkpoint_every, path=ckpt_file,
                     settings=settings, device=device,
                     state=lambda: {"pdn": pdn.state_dict(), "optimizer": optimizer.state_dict(),
                                    "scaler": scaler.state_dict()},
                     failure=f"{out_path}: distillation loss became {{value}} at iteration {{step}}; lower lr or "
                             "check the Ψ statistics")
    save_torch(out_path, {k: v.detach().cpu() for k, v in pdn.state_dict().items()})
    ckpt_file.unlink(missing_ok=True)
    log.info("teacher written to %s", out_path)


def fit_teacher(paths: Sequence[str | os.PathLike] | str | os.PathLike, stats_path: str | os.PathLike,
                out_path: str | os.PathLike, size: str, teacher: Mapping | None, *, device: str | torch.device = "auto",
                num_workers: int = 0, checkpoint_every: int | None = None) -> None:
    """:func:`distill_teacher` of the ``size`` PDN with a teacher's settings (``teachers.<name>``,
    :func:`anomalyflow.params.teacher_settings`: checked, unset keys from the schema); ``checkpoint_every``
    (None: the settings') changes no result."""
    s = teacher_settings(teacher)
    distill_teacher(paths, stats_path, out_path, size=size, iterations=s.iterations, batch_size=s.batch_size,
                    lr=s.lr, weight_decay=s.weight_decay, seed=s.seed, variant=s.variant, backbone=s.backbone,
                    weights=s.weights, image_size=s.image_size, cache_limit=s.cache_limit, device=device,
                    num_workers=num_workers,
                    checkpoint_every=s.checkpoint_every if checkpoint_every is None else checkpoint_every)


__all__ = ["build_target_cache", "distill_teacher", "fit_teacher", "normalise_target"]
