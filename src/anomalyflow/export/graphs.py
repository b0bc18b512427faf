"""The exported graphs: one torch module per family that maps a uint8 image batch to final scores and maps.

Each module holds, as weights and constants, everything the workflow's scoring uses after decoding and
resizing an image: the ImageNet normalisation, the networks, PatchCore's memory bank search, the map
normalisation (EfficientAD's quantiles), PUAD's Gaussian, position means and z-score constants. Its ``forward`` is what
:mod:`anomalyflow.export.writer` traces into ONNX; it computes exactly what the family's ``predict`` computes
(same operations, same order), so the export's scores and maps equal ``scores.csv`` and ``maps.npz`` to
float32 rounding.

Input contract (every family): ``image`` uint8 ``[B, 3, S, S]``, RGB, 0–255, the decoded image resized to the
model's ``S = image_size`` with PIL's bilinear filter (:func:`anomalyflow.export.runtime.model_input`, the same
resize as :mod:`anomalyflow.data.transforms`). Outputs: ``score`` float64 ``[B]`` and ``map`` float32
``[B, S, S]``; PUAD's ``map`` is its fused map, and it adds ``score_efficientad`` and ``score_mahalanobis``
(float64 ``[B]``, its two scores) and ``logical`` (float32 ``[B, S, S]``, the ``logical`` array of its
``maps.npz``).
"""

from __future__ import annotations

import torch
from torch import nn

from anomalyflow.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from anomalyflow.maps import gaussian_blur, pad_constant, resize


class Preprocess(nn.Module):
    """uint8 ``[B, 3, S, S]`` → float32 ImageNet-normalised, as ``to_tensor`` then ``Normalize`` (÷255, −μ, ÷σ)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return (image.float() / 255.0 - self.mean) / self.std


class BankSearch(nn.Module):
    """Exact k-nearest-neighbour distances to a memory bank ``[M, E]``: one matmul, top-k, then ``‖x − c‖``.

    Queries ``[Q, E]`` → Euclidean distances ``[Q, k]``, nearest first. The neighbours are chosen on
    ``‖x‖² − 2x·c + ‖c‖²`` (faiss ``IndexFlatL2``'s ranking) and their distances recomputed from the
    differences, as :class:`anomalyflow.patches.memory.MemoryBank.search` does (its docstring says why: the
    expanded form loses digits to cancellation). No faiss in the graph.
    """

    def __init__(self, bank: torch.Tensor, k: int):
        super().__init__()
        self.register_buffer("bank", bank.float().contiguous())
        self.register_buffer("bank_sq", bank.float().pow(2).sum(1))
        self.k = min(int(k), bank.shape[0])

    def forward(self, queries: torch.Tensor) -> torch.Tensor:
        squared = queries.pow(2).sum(1, keepdim=True) - 2.0 * (queries @ self.bank.T) + self.bank_sq.unsqueeze(0)
        ids = squared.topk(self.k, dim=1, largest=False).indices  # [Q, k]
        entries = self.bank[ids]  # [Q, k, E]
        return (entries - queries.unsqueeze(1)).pow(2).sum(2).sqrt()


class PatchCoreGraph(nn.Module):
    """:meth:`anomalyflow.patchcore.PatchCore.predict` from uint8 images: patch features, bank search, the
    patch map's maximum as the score, the map resized to ``S`` and blurred (σ = ``blur_sigma``)."""

    def __init__(self, model):
        super().__init__()
        self.preprocess = Preprocess()
        self.features = model.features.cpu().eval()
        self.search = BankSearch(torch.from_numpy(model.bank.vectors()), model.params["num_neighbors"])
        self.size = int(model.params["image_size"])
        self.sigma = float(model.params["blur_sigma"])

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(self.preprocess(image))
        b, h, w, e = features.shape
        patch = self.search(features.reshape(-1, e)).mean(dim=1).reshape(b, h, w)
        score = patch.reshape(b, -1).amax(dim=1).double()
        return score, gaussian_blur(resize(patch, (self.size, self.size)), self.sigma)


class EfficientADGraph(nn.Module):
    """:meth:`anomalyflow.efficientad.model.EfficientAD.scores_and_maps` from uint8 images, in float32.

    The quantiles (q_a, q_b of M_ST and M_AE, from the validation normals) are constants of the graph. The
    workflow's CUDA scoring runs the networks under fp16 autocast (``inference.amp``); the export is float32,
    as the CPU scoring that writes the demo's ``scores.csv`` is.
    """

    def __init__(self, model):
        super().__init__()
        if model.quantiles is None:
            raise ValueError("EfficientAD export needs the model's quantiles.json")
        self.preprocess = Preprocess()
        self.teacher = model.teacher.cpu().float().eval()
        self.student = model.student.cpu().float().eval()
        self.autoencoder = model.autoencoder.cpu().float().eval()
        self.register_buffer("mean", model.mean.cpu().float())
        self.register_buffer("std", model.std.cpu().float())
        q = model.quantiles
        self.quantiles = tuple(float(q[key]) for key in ("q_st_a", "q_st_b", "q_ae_a", "q_ae_b"))
        self.channels = int(model.out_channels)
        self.padding = int(model.params["map_padding"])
        self.size = int(model.image_size)

    def outputs(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.preprocess(image)
        return (self.teacher(x) - self.mean) / self.std, self.student(x), self.autoencoder(x)

    def score_and_map(self, outputs) -> tuple[torch.Tensor, torch.Tensor]:
        teacher, student, autoencoder = outputs
        c = self.channels
        st = (teacher - student[:, :c]).square().mean(dim=1)
        ae = (autoencoder - student[:, c:]).square().mean(dim=1)
        st_a, st_b, ae_a, ae_b = self.quantiles
        combined = 0.5 * (0.1 * (st - st_a) / (st_b - st_a)) + 0.5 * (0.1 * (ae - ae_a) / (ae_b - ae_a))
        maps = resize(pad_constant(combined, self.padding), (self.size, self.size))
        return maps.reshape(maps.shape[0], -1).amax(dim=1).double(), maps

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.score_and_map(self.outputs(image))


class PUADGraph(nn.Module):
    """:meth:`anomalyflow.puad.PUAD.predict` from uint8 images: EfficientAD's score and (structural) map, the
    pooled feature's Mahalanobis distance, the logical map (each position's share of that distance,
    :meth:`anomalyflow.puad.PUAD.logical_map`) and the z-scored fusions of the scores and of the maps; the
    Gaussian's arithmetic in float64 as the library computes it."""

    def __init__(self, model):
        super().__init__()
        if model.position_mean is None or model.map_normalisation is None:
            raise ValueError("PUAD export needs a model folder fitted with its map (position_mean.npz and "
                             "map_normalisation); rerun puad_fit")
        self.efficientad = EfficientADGraph(model.efficientad)
        self.feature = model.feature
        gaussian = model.gaussian
        self.register_buffer("gauss_mean", torch.from_numpy(gaussian.mean).double())
        self.register_buffer("precision", torch.from_numpy(gaussian.precision).double())
        self.register_buffer("position_mean", torch.as_tensor(model.position_mean, dtype=torch.float64))
        n, w, m = model.normalisation, model.fusion_weights, model.map_normalisation
        self.constants = (float(n["mean_p"]), float(n["std_p"]), float(n["mean_u"]), float(n["std_u"]),
                          float(w["picturable"]), float(w["unpicturable"]))
        self.map_constants = (float(m["mean_structural"]), float(m["std_structural"]), float(m["mean_logical"]),
                              float(m["std_logical"]))

    def logical_map(self, grid: torch.Tensor) -> torch.Tensor:
        """L_p = (f_p − μ_p)ᵀ P (f − μ) ``[B, C, h, w]`` → ``[B, S, S]`` float32, in the anomaly map's geometry."""
        x = grid.double()
        _, c, h, w = x.shape
        direction = (x.mean(dim=(2, 3)) - self.gauss_mean) @ self.precision.T  # P (f − μ), [B, C]
        offset = (direction @ self.position_mean.reshape(c, h * w)).reshape(-1, h, w)
        terms = ((direction.unsqueeze(1) @ x.reshape(-1, c, h * w)).reshape(-1, h, w) - offset) / (h * w)
        size = self.efficientad.size
        return resize(pad_constant((terms * (h * w)).float(), self.efficientad.padding), (size, size))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.efficientad.outputs(image)
        s_p, structural = self.efficientad.score_and_map(outputs)
        teacher, student, _ = outputs
        grid = student[:, : self.efficientad.channels] if self.feature == "student" else teacher
        centred = grid.mean(dim=(2, 3)).double() - self.gauss_mean
        s_u = ((centred @ self.precision) * centred).sum(dim=1).clamp_min(0.0).sqrt()
        logical = self.logical_map(grid)
        mean_p, std_p, mean_u, std_u, w_p, w_u = self.constants
        fused = w_p * (s_p - mean_p) / std_p + w_u * (s_u - mean_u) / std_u
        mean_s, std_s, mean_l, std_l = self.map_constants
        fused_map = w_p * (structural - mean_s) / std_s + w_u * (logical - mean_l) / std_l
        return fused, fused_map, s_p, s_u, logical


__all__ = ["BankSearch", "EfficientADGraph", "PUADGraph", "PatchCoreGraph", "Preprocess"]
