"""EfficientAD-S/M inference: latency at batch 1 and throughput at batch 16 (and more), 256²: anomalyflow vs anomalib.

Protocol (EfficientAD paper, §4.3): warm-up passes first, then each clocked pass runs from the copy of the
images to the device until the anomaly maps are back on the host, with the device synchronised before
the clock starts and after it stops; the median over repeats is reported. Random-initialised weights on
both sides (nothing is downloaded); random teacher statistics and quantiles so that every normalisation
step runs.

- anomalyflow: :class:`anomalyflow.efficientad.model.EfficientAD` ``predict`` (teacher, student,
  autoencoder, quantile normalisation, resize, image score), then ``maps.cpu()``.
- anomalib 2.7: ``anomalib.models.image.efficient_ad.torch_model.EfficientAdModel`` in eval mode under
  ``torch.no_grad()`` (as Lightning's predict/test loops run it), ``anomaly_map.cpu()``.

Precisions: ``fp32`` (TF32 off) everywhere; ``fp16`` = fp16 autocast on CUDA only (anomalib's model
breaks under ``model.half()``, so both sides use autocast). On the CPU ``bf16`` = bf16 autocast (the
library's own CPU default is fp32; bf16 is measured for information, with ``--cpu-bf16``).

    python bench/efficientad_inference.py [--sizes s m] [--batches 1 16] [--cpu-bf16]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl

from anomalyflow.efficientad.model import EfficientAD
from anomalyflow.nets.autoencoder import Autoencoder
from anomalyflow.nets.pdn import build_pdn

NAME = "efficientad_inference"
QUANTILES = {"q_st_a": 0.1, "q_st_b": 2.0, "q_ae_a": 0.2, "q_ae_b": 3.0}


def ours_model(size: str, device: torch.device, dtype: torch.dtype | None, image_size: int) -> EfficientAD:
    torch.manual_seed(0)
    model = EfficientAD(build_pdn(size, 384), build_pdn(size, 768), Autoencoder(384, image_size),
                        torch.randn(384) * 0.1, torch.rand(384) + 0.5, quantiles=QUANTILES,
                        params={"image_size": image_size, "size": size, "amp": dtype is not None}, device=device)
    model.dtype = dtype  # fp16 on CUDA (amp_dtype(half=True)), bf16 on the CPU when asked, None = fp32
    return model


def theirs_model(size: str, device: torch.device):
    from anomalib.models.image.efficient_ad.torch_model import EfficientAdModel, EfficientAdModelSize

    torch.manual_seed(0)
    model_size = EfficientAdModelSize.S if size == "s" else EfficientAdModelSize.M
    model = EfficientAdModel(teacher_out_channels=384, model_size=model_size, padding=False, pad_maps=True)
    with torch.no_grad():
        model.mean_std["mean"].copy_(torch.randn(1, 384, 1, 1) * 0.1)
        model.mean_std["std"].copy_(torch.rand(1, 384, 1, 1) + 0.5)
        for key, value in (("qa_st", 0.1), ("qb_st", 2.0), ("qa_ae", 0.2), ("qb_ae", 3.0)):
            model.quantiles[key].fill_(value)
    return model.to(device).eval()


def ours_pass(model: EfficientAD, host_images: torch.Tensor):
    def step():
        _, maps = model.predict(host_images)  # copies to the device itself; scores come back as numpy
        return maps.cpu()
    return step


def theirs_pass(model, host_images: torch.Tensor, device: torch.device, dtype: torch.dtype | None):
    def step():
        with torch.no_grad():
            x = host_images.to(device, non_blocking=True)
            if dtype is None:
                out = model(x)
            else:
                with torch.autocast(device_type=device.type, dtype=dtype):
                    out = model(x)
            return out.anomaly_map.float().cpu(), out.pred_score.float().cpu()
    return step


def default_repeats(device: torch.device, batch: int) -> int:
    if device.type == "cuda":
        return 20 if batch == 1 else (10 if batch <= 16 else 5)
    return 10 if batch == 1 else 3


def default_warmup(device: torch.device, batch: int) -> int:
    if device.type == "cuda":  # cudnn.benchmark tries its algorithms on the first passes of each shape
        return 10 if batch == 1 else 3
    return 2 if batch == 1 else 1


def precisions(device: torch.device, cpu_bf16: bool) -> list[tuple[str, torch.dtype | None]]:
    if device.type == "cuda":
        return [("fp32", None), ("fp16", torch.float16)]
    return [("fp32", None)] + ([("bf16", torch.bfloat16)] if cpu_bf16 else [])


def run(device: torch.device, *, sizes=("s", "m"), batches=(1, 16), repeats=None, warmup=None, image_size=256,
        with_anomalib=True, cpu_bf16=False) -> tuple[dict, list[dict]]:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    if repeats is None:  # CPU passes are slow: fewer repeats there; large GPU batches need fewer too
        repeats = {b: default_repeats(device, b) for b in batches}
    if warmup is None:
        warmup = {b: default_warmup(device, b) for b in batches}
    results = []
    for size in sizes:
        for precision, dtype in precisions(device, cpu_bf16):
            ours = ours_model(size, device, dtype, image_size)
            theirs = theirs_model(size, device) if with_anomalib else None
            for batch in batches:
                reps = repeats[batch] if size == "s" or device.type == "cuda" else max(2, repeats[batch] // 2)
                generator = torch.Generator().manual_seed(batch)
                host = torch.randn(batch, 3, image_size, image_size, generator=generator)
                if device.type == "cuda":
                    host = host.pin_memory()
                row = {"size": size, "precision": precision, "batch": batch, "image_size": image_size}
                sides = [("ours", ours_pass(ours, host))]
                if theirs is not None:
                    sides.append(("theirs", theirs_pass(theirs, host, device, dtype)))
                for side, fn in sides:
                    with bl.gpu_peak(device) as peak:
                        times = bl.time_call(fn, device, repeats=reps, warmup=warmup[batch])
                    stats = bl.summary(times)
                    stats["images_per_s"] = batch / stats["median_s"]
                    stats["ms_per_image"] = 1000 * stats["median_s"] / batch
                    stats.update(peak)
                    row[side] = stats
                if "theirs" in row:
                    row["speedup"] = bl.ratio(row["theirs"]["median_s"], row["ours"]["median_s"])
                results.append(row)
                print(f"  EfficientAD-{size.upper()} {precision} b{batch}: ours {bl.fmt(row['ours']['median_s'], 's')}"
                      + (f", anomalib {bl.fmt(row['theirs']['median_s'], 's')}" if "theirs" in row else ""),
                      flush=True)
            del ours, theirs
    settings = {"sizes": list(sizes), "batches": list(batches), "image_size": image_size,
                "repeats": {str(k): v for k, v in repeats.items()}, "repeats_m_cpu": "half, at least 2",
                "warmup": {str(k): v for k, v in warmup.items()},
                "tf32": False, "cudnn_benchmark": True,
                "clock": "host tensor -> device copy -> predict -> anomaly map on the host (synchronised)",
                "theirs_mode": "EfficientAdModel.eval() under torch.no_grad()",
                "cpu_precision": "fp32" + (" and bf16 autocast" if cpu_bf16 else " only"),
                "goal_cpu": "EfficientAD-S fp32 >= 2x anomalib at equal batch"}
    return settings, results


def table(results: list[dict]) -> None:
    bl.efficientad_table(results, "EfficientAD inference (median per batch; images/s = batch / median)",
                         rate="images_per_s", rate_format=".2f", time_label="", rate_label="img/s")


def main(argv=None) -> dict:
    parser = bl.common_arguments(__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["s", "m"], choices=["s", "m"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 16])
    parser.add_argument("--cpu-bf16", action="store_true", help="also measure bf16 autocast on the CPU")
    args = parser.parse_args(argv)
    return bl.measure(NAME, args, run, table, tiny=bl.EFFICIENTAD_TINY,
                      full={"sizes": tuple(args.sizes), "batches": tuple(args.batches), "cpu_bf16": args.cpu_bf16})


if __name__ == "__main__":
    main()
