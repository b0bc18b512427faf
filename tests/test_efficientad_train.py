"""Student/autoencoder training (A5): the pieces against direct formulas, then short CPU runs."""

import json

import pytest
import torch
import torchvision.transforms.functional as TF
from efficientad_helpers import make_category, write_images

import anomalyflow.efficientad.checkpoint as checkpoint_module
import anomalyflow.efficientad.train as train_module
from anomalyflow.data.loader import image_transform, load_images
from anomalyflow.data.table import fit_rows, read_samples
from anomalyflow.efficientad.checkpoint import checkpoint_path
from anomalyflow.efficientad.train import (
    color_augment,
    efficientad_losses,
    hard_loss,
    normalize_images,
    teacher_statistics,
    train_efficientad,
    uint8_transform,
)
from anomalyflow.errors import LeakageError, NumericalError
from anomalyflow.nets.autoencoder import Autoencoder
from anomalyflow.nets.pdn import pdn_small

SIDE = 64


@pytest.fixture(scope="module")
def category(tmp_path_factory):
    root = tmp_path_factory.mktemp("category")
    table = make_category(root, n_train=4, n_val=2, side=SIDE)
    torch.manual_seed(5)
    teacher = root / "teacher.pt"
    torch.save(pdn_small(padding=True).state_dict(), teacher)  # a distilled teacher's format (padding-free keys)
    penalty = root / "imagenet"
    write_images(penalty / "n01", 3, 21, side=96)
    return table, teacher, penalty


def test_color_augment_matches_torchvision_per_image():
    torch.manual_seed(0)
    images = torch.rand(3, 3, 16, 16)
    kinds, factors = torch.tensor([0, 1, 2]), torch.tensor([0.8, 1.2, 0.9])
    out = color_augment(images, kinds, factors)
    expected = torch.stack([TF.adjust_brightness(images[0], 0.8), TF.adjust_contrast(images[1], 1.2),
                            TF.adjust_saturation(images[2], 0.9)])
    torch.testing.assert_close(out, expected)


def test_hard_loss_uses_the_quantile_threshold_per_image():
    torch.manual_seed(0)
    d = torch.rand(3, 384, 8, 8)
    for q in (0.999, 0.9, 0.5):
        singles = []
        for image in d:
            threshold = torch.quantile(image.flatten(), q)  # N's and P's formula, one image at a time
            singles.append(image[image >= threshold].mean())
        torch.testing.assert_close(hard_loss(d, q), torch.stack(singles).mean())
        torch.testing.assert_close(hard_loss(d[:1], q), singles[0])


def test_teacher_statistics_p_and_n(category):
    table, _, _ = category
    paths = fit_rows(read_samples(table), "train", purpose="test")["path"].tolist()
    teacher = pdn_small().eval()
    images = load_images(paths, uint8_transform(SIDE))
    outputs = teacher(normalize_images(images.float() / 255)).detach().double()  # [N, 384, h, w]
    mean_p, std_p = teacher_statistics(teacher, images, mode="p", batch_size=3)
    torch.testing.assert_close(mean_p, outputs.mean(dim=(0, 2, 3)).float())
    torch.testing.assert_close(std_p, outputs.std(dim=(0, 2, 3)).float())  # unbiased over N·H·W (P)
    mean_n, std_n = teacher_statistics(teacher, images, mode="n", batch_size=3)
    per_image_mean = outputs.mean(dim=(2, 3)).mean(dim=0)
    per_image_var = (outputs - per_image_mean.view(1, -1, 1, 1)).square().mean(dim=(2, 3)).mean(dim=0)
    torch.testing.assert_close(mean_n, per_image_mean.float())
    torch.testing.assert_close(std_n, per_image_var.sqrt().float())
    # uint8 images are exactly the float pipeline's resize
    float_images = load_images(paths, image_transform(SIDE, normalize=False))
    torch.testing.assert_close(images.float() / 255, float_images)


def test_batch_loss_is_the_mean_of_per_image_losses():
    torch.manual_seed(1)
    teacher, student, autoencoder = pdn_small().eval(), pdn_small(768), Autoencoder(384, SIDE).eval()
    mean, std = torch.randn(384) * 0.1, torch.rand(384) + 0.5
    x, x_aug, penalty = torch.randn(4, 3, SIDE, SIDE), torch.randn(4, 3, SIDE, SIDE), torch.randn(4, 3, SIDE, SIDE)
    with torch.no_grad():
        batch = efficientad_losses(teacher, student, autoencoder, mean, std, x, x_aug, penalty)
        singles = [efficientad_losses(teacher, student, autoencoder, mean, std, x[i:i + 1], x_aug[i:i + 1],
                                      penalty[i:i + 1]) for i in range(4)]
    for key in ("hard", "penalty", "ae", "stae", "total"):
        torch.testing.assert_close(batch[key], torch.stack([s[key] for s in singles]).mean(), rtol=1e-4, atol=1e-6)


def _states(folder):
    return {name: torch.load(folder / f"{name}.pt", weights_only=True) for name in ("student", "autoencoder")}


@pytest.mark.parametrize(("batch_size", "with_penalty"), [(1, False), (4, True)])
def test_training_runs_and_writes_the_model_folder(category, tmp_path, batch_size, with_penalty):
    table, teacher, penalty = category
    out = tmp_path / "model"
    train_efficientad(table, teacher, out, {"iterations": 3, "batch_size": batch_size, "image_size": SIDE},
                      device="cpu", penalty_paths=penalty if with_penalty else None)
    assert {p.name for p in out.iterdir()} == {"student.pt", "autoencoder.pt", "teacher.pt", "teacher_stats.pt",
                                               "model.json"}
    meta = json.loads((out / "model.json").read_text())
    assert meta["family"] == "efficientad" and meta["size"] == "s" and meta["image_size"] == SIDE
    assert meta["params"]["batch_size"] == batch_size and meta["params"]["penalty"] is with_penalty
    stats = torch.load(out / "teacher_stats.pt", weights_only=True)
    assert stats["mean"].shape == stats["std"].shape == (384,)
    assert set(_states(out)["student"]) == set(pdn_small(768).state_dict())
    assert not checkpoint_path(out).exists()


def _training_loss(folder, table) -> float:
    """The deterministic A5 loss (no augmentation, no dropout) of a model folder on its training images."""
    paths = fit_rows(read_samples(table), "train", purpose="test")["path"].tolist()
    x = load_images(paths, image_transform(SIDE))
    teacher, student, autoencoder = pdn_small(), pdn_small(768), Autoencoder(384, SIDE)
    for module, name in ((teacher, "teacher"), (student, "student"), (autoencoder, "autoencoder")):
        module.load_state_dict(torch.load(folder / f"{name}.pt", weights_only=True))
        module.eval()
    stats = torch.load(folder / "teacher_stats.pt", weights_only=True)
    with torch.no_grad():
        return float(efficientad_losses(teacher, student, autoencoder, stats["mean"], stats["std"], x, x)["total"])


@pytest.mark.slow
def test_loss_falls_over_fifty_steps(category, tmp_path):
    table, teacher, _ = category
    train_efficientad(table, teacher, tmp_path / "m0", {"iterations": 0, "image_size": SIDE}, device="cpu")
    train_efficientad(table, teacher, tmp_path / "m50", {"iterations": 50, "image_size": SIDE}, device="cpu")
    before, after = _training_loss(tmp_path / "m0", table), _training_loss(tmp_path / "m50", table)
    assert after < 0.8 * before, (before, after)


class KilledError(Exception):
    pass


def test_interrupted_training_resumes_to_the_same_weights(category, tmp_path, monkeypatch):
    table, teacher, penalty = category
    params = {"iterations": 5, "batch_size": 2, "image_size": SIDE}
    settings = {"checkpoint_every": 2, "device": "cpu", "penalty_paths": penalty}
    train_efficientad(table, teacher, tmp_path / "reference", params, **settings)
    real_save = checkpoint_module.save_checkpoint

    def save_then_die(path, step, *args):
        real_save(path, step, *args)
        if step == 4:
            raise KilledError

    monkeypatch.setattr(checkpoint_module, "save_checkpoint", save_then_die)
    out = tmp_path / "resumed"
    with pytest.raises(KilledError):
        train_efficientad(table, teacher, out, params, **settings)
    assert checkpoint_path(out).is_file() and not (out / "model.json").exists()
    monkeypatch.setattr(checkpoint_module, "save_checkpoint", real_save)
    torch.manual_seed(999)  # a different global RNG state in the new process: the checkpoint restores it
    train_efficientad(table, teacher, out, params, **settings)
    reference, resumed = _states(tmp_path / "reference"), _states(out)
    for name in reference:
        for key in reference[name]:
            assert torch.equal(reference[name][key], resumed[name][key]), (name, key)
    assert not checkpoint_path(out).exists()


def test_constant_training_images_stop_with_a_numerical_error(tmp_path, category):
    _, teacher, _ = category
    table = make_category(tmp_path / "flat", n_train=2, n_val=1, side=SIDE, constant=True)
    with pytest.raises(NumericalError, match="constant"):
        train_efficientad(table, teacher, tmp_path / "model", {"iterations": 1, "image_size": SIDE}, device="cpu")


def test_training_uses_only_training_rows(category, tmp_path, monkeypatch):
    table, teacher, _ = category
    seen = {}
    real_fit_rows = train_module.fit_rows

    def spy(frame, splits, *, purpose):
        rows = real_fit_rows(frame, splits, purpose=purpose)
        seen["splits"] = set(rows["split"])
        return rows

    monkeypatch.setattr(train_module, "fit_rows", spy)
    train_efficientad(table, teacher, tmp_path / "m", {"iterations": 0, "image_size": SIDE}, device="cpu")
    assert seen["splits"] == {"train"}
    with pytest.raises(LeakageError):
        real_fit_rows(read_samples(table), "test", purpose="EfficientAD training")
