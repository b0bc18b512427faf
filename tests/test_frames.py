"""The geometry between an image, its mask and a method's map, for every family and any image size.

Every family's real model class gives the transform and the map frame; its ``predict`` is replaced by a
perfect one: the test images *are* their masks (a white defect on black), so the transformed image's
red channel is the mask in the model's own geometry. Scored, evaluated, fused and drawn by the real
code, such maps must give pixel AUROC and AUPRO 1.0 on non-square and mixed-size test images, and
the overlays must put the heat on the defect.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from anomalyflow import families, scoring
from anomalyflow.data.table import make_table, write_samples
from anomalyflow.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from anomalyflow.efficientad.model import EfficientAD
from anomalyflow.ensemble import Ensemble, ensemble_category
from anomalyflow.errors import ConfigError
from anomalyflow.evaluate import evaluate_category
from anomalyflow.frames import FULL_FRAME, crop_to_frame, crop_to_frames, map_frames, pixel_box
from anomalyflow.maps import resize
from anomalyflow.nets.autoencoder import Autoencoder
from anomalyflow.nets.pdn import build_pdn
from anomalyflow.outputs import read_maps, read_scores
from anomalyflow.patchcore import PatchCore
from anomalyflow.pni.model import PNI
from anomalyflow.pni.refined import RefinedPNI
from anomalyflow.predict import overlay, predict_images
from anomalyflow.puad import PUAD, PooledGaussian

# (width, height, defect box (top, left, bottom, right)); every defect lies inside PNI's centre crop
# (resize 128, crop 112) of its image, off the centre, on a 16-px grid.
TEST_IMAGES = [
    (128, 256, (80, 16, 112, 48)),     # the issue's case: portrait, PNI crop rows 72..184
    (256, 128, (16, 144, 48, 176)),    # landscape, crop columns 72..184
    (128, 128, (16, 80, 48, 112)),     # square, crop 8..120
    (256, 256, (32, 32, 96, 64)),      # square, twice the size: resized, crop 16..240
    (192, 128, (64, 48, 96, 80)),      # 3:2, crop columns 40..152
]
GOOD_SIZES = [(128, 256), (256, 128), (128, 128), (192, 128)]
PNI_PARAMS = {"backbone": "resnet18", "resize": 128, "crop": 112, "embed_dim": 32, "batch_size": 4}


# --- units ---------------------------------------------------------------------------------------


def test_pixel_box_and_the_pni_frame_of_the_issue():
    pni = PNI(PNI_PARAMS)
    assert pixel_box(pni.map_frame(128, 128), 128, 128) == (8, 8, 120, 120)
    assert pixel_box(pni.map_frame(256, 128), 256, 128) == (72, 8, 184, 120)  # 128 wide, 256 high
    assert pixel_box(pni.map_frame(256, 256), 256, 256) == (16, 16, 240, 240)
    assert pixel_box(FULL_FRAME, 37, 91) == (0, 0, 37, 91)


def test_overlay_puts_the_maps_corner_on_the_crops_corner():
    image = np.zeros((128, 128, 3), np.uint8)
    anomaly_map = np.zeros((112, 112), np.float32)
    anomaly_map[:4, :4] = 1.0
    drawn = overlay(image, anomaly_map, 0.0, 1.0, frame=PNI(PNI_PARAMS).map_frame(128, 128)).astype(int)
    assert drawn[9, 9, 0] > drawn[9, 9, 2]  # the map's (0, 0) corner is hot, at pixel (8, 8) and around it
    assert drawn[60, 60, 2] > drawn[60, 60, 0]  # cold inside the crop
    assert (drawn[:8] == 0).all() and (drawn[:, :8] == 0).all() and (drawn[120:] == 0).all()  # image as it was


def test_crop_to_frames_crops_each_image_with_its_own_frame():
    maps = torch.rand(5, 16, 16)
    frames = np.tile(FULL_FRAME, (5, 1))
    targets = np.array([[0.25, 0, 0.5, 1], [0, 0.25, 1, 0.5], [0.25, 0, 0.5, 1], FULL_FRAME, [0, 0, 0.5, 0.5]])
    out = crop_to_frames(maps, frames, targets, (8, 8))
    for i in range(5):
        torch.testing.assert_close(out[i:i + 1], resize(crop_to_frame(maps[i:i + 1], frames[i], targets[i]), (8, 8)))
    with pytest.raises(ConfigError, match="smallest crop first"):
        crop_to_frames(maps, targets, frames, (8, 8))


def test_maps_files_with_one_frame_for_all_maps_still_read(tmp_path):
    np.savez(tmp_path / "old.npz", maps=np.zeros((3, 4, 4), np.float32), paths=np.array(["a", "b", "c"]),
             frame=np.array([0.1, 0.2, 0.5, 0.6]))
    _, _, frames = read_maps(tmp_path / "old.npz")
    np.testing.assert_array_equal(frames, np.tile([0.1, 0.2, 0.5, 0.6], (3, 1)))


# --- every family, end to end ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def category(tmp_path_factory):
    """7 square training images; validation gradients; mixed-size test images that are their own masks."""
    root = tmp_path_factory.mktemp("geometry")
    rows = []

    def add(name, image, split, box=None):
        Image.fromarray(image).save(root / f"{name}.png")
        masks = []
        if box is not None:
            Image.fromarray((image[..., 0] > 0).astype(np.uint8) * 255).save(root / f"{name}_mask.png")
            masks = [str(root / f"{name}_mask.png")]
        rows.append(dict(dataset="g", category="c", path=str(root / f"{name}.png"), split=split,
                         label=int(box is not None), defect_type="good" if box is None else "square",
                         anomaly_kind="none" if box is None else "structural", mask_paths=masks))

    for i in range(7):
        add(f"train{i}", np.full((128, 128, 3), 60, np.uint8), "train")
    for i in range(2):  # non-constant normal maps, so statistics on them are defined
        gradient = np.linspace(0, 80 + 10 * i, 128).astype(np.uint8)
        add(f"validation{i}", np.repeat(np.tile(gradient, (128, 1))[..., None], 3, axis=2), "validation")
    for i, (width, height) in enumerate(GOOD_SIZES):
        add(f"good{i}", np.zeros((height, width, 3), np.uint8), "test")
    for i, (width, height, (y0, x0, y1, x1)) in enumerate(TEST_IMAGES):
        image = np.zeros((height, width, 3), np.uint8)
        image[y0:y1, x0:x1] = 255
        add(f"defect{i}", image, "test", (y0, x0, y1, x1))
    write_samples(make_table(rows), root / "samples.csv")
    return root


def _perfect(model):
    """Replace ``model.predict`` by the red channel of its input (the mask, here), scores its maximum."""

    def predict(images):
        maps = images[:, 0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]
        return maps.reshape(len(maps), -1).amax(1).double().numpy(), maps

    model.predict = predict
    return model


class ZeroResidual(torch.nn.Module):
    """An untrained refiner (its last convolution starts at zero), without DenseNet-161's CPU time:
    the refinement's resizing to ``refine_size`` and back and its blend still apply."""

    def forward(self, images: torch.Tensor, amap: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(amap)


def _efficientad():
    return EfficientAD(build_pdn("s", 8), build_pdn("s", 16), Autoencoder(8, 64), torch.zeros(8), torch.ones(8),
                       quantiles=None, params={"image_size": 64, "out_channels": 8}, device=torch.device("cpu"))


@pytest.fixture(scope="module")
def models():
    """Each family's real model class (geometry, transforms, fusion, refinement) with a perfect predict."""
    torch.manual_seed(0)
    refined = RefinedPNI(_perfect(PNI(PNI_PARAMS)), ZeroResidual(), {"refine_size": 64}, (0.0, 1.0))
    return {"patchcore": _perfect(PatchCore({"backbone": "resnet18", "image_size": 128, "embed_dim": 32})),
            "efficientad": _perfect(_efficientad()), "puad": _perfect(PUAD(_efficientad(), PooledGaussian())),
            "pni": _perfect(PNI(PNI_PARAMS)), "pni_refined": refined}


def _score(model, folder, category, monkeypatch, family):
    """The workflow's scoring and evaluation of ``model``, written under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.json").write_text(json.dumps({"family": family}))
    # anomalyflow predict (the overlays below) loads the folder's model: this one.
    monkeypatch.setattr(families, "load_model", lambda *args, **kwargs: model)
    table = scoring.score_category(model, category / "samples.csv", folder / "scores.csv", folder / "maps.npz")
    size = read_maps(folder / "maps.npz")[0].shape[-1]  # at the maps' own size: no resampling blur
    metrics = evaluate_category(category / "samples.csv", folder / "scores.csv", folder / "maps.npz", method=family,
                                size=size).iloc[0]
    return table, metrics


def _assert_overlays_on_the_defects(model, folder, category, tmp_path):
    test = [(category / f"defect{i}.png", box) for i, (_, _, box) in enumerate(TEST_IMAGES)]
    table = predict_images(folder, category, tmp_path / "predict", threshold="none", device="cpu")
    rows = table.set_index("path")
    for path, _ in test:
        image = np.asarray(Image.open(path).convert("RGB"))
        drawn = np.asarray(Image.open(tmp_path / "predict" / rows.loc[str(path), "overlay"])).astype(int)
        y0, x0, y1, x1 = pixel_box(map_frames(model, [path])[0], *image.shape[:2])
        assert tuple(rows.loc[str(path), ["map_top", "map_left", "map_bottom", "map_right"]]) == (y0, x0, y1, x1)
        outside = np.ones(image.shape[:2], bool)
        outside[y0:y1, x0:x1] = False
        assert (drawn[outside] == image[outside]).all(), f"{path.name}: the overlay changed pixels outside its map"
        defect = image[..., 0] > 0
        hot = drawn[..., 0] > drawn[..., 2]
        inside = ~outside
        # Away from the defect's edge (bilinear resizing blurs a few pixels), hot exactly on the defect.
        core = ndimage.binary_erosion(defect, iterations=4) & inside
        far = ~ndimage.binary_dilation(defect, iterations=4) & inside
        assert hot[core].all() and not hot[far].any(), f"{path.name}: the heat is not on the defect"


FAMILIES = ["patchcore", "efficientad", "puad", "pni", "pni_refined"]


@pytest.mark.parametrize("family", FAMILIES)
def test_perfect_maps_score_one_and_overlays_sit_on_the_defects(family, models, category, tmp_path, monkeypatch):
    model = models[family]
    _, metrics = _score(model, tmp_path / family, category, monkeypatch, family)
    assert metrics["pixel_auroc"] == pytest.approx(1.0, abs=1e-12)
    assert metrics["aupro"] == pytest.approx(1.0, abs=1e-9)
    _assert_overlays_on_the_defects(model, tmp_path / family, category, tmp_path)


def test_ensembles_of_different_geometries_fuse_per_image_frames(models, category, tmp_path, monkeypatch):
    """PNI's crop and PatchCore's full frame: the workflow's fusion of stored maps, and new images
    scored by the Ensemble model (each member through its own transform), both perfect and equal."""
    members = []
    for name in ("pni", "patchcore"):
        _score(models[name], tmp_path / name, category, monkeypatch, name)
        members.append((name, str(tmp_path / name / "scores.csv"), str(tmp_path / name / "maps.npz")))
    fused = tmp_path / "fused"
    fused.mkdir()
    ensemble_category(category / "samples.csv", members, fused / "scores.csv", fused / "maps.npz",
                      fused / "model.json", {"image_score": "top_mean"})
    size = read_maps(fused / "maps.npz")[0].shape[-1]
    workflow = evaluate_category(category / "samples.csv", fused / "scores.csv", fused / "maps.npz",
                                 method="ensemble", size=size).iloc[0]
    assert workflow["pixel_auroc"] == pytest.approx(1.0, abs=1e-12)
    assert workflow["aupro"] == pytest.approx(1.0, abs=1e-9)

    meta = json.loads((fused / "model.json").read_text())
    ensemble = Ensemble([models["pni"], models["patchcore"]], meta, torch.device("cpu"))
    table, metrics = _score(ensemble, tmp_path / "ensemble", category, monkeypatch, "ensemble")
    assert metrics["pixel_auroc"] == pytest.approx(1.0, abs=1e-12)
    assert metrics["aupro"] == pytest.approx(1.0, abs=1e-9)
    stored = read_scores(fused / "scores.csv").set_index("path").loc[table["path"], "score"]
    np.testing.assert_allclose(table["score"], stored, rtol=1e-5)
    np.testing.assert_allclose(read_maps(tmp_path / "ensemble" / "maps.npz")[2], read_maps(fused / "maps.npz")[2])
    _assert_overlays_on_the_defects(ensemble, tmp_path / "ensemble", category, tmp_path)


def test_every_maps_file_records_each_images_own_frame(models, category, tmp_path, monkeypatch):
    """A PNI maps.npz: one frame per image, from the image's own size (not the training images')."""
    _score(models["pni"], tmp_path / "pni", category, monkeypatch, "pni")
    maps, paths, frames = read_maps(tmp_path / "pni" / "maps.npz")
    by_path = dict(zip(paths, frames, strict=True))
    portrait = by_path[str(category / "defect0.png")]
    np.testing.assert_allclose(portrait, [72 / 256, 8 / 128, 112 / 256, 112 / 128])
    np.testing.assert_allclose(by_path[str(category / "defect2.png")], [8 / 128, 8 / 128, 112 / 128, 112 / 128])
    assert maps.shape[1:] == (112, 112)
    assert len(np.unique(frames, axis=0)) == 4  # 128x128 and 256x256 share one


def test_the_reports_map_grid_draws_each_map_over_its_own_images_crop(models, category, tmp_path, monkeypatch):
    from anomalyflow.viz import map_grid_figure

    _score(models["pni"], tmp_path / "pni", category, monkeypatch, "pni")
    figure = map_grid_figure(category / "samples.csv", {"pni": tmp_path / "pni" / "maps.npz"}, n_images=9)
    shown = {axes.get_ylabel().split("\n")[-1]: index for index, axes in enumerate(figure.axes) if axes.get_ylabel()}
    assert len(shown) == len(TEST_IMAGES) + len(GOOD_SIZES)
    _, paths, frames = read_maps(tmp_path / "pni" / "maps.npz")
    for path, frame in zip(paths, frames, strict=True):
        if Path(path).stem not in shown:
            continue  # a validation image
        width, height = Image.open(path).size
        y0, x0, y1, x1 = pixel_box(frame, height, width)
        background = figure.axes[shown[Path(path).stem] + 2].images[0].get_array()
        assert background.shape[:2] == (y1 - y0, x1 - x0), path
