"""Teacher distillation (A3): the loss falls, cached and streamed targets agree, runs resume exactly."""

import pytest
import torch
from efficientad_helpers import write_images

import anomalyflow.efficientad.checkpoint as checkpoint_module
from anomalyflow.efficientad.checkpoint import checkpoint_path
from anomalyflow.efficientad.distill import build_target_cache, distill_teacher
from anomalyflow.efficientad.imagenet_stats import compute_imagenet_stats, load_imagenet_stats
from anomalyflow.efficientad.official import load_teacher_file
from anomalyflow.efficientad.target import TeacherTarget
from anomalyflow.errors import ConfigError
from anomalyflow.nets.pdn import pdn_small

SIDE = 64  # PDN input; Ψ sees 128
# Every setting, as a teacher's config entry gives them (distill_teacher and compute_imagenet_stats have no
# defaults of their own: anomalyflow.params.teacher_settings fills them for fit_teacher and teacher_stats).
TARGET = {"variant": "p", "backbone": "resnet18", "weights": "none", "image_size": SIDE}
DISTILL = {**TARGET, "iterations": 4, "batch_size": 2, "lr": 1e-4, "weight_decay": 1e-5, "seed": 0, "cache_limit": 64,
           "checkpoint_every": 1000}


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet")
    write_images(root / "n01", 4, 11, side=80)
    stats = root.parent / f"{root.name}_stats.pt"
    compute_imagenet_stats(root, stats, n_images=10000, seed=42, batch_size=4, device="cpu", **TARGET)
    return root, stats


def _distil(imagenet, out, **kwargs):
    root, stats = imagenet
    distill_teacher(root, stats, out, size="s", device="cpu", **{**DISTILL, **kwargs})
    return load_teacher_file(out, "s")


def _loss(state, inputs, targets) -> float:
    pdn = pdn_small(padding=True)
    pdn.load_state_dict(state)
    with torch.no_grad():
        return float((pdn(inputs) - targets).square().mean())


def test_distillation_loss_decreases_on_cached_images(imagenet, tmp_path):
    root, stats_path = imagenet
    stats = load_imagenet_stats(stats_path)
    inputs, targets = build_target_cache(sorted(str(p) for p in root.rglob("*.png")),
                                         TeacherTarget("p", "resnet18", "none"), stats["mean"], stats["std"],
                                         image_size=SIDE, grayscale=False, batch_size=4, device=torch.device("cpu"))
    assert inputs.shape == (4, 1, 3, SIDE, SIDE) and targets.shape == (4, 1, 384, SIDE // 4, SIDE // 4)
    start = _distil(imagenet, tmp_path / "t0.pt", iterations=0)
    trained = _distil(imagenet, tmp_path / "t30.pt", iterations=30, batch_size=2)
    before, after = _loss(start, inputs[:, 0], targets[:, 0]), _loss(trained, inputs[:, 0], targets[:, 0])
    assert after < 0.9 * before, (before, after)
    assert list(trained) == [f"conv{i}.{k}" for i in range(1, 5) for k in ("weight", "bias")]  # P's teacher.pt


def test_cached_and_streamed_targets_train_the_same_network(imagenet, tmp_path):
    cached = _distil(imagenet, tmp_path / "cached.pt", iterations=3, grayscale=0.5)
    streamed = _distil(imagenet, tmp_path / "streamed.pt", iterations=3, grayscale=0.5, cache_limit=0)
    for key in cached:
        torch.testing.assert_close(cached[key], streamed[key], rtol=1e-4, atol=1e-5)


class KilledError(Exception):
    pass


def test_interrupted_distillation_resumes_to_the_same_weights(imagenet, tmp_path, monkeypatch):
    reference = _distil(imagenet, tmp_path / "reference.pt", iterations=5, checkpoint_every=2)
    out = tmp_path / "resumed.pt"
    real_save = checkpoint_module.save_checkpoint

    def save_then_die(path, step, *args):
        real_save(path, step, *args)
        if step == 4:
            raise KilledError

    monkeypatch.setattr(checkpoint_module, "save_checkpoint", save_then_die)
    with pytest.raises(KilledError):
        _distil(imagenet, out, iterations=5, checkpoint_every=2)
    assert checkpoint_path(out).is_file() and not out.exists()
    monkeypatch.setattr(checkpoint_module, "save_checkpoint", real_save)
    resumed = _distil(imagenet, out, iterations=5, checkpoint_every=2)
    assert not checkpoint_path(out).exists()
    for key in reference:
        assert torch.equal(reference[key], resumed[key]), key


def test_statistics_of_another_target_are_refused(imagenet, tmp_path):
    root, stats = imagenet
    with pytest.raises(ConfigError, match="variant"):
        distill_teacher(root, stats, tmp_path / "t.pt", size="s", device="cpu", **{**DISTILL, "variant": "n"})
    with pytest.raises(ConfigError, match="image_size"):
        distill_teacher(root, stats, tmp_path / "t.pt", size="s", device="cpu", **{**DISTILL, "image_size": 128})
