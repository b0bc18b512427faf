"""EfficientAD training: steps/s at batch 1 and at the recommended batch (8), 256² input: anomalyflow vs anomalib.

One step = draw the batch (already on the device, as both trainers keep it), colour augmentation, the
A5 losses (hard ST loss, ImageNet penalty, AE and STAE losses), backward, Adam. Random-initialised
PDN-S (``--sizes s m``) teacher, student and autoencoder; random teacher statistics; a random
"ImageNet" penalty batch of the same size, on the device.

- anomalyflow: the body of :func:`anomalyflow.efficientad.train.train_efficientad`'s loop, with the
  library's own pieces (:func:`color_augment`, :func:`normalize_images`, :func:`efficientad_losses`,
  ``grad_scaler``); teacher once on [x; x_aug], student once on [x; x_aug; P].
- anomalib 2.7: ``EfficientAdModel.train()`` forward with ``batch_imagenet`` → (loss_st, loss_ae, loss_stae),
  then what Lightning's automatic optimisation does: zero_grad, backward, Adam step (lr 1e-4, wd 1e-5 on
  student + AE), and the ``loss.item()`` its training_step logs. Batch > 1 computes its hard-loss quantile
  over the whole batch (ours per image, which is the official loss for each image).

Precision: fp32 (TF32 off); on CUDA also fp16 autocast with a GradScaler on both sides (AMP). CPU: fp32 only.
``--precisions`` picks some of them. ``--steps N`` clocks N consecutive optimiser steps per case (after the
warm-up) instead of the default repeats, and records whether the loss fell over them (the mean of the first
tenth of the steps against the last tenth): a training run, not only a step time.

    python bench/efficientad_training.py [--sizes s] [--batches 1 8] [--precisions fp32 fp16] [--steps 200]
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl

from anomalyflow.efficientad.train import color_augment, efficientad_losses, normalize_images
from anomalyflow.nets.autoencoder import Autoencoder
from anomalyflow.nets.pdn import build_pdn
from anomalyflow.precision import grad_scaler

try:
    from anomalyflow.precision import place
except ImportError:  # library versions before channels_last (to measure them for the history)
    def place(module, device):
        return module.to(device)

NAME = "efficientad_training"
RECOMMENDED_BATCH = 8
DTYPES = {"fp32": None, "fp16": torch.float16}


class Ours:
    def __init__(self, size: str, device: torch.device, dtype: torch.dtype | None, image_size: int, batch: int):
        torch.manual_seed(0)
        self.device, self.dtype, self.batch = device, dtype, batch
        # placed as train_efficientad places them (precision.place: channels_last on the CPU)
        self.teacher = place(build_pdn(size, 384), device).eval().requires_grad_(False)
        self.student = place(build_pdn(size, 768), device).train()
        self.autoencoder = place(Autoencoder(384, image_size), device).train()
        self.mean = (torch.randn(384) * 0.1).to(device)
        self.std = (torch.rand(384) + 0.5).to(device)
        self.optimizer = torch.optim.Adam(itertools.chain(self.student.parameters(), self.autoencoder.parameters()),
                                          lr=1e-4, weight_decay=1e-5)
        self.scaler = grad_scaler(device, dtype)
        generator = torch.Generator().manual_seed(1)
        self.images = torch.randint(0, 256, (max(16, batch), 3, image_size, image_size), dtype=torch.uint8,
                                    generator=generator).to(device)
        self.penalty = normalize_images(torch.rand(batch, 3, image_size, image_size, generator=generator)).to(device)
        self.generator = torch.Generator().manual_seed(2)

    def step(self) -> float:
        index = torch.randint(0, len(self.images), (self.batch,), generator=self.generator)
        x = self.images[index.to(self.device)].float() / 255
        kinds = torch.randint(0, 3, (self.batch,), generator=self.generator).to(self.device)
        factors = (torch.rand(self.batch, generator=self.generator) * 0.4 + 0.8).to(self.device)
        x_aug = color_augment(x, kinds, factors)
        losses = efficientad_losses(self.teacher, self.student, self.autoencoder, self.mean, self.std,
                                    normalize_images(x), normalize_images(x_aug), self.penalty, dtype=self.dtype)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(losses["total"]).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return losses["total"].detach()  # no sync here (anomalib's .item() below is its own logging's)


class Theirs:
    def __init__(self, size: str, device: torch.device, dtype: torch.dtype | None, image_size: int, batch: int):
        from anomalib.models.image.efficient_ad.torch_model import EfficientAdModel, EfficientAdModelSize

        torch.manual_seed(0)
        self.device, self.dtype, self.batch = device, dtype, batch
        model = EfficientAdModel(teacher_out_channels=384,
                                 model_size=EfficientAdModelSize.S if size == "s" else EfficientAdModelSize.M,
                                 padding=False, pad_maps=True)
        with torch.no_grad():
            model.mean_std["mean"].copy_(torch.randn(1, 384, 1, 1) * 0.1)
            model.mean_std["std"].copy_(torch.rand(1, 384, 1, 1) + 0.5)
        model.teacher.requires_grad_(False)
        self.model = model.to(device).train()
        self.optimizer = torch.optim.Adam(list(model.student.parameters()) + list(model.ae.parameters()), lr=1e-4,
                                          weight_decay=1e-5)
        self.scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
        generator = torch.Generator().manual_seed(1)
        self.images = torch.rand(max(16, batch), 3, image_size, image_size, generator=generator).to(device)
        self.imagenet = torch.rand(batch, 3, image_size, image_size, generator=generator).to(device)
        self.generator = torch.Generator().manual_seed(2)

    def step(self) -> float:
        index = torch.randint(0, len(self.images), (self.batch,), generator=self.generator)
        batch = self.images[index.to(self.device)]
        self.optimizer.zero_grad()
        if self.dtype is None:
            loss_st, loss_ae, loss_stae = self.model(batch=batch, batch_imagenet=self.imagenet)
        else:
            with torch.autocast(device_type=self.device.type, dtype=self.dtype):
                loss_st, loss_ae, loss_stae = self.model(batch=batch, batch_imagenet=self.imagenet)
        loss = loss_st + loss_ae + loss_stae
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.item()  # anomalib's training_step logs loss.item() (a device sync)


def loss_trend(losses: list[float]) -> dict:
    """The loss over a run: mean of the first and of the last tenth of the steps, and whether it fell."""
    tenth = max(1, len(losses) // 10)
    start, end = sum(losses[:tenth]) / tenth, sum(losses[-tenth:]) / tenth
    every = max(1, len(losses) // 20)
    return {"loss_start": start, "loss_end": end, "loss_falling": end < start, "loss_every": every,
            "losses": [round(v, 6) for v in losses[::every]]}


def run(device: torch.device, *, sizes=("s",), batches=(1, RECOMMENDED_BATCH), repeats=None, warmup=None,
        image_size=256, with_anomalib=True, precisions=None, steps=None) -> tuple[dict, list[dict]]:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    if repeats is None:
        repeats = {b: 20 for b in batches} if device.type == "cuda" else {b: (5 if b == 1 else 2) for b in batches}
    if steps:
        repeats = {b: steps for b in batches}
    if warmup is None:
        warmup = {b: 5 for b in batches} if device.type == "cuda" else {b: 1 for b in batches}
    if precisions is None:
        precisions = ["fp32"] + (["fp16"] if device.type == "cuda" else [])
    results = []
    for size, precision, batch in itertools.product(sizes, precisions, batches):
        dtype = DTYPES[precision]
        row = {"size": size, "precision": precision, "batch": batch, "image_size": image_size}
        sides = [("ours", Ours)] + ([("theirs", Theirs)] if with_anomalib else [])
        for side, cls in sides:
            trainer = cls(size, device, dtype, image_size, batch)
            losses = []  # every step's loss, warm-up included (ours stay on the device until the end)
            with bl.gpu_peak(device) as peak:
                times = bl.time_call(lambda t=trainer, out=losses: out.append(t.step()), device,
                                     repeats=repeats[batch], warmup=warmup[batch])
            stats = bl.summary(times)
            stats["steps_per_s"] = 1 / stats["median_s"]
            stats["images_per_s"] = batch / stats["median_s"]
            stats.update(peak)
            if steps:
                stats.update(loss_trend([float(v) for v in losses]))
            row[side] = stats
            del trainer
        if "theirs" in row:
            row["speedup"] = bl.ratio(row["theirs"]["median_s"], row["ours"]["median_s"])
        results.append(row)
        print(f"  EfficientAD-{size.upper()} {precision} b{batch}: ours {bl.fmt(row['ours']['median_s'], 's')}/step"
              + (f", anomalib {bl.fmt(row['theirs']['median_s'], 's')}/step" if "theirs" in row else ""), flush=True)
    settings = {"sizes": list(sizes), "batches": list(batches), "recommended_batch": RECOMMENDED_BATCH,
                "precisions": list(precisions), "steps": steps,
                "image_size": image_size, "repeats": {str(k): v for k, v in repeats.items()},
                "warmup": {str(k): v for k, v in warmup.items()}, "tf32": False, "penalty": True,
                "goal_cpu": "EfficientAD-S training step >= 2x anomalib at equal batch"}
    return settings, results


def table(results: list[dict]) -> None:
    bl.efficientad_table(results, "EfficientAD training step (median)", rate="steps_per_s", rate_format=".3g",
                         time_label="/step", rate_label="steps/s")
    rows = [[f"EfficientAD-{r['size'].upper()}", r["precision"], r["batch"], side, r[side]["repeats"],
             f"{r[side]['loss_start']:.4g} -> {r[side]['loss_end']:.4g}", "yes" if r[side]["loss_falling"] else "NO"]
            for r in results for side in ("ours", "theirs") if "loss_falling" in r.get(side, {})]
    if rows:
        bl.print_table("Loss over the clocked steps (mean of the first tenth -> last tenth)",
                       ["model", "precision", "batch", "side", "steps", "loss", "falling"], rows)


def main(argv=None) -> dict:
    parser = bl.common_arguments(__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["s"], choices=["s", "m"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, RECOMMENDED_BATCH])
    parser.add_argument("--precisions", nargs="+", choices=sorted(DTYPES), default=None,
                        help="default: fp32, and fp16 (AMP) on CUDA")
    parser.add_argument("--steps", type=int, default=None, help="clock this many consecutive steps per case and "
                        "record whether the loss fell (default: the repeats of a step-time measurement)")
    args = parser.parse_args(argv)
    shared = {"precisions": args.precisions, "steps": args.steps}
    tiny = {**bl.EFFICIENTAD_TINY, **shared, **({"steps": min(args.steps, 4)} if args.steps else {})}
    return bl.measure(NAME, args, run, table, tiny=tiny,
                      full={"sizes": tuple(args.sizes), "batches": tuple(args.batches), **shared})


if __name__ == "__main__":
    main()
