"""Maps in the layout of MVTec's own evaluation scripts (anomalyflow.official_maps, rule official_maps_write).

Each written folder is read back and checked against the method's ``maps.npz``: one file per test image at
``test/<defect_type>/<stem>.tiff`` mirroring the dataset's test folder, float32 at the image's size, the
values those of the maps resized to it with only exact ties moved up by a few floats (order kept over the
whole category), and the MVTec LOCO script's initial thresholds distinct. Our own metrics on the written
maps are compared with the same metrics on the maps before tie-breaking.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch
import yaml
from map_checks import assert_order_kept, loco_initial_thresholds, long_run_pixels, order_keys
from PIL import Image
from workflow_helpers import clone_run, dry_run, job_module_records, snakemake

from anomalyflow.data.images import load_mask
from anomalyflow.data.layouts import read_samples_from_layout
from anomalyflow.data.table import read_samples, split_rows, write_samples
from anomalyflow.errors import DataError
from anomalyflow.evaluate import evaluate_category, maps_of_test_images
from anomalyflow.maps import pad_constant, resize
from anomalyflow.metrics import aupro, pixel_auroc
from anomalyflow.official_maps import full_size_maps, official_map_names, write_official_maps
from anomalyflow.outputs import read_maps, write_maps
from anomalyflow.ties import long_run

PNI_FRAME = (0.0625, 0.0625, 0.875, 0.875)  # resize 128, centre crop 112 (the demo's PNI)


# --- checks -------------------------------------------------------------------------------------------


def read_back(folder: Path, samples: Path, maps_path: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The written maps and the expected ones (maps.npz resized, long runs not broken), test rows' order;
    asserts layout, dtype, shape and values."""
    test = split_rows(read_samples(samples), "test")
    names = [f"test/{d}/{Path(p).stem}.tiff" for d, p in zip(test["defect_type"], test["path"], strict=True)]
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.tif*")) == sorted(names)
    maps, frames = maps_of_test_images(maps_path, test)
    written, expected = [], []
    for i, (name, image) in enumerate(zip(names, test["path"], strict=True)):
        # The file sits where the evaluators look for it: the image's test folder, the image's stem.
        assert Path(image).parent.name == Path(name).parent.name
        values = tifffile.imread(folder / name)
        width, height = Image.open(image).size
        assert values.dtype == np.float32 and values.shape == (height, width)
        written.append(values)
        expected.append(full_size_maps(torch.from_numpy(maps[i:i + 1]), frames[i], (height, width)).numpy()[0])
    for new, old in zip(written, expected, strict=True):
        long, longest = long_run_pixels(old, long_run(old.size))
        np.testing.assert_array_equal(new[~long], old[~long])  # all but long runs: the resized maps exactly
        # A run of k pixels moves up by fewer than k floats.
        steps = order_keys(new).astype(np.int64) - order_keys(old).astype(np.int64)
        assert steps.min() >= 0 and steps.max() < longest
    if any((new != old).any() for new, old in zip(written, expected, strict=True)):
        assert_order_kept(np.stack(expected), np.stack(written))
    thresholds = loco_initial_thresholds(np.stack(written))
    assert len(set(thresholds)) == len(thresholds)
    return written, expected


def metric_changes(samples: Path, scores: Path, written, expected, tmp_path: Path, defects=None) -> dict:
    """Our metrics (evaluate_category at the images' own resolution, square images) on the written maps
    and on the same maps before tie-breaking: {metric: (before, after)}."""
    test = split_rows(read_samples(samples), "test")
    size = written[0].shape[0]
    results = []
    for name, stack in (("expected", expected), ("written", written)):
        write_maps(tmp_path / f"{name}.npz", test["path"].tolist(), np.stack(stack))
        results.append(evaluate_category(samples, scores, tmp_path / f"{name}.npz", method="m", size=size,
                                         defects_config=defects).iloc[0])
    columns = [c for c in results[0].index if c.startswith(("pixel_auroc", "aupro", "auc_spro"))]
    return {c: (float(results[0][c]), float(results[1][c])) for c in columns}


# --- unit tests ---------------------------------------------------------------------------------------


def test_full_size_maps_fill_the_frame_and_repeat_its_edges():
    maps = torch.arange(32, dtype=torch.float32).reshape(2, 4, 4)
    placed = full_size_maps(maps, (0.25, 0.5, 0.5, 0.25), (8, 16))  # box rows 2..6, columns 8..12
    assert placed.shape == (2, 8, 16)
    torch.testing.assert_close(placed[:, 2:6, 8:12], maps)
    torch.testing.assert_close(placed[:, :2, 8:12], maps[:, :1].expand(2, 2, 4))
    torch.testing.assert_close(placed[:, 2:6, :8], maps[:, :, :1].expand(2, 4, 8))
    assert bool((placed[:, 0, 0] == maps[:, 0, 0]).all()) and bool((placed[:, -1, -1] == maps[:, -1, -1]).all())
    torch.testing.assert_close(full_size_maps(maps, (0, 0, 1, 1), (6, 10)), resize(maps, (6, 10)))
    with pytest.raises(DataError, match="covers no pixel"):
        full_size_maps(maps, (0.5, 0.5, 0.01, 0.01), (8, 8))


def test_two_images_with_one_file_name_are_refused():
    test = pd.DataFrame({"defect_type": ["good", "good"], "path": ["/a/good/000.png", "/b/good/000.jpg"]})
    with pytest.raises(DataError, match="/a/good/000.png and /b/good/000.jpg would both be written"):
        official_map_names(test)


@pytest.fixture
def small_category(tmp_path):
    """An MVTec-AD-layout category of 30x40 (H x W) images: not square, so height and width cannot swap."""
    base = tmp_path / "data" / "widget"
    rng = np.random.default_rng(0)
    for folder, n in (("train/good", 4), ("test/good", 2), ("test/dent", 2)):
        (base / folder).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(base / folder / f"{i:03d}.png")
    (base / "ground_truth" / "dent").mkdir(parents=True)
    for i in range(2):
        mask = np.zeros((30, 40), np.uint8)
        mask[5:12, 10 + i:20] = 255
        Image.fromarray(mask).save(base / "ground_truth" / "dent" / f"{i:03d}_mask.png")
    write_samples(read_samples_from_layout("mvtec_ad", tmp_path / "data", "widget"), tmp_path / "samples.csv")
    test = split_rows(read_samples(tmp_path / "samples.csv"), "test")
    maps = pad_constant(torch.from_numpy(rng.normal(0, 1, (4, 6, 6)).astype(np.float32)), 1).numpy()
    write_maps(tmp_path / "maps.npz", test["path"].tolist(), maps, PNI_FRAME)
    return tmp_path


def test_writes_one_map_per_test_image_at_its_size(small_category):
    out = small_category / "official" / "m" / "widget"
    stats = write_official_maps(small_category / "samples.csv", small_category / "maps.npz", out, batch_size=3)
    written, _ = read_back(out, small_category / "samples.csv", small_category / "maps.npz")
    assert len(written) == 4 and stats.maps == 4 and stats.tied_pixels > 0
    assert not list(out.parent.glob(".*"))  # no temporary folder left behind


def test_missing_maps_and_images_stop_with_one_line(small_category):
    maps, paths, frames = read_maps(small_category / "maps.npz")
    write_maps(small_category / "short.npz", paths[:-1], maps[:-1], frames[:-1])
    with pytest.raises(DataError, match=f"no anomaly map for test image {paths[-1]}"):
        write_official_maps(small_category / "samples.csv", small_category / "short.npz", small_category / "o")
    os.remove(paths[0])
    with pytest.raises(DataError, match=paths[0]):
        write_official_maps(small_category / "samples.csv", small_category / "maps.npz", small_category / "o")
    assert not (small_category / "o").exists()


# --- the real MVTec AD mini subset --------------------------------------------------------------------


# How much tie-breaking may move our metrics on the written maps. Maps without long runs of one value do
# not change at all. A long run holding defect pixels changes the pixel AUROC by how unevenly its defect
# pixels land among the run's new values (ties.py): 9.0e-5 measured for the zero border below (41% of all
# pixels, 6.5% of the defect pixels); the AU-PRO is integrated only up to FPR 0.3, below that plateau.
CHANGE_BOUNDS = {"maps": {"pixel_auroc": 1e-6, "aupro": 1e-6}, "zero_border": {"pixel_auroc": 2e-4, "aupro": 1e-6}}


@pytest.mark.slow
def test_real_subset_patchcore_maps_and_a_zero_border(mvtec_mini, tmp_path, summary_table):
    """PatchCore (random-init ResNet-18) maps of the real screw images (1024x1024), as they are, and with the
    EfficientAD reference code's zero border (the maps that stop the LOCO script) inside a PNI-like
    centre-crop frame: layout, values and what tie-breaking changes in our metrics."""
    from anomalyflow.families import score_folder
    from anomalyflow.patchcore import fit_patchcore

    samples = tmp_path / "samples.csv"
    write_samples(read_samples_from_layout("mvtec_ad", mvtec_mini, "screw", dataset="mini"), samples)
    params = {"backbone": "resnet18", "image_size": 64, "embed_dim": 64, "coreset_fraction": 0.25,
              "batch_size": 8, "weights": "none", "blur_sigma": 1.0}
    fit_patchcore(samples, tmp_path / "model", params, device="cpu")
    score_folder(tmp_path / "model", samples, tmp_path / "scores.csv", tmp_path / "maps.npz", device="cpu")
    maps, paths, _ = read_maps(tmp_path / "maps.npz")
    # EfficientAD-N style: 56x56 normalised around 0, then 4 zeros per side.
    normalised = resize(torch.from_numpy(maps), 56) - float(np.median(maps))
    write_maps(tmp_path / "zero_border.npz", paths, pad_constant(normalised, 4).numpy(), PNI_FRAME)

    lines = []
    for variant, bounds in CHANGE_BOUNDS.items():
        out = tmp_path / "official" / variant / "screw"
        stats = write_official_maps(samples, tmp_path / f"{variant}.npz", out)
        written, expected = read_back(out, samples, tmp_path / f"{variant}.npz")
        assert written[0].shape == (1024, 1024) and len(written) == 23
        if variant == "zero_border":
            assert len(set(loco_initial_thresholds(np.stack(expected)))) < 50  # would stop the LOCO script
            assert stats.tied_pixels > 0.3 * stats.pixels and stats.largest_shared == 1 and stats.loco_safe()
        head = f"mini screw {variant:11s} long runs {stats.tied_pixels / stats.pixels:6.2%}  "
        if all(np.array_equal(new, old) for new, old in zip(written, expected, strict=True)):
            lines.append(head + "written = resized maps.npz exactly: every metric unchanged")
            continue
        changes = _metrics_at_full_size(samples, written, expected)
        for metric, (before, after) in changes.items():
            assert abs(after - before) < bounds[metric], (variant, metric, before, after)
        lines.append(head + "  ".join(f"{m} {b:.6f} -> {a:.6f} ({a - b:+.1e})" for m, (b, a) in changes.items()))
    summary_table("official maps: our metrics before -> after tie-breaking (written TIFFs, full size)", lines)


def _metrics_at_full_size(samples: Path, written, expected) -> dict:
    test = split_rows(read_samples(samples), "test")
    masks = np.stack([load_mask(p) if p else np.zeros(written[0].shape, bool) for p in test["mask_paths"]])
    return {name: (metric(masks, np.stack(expected)), metric(masks, np.stack(written)))
            for name, metric in (("pixel_auroc", pixel_auroc), ("aupro", aupro))}


# --- the demo workflow --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_with_maps(demo_run, tmp_path_factory):
    return clone_run(demo_run, tmp_path_factory.mktemp("official") / "run")


@pytest.mark.slow
def test_switch_adds_only_the_map_jobs_to_all_csv(demo_with_maps):
    jobs, outputs = dry_run(demo_with_maps, "--config", "official_maps=True")
    # Switching the maps on reruns no evaluation; every method (PUAD too: its fused map) writes its own folder.
    assert sorted(set(jobs)) == ["all", "official_maps_write", "results_table"]
    config = yaml.safe_load((demo_with_maps / "config" / "config.yaml").read_text())["datasets"]["demo"]
    assert jobs.count("official_maps_write") == len(config["categories"]) * len(config["methods"])
    assert {o for o in outputs if "official_maps" in o} == {
        f"results/demo/official_maps/{m}/{c}" for m in config["methods"] for c in config["categories"]}
    assert not dry_run(demo_with_maps)[0]  # off (the default): nothing to do


# The demo's PNI maps have long runs where their defects are (a replicated border, constant corners): the
# AUC-sPRO of board/pni_resnet18 moves by 5.9e-5 at FPR 0.01 and 1.2e-5 at 0.05 (measured), its other metrics
# and every other method's by < 3e-6.
DEMO_CHANGE_BOUND = 1e-4


@pytest.mark.slow
def test_demo_folders_from_the_workflow_and_their_effect_on_our_metrics(demo_with_maps, tmp_path, summary_table,
                                                                        monkeypatch):
    run = demo_with_maps
    monkeypatch.chdir(run)  # the sample tables hold paths relative to the run
    snakemake(run, "results/demo/official_maps/puad_s/tray", job_modules=tmp_path / "modules")
    assert "maps written" in (run / "logs/demo/tray/puad_s/official_maps_write.log").read_text()
    # The job imported only library files its rule lists as code inputs (tests/test_job_modules.py).
    records = job_module_records(tmp_path / "modules")
    assert [r["rule"] for r in records] == ["official_maps_write"]
    assert all(set(r["modules"]) <= set(r["code"]) for r in records), records

    config = yaml.safe_load((run / "config" / "config.yaml").read_text())["datasets"]["demo"]
    lines, changes_all = [], []
    for category in config["categories"]:
        samples = run / "results/demo" / category / "samples.csv"
        defects = run / "resources/data/demo" / category / "defects_config.json"
        for method in config["methods"]:
            maps_path = run / "results/demo" / category / method / "maps.npz"
            out = run / "results/demo/official_maps" / method / category
            if not out.exists():
                write_official_maps(samples, maps_path, out)
            written, expected = read_back(out, samples, maps_path)
            assert written[0].shape == (128, 128)
            if all(np.array_equal(new, old) for new, old in zip(written, expected, strict=True)):
                lines.append(f"demo {category:5s} {method:13s} written = resized maps.npz exactly")
                continue
            changes = metric_changes(samples, run / "results/demo" / category / method / "scores.csv", written,
                                     expected, tmp_path, defects)
            changes_all += [abs(a - b) for b, a in changes.values()]
            lines.append(f"demo {category:5s} {method:13s} " + "  ".join(
                f"{m} {a - b:+.1e}" for m, (b, a) in changes.items() if m in ("pixel_auroc", "aupro", "auc_spro_0.01",
                                                                             "auc_spro_0.3", "auc_spro_1")))
    summary_table("official maps (demo): our metrics after - before tie-breaking (written TIFFs, 128x128)", lines)
    assert changes_all and max(changes_all) < DEMO_CHANGE_BOUND, max(changes_all)
