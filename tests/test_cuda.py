"""The library on a CUDA GPU against the same computation on the CPU (marker ``cuda``).

Skipped where torch sees no GPU (tests/conftest.py); ``bench/gpu_check.sh`` runs them on the GPU machine.
Each compares the GPU's result with the CPU's on the same small inputs: fp32 with TF32 off to float rounding,
autocast within what half precision allows, and the faiss GPU index (where installed) and the torch
search to the exact neighbours. Small sizes: seconds on a GPU.
"""

import numpy as np
import pytest
import torch
from efficientad_helpers import make_category
from pni_helpers import TINY, tiny_dataset

from anomalyflow.data.loader import image_transform, load_images
from anomalyflow.data.table import fit_rows, read_samples
from anomalyflow.efficientad.model import EfficientAD
from anomalyflow.efficientad.train import efficientad_losses, train_efficientad
from anomalyflow.families import load_model
from anomalyflow.nets.autoencoder import Autoencoder
from anomalyflow.nets.pdn import build_pdn, pdn_small
from anomalyflow.patchcore import fit_patchcore
from anomalyflow.patches.coreset import greedy_coreset
from anomalyflow.patches.memory import MemoryBank, faiss_gpu_available
from anomalyflow.pni.model import resolve_params
from anomalyflow.pni.stages import fit_pni_memory, fit_pni_mlp

pytestmark = pytest.mark.cuda

GPU = torch.device("cuda")
SIDE = 64
QUANTILES = {"q_st_a": 0.1, "q_st_b": 2.0, "q_ae_a": 0.2, "q_ae_b": 3.0}
PATCHCORE = {"backbone": "resnet18", "image_size": 64, "embed_dim": 64, "coreset_fraction": 0.25, "batch_size": 4,
             "weights": "none", "blur_sigma": 1.0}


@pytest.fixture
def fp32():
    """True fp32 on the GPU: TF32 (cuDNN's default for convolutions) rounds to 10 mantissa bits."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _efficientad(device, dtype) -> EfficientAD:
    torch.manual_seed(0)  # the same random networks on both devices
    model = EfficientAD(build_pdn("s", 384), build_pdn("s", 768), Autoencoder(384, SIDE), torch.randn(384) * 0.1,
                        torch.rand(384) + 0.5, quantiles=QUANTILES, params={"image_size": SIDE, "size": "s"},
                        device=device)
    model.dtype = dtype
    return model


@pytest.mark.parametrize(("dtype", "rtol"), [(None, 1e-3), (torch.float16, 1e-2)])
def test_efficientad_maps_on_the_gpu_match_the_cpu(fp32, dtype, rtol):
    images = torch.randn(3, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(1))
    expected = _efficientad("cpu", None).maps(images)
    got = _efficientad(GPU, dtype).maps(images)
    for a, b in zip(got, expected, strict=True):  # M_ST and M_AE; fp16 measured within 2e-4 of fp32 on a CPU
        assert a.dtype == torch.float32 and bool(torch.isfinite(a).all())
        torch.testing.assert_close(a.cpu(), b, rtol=rtol, atol=0.0)
    scores, maps = _efficientad(GPU, dtype).predict(images)
    assert maps.device.type == GPU.type and maps.shape == (3, SIDE, SIDE)
    np.testing.assert_allclose(scores, _efficientad("cpu", None).predict(images)[0], rtol=rtol)


def test_amp_training_on_the_gpu_lowers_the_loss(tmp_path):
    """50 steps under the GPU's autocast (bf16 where supported) lower the A5 loss, as 50 fp32 CPU steps do."""
    table = make_category(tmp_path / "data", n_train=4, n_val=2, side=SIDE)
    torch.manual_seed(5)
    torch.save(pdn_small(padding=True).state_dict(), tmp_path / "teacher.pt")
    losses = {}
    for steps in (0, 50):
        out = tmp_path / f"m{steps}"
        train_efficientad(table, tmp_path / "teacher.pt", out, {"iterations": steps, "image_size": SIDE}, device="cuda")
        losses[steps] = _training_loss(out, table)
    assert np.isfinite(losses[50]) and losses[50] < 0.8 * losses[0], losses


def _training_loss(folder, table) -> float:
    """The deterministic A5 loss of a model folder on its training images, on the CPU in fp32."""
    paths = fit_rows(read_samples(table), "train", purpose="test")["path"].tolist()
    x = load_images(paths, image_transform(SIDE))
    nets = {"teacher": pdn_small(), "student": pdn_small(768), "autoencoder": Autoencoder(384, SIDE)}
    for name, module in nets.items():
        module.load_state_dict(torch.load(folder / f"{name}.pt", weights_only=True))
        module.eval()
    stats = torch.load(folder / "teacher_stats.pt", weights_only=True)
    with torch.no_grad():
        return float(efficientad_losses(*nets.values(), stats["mean"], stats["std"], x, x)["total"])


def test_coreset_on_the_gpu_selects_as_on_the_cpu():
    features = torch.randn(3000, 64, generator=torch.Generator().manual_seed(0))
    # float64: the same greedy sequence (a near tie would need a 1e-16 difference to flip)
    settings = {"projection_dim": 16, "seed": 3}
    cpu = greedy_coreset(features.double(), 40, device="cpu", **settings)
    gpu = greedy_coreset(features.double(), 40, device=GPU, **settings)
    np.testing.assert_array_equal(gpu, cpu)
    # float32, the workflow's storage on CUDA: rounding may reorder near ties, so compare what k-center minimises
    cpu32 = greedy_coreset(features, 40, device="cpu", storage="float32", **settings)
    gpu32 = greedy_coreset(features, 40, device=GPU, storage="auto", **settings)
    assert len(set(gpu32.tolist())) == 40

    def radius(selected):
        return float(torch.cdist(features.double(), features[selected].double()).min(dim=1).values.max())

    assert radius(gpu32) == pytest.approx(radius(cpu32), rel=0.02)


@pytest.mark.parametrize("faiss_gpu", [True, False], ids=["faiss-gpu", "torch"])
def test_memory_bank_search_on_the_gpu_finds_the_exact_neighbours(fp32, faiss_gpu):
    if faiss_gpu and not faiss_gpu_available():
        pytest.skip("the installed faiss has no GPU support")
    rng = np.random.default_rng(0)
    bank = rng.standard_normal((2000, 64)).astype(np.float32)
    queries = rng.standard_normal((300, 64)).astype(np.float32)
    exact = np.sqrt(((queries[:, None, :].astype(np.float64) - bank[None].astype(np.float64)) ** 2).sum(-1))
    order = np.argsort(exact, axis=1, kind="stable")[:, :5]
    memory = MemoryBank(bank, GPU, faiss_gpu=faiss_gpu)
    assert memory.on_faiss_gpu is faiss_gpu
    for q in (queries, torch.from_numpy(queries).to(GPU)):
        dist, ids = memory.search(q, k=5)
        np.testing.assert_array_equal(ids, order)
        np.testing.assert_allclose(dist, np.take_along_axis(exact, order, axis=1), rtol=1e-4)


def test_patchcore_scores_on_the_gpu_match_the_cpu(fp32, tmp_path):
    samples = tiny_dataset(tmp_path)
    fit_patchcore(samples, tmp_path / "model", PATCHCORE, device="cpu")
    cpu = load_model(tmp_path / "model", "cpu")
    images = _test_images(samples, cpu.transform())
    cpu_scores, cpu_maps = cpu.predict(images)
    gpu_scores, gpu_maps = load_model(tmp_path / "model", GPU).predict(images)
    assert cpu_scores[2:].min() > cpu_scores[:2].max()  # the bright square: a real map, not noise, is compared
    np.testing.assert_allclose(gpu_scores, cpu_scores, rtol=1e-4)
    torch.testing.assert_close(gpu_maps.cpu(), cpu_maps.cpu(), rtol=1e-4, atol=1e-4 * float(cpu_maps.abs().max()))


def test_pni_scores_on_the_gpu_match_the_cpu(fp32, tmp_path):
    samples = tiny_dataset(tmp_path)
    fit_pni_memory(samples, tmp_path / "model", TINY, device="cpu", features_path=tmp_path / "features.npy")
    fit_pni_mlp(samples, tmp_path / "model", TINY, device="cpu", features_path=tmp_path / "features.npy")
    cpu = load_model(tmp_path / "model", "cpu")
    images = _test_images(samples, cpu.transform())
    cpu_scores, _ = cpu.predict(images)
    gpu = load_model(tmp_path / "model", GPU)
    gpu.params = resolve_params({**gpu.params, "amp": False})  # fp32: the same gates as on the CPU
    np.testing.assert_allclose(gpu.predict(images)[0], cpu_scores, rtol=1e-4)
    # amp, the default on CUDA: the MLP under autocast; the anomalous half still stands out
    gpu.params = resolve_params({**gpu.params, "amp": True})
    amp_scores, _ = gpu.predict(images)
    assert np.isfinite(amp_scores).all() and amp_scores[2:].min() > amp_scores[:2].max()
    assert cpu_scores[2:].min() > cpu_scores[:2].max()


def _test_images(samples, transform) -> torch.Tensor:
    """tiny_dataset's test images in file order: two normal, then two with the bright square."""
    return load_images([str(samples.parent / f"test{i}.png") for i in range(4)], transform)
