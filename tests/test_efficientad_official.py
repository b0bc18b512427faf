"""Official weights: PUAD (P) model folders and EfficientAD (N) teachers, in their own file layouts.

The files are built here with random weights and the key names / objects the official codes save
(P: ``torch.save(module.state_dict())``, tensors and a dict of 0-d tensors; N: ``nn.Sequential`` state
dicts and whole pickled modules), then imported and scored.
"""

import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from efficientad_helpers import write_images
from torch import nn

from anomalyflow.data.loader import image_transform, load_images
from anomalyflow.efficientad.model import EfficientAD
from anomalyflow.efficientad.official import import_puad_model, load_teacher_file
from anomalyflow.errors import DataError
from anomalyflow.nets.autoencoder import Autoencoder
from anomalyflow.nets.pdn import pdn_medium, pdn_small

P_TEACHER_S_KEYS = [f"conv{i}.{k}" for i in range(1, 5) for k in ("weight", "bias")]
P_AE_KEYS = ([f"encoder.enconv{i}.{k}" for i in range(1, 7) for k in ("weight", "bias")]
             + [f"decoder.deconv{i}.{k}" for i in range(1, 9) for k in ("weight", "bias")])


def _scaled(module: nn.Module, scale: float = 0.5) -> nn.Module:
    """Random weights with tame magnitudes, so random networks give finite, varied maps."""
    with torch.no_grad():
        for p in module.parameters():
            p.mul_(scale)
    return module


@pytest.fixture(scope="module")
def puad_dir(tmp_path_factory):
    """``<root>/s_size/{teacher/teacher.pt, mvtec_loco_anomaly_detection/breakfast_box/*.pt}`` as P writes them."""
    root = tmp_path_factory.mktemp("puad_models")
    torch.manual_seed(11)
    teacher, student, autoencoder = pdn_small(384), pdn_small(768), Autoencoder(384, 256)
    assert list(teacher.state_dict()) == P_TEACHER_S_KEYS and list(autoencoder.state_dict()) == P_AE_KEYS
    (root / "s_size" / "teacher").mkdir(parents=True)
    torch.save(teacher.state_dict(), root / "s_size" / "teacher" / "teacher.pt")
    category = root / "s_size" / "mvtec_loco_anomaly_detection" / "breakfast_box"
    category.mkdir(parents=True)
    torch.save(_scaled(student).state_dict(), category / "student.pt")
    torch.save(autoencoder.state_dict(), category / "autoencoder.pt")
    torch.save(torch.randn(384) * 0.01, category / "mu.pt")
    torch.save(torch.rand(384) * 0.02 + 0.01, category / "sigma.pt")
    torch.save({"q_a_student": torch.tensor(1.0), "q_b_student": torch.tensor(3.0),
                "q_a_autoencoder": torch.tensor(0.5), "q_b_autoencoder": torch.tensor(2.0)}, category / "quantile.pt")
    return root


def _p_reference_score(root, image: torch.Tensor) -> float:
    """P's ``EfficientADInference.run`` for one image, restated from A6: fp32, resize then normalise."""
    category = root / "s_size" / "mvtec_loco_anomaly_detection" / "breakfast_box"
    teacher, student, autoencoder = pdn_small(384), pdn_small(768), Autoencoder(384, 256)
    teacher.load_state_dict(torch.load(root / "s_size" / "teacher" / "teacher.pt"))
    student.load_state_dict(torch.load(category / "student.pt"))
    autoencoder.load_state_dict(torch.load(category / "autoencoder.pt"))
    mu, sigma, q = (torch.load(category / f"{name}.pt") for name in ("mu", "sigma", "quantile"))
    with torch.no_grad():
        x = image.unsqueeze(0)
        t = (teacher.eval()(x) - mu.view(1, -1, 1, 1)) / sigma.view(1, -1, 1, 1)
        s = student.eval()(x)
        a = autoencoder.eval()(x)
        st = ((t - s[:, :384]) ** 2).mean(dim=1, keepdim=True)
        ae = ((a - s[:, 384:]) ** 2).mean(dim=1, keepdim=True)
        st = F.interpolate(st, size=(256, 256), mode="bilinear").squeeze()
        ae = F.interpolate(ae, size=(256, 256), mode="bilinear").squeeze()
        st = 0.1 * (st - q["q_a_student"]) / (q["q_b_student"] - q["q_a_student"])
        ae = 0.1 * (ae - q["q_a_autoencoder"]) / (q["q_b_autoencoder"] - q["q_a_autoencoder"])
        return float((0.5 * st + 0.5 * ae).max())


def test_imported_puad_model_reproduces_puads_scores(puad_dir, tmp_path):
    out = tmp_path / "efficientad_s"
    meta = import_puad_model(puad_dir, "s", "mvtec_loco_anomaly_detection", "breakfast_box", out)
    assert meta["family"] == "efficientad" and meta["image_size"] == 256
    assert {p.name for p in out.iterdir()} == {"teacher.pt", "student.pt", "autoencoder.pt", "teacher_stats.pt",
                                               "quantiles.json", "model.json"}
    model = EfficientAD.load(out, "cpu")
    assert model.quantiles["q_st_a"] == 1.0 and model.quantiles["q_ae_b"] == 2.0
    images = load_images(write_images(tmp_path / "imgs", 2, 5, side=96), image_transform(256))
    scores, maps = model.predict(images)
    assert maps.shape == (2, 256, 256) and np.isfinite(scores).all()
    expected = [_p_reference_score(puad_dir, image) for image in images]
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-6)


def test_puad_folder_errors_name_the_file(puad_dir, tmp_path):
    with pytest.raises(DataError, match="screw_bag"):
        import_puad_model(puad_dir, "s", "mvtec_loco_anomaly_detection", "screw_bag", tmp_path / "x")
    with pytest.raises(DataError, match="teacher.pt"):  # an S folder read as M
        (puad_dir / "m_size" / "mvtec_loco_anomaly_detection" / "breakfast_box").mkdir(parents=True)
        (puad_dir / "m_size" / "teacher").mkdir(parents=True)
        torch.save(pdn_small().state_dict(), puad_dir / "m_size" / "teacher" / "teacher.pt")
        import_puad_model(puad_dir, "m", "mvtec_loco_anomaly_detection", "breakfast_box", tmp_path / "y")


def _n_pdn(size: str) -> nn.Sequential:
    """N's ``get_pdn_small/medium`` layer order (ReLU/pool entries included), written from A2."""
    if size == "s":
        return nn.Sequential(nn.Conv2d(3, 128, 4), nn.ReLU(inplace=True), nn.AvgPool2d(2, 2),
                             nn.Conv2d(128, 256, 4), nn.ReLU(inplace=True), nn.AvgPool2d(2, 2),
                             nn.Conv2d(256, 256, 3), nn.ReLU(inplace=True), nn.Conv2d(256, 384, 4))
    return nn.Sequential(nn.Conv2d(3, 256, 4), nn.ReLU(inplace=True), nn.AvgPool2d(2, 2),
                         nn.Conv2d(256, 512, 4), nn.ReLU(inplace=True), nn.AvgPool2d(2, 2),
                         nn.Conv2d(512, 512, 1), nn.ReLU(inplace=True), nn.Conv2d(512, 512, 3), nn.ReLU(inplace=True),
                         nn.Conv2d(512, 384, 4), nn.ReLU(inplace=True), nn.Conv2d(384, 384, 1))


@pytest.mark.parametrize(("size", "builder", "indices"), [("s", pdn_small, [0, 3, 6, 8]),
                                                          ("m", pdn_medium, [0, 3, 6, 8, 10, 12])])
def test_n_teacher_state_dicts_and_pickled_modules_load(tmp_path, size, builder, indices):
    torch.manual_seed(2)
    sequential = _n_pdn(size).eval()
    assert sorted({int(k.split(".")[0]) for k in sequential.state_dict()}) == indices
    state_file = tmp_path / f"teacher_{'small' if size == 's' else 'medium'}.pth"
    torch.save(sequential.state_dict(), state_file)
    module_file = tmp_path / "teacher_final.pth"
    torch.save(sequential, module_file)  # N's training script pickles whole modules
    x = torch.randn(1, 3, 48, 48)
    for path in (state_file, module_file):
        pdn = builder()
        pdn.load_state_dict(load_teacher_file(path, size))
        with torch.no_grad():
            torch.testing.assert_close(pdn.eval()(x), sequential(x))


def test_pickled_puad_module_loads_without_puads_package(tmp_path, monkeypatch):
    """Should a P file hold a pickled ``puad.networks.PDN_S``, it loads through a stand-in class."""
    package, networks = types.ModuleType("puad"), types.ModuleType("puad.networks")

    class PDN_S(nn.Module):  # noqa: N801 - P's class name and attribute names, as in puad/networks.py
        def __init__(self):
            super().__init__()
            reference = pdn_small()
            for name, child in reference.named_children():
                setattr(self, name, child)

    PDN_S.__module__, PDN_S.__qualname__ = "puad.networks", "PDN_S"
    networks.PDN_S = PDN_S
    package.networks = networks
    monkeypatch.setitem(sys.modules, "puad", package)
    monkeypatch.setitem(sys.modules, "puad.networks", networks)
    original = PDN_S()
    torch.save(original, tmp_path / "teacher.pt")
    monkeypatch.delitem(sys.modules, "puad.networks")
    monkeypatch.delitem(sys.modules, "puad")
    state = load_teacher_file(tmp_path / "teacher.pt", "s")
    assert list(state) == P_TEACHER_S_KEYS
    torch.testing.assert_close(state["conv4.weight"], original.conv4.weight.detach())


def test_unreadable_or_foreign_files_are_data_errors(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(DataError, match="junk.pt"):
        load_teacher_file(tmp_path / "junk.pt", "s")
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "partial.pt")
    with pytest.raises(DataError, match="partial.pt"):
        load_teacher_file(tmp_path / "partial.pt", "s")
    with pytest.raises(DataError, match="not found"):
        load_teacher_file(tmp_path / "missing.pt", "s")
