"""Real-scale costs on the CPU: wall time and peak memory of every workflow stage for one real-size category.

So that a user can plan a run (issue 13, item 7).

The category: ``--images`` (300) training, ``--validation`` (50) validation and ``--test`` (80: 30 good,
25 logical, 25 structural, with masks) images of ``--size``² (1024²) pixels in the MVTec LOCO AD layout,
rendered once by the demo's generator (:func:`anomalyflow.data.synth.generate`, which draws at any square
size) and cached under ``--data``. EfficientAD's ImageNet stand-in is 100 generated clutter images of 384²
(:func:`anomalyflow.data.clutter.generate_clutter`; about an ImageNet photo's size, and more than the
distillation's ``cache_limit`` of 64, so the teacher streams its images as it does from ImageNet).

Every stage makes the library call its rule script makes (``workflow/scripts/*.py``), with the published
settings (``config/config.yaml``'s methods, the rest from ``src/anomalyflow/schema.yaml``'s defaults) and
random-init weights (``weights: none``: the same cost as ImageNet weights, nothing to download). Each runs in its own
process pinned to ``--cores`` CPUs (affinity, torch threads through :func:`anomalyflow.jobs.job` as in the
workflow, and Snakemake's thread variables), so its peak resident memory (``VmHWM``) is its own. Where the
full stage is days of CPU time, a measured prefix runs and the rest is extrapolated:

- ``steps``: the training loop runs a few iterations (the stage's own ``iterations`` parameter); torch's global
  optimiser hook timestamps every step. full = setup + iterations × (median step) + tail (saving), with setup
  the time before the first step and the tail after the last. Teacher distillation, EfficientAD-S/-M.
- ``stopped``: the PNI MLP's unit is an epoch (~400 steps of 2,048 samples on 300 images), so the full-size stage
  is stopped by the same hook after a few steps. full = setup + epochs × (steps per epoch + validation batches
  / 3, a forward pass being about a third of a training step) × (median step). A model for the later stages is
  then trained on a few training images (same network, so the same scoring cost; kept in the record only).
- ``images``: ImageNet statistics run on two image counts; the difference gives seconds per image.
- ``images+steps``: the refiner's setup (PNI maps of two synthetic anomalies per training image) runs on two
  training subsets and is extrapolated linearly in images, time and memory; its loop as in ``steps``.
- everything else (sample table, PatchCore, quantiles, scoring, PUAD, PNI memory, ensemble, evaluation) runs
  in full. The ensemble's three members are the one measured PNI model's files (its cost depends on the maps'
  size, not on which backbone drew them); the other two backbones' PNI stages are not measured.

    python bench/real_scale.py                       # the real scale (about 2 hours on 2 cores, see the README)
    python bench/real_scale.py --images 30 --size 256 --steps 3 --stages pni_score   # a part, smaller
    python bench/real_scale.py --table               # the latest record's table again
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl
import stage_job

NAME = "real_scale"
DATASET = "real_scale"
DEFAULT_DATA = bl.REPO / "resources" / "bench" / "real_scale"
CLUTTER = {"n_images": 100, "image_size": 384}
TINY_CLUTTER = {"n_images": 6, "image_size": 64}
PNI = "pni_wide_resnet101_2"

#: ``--tiny``: the demo's kind of settings (resnet18 instead of the WideResNets, 64² inputs, small MLP), a few
#: images; a smoke test of every stage, not a measurement.
TINY = {"images": 6, "validation": 3, "test": 6, "size": 64, "steps": 2, "distill_steps": 2, "mlp_steps": 2,
        "stats_images": (2, 4), "refiner_images": (2, 3), "mlp_model_images": 2}
TINY_PNI = "pni_resnet18"
TINY_TEACHER = {"backbone": "resnet18", "image_size": 64, "batch_size": 2}
TINY_METHODS = {
    "patchcore": {"backbone": "resnet18", "image_size": 64},
    "efficientad_s": {"image_size": 64},
    "efficientad_m": {"image_size": 64},
    TINY_PNI: {"resize": 64, "crop": 64, "embed_dim": 32, "coreset_fraction": 0.1, "dist_coreset_size": 8,
               "mlp_hidden": 16, "mlp_layers": 2, "mlp_batch_size": 32},
    "pni_refined": {"base": TINY_PNI, "refine_size": 64, "synthetic_per_image": 1},
}


# ---------------------------------------------------------------------------------------------- stages


@dataclass(frozen=True)
class Stage:
    name: str
    rule: str           # the workflow rule (workflow/rules/*.smk) whose script makes this call
    kind: str           # full | steps | stopped | images | images+steps
    needs: tuple[str, ...] = ()
    shared: bool = False  # once per teacher, for every category and dataset
    # job: the rule's threads reach torch through job(threads=...); rule: the rule has threads, its script
    # passes them elsewhere (decoding workers); one: no threads directive, so Snakemake runs it with one.
    threads: str = "job"
    size: str | None = None   # EfficientAD/PUAD/teacher size, s or m
    handler: str = ""         # the Chain method measuring it: stage_<handler> (default: stage_<name>)


STAGES = [
    Stage("samples", "data_samples", "full", threads="rule"),
    Stage("patchcore_fit", "patchcore_fit", "full", ("samples",)),
    Stage("patchcore_score", "patchcore_score", "full", ("patchcore_fit",)),
    Stage("imagenet_stats", "teacher_stats", "images", shared=True),
    *[Stage(f"distill_{s}", "teacher_distill", "steps", ("imagenet_stats",), shared=True, size=s,
            handler="distill") for s in "sm"],
    *[stage for s in "sm" for stage in (
        Stage(f"efficientad_{s}_train", "efficientad_fit", "steps", ("samples", f"distill_{s}"), size=s,
              handler="efficientad_train"),
        Stage(f"efficientad_{s}_quantiles", "efficientad_fit_quantiles", "full", (f"efficientad_{s}_train",), size=s,
              handler="efficientad_quantiles"),
        Stage(f"efficientad_{s}_score", "efficientad_score", "full", (f"efficientad_{s}_quantiles",), size=s,
              handler="efficientad_score"),
        Stage(f"puad_{s}_fit", "puad_fit", "full", (f"efficientad_{s}_quantiles",), size=s, handler="puad_fit"),
        Stage(f"puad_{s}_score", "puad_score", "full", (f"puad_{s}_fit",), size=s, handler="puad_score"))],
    Stage("pni_memory", "pni_fit_memory", "full", ("samples",)),
    Stage("pni_mlp", "pni_fit_mlp", "stopped", ("pni_memory",)),
    Stage("pni_score", "pni_score", "full", ("pni_mlp",)),
    Stage("refiner_train", "pni_refined_fit", "images+steps", ("pni_mlp",)),
    Stage("refine", "pni_refined_score", "full", ("refiner_train",)),
    Stage("ensemble", "ensemble_score", "full", ("pni_score",), threads="one"),
    Stage("evaluate", "results_metrics", "full", ("ensemble",), threads="one"),
]
BY_NAME = {stage.name: stage for stage in STAGES}


def with_needs(names: list[str]) -> list[Stage]:
    """The named stages and every stage they need, in chain order."""
    wanted: set[str] = set()

    def add(name: str) -> None:
        if name not in wanted:
            wanted.add(name)
            for need in BY_NAME[name].needs:
                add(need)

    for name in names:
        add(name)
    return [stage for stage in STAGES if stage.name in wanted]


# ---------------------------------------------------------------------------------------------- data


def test_counts(test: int) -> dict[str, int]:
    """MVTec LOCO's mix: about 3/8 good, the rest half logical, half structural (each at least 1)."""
    good = max(1, test * 3 // 8)
    logical = max(1, (test - good) // 2)
    return {"n_test_good": good, "n_test_logical": logical, "n_test_structural": max(1, test - good - logical)}


def ensure_data(folder: Path, category: str, *, images: int, validation: int, test: int, size: int,
                clutter: dict) -> tuple[Path, Path, float]:
    """The dataset root and the ImageNet stand-in folder (each generated once per spec under ``folder``), and
    the seconds spent generating them now."""
    from anomalyflow.data.clutter import generate_clutter
    from anomalyflow.data.synth import generate

    spec = {"seed": 0, "image_size": size, "n_train": images, "n_validation": validation, **test_counts(test)}
    root = folder / f"loco_{size}px_{images}train_{validation}val_{test}test"
    done = root / f".{category}.done"  # generate() swaps the category in whole; this marks that it finished
    start = time.perf_counter()
    if not done.is_file() or json.loads(done.read_text()) != spec:
        print(f"generating {images + validation + test} images of {size}² into {root} (once)", flush=True)
        generate(root, categories=[category], **spec)
        done.write_text(json.dumps(spec))
    imagenet = folder / f"clutter_{clutter['image_size']}px_{clutter['n_images']}"
    if not (imagenet / ".done").is_file():
        generate_clutter(imagenet, seed=0, **clutter)
        (imagenet / ".done").write_text(json.dumps(clutter))
    return root, imagenet / "images", time.perf_counter() - start


WORK_MARK = ".real_scale_work"


def resumed_work(work: Path) -> Path:
    """An earlier run's work folder, kept as it is (--resume)."""
    if not (work / WORK_MARK).is_file():
        raise SystemExit(f"real_scale: --resume needs an earlier run's work folder; {work} is not one")
    return work


def fresh_work(work: Path) -> Path:
    """An empty work folder; one left by an earlier run is emptied, anything else is refused (--work may be
    mistyped as a folder that matters)."""
    if work.exists() and any(work.iterdir()):
        if not (work / WORK_MARK).is_file():
            raise SystemExit(f"real_scale: --work {work} is not empty and not an earlier run's work folder; "
                             "name a new or empty folder")
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    (work / WORK_MARK).touch()
    return work


def subset_samples(samples: Path, out: Path, n_train: int) -> Path:
    """``samples`` with only its first ``n_train`` training rows (validation and test as they are)."""
    from anomalyflow.data.table import read_samples, write_samples

    table = read_samples(samples)
    train = table.index[table["split"] == "train"]
    write_samples(table.drop(train[n_train:]).reset_index(drop=True), out)
    return out


# ---------------------------------------------------------------------------------------------- config


def build_config(root: Path, category: str, imagenet: Path, cores: int, tiny: bool) -> dict:
    """The workflow config of the measured category, validated (defaults filled) as the workflow does."""
    from anomalyflow.readers import load_yaml
    from anomalyflow.validation import validate_config

    published = load_yaml(bl.REPO / "config" / "config.yaml")
    pni = TINY_PNI if tiny else PNI
    teacher = {"imagenet_root": str(imagenet), **(TINY_TEACHER if tiny else {})}
    methods = ["patchcore", "efficientad_s", "efficientad_m", "puad_s", "puad_m", pni, "pni_refined",
               "pni_ensemble"]
    config = {
        "dataset": DATASET, "device": "cpu", "weights": "none", "threads": cores, "num_workers": 0,
        "teachers": {"imagenet": teacher},
        "methods": published["methods"],
        "datasets": {DATASET: {"layout": "mvtec_loco", "root": str(root), "categories": [category],
                               "methods": methods, "method_params": TINY_METHODS if tiny else {}}},
    }
    return validate_config(config)


# ---------------------------------------------------------------------------------------------- running


class StageError(RuntimeError):
    """A stage's process failed (an error, or killed: e.g. by the kernel when memory ran out)."""


def thread_env(threads: int) -> dict:
    # What Snakemake sets for a job of `threads` threads: numpy/scipy BLAS, OpenMP and faiss pools would
    # otherwise start one thread per machine core.
    names = ("OMP_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
    return {**os.environ, **{name: str(threads) for name in names}}


def _real_paths(value):
    # A call names its files by absolute path; an earlier run may have reached the same folder through a link.
    if isinstance(value, str) and value.startswith("/"):
        return os.path.realpath(value)
    if isinstance(value, list):
        return [_real_paths(v) for v in value]
    if isinstance(value, dict):
        return {k: _real_paths(v) for k, v in value.items()}
    return value


def same_call(job_file: Path, call: dict) -> bool:
    """Whether ``job_file`` (an earlier run's) made exactly ``call``: same function, files and parameters."""
    if not job_file.is_file():
        return False
    earlier = json.loads(job_file.read_text())["call"]
    return _real_paths(earlier) == _real_paths(json.loads(json.dumps(call)))


def run_call(call: dict, stage: Stage, *, cores: int, runner: str, logs: Path, label: str,
             stop_after: int | None = None, reuse: bool = False) -> dict:
    """One measured run of a stage call: in its own process (bench/stage_job.py, which reports its peak RSS), or
    in this one (``inline``, the smoke test: the RSS increase sampled by :class:`benchlib.PeakMemory`).

    ``reuse`` (--resume): where the earlier run in ``logs`` made the same call and its result is there, that
    measurement stands (marked ``reused_from``, its date) and nothing runs: a run cut after hours goes on from
    where it stopped. Its outputs are in the work folder, so the stages after it still have their inputs."""
    logs.mkdir(parents=True, exist_ok=True)
    log_file = str(logs / f"{label}.log")
    # As the rule runs it: torch threads through job() where its script passes them; Snakemake's thread
    # variables at the rule's threads (none declared: 1).
    threads = cores if stage.threads == "job" else None
    steps = stage.kind in ("steps", "stopped", "images+steps")
    if runner == "inline":
        before = torch.get_num_threads()
        try:
            with bl.PeakMemory(torch.device("cpu")) as peak:
                result = stage_job.execute(call, threads=threads, log_file=log_file, steps=steps,
                                           stop_after=stop_after)
        finally:
            torch.set_num_threads(before)
        return {**result, "peak_bytes": peak.peak_bytes, "memory": peak.kind}
    job_file, result_file = logs / f"{label}.job.json", logs / f"{label}.result.json"
    if reuse and same_call(job_file, call) and result_file.is_file():
        measured = time.strftime("%Y-%m-%d %H:%M", time.localtime(result_file.stat().st_mtime))
        print(f"  {label}: an earlier run's measurement of the same call ({measured}), reused", flush=True)
        return {**json.loads(result_file.read_text()), "memory": "peak_rss_of_process (VmHWM)",
                "reused_from": measured}
    result_file.unlink(missing_ok=True)
    job_file.write_text(json.dumps({"call": call, "cores": cores, "threads": threads, "log": log_file,
                                    "steps": steps, "stop_after": stop_after, "result": str(result_file)}))
    start = time.perf_counter()
    with open(logs / f"{label}.out", "w") as out:
        process = subprocess.run([sys.executable, stage_job.__file__, str(job_file)], stdout=out,
                                 stderr=subprocess.STDOUT, env=thread_env(1 if stage.threads == "one" else cores))
    wall = time.perf_counter() - start
    if process.returncode != 0 or not result_file.is_file():
        tail = (logs / f"{label}.out").read_text()[-2000:]
        killed = " (killed: out of memory?)" if process.returncode == -9 else ""
        raise StageError(f"exit {process.returncode}{killed} after {wall:.0f} s ({logs / label}.out)\n{tail}")
    return {**json.loads(result_file.read_text()), "process_wall_s": wall,
            "memory": "peak_rss_of_process (VmHWM)"}


def steps_of(run: dict) -> dict:
    """Median step, setup (before the first step) and tail (after the last) of a run with ≥ 2 steps."""
    ends = run["step_ends_s"]
    if len(ends) < 2:
        raise RuntimeError("a measured prefix needs at least 2 optimiser steps")
    unit = statistics.median(b - a for a, b in itertools.pairwise(ends))
    return {"unit_s": unit, "steps": len(ends), "setup_s": max(0.0, ends[0] - unit),
            "tail_s": run["call_s"] - ends[-1]}


def linear(x_a: float, y_a: float, x_b: float, y_b: float, x: float) -> float:
    """The line through (x_a, y_a) and (x_b, y_b) at x, its slope floored at 0 (noise must not make cost fall)."""
    slope = max(0.0, (y_b - y_a) / (x_b - x_a))
    return y_b + (x - x_b) * slope


# ---------------------------------------------------------------------------------------------- the chain


class Chain:
    """The calls of every stage for one category, as the rule scripts make them, and their measurement."""

    def __init__(self, config: dict, category: str, work: Path, args, pni: str):
        from anomalyflow.config import evaluation_params, method_params, teacher_params

        self.config, self.category, self.work, self.args, self.pni = config, category, work, args, pni
        self.cores, self.runner, self.logs = args.cores, args.runner, work / "logs"
        self.folder = work / "results" / DATASET / category
        self.samples = str(self.folder / "samples.csv")
        self.params = {m: method_params(config, DATASET, category, m)
                       for m in config["datasets"][DATASET]["methods"]}
        self.teacher = teacher_params(config, "imagenet")
        self.evaluation = evaluation_params(config, DATASET)
        self.device = config["device"]
        self.stats = str(work / "results" / "imagenet" / f"{self.teacher['backbone']}_stats.pt")

    def model(self, method: str) -> Path:
        return self.folder / method

    def run(self, stage: str, function: str, *args, label: str | None = None, stop_after: int | None = None,
            **kwargs) -> dict:
        call = {"stage": stage, "function": function, "args": list(args), "kwargs": kwargs}
        reuse = self.args.resume and stage not in (self.args.remeasure or ())
        result = run_call(call, BY_NAME[stage], cores=self.cores, runner=self.runner, logs=self.logs,
                          label=label or stage, stop_after=stop_after, reuse=reuse)
        return {"function": function, **result}

    def with_weights(self, method: str, backbone: str | None = None) -> dict:
        from anomalyflow.config import resolve_weights

        params = self.params[method]
        return {**params, "weights": resolve_weights(params["weights"], backbone or params["backbone"])}

    def score(self, stage: str, method: str, maps: bool = True) -> dict:
        folder = self.model(method)
        return self.run(stage, "anomalyflow.families:score_folder", str(folder), self.samples,
                        str(folder / "scores.csv"), str(folder / "maps.npz") if maps else None, device=self.device,
                        num_workers=0)

    def counts(self) -> dict[str, int]:
        from anomalyflow.data.table import read_samples

        table = read_samples(self.samples)
        return {split: int((table["split"] == split).sum()) for split in ("train", "validation", "test")}

    # --- one method per stage kind --------------------------------------------------------------------------

    def measure(self, stage: Stage) -> dict:
        method = getattr(self, f"stage_{stage.handler or stage.name}")
        record = {"stage": stage.name, "rule": stage.rule, "kind": stage.kind, "shared": stage.shared,
                  **method(stage)}
        runs = record["runs"]
        record["wall_s"] = sum(r["call_s"] for r in runs)
        record["peak_bytes"] = max(r["peak_bytes"] for r in runs)
        record.setdefault("full_s", record["wall_s"] if stage.kind == "full" else None)
        record.setdefault("full_peak_bytes", record["peak_bytes"])
        reused = sorted({r["reused_from"] for r in runs if "reused_from" in r})
        if reused:
            record["reused_from"] = reused[0]
        return record

    def stage_samples(self, stage: Stage) -> dict:
        run = self.run(stage.name, "stage_job:samples_job", "mvtec_loco", self.config["datasets"][DATASET]["root"],
                       self.category, self.samples, workers=self.cores, dataset=DATASET)
        n = self.counts()
        return {"what": f"decode all {sum(n.values())} images and their masks", "runs": [run]}

    def stage_patchcore_fit(self, stage: Stage) -> dict:
        run = self.run(stage.name, "anomalyflow.patchcore:fit_patchcore", self.samples, str(self.model("patchcore")),
                       self.with_weights("patchcore"), device=self.device, num_workers=0)
        return {"what": f"{self.counts()['train']} train images", "runs": [run], "params": self.params["patchcore"]}

    def _scored(self) -> str:
        n = self.counts()
        return f"{n['validation'] + n['test']} images ({n['validation']} validation, {n['test']} test)"

    def stage_patchcore_score(self, stage: Stage) -> dict:
        return {"what": self._scored(), "runs": [self.score(stage.name, "patchcore")]}

    def stage_imagenet_stats(self, stage: Stage) -> dict:
        from anomalyflow.config import resolve_weights

        t = self.teacher
        runs = []
        for n in self.args.stats_images:
            runs.append(self.run(stage.name, "anomalyflow.efficientad.imagenet_stats:compute_imagenet_stats",
                                 t["imagenet_root"], self.stats, label=f"{stage.name}_{n}", n_images=n,
                                 seed=t["stats_seed"], variant=t["variant"], backbone=t["backbone"],
                                 weights=resolve_weights(t["weights"], t["backbone"]),
                                 image_size=t["image_size"], device=self.device, num_workers=0))
            runs[-1]["images"] = n
        (a, b), (ra, rb) = self.args.stats_images, runs
        unit = max(0.0, (rb["call_s"] - ra["call_s"]) / (b - a))
        return {"what": f"{a} and {b} of {t['n_images']:,} images", "runs": runs, "unit": "image", "unit_s": unit,
                "units_full": t["n_images"], "full_s": linear(a, ra["call_s"], b, rb["call_s"], t["n_images"]),
                "extrapolation": f"time of {b} images + ({t['n_images']:,} - {b}) x (s/image from the two runs)",
                "params": {k: t[k] for k in ("n_images", "backbone", "image_size", "variant")}}

    def _loop(self, runs: list[dict], total: int, unit: str) -> dict:
        steps = steps_of(runs[-1])
        full = steps["setup_s"] + total * steps["unit_s"] + steps["tail_s"]
        return {"unit": unit, "unit_s": steps["unit_s"], "units_full": total, "setup_s": steps["setup_s"],
                "tail_s": steps["tail_s"], "full_s": full,
                "extrapolation": f"setup + {total:,} x (median {unit}) + tail (saving)"}

    def stage_distill(self, stage: Stage) -> dict:
        from anomalyflow.config import resolve_weights

        t, n, size = self.teacher, self.args.distill_steps, stage.size
        run = self.run(stage.name, "anomalyflow.efficientad.distill:distill_teacher", t["imagenet_root"], self.stats,
                       str(self.teacher_file(size)), size=size, iterations=n, batch_size=t["batch_size"], lr=t["lr"],
                       weight_decay=t["weight_decay"], seed=t["seed"], variant=t["variant"], backbone=t["backbone"],
                       weights=resolve_weights(t["weights"], t["backbone"]), image_size=t["image_size"],
                       device=self.device, num_workers=0, checkpoint_every=t["checkpoint_every"],
                       cache_limit=t["cache_limit"])
        return {"what": f"{n} of {t['iterations']:,} iterations, batch {t['batch_size']}", "runs": [run],
                **self._loop([run], t["iterations"], "iteration"),
                "params": {k: t[k] for k in ("iterations", "batch_size", "backbone", "image_size", "cache_limit")}}

    def teacher_file(self, size: str) -> Path:
        return self.work / "results" / "teacher" / "imagenet" / size / "teacher.pt"

    def stage_efficientad_train(self, stage: Stage) -> dict:
        size = stage.size
        method = f"efficientad_{size}"
        params, n = self.params[method], self.args.steps
        run = self.run(stage.name, "anomalyflow.efficientad.stages:fit_efficientad", self.samples,
                       str(self.model(method)), {**params, "iterations": n}, category=self.category,
                       teacher_file=str(self.teacher_file(size)), penalty_images=self.teacher["imagenet_root"],
                       device=self.device, num_workers=0, teacher_label="imagenet (measured prefix)")
        return {"what": f"{n} of {params['iterations']:,} steps, batch {params['batch_size']}, "
                        f"{params['image_size']}², penalty on", "runs": [run],
                **self._loop([run], params["iterations"], "step"), "params": params}

    def stage_efficientad_quantiles(self, stage: Stage) -> dict:
        method = f"efficientad_{stage.size}"
        folder = self.model(method)
        run = self.run(stage.name, "anomalyflow.efficientad.stages:fit_efficientad_quantiles", str(folder),
                       self.samples, self.params[method], category=self.category, device=self.device, num_workers=0)
        return {"what": f"{self.counts()['validation']} validation images", "runs": [run]}

    def stage_efficientad_score(self, stage: Stage) -> dict:
        return {"what": self._scored(), "runs": [self.score(stage.name, f"efficientad_{stage.size}")]}

    def stage_puad_fit(self, stage: Stage) -> dict:
        method = f"puad_{stage.size}"
        params = self.params[method]
        run = self.run(stage.name, "anomalyflow.puad:fit_puad", self.samples, str(self.model(params["base"])),
                       str(self.model(method)), params, device=self.device, num_workers=0)
        n = self.counts()
        return {"what": f"{n['train']} train + {n['validation']} validation images", "runs": [run]}

    def stage_puad_score(self, stage: Stage) -> dict:
        return {"what": self._scored(), "runs": [self.score(stage.name, f"puad_{stage.size}", maps=False)]}

    def stage_pni_memory(self, stage: Stage) -> dict:
        run = self.run(stage.name, "anomalyflow.pni.stages:fit_pni_memory", self.samples, str(self.model(self.pni)),
                       self.with_weights(self.pni), device=self.device, num_workers=0,
                       features_path=str(self.features()))
        return {"what": f"{self.counts()['train']} train images: features, 3 coresets, position histograms",
                "runs": [run], "params": self.params[self.pni]}

    def features(self) -> Path:
        return self.model(self.pni) / "train_features.npy"

    def stage_pni_mlp(self, stage: Stage) -> dict:
        import numpy as np

        from anomalyflow.pni.geometry import border

        params, n = self.params[self.pni], self.args.mlp_steps
        model_dir = str(self.model(self.pni))
        run = self.run(stage.name, "anomalyflow.pni.stages:fit_pni_mlp", self.samples, model_dir,
                       self.with_weights(self.pni), device=self.device, num_workers=0,
                       features_path=str(self.features()), stop_after=n)
        # The epoch as train_mlp cuts it: interior positions of every image, split 90/10, batches of ≥ 2 samples.
        images, h, w, _ = np.load(self.features(), mmap_mode="r").shape
        edge = border(params["patch_size"])
        total = images * (h - 2 * edge) * (w - 2 * edge)
        n_train = round((1 - params["mlp_val_fraction"]) * total)
        batch = params["mlp_batch_size"]
        per_epoch = n_train // batch + (1 if n_train % batch >= 2 else 0)
        validation = math.ceil((total - n_train) / batch)
        steps = steps_of(run)
        epochs = params["mlp_epochs"]
        full = steps["setup_s"] + epochs * (per_epoch + validation / 3) * steps["unit_s"]
        # A usable MLP for the later stages (same network, so the same scoring cost), from a few images' features.
        k = self.args.mlp_model_images
        subset = subset_samples(Path(self.samples), self.folder / f"samples_{k}train.csv", k)
        features = self.work / f"train_features_{k}.npy"
        np.save(features, np.load(self.features(), mmap_mode="r")[:k])
        model = self.run(stage.name, "anomalyflow.pni.stages:fit_pni_mlp", str(subset), model_dir,
                         {**self.with_weights(self.pni), "mlp_epochs": 1}, label=f"{stage.name}_model",
                         device=self.device, num_workers=0, features_path=str(features))
        return {"what": f"{n} steps of {per_epoch} per epoch x {epochs} epochs (stopped), batch {batch}",
                "runs": [run], "unit": "step", "unit_s": steps["unit_s"], "units_full": epochs * per_epoch,
                "setup_s": steps["setup_s"], "full_s": full, "samples": total, "validation_batches": validation,
                "extrapolation": f"setup + {epochs} x ({per_epoch} steps + {validation} validation batches / 3) "
                                 "x (median step)",
                "stand_in_model": {"train_images": k, "epochs": 1, "call_s": model["call_s"],
                                   "peak_bytes": model["peak_bytes"]},
                "params": params}

    def stage_pni_score(self, stage: Stage) -> dict:
        return {"what": self._scored(), "runs": [self.score(stage.name, self.pni)]}

    def stage_refiner_train(self, stage: Stage) -> dict:
        params, n = self.params["pni_refined"], self.args.steps
        train = self.counts()["train"]
        runs = []
        for k in self.args.refiner_images:
            subset = subset_samples(Path(self.samples), self.folder / f"samples_{k}train.csv", k)
            runs.append(self.run(stage.name, "anomalyflow.pni.refine:fit_pni_refined", str(subset),
                                 str(self.model(params["base"])), str(self.model("pni_refined")),
                                 {**self.with_weights("pni_refined", "densenet161"), "iterations": n},
                                 label=f"{stage.name}_{k}", device=self.device, num_workers=0))
            runs[-1]["train_images"] = k
            runs[-1].update(steps_of(runs[-1]))
        (a, b), (ra, rb) = self.args.refiner_images, runs
        setup = linear(a, ra["setup_s"], b, rb["setup_s"], train)
        total = params["iterations"]
        per = params["synthetic_per_image"]
        return {"what": f"{a} and {b} of {train} train images ({a * per}, {b * per} synthetic anomalies), "
                        f"{n} of {total:,} steps each",
                "runs": runs, "unit": "step", "unit_s": rb["unit_s"], "units_full": total, "setup_s": setup,
                "full_s": setup + total * rb["unit_s"] + rb["tail_s"],
                "full_peak_bytes": linear(a, ra["peak_bytes"], b, rb["peak_bytes"], train),
                "extrapolation": f"setup (PNI maps of the synthetic anomalies) and peak memory linear in train "
                                 f"images to {train}; + {total:,} x (median step) + tail",
                "params": params}

    def stage_refine(self, stage: Stage) -> dict:
        return {"what": self._scored() + f", refiner of {self.args.refiner_images[-1]} images",
                "runs": [self.score(stage.name, "pni_refined")]}

    def stage_ensemble(self, stage: Stage) -> dict:
        params = self.params["pni_ensemble"]
        folder, source = self.model("pni_ensemble"), self.model(self.pni)
        # Every member reads the one measured PNI model's files (see the module notes).
        members = [[m, str(source / "scores.csv"), str(source / "maps.npz")] for m in params["members"]]
        run = self.run(stage.name, "anomalyflow.ensemble:ensemble_category", self.samples, members,
                       str(folder / "scores.csv"), str(folder / "maps.npz"), str(folder / "model.json"), params)
        return {"what": f"{len(members)} members' maps of {self._scored()}", "runs": [run], "params": params}

    def stage_evaluate(self, stage: Stage) -> dict:
        folder = self.model("pni_ensemble")
        root = self.config["datasets"][DATASET]["root"]
        run = self.run(stage.name, "stage_job:evaluate_job", self.samples, str(folder / "scores.csv"),
                       str(folder / "maps.npz"), str(folder / "metrics.csv"), method="pni_ensemble",
                       defects_config=f"{root}/{self.category}/defects_config.json", **self.evaluation)
        return {"what": f"{self.counts()['test']} test maps at {self.evaluation['size']}², LOCO sPRO (one method)",
                "runs": [run]}


# ---------------------------------------------------------------------------------------------- output


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.1f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def gib(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 2**30:.2f} GiB" if value >= 2**30 else f"{value / 2**20:.0f} MiB"


def not_run(stage: Stage, why: str) -> dict:
    return {"stage": stage.name, "rule": stage.rule, "kind": stage.kind, "shared": stage.shared, "what": "—",
            "runs": [], "failed": why, "wall_s": None, "full_s": None, "peak_bytes": None, "full_peak_bytes": None}


def table(results: list[dict], settings: dict | None = None) -> None:
    """The markdown table of bench/README.md's "Real-scale costs (CPU)"."""
    print("\n| stage | what was run | wall time | full stage | peak memory |")
    print("|---|---|---|---|---|")
    for r in results:
        if r.get("failed"):
            print(f"| {r['stage']} | {r['failed']} | — | — | — |")
            continue
        extrapolated = r["kind"] != "full"
        full = ("≈ " if extrapolated else "") + duration(r["full_s"])
        if extrapolated and r.get("unit_s") is not None:
            full += f" ({duration(r['unit_s'])}/{r['unit']})"
        memory = gib(r["full_peak_bytes"])
        if r["full_peak_bytes"] != r["peak_bytes"]:
            memory = f"≈ {memory} (measured {gib(r['peak_bytes'])})"
        print(f"| {r['stage']}{' (shared)' if r['shared'] else ''} | {r['what']} | {duration(r['wall_s'])} | "
              f"{full} | {memory} |")
    per_category = [r["full_s"] for r in results if not r["shared"] and r["full_s"] is not None]
    shared = [r["full_s"] for r in results if r["shared"] and r["full_s"] is not None]
    totals = f"per category: {duration(sum(per_category))}"
    if shared:
        totals += f"; once per teacher (shared by every category): {duration(sum(shared))}"
    done = [r for r in results if not r.get("failed")]
    if len(done) < len(results):
        totals += f" (without the {len(results) - len(done)} stages that did not run)"
    print(f"| **total** | {totals} | {duration(sum(r['wall_s'] for r in done))} | | "
          f"{gib(max((r['full_peak_bytes'] for r in done), default=None))} (largest stage) |")
    reused = [f"{r['stage']} ({r['reused_from']})" for r in results if r.get("reused_from")]
    if reused:
        print(f"\nMeasured by an earlier run of the same calls and reused (--resume): {', '.join(reused)}.")
    if settings:
        data = settings["data"]
        print(f"\n{data['train']} train / {data['validation']} validation / {data['test']} test images of "
              f"{data['size']}², {settings['cores']} cores, memory: {settings['memory']}")
    sys.stdout.flush()


def print_latest(records: Path) -> dict:
    lines = (records / f"{NAME}.jsonl").read_text().splitlines()
    record = json.loads(lines[-1])
    print(f"{record['date']}, {record.get('device_name')}, commit {record.get('git_commit')}, "
          f"load {record.get('loadavg_start')} → {record.get('loadavg_end')}")
    table(record["results"], record["settings"])
    return record


# ---------------------------------------------------------------------------------------------- main


def arguments(argv) -> argparse.Namespace:
    parser = bl.common_arguments(__doc__.splitlines()[0])
    parser.set_defaults(device="cpu")
    parser.add_argument("--data", type=Path, default=None, help=f"data cache (default {DEFAULT_DATA}; "
                        "--tiny: a temporary folder)")
    parser.add_argument("--work", type=Path, default=None,
                        help="stage outputs; an earlier run's are removed first (default <data>/work)")
    parser.add_argument("--category", default="tray", help="synthetic category: tray or board")
    parser.add_argument("--images", type=int, default=None, help="training images (300)")
    parser.add_argument("--validation", type=int, default=None, help="validation images (50)")
    parser.add_argument("--test", type=int, default=None, help="test images (80)")
    parser.add_argument("--size", type=int, default=None, help="image side in pixels (1024)")
    parser.add_argument("--cores", type=int, default=2, help="CPUs (and torch threads) per stage")
    parser.add_argument("--steps", type=int, default=None, help="measured steps of EfficientAD and refiner (20)")
    parser.add_argument("--distill-steps", type=int, default=None, help="measured distillation iterations (5)")
    parser.add_argument("--mlp-steps", type=int, default=None, help="PNI MLP steps before the stop (10)")
    parser.add_argument("--stats-images", type=int, nargs=2, default=None, help="ImageNet statistics runs (16 64)")
    parser.add_argument("--refiner-images", type=int, nargs=2, default=None,
                        help="train images of the two refiner runs (4 16)")
    parser.add_argument("--mlp-model-images", type=int, default=None,
                        help="train images of the stand-in MLP for the later stages (4)")
    parser.add_argument("--stages", nargs="+", choices=list(BY_NAME), default=None,
                        help="these stages and those they need (default: all)")
    parser.add_argument("--runner", choices=["process", "inline"], default=None,
                        help="process per stage (default), or inline (--tiny's default: no peak RSS of its own)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the work folder of an earlier (cut) run and reuse its measurement of every call "
                             "it made the same way; the rest runs")
    parser.add_argument("--remeasure", nargs="+", choices=list(BY_NAME), default=None,
                        help="with --resume: run these stages again all the same (e.g. measured on a busy CPU)")
    parser.add_argument("--table", action="store_true", help="print the latest record's table and exit")
    args = parser.parse_args(argv)
    full = {"images": 300, "validation": 50, "test": 80, "size": 1024, "steps": 20, "distill_steps": 5,
            "mlp_steps": 10, "stats_images": (16, 64), "refiner_images": (4, 16), "mlp_model_images": 4}
    for key, value in (TINY if args.tiny else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.runner = args.runner or ("inline" if args.tiny else "process")
    if args.remeasure and not args.resume:
        parser.error("--remeasure goes with --resume (without it every stage is measured)")
    if args.resume and args.runner == "inline":
        parser.error("--resume reuses the per-process measurements of --runner process")
    if min(args.steps, args.distill_steps, args.mlp_steps) < 2:
        parser.error("--steps, --distill-steps and --mlp-steps must be at least 2 (a median step needs two)")
    for key in ("stats_images", "refiner_images"):
        a, b = getattr(args, key)
        if not 0 < a < b:
            parser.error(f"--{key.replace('_', '-')} takes two increasing positive counts")
    selected = {stage.name for stage in with_needs(args.stages or list(BY_NAME))}
    for key, stage in (("refiner_images", "refiner_train"), ("mlp_model_images", "pni_mlp")):
        largest = max(getattr(args, key)) if key == "refiner_images" else args.mlp_model_images
        if stage in selected and not 0 < largest <= args.images:
            parser.error(f"--{key.replace('_', '-')} cannot exceed --images")
    return args


def main(argv=None) -> dict:
    args = arguments(argv)
    if args.table:
        return print_latest(args.records or bl.RECORDS)
    device = bl.resolve_device(args.device)
    if device.type != "cpu":
        raise SystemExit("real_scale measures the CPU: --device cpu")
    env = bl.environment(device)
    scratch = Path(tempfile.mkdtemp(prefix="anomalyflow-real-scale-")) if args.data is None and args.tiny else None
    try:
        data = args.data or scratch or DEFAULT_DATA
        clutter = TINY_CLUTTER if args.tiny else CLUTTER
        root, imagenet, generated_s = ensure_data(data, args.category, images=args.images,
                                                  validation=args.validation, test=args.test, size=args.size,
                                                  clutter=clutter)
        work = (resumed_work if args.resume else fresh_work)(args.work or data / "work")
        config = build_config(root, args.category, imagenet, args.cores, args.tiny)
        chain = Chain(config, args.category, work, args, TINY_PNI if args.tiny else PNI)
        results, failed = [], set()
        for stage in with_needs(args.stages or list(BY_NAME)):
            print(f"[{time.strftime('%H:%M:%S')}] {stage.name} ...", flush=True)
            load = bl.loadavg()
            if failed.intersection(stage.needs):
                results.append(not_run(stage, f"skipped: needs {', '.join(failed.intersection(stage.needs))}"))
            else:
                try:
                    results.append(chain.measure(stage))
                except StageError as error:  # an hours-long run goes on with the stages that do not need it
                    print(f"{stage.name} FAILED: {error}", flush=True)
                    results.append(not_run(stage, f"failed: {str(error).splitlines()[0]}"))
            r = results[-1]
            r["loadavg_start"] = load
            if r.get("failed"):
                failed.add(stage.name)
                continue
            print(f"[{time.strftime('%H:%M:%S')}] {stage.name}: {duration(r['wall_s'])}, full "
                  f"{duration(r['full_s'])}, peak {gib(r['peak_bytes'])}", flush=True)
        counts = chain.counts()
        settings = {
            "data": {"layout": "mvtec_loco", "generator": "anomalyflow.data.synth.generate", "category": args.category,
                     "size": args.size, "train": counts["train"], "validation": counts["validation"],
                     "test": counts["test"], "root": str(root), "generated_now_s": generated_s},
            "imagenet_stand_in": {"generator": "anomalyflow.data.clutter.generate_clutter", **clutter},
            "cores": args.cores, "runner": args.runner, "weights": "none", "pni_method": chain.pni,
            "memory": ("peak RSS of the stage's own process (VmHWM: interpreter and libraries included)"
                       if args.runner == "process" else "RSS increase during the call, sampled in this process"),
            "prefix": {k: getattr(args, k) for k in ("steps", "distill_steps", "mlp_steps", "stats_images",
                                                      "refiner_images", "mlp_model_images")},
            "tiny": args.tiny,
            "resumed": args.resume, "remeasured": args.remeasure or [],
        }
        table(results, settings)
        return bl.finish(NAME, device, env, settings, results, args)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
