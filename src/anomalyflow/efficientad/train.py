"""Student and autoencoder training for one category (docs/methods.md A5).

1. Teacher normalisation on the category's non-augmented training normals (rows through
   :func:`~anomalyflow.data.table.fit_rows`): per-channel μ_T, σ_T over all images and positions.
   ``teacher_norm="p"`` (default): mean and *unbiased* std over N·H·W (P's ``mean``/``std``);
   ``"n"``: the mean of per-image means and the mean of per-image mean squared deviations (N), i.e.
   the population variance. Ŷ(x) = (T(x) − μ_T)/σ_T.
2. Each step draws a batch x of training images and x_aug = x with brightness, contrast or
   saturation (one, chosen uniformly per image) scaled by a factor from U[0.8, 1.2] — vectorised on
   the device (:func:`color_augment`, the formulas of torchvision's tensor ``adjust_*``, which P applies
   to the resized tensor; N applies the PIL versions before resizing, equal up to uint8 rounding).
3. D = (Ŷ(x) − S_ST(x))²; L_hard = mean of D over the elements ≥ its ``hard_quantile`` (0.999) quantile.
4. With ``penalty_paths`` (ImageNet images): L_ST = L_hard + mean(S_ST(P)²) with P resized to
   2·image_size, grayscale with p = 0.3, centre-cropped to image_size. N uses the penalty only when
   given a path (its default disables it), P always; here it is on exactly when ``penalty_paths`` is
   given. The images stream through one persistent DataLoader (P rebuilds its iterator per step).
5. A = AE(x_aug); L_AE = mean((Ŷ(x_aug) − A)²); L_STAE = mean((A − S_STAE(x_aug))²).
6. Adam on the student and AE parameters (lr 1e-4, wd 1e-5) minimises L_ST + L_AE + L_STAE; the lr is
   multiplied by 0.1 from iteration ``int(lr_drop · iterations)`` (N's StepLR; P switches one step later).

Batches: with ``batch_size`` > 1 every loss is the mean over the batch of the per-image loss above (the
hard-feature quantile is taken per image), so batch 1 is exactly the official loss. The un-augmented
training set is resized once to uint8 and kept on the device when it fits (a quarter of the free GPU
memory); batches are drawn by index from a seeded stream of permutations (N's shuffled infinite
loader; P samples with replacement). The teacher, the student's three inputs (x, x_aug, penalty) and
the AE each run as one batched forward. AMP (bf16/fp16 autocast) on CUDA only; the CPU runs fp32.

Output folder (the ``fit`` stage of :data:`anomalyflow.model_folder.EFFICIENTAD_FOLDER`): ``student.pt``,
``autoencoder.pt``, ``teacher.pt`` (a copy, so the folder is self-contained), ``teacher_stats.pt`` ({mean,
std} [384]) and ``model.json`` (written last). A ``quantiles.json`` of earlier weights is left alone: it is
the quantile stage's file, and :func:`~anomalyflow.efficientad.model.read_quantiles` refuses it. A checkpoint
``<out_dir>.ckpt`` beside the folder makes the run resumable (:mod:`anomalyflow.efficientad.checkpoint`).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from anomalyflow.atomic import save_torch
from anomalyflow.data import transforms
from anomalyflow.data.loader import load_images
from anomalyflow.data.table import fit_rows, read_samples
from anomalyflow.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from anomalyflow.device import resolve_device
from anomalyflow.efficientad.checkpoint import (
    checkpoint_path,
    end_step,
    file_digest,
    load_checkpoint,
    paths_digest,
    set_rng_state,
)
from anomalyflow.efficientad.imagenet_stats import FlaggedImages, flagged_loader, next_batch, resolve_paths
from anomalyflow.efficientad.official import load_teacher_file
from anomalyflow.efficientad.quantiles import row_quantile
from anomalyflow.efficientad.sampling import IndexStream, StreamSampler, mixed_seed, step_generator
from anomalyflow.errors import ConfigError, NumericalError
from anomalyflow.logs import get_logger
from anomalyflow.model_folder import EFFICIENTAD_FOLDER
from anomalyflow.nets.autoencoder import Autoencoder
from anomalyflow.nets.pdn import PDN, build_pdn, normalize_size
from anomalyflow.params import family_params
from anomalyflow.precision import amp_dtype, autocast, grad_scaler, memory_format, place, scaled_step

log = get_logger(__name__)

TEACHER_NORMS = ("p", "n")
#: A5.4: the probability that a penalty image is turned grayscale (both official codes).
PENALTY_GRAYSCALE = 0.3
#: Share of the free GPU memory the uint8 training set may take before it stays in (pinned) host memory.
DEVICE_SHARE = 0.25
_GRAY = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights


# ---------------------------------------------------------------------------------------------- pieces


def uint8_transform(image_size: int) -> transforms.Compose:
    """PIL → uint8 ``[3, s, s]`` with the same resize as :func:`~anomalyflow.data.loader.image_transform`."""
    return transforms.uint8_transform(image_size)


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """``[B,3,H,W]`` in [0, 1] → ImageNet-normalised (A1)."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    return (images - mean) / std


def color_augment(images: torch.Tensor, kinds: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """A5.2 on a batch: per image, brightness (kind 0), contrast (1) or saturation (2) scaled by its factor.

    Each is a blend ``clamp(f·x + (1−f)·r, 0, 1)`` with reference r = black (brightness), the mean of
    the image's grayscale (contrast) or its grayscale (saturation), as torchvision's tensor functions.
    ``images`` in [0, 1], ``kinds`` long ``[B]``, ``factors`` ``[B]``.
    """
    weights = torch.tensor(_GRAY, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    gray = (images * weights).sum(dim=1, keepdim=True)  # [B,1,H,W]
    kind = kinds.view(-1, 1, 1, 1)
    reference = torch.where(kind == 0, torch.zeros_like(gray),
                            torch.where(kind == 1, gray.mean(dim=(1, 2, 3), keepdim=True), gray))
    factor = factors.to(images.dtype).view(-1, 1, 1, 1)
    return (factor * images + (1 - factor) * reference).clamp(0, 1)


def hard_loss(distances: torch.Tensor, q: float = 0.999) -> torch.Tensor:
    """A5.3 per image, averaged over the batch: mean of D over the elements ≥ D's ``q`` quantile.

    The threshold is a constant for the gradient (as in both official codes, it only selects elements).
    """
    flat = distances.reshape(distances.shape[0], -1)
    threshold = row_quantile(flat.detach(), q).unsqueeze(1)
    mask = (flat >= threshold).to(flat.dtype)
    return ((flat * mask).sum(dim=1) / mask.sum(dim=1)).mean()


@torch.no_grad()
def teacher_statistics(teacher: PDN, images: torch.Tensor, *, mode: str = "p", batch_size: int = 16,
                       device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A5.1: per-channel μ_T, σ_T ``[C]`` of the teacher on uint8 images ``[N,3,s,s]`` (fp32, float64 sums).

    ``mode="p"``: unbiased std over N·H·W; ``"n"``: sqrt of the mean of per-image mean squared deviations
    (= the population variance, since every image has H·W positions).
    """
    if mode not in TEACHER_NORMS:
        raise ConfigError(f"teacher_norm: {mode!r} is not a normalisation; use 'p' or 'n'")
    device = device or images.device
    total = square = None
    count = 0
    for begin in range(0, len(images), batch_size):
        x = normalize_images(images[begin:begin + batch_size].to(device).float() / 255)
        out = teacher(x).double()
        sums, squares = out.sum(dim=(0, 2, 3)), out.square().sum(dim=(0, 2, 3))
        total = sums if total is None else total + sums
        square = squares if square is None else square + squares
        count += out.shape[0] * out.shape[2] * out.shape[3]
    mean = total / count
    variance = (square / count - mean.square()).clamp_min(0)
    if mode == "p":
        variance = variance * count / max(count - 1, 1)
    return mean.float(), variance.sqrt().float()


def efficientad_losses(teacher: PDN, student: PDN, autoencoder: Autoencoder, mean: torch.Tensor, std: torch.Tensor,
                       images: torch.Tensor, augmented: torch.Tensor, penalty: torch.Tensor | None = None, *,
                       hard_quantile: float = 0.999, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The A5 losses of one batch: ``hard``, ``penalty`` (0 without), ``ae``, ``stae`` and ``total``.

    ``images`` and ``augmented`` are the normalised x and x_aug ``[B,3,s,s]``; ``penalty`` the normalised
    ImageNet batch or None. The teacher runs once on [x; x_aug] and the student's trunk once on [x; x_aug; P]
    (no batch norm anywhere, so batching changes nothing), its last convolution only for the output half each
    input's losses read; each loss is the batch mean of per-image losses.
    """
    b, c = images.shape[0], mean.numel()
    device = images.device
    layout = memory_format(device)  # channels_last on the CPU: the networks are placed so (precision.place)
    both = torch.cat([images, augmented]).contiguous(memory_format=layout)
    student_inputs = both if penalty is None else torch.cat([both, penalty]).contiguous(memory_format=layout)
    augmented = augmented.contiguous(memory_format=layout)
    with autocast(device, dtype):
        with torch.no_grad():
            target = (teacher(both).float() - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
        # The losses read the ST head (channels < c) of x and P and the STAE head of x_aug only, so the
        # student's last convolution computes just that half per input: the same numbers at half its cost.
        trunk = student.trunk(student_inputs)
        st_inputs = trunk[:b] if penalty is None else torch.cat([trunk[:b], trunk[2 * b:]])
        student_st = student.head(st_inputs, slice(0, c)).float()
        student_stae = student.head(trunk[b:2 * b], slice(c, 2 * c)).float()
        reconstruction = autoencoder(augmented).float()
    losses = {"hard": hard_loss((target[:b] - student_st[:b]).square(), hard_quantile)}
    losses["penalty"] = (student_st[b:].square().mean() if penalty is not None
                         else torch.zeros((), device=device))
    losses["ae"] = (target[b:] - reconstruction).square().mean()
    losses["stae"] = (reconstruction - student_stae).square().mean()
    losses["total"] = losses["hard"] + losses["penalty"] + losses["ae"] + losses["stae"]
    return losses


def _fits_on_device(nbytes: int, device: torch.device) -> bool:
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= DEVICE_SHARE * free


def _penalty_transform(image_size: int):
    """A5.4 after the grayscale coin: (already resized to 2s and maybe gray) → centre crop s, normalise."""
    return transforms.Compose([transforms.CenterCrop(image_size), transforms.to_tensor, transforms.Normalize()])


# ---------------------------------------------------------------------------------------------- training


def train_efficientad(
    samples_path: str | os.PathLike,
    teacher_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    params: Mapping | None = None,
    *,
    penalty_paths: Sequence[str | os.PathLike] | str | os.PathLike | None = None,
    device: str | torch.device = "auto",
    num_workers: int = 0,
    checkpoint_every: int | None = None,
) -> None:
    """Train the student and autoencoder of one category and write the model folder ``out_dir`` (A5).

    ``samples_path``: the category's sample table (training normals are used); ``teacher_path``: a
    distilled teacher (ours, P's ``teacher.pt`` or N's ``teacher_small.pth``/``teacher_medium.pth``);
    ``params``: an ``efficientad`` method's config entry (:func:`anomalyflow.params.family_params`: checked,
    unset keys from the schema). Training reads ``size``, ``iterations``, ``batch_size``, ``lr``,
    ``weight_decay``, ``lr_drop``, ``hard_quantile``, ``teacher_norm``, ``image_size``, ``seed``, ``amp``,
    ``dropout`` (the AE decoder's: P/paper 0.2, N 0) and ``map_padding`` (stored for inference, A6: 0 = P,
    4 = N). ``penalty_paths``: a folder or list of ImageNet images for the penalty, or None to train without.
    ``checkpoint_every`` (None: the entry's) changes no result. The validation quantiles are a separate step
    (:func:`~anomalyflow.efficientad.quantiles.validation_quantiles`).
    """
    p = family_params("efficientad", params)
    size, iterations, batch_size, lr = normalize_size(p.size), p.iterations, p.batch_size, p.lr
    hard_quantile, image_size, seed, amp = p.hard_quantile, p.image_size, p.seed, p.amp
    checkpoint_every = p.checkpoint_every if checkpoint_every is None else checkpoint_every
    teacher_norm = str(p.teacher_norm).lower()
    if teacher_norm not in TEACHER_NORMS:
        raise ConfigError(f"teacher_norm: {teacher_norm!r} is not a normalisation; use 'p' or 'n'")
    if iterations < 0 or batch_size < 1 or checkpoint_every < 1:
        raise ConfigError("iterations, batch_size and checkpoint_every must be ≥ 0, ≥ 1 and ≥ 1")
    if not 0 < hard_quantile < 1:
        raise ConfigError(f"hard_quantile: must lie in (0, 1), got {hard_quantile}")
    device = resolve_device(device)
    out_dir = Path(out_dir)
    rows = fit_rows(read_samples(samples_path), "train", purpose="EfficientAD training")
    train_paths = rows["path"].tolist()
    penalty = resolve_paths(penalty_paths, "penalty_paths") if penalty_paths is not None else None

    teacher_state = load_teacher_file(teacher_path, size)
    teacher = build_pdn(size, 384)
    teacher.load_state_dict(teacher_state)
    teacher = place(teacher, device).eval().requires_grad_(False)

    images = load_images(train_paths, uint8_transform(image_size), num_workers=num_workers, desc="training images")
    if _fits_on_device(images.numel(), device):
        images = images.to(device)
    elif device.type == "cuda":
        log.info("training set (%.1f GB) stays in pinned host memory", images.numel() / 1e9)
        images = images.pin_memory()
    mean, std = teacher_statistics(teacher, images, mode=teacher_norm, device=device)
    if not (torch.isfinite(std).all() and (std > 0).all()):
        raise NumericalError(f"{samples_path}: the teacher's output does not vary over the {len(train_paths)} "
                             "training images (std 0 in some channels); are the images constant (blank frames)? "
                             "Train on real normal images")

    params = {"size": size, "iterations": iterations, "batch_size": batch_size, "lr": lr,
              "weight_decay": p.weight_decay, "lr_drop": p.lr_drop, "hard_quantile": hard_quantile,
              "penalty": penalty is not None, "penalty_images": len(penalty) if penalty else 0,
              "penalty_grayscale": PENALTY_GRAYSCALE, "teacher_norm": teacher_norm, "image_size": image_size,
              "seed": seed, "amp": amp, "dropout": p.dropout, "train_images": len(train_paths)}
    settings = {**params, "train_paths": paths_digest(train_paths), "teacher": file_digest(teacher_path),
                "penalty_paths": paths_digest(penalty) if penalty else None}

    torch.manual_seed(seed)
    student = place(build_pdn(size, 768), device).train()
    autoencoder = place(Autoencoder(384, image_size, dropout=p.dropout), device).train()
    optimizer = torch.optim.Adam(itertools.chain(student.parameters(), autoencoder.parameters()), lr=lr,
                                 weight_decay=p.weight_decay)
    dtype = amp_dtype(device) if amp else None
    scaler = grad_scaler(device, dtype)
    ckpt_file = checkpoint_path(out_dir)
    start = 0
    checkpoint = load_checkpoint(ckpt_file, settings)
    if checkpoint is not None:
        state = checkpoint["state"]
        student.load_state_dict(state["student"])
        autoencoder.load_state_dict(state["autoencoder"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(checkpoint["rng"], device)
        start = int(checkpoint["step"])

    stream = IndexStream(len(images), seed, start=start * batch_size)
    penalty_batches = None
    if penalty:
        sampler = StreamSampler(len(penalty), mixed_seed(seed, 2), flag_p=PENALTY_GRAYSCALE,
                                start=start * batch_size)
        dataset = FlaggedImages(penalty, _penalty_transform(image_size),
                                before=transforms.Resize((2 * image_size, 2 * image_size)))
        loader = flagged_loader(dataset, sampler, batch_size, num_workers=num_workers, device=device, seed=seed)
        penalty_batches = iter(loader)  # one persistent iterator (P rebuilds it every step)

    drop_at = int(p.lr_drop * iterations)
    log.info("training EfficientAD-%s on %d images (%s penalty), %d iterations from %d, batch %d, on %s",
             size.upper(), len(images), f"{len(penalty)}-image" if penalty else "no", iterations, start, batch_size,
             device)
    with tqdm(total=iterations, initial=start, desc=f"EfficientAD-{size.upper()}", unit="it") as bar:
        for step in range(start, iterations):
            index, _ = stream.take(batch_size)
            x = images[index.to(images.device)].to(device, non_blocking=True).float() / 255
            generator = step_generator(seed, 1, step)
            kinds = torch.randint(0, 3, (batch_size,), generator=generator).to(device)
            factors = (torch.rand(batch_size, generator=generator) * 0.4 + 0.8).to(device)
            x_aug = color_augment(x, kinds, factors)
            penalty_images = None
            if penalty_batches is not None:
                penalty_images = next_batch(penalty_batches).to(device, non_blocking=True)
            losses = efficientad_losses(teacher, student, autoencoder, mean, std, normalize_images(x),
                                        normalize_images(x_aug), penalty_images, hard_quantile=hard_quantile,
                                        dtype=dtype)
            loss = losses["total"]

            for group in optimizer.param_groups:
                group["lr"] = lr * (0.1 if step >= drop_at else 1.0)
            scaled_step(loss, optimizer, scaler)
            end_step(step, iterations, loss, bar, checkpoint_every=checkpoint_every, path=ckpt_file,
                     settings=settings, device=device,
                     state=lambda: {"student": student.state_dict(), "autoencoder": autoencoder.state_dict(),
                                    "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict()},
                     failure=f"{out_dir}: training loss became {{value}} at iteration {{step}}; the training "
                             "images may be constant or lr too high")

    def cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}

    save_torch(EFFICIENTAD_FOLDER.path(out_dir, "student"), cpu_state(student))
    save_torch(EFFICIENTAD_FOLDER.path(out_dir, "autoencoder"), cpu_state(autoencoder))
    save_torch(EFFICIENTAD_FOLDER.path(out_dir, "teacher"), {k: v.detach().cpu() for k, v in teacher_state.items()})
    save_torch(EFFICIENTAD_FOLDER.path(out_dir, "teacher_stats"), {"mean": mean.cpu(), "std": std.cpu()})
    EFFICIENTAD_FOLDER.write(out_dir, {"size": size, "image_size": image_size, "out_channels": 384, "params": params,
                                       "inference": {"map_padding": p.map_padding, "batch_size": 16, "amp": True}})
    ckpt_file.unlink(missing_ok=True)
    log.info("EfficientAD-%s written to %s", size.upper(), out_dir)


__all__ = ["TEACHER_NORMS", "color_augment", "efficientad_losses", "hard_loss", "normalize_images",
           "teacher_statistics", "train_efficientad", "uint8_transform"]
