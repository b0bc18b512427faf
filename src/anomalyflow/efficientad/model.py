"""EfficientAD inference (docs/methods.md A1, A6): the model class the generic scorer drives.

Model folder (:data:`anomalyflow.model_folder.EFFICIENTAD_FOLDER`; written by
:func:`~anomalyflow.efficientad.train.train_efficientad` or :mod:`anomalyflow.efficientad.official`):

- ``teacher.pt``, ``student.pt``, ``autoencoder.pt``: state dicts (P's key names, see :mod:`anomalyflow.nets.pdn`);
- ``teacher_stats.pt``: ``{"mean": [384], "std": [384]}``, the teacher-output normalisation (A5.1);
- ``quantiles.json``: the map quantiles (:mod:`anomalyflow.efficientad.quantiles`), a separate stage's file,
  with the :func:`weights_digest` of the networks they were computed for: quantiles of earlier weights
  are refused, not used;
- ``model.json``: ``{"family": "efficientad", "size", "image_size", "out_channels", "params": {training
  parameters}, "inference": {"map_padding", "batch_size", "amp"}}``.

Per batch of normalised ``image_size``² images: Ŷ = (T(x) − μ_T)/σ_T, M_ST = channel mean of
(Ŷ − S_ST)², M_AE = channel mean of (A − S_STAE)² (56² for 256); each is normalised with its
quantiles, M̂ = 0.1·(M − q_a)/(q_b − q_a), and combined 0.5·M̂_ST + 0.5·M̂_AE. Geometry:
``map_padding=0`` (P, default) resizes the combined map bilinearly to the input size;
``map_padding=4`` (N) first pads it with 4 zeros per side, which centres each 33-px receptive field
on its pixel. The image score is the map's maximum. On CUDA the networks run under fp16 autocast
(``inference.amp``); P itself runs fp32 with TF32 off, which ``amp: false`` reproduces.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from anomalyflow.data.loader import image_transform
from anomalyflow.device import resolve_device
from anomalyflow.efficientad.checkpoint import file_digest
from anomalyflow.errors import DataError, NumericalError
from anomalyflow.frames import FULL_FRAME
from anomalyflow.maps import pad_constant, resize
from anomalyflow.model_folder import EFFICIENTAD_FOLDER
from anomalyflow.nets.autoencoder import Autoencoder
from anomalyflow.nets.pdn import build_pdn
from anomalyflow.precision import amp_dtype, autocast, memory_format, place
from anomalyflow.readers import load_json
from anomalyflow.state_files import load_into, load_state

INFERENCE_DEFAULTS = {"map_padding": 0, "batch_size": 16, "amp": True}
_QUANTILE_KEYS = ("q_st_a", "q_st_b", "q_ae_a", "q_ae_b")
#: Images per network pass on the CPU (see EfficientAD.micro_batches).
CPU_MICRO_BATCH = 1


class EfficientAD:
    """Teacher, student and autoencoder of one category: ``predict(images) -> (scores, maps)``."""

    family = "efficientad"

    def __init__(self, teacher, student, autoencoder, mean: torch.Tensor, std: torch.Tensor, *,
                 quantiles: dict | None, params: dict, device: torch.device):
        self.device = resolve_device(device)  # "auto" too: a scoring script passes the config's device
        self.params = {**INFERENCE_DEFAULTS, **params}
        self.image_size = int(self.params["image_size"])
        self.out_channels = int(self.params.get("out_channels", 384))
        # channels_last on the CPU (oneDNN's fast layout for these convolutions; numbers equal to rounding)
        self.memory_format = memory_format(self.device)
        self.teacher = place(teacher, self.device).eval()
        self.student = place(student, self.device).eval()
        self.autoencoder = place(autoencoder, self.device).eval()
        self.mean = mean.float().to(self.device).view(1, -1, 1, 1)
        self.std = std.float().to(self.device).view(1, -1, 1, 1)
        self.quantiles = quantiles
        self.dtype = amp_dtype(self.device, half=True) if self.params["amp"] else None

    @classmethod
    def load(cls, model_dir: str | os.PathLike, device: str | torch.device = "cpu", *,
             map_padding: int | None = None, batch_size: int | None = None, amp: bool | None = None,
             with_quantiles: bool = True) -> EfficientAD:
        """The model in ``model_dir``; keyword arguments override its ``model.json`` inference settings.

        ``with_quantiles=False`` leaves ``quantiles.json`` unread (the quantile stage, which computes it).
        """
        folder = Path(model_dir)
        meta = EFFICIENTAD_FOLDER.read(folder)
        size, image_size = meta["size"], int(meta["image_size"])
        out_channels = int(meta.get("out_channels", 384))
        teacher = build_pdn(size, out_channels)
        student = build_pdn(size, 2 * out_channels)
        autoencoder = Autoencoder(out_channels, image_size)
        for module, role in ((teacher, "teacher"), (student, "student"), (autoencoder, "autoencoder")):
            path = EFFICIENTAD_FOLDER.path(folder, role)
            load_into(module, load_state(path), path)
        stats_path = EFFICIENTAD_FOLDER.path(folder, "teacher_stats")
        stats = load_state(stats_path)
        if not isinstance(stats, dict) or "mean" not in stats or "std" not in stats:
            raise DataError(f"{stats_path}: expected a dict with 'mean' and 'std'")
        quantiles = read_quantiles(folder) if with_quantiles else None
        inference = {**INFERENCE_DEFAULTS, **meta.get("inference", {})}
        for key, value in (("map_padding", map_padding), ("batch_size", batch_size), ("amp", amp)):
            if value is not None:
                inference[key] = value
        params = {"size": size, "image_size": image_size, "out_channels": out_channels, **inference,
                  "train": meta.get("params", {})}
        return cls(teacher, student, autoencoder, stats["mean"], stats["std"], quantiles=quantiles, params=params,
                   device=resolve_device(device))

    def transform(self):
        """A1: bilinear resize to ``image_size``² (aspect ratio ignored), ToTensor, ImageNet normalisation."""
        return image_transform(self.image_size)

    @staticmethod
    def map_frame(height: int, width: int):
        """Maps cover the whole image, stretched to a square like the input (:mod:`anomalyflow.frames`)."""
        return FULL_FRAME

    @torch.no_grad()
    def outputs(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised teacher Ŷ ``[B,384,h,w]``, student ``[B,768,h,w]`` and autoencoder ``[B,384,h,w]`` (float32)."""
        x = self._input(images)
        with autocast(self.device, self.dtype):
            teacher = self.teacher(x)
            student = self.student(x)
            autoencoder = self.autoencoder(x)
        normalised = (teacher.float() - self.mean) / self.std
        return normalised, student.float(), autoencoder.float()

    @torch.no_grad()
    def maps(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw (un-normalised) M_ST and M_AE, ``[B, h, w]`` each (56² for 256² inputs)."""
        return self.raw_maps(*self.outputs(images))

    def raw_maps(self, teacher: torch.Tensor, student: torch.Tensor,
                 autoencoder: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """M_ST and M_AE (A6) from the three networks' outputs."""
        c = self.out_channels
        st = (teacher - student[:, :c]).square().mean(dim=1)
        ae = (autoencoder - student[:, c:]).square().mean(dim=1)
        return st, ae

    def micro_batches(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The batch as the networks should see it: whole on CUDA; on the CPU ``CPU_MICRO_BATCH`` images at a
        time, because a batch's first activations (34 MB per 256² image) fall out of the cache there: batch 16
        in one pass took 5.43 s, one image at a time 4.45 s (2 cores, bench/README.md)."""
        step = len(images) if self.device.type != "cpu" else CPU_MICRO_BATCH
        return [images[begin:begin + step] for begin in range(0, len(images), step)]

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
        """Image scores ``[B]`` (numpy) and anomaly maps ``[B, H, W]`` at the input's size (torch, device)."""
        scores, maps, _, _ = self.predict_and_pool(images, None)
        return scores, maps

    @torch.no_grad()
    def predict_and_pool(self, images: torch.Tensor, which: str | None, position_map=None
                         ) -> tuple[np.ndarray, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """:meth:`predict` plus, from the same forward pass, :meth:`pooled_features` ``[B, 384]`` of ``which``
        (None: no features) and, when ``position_map`` is given, a second map ``[B, H, W]`` float32 in the anomaly
        map's geometry: ``position_map`` takes the unpooled features ``[b, 384, h, w]`` (:meth:`feature_grid`) and
        returns one value per position ``[b, h, w]``, which is padded and resized like the anomaly map (PUAD's
        logical map). Run in :meth:`micro_batches`."""
        size = tuple(images.shape[-2:])
        scores, maps, features, extra = [], [], [], []
        for chunk in self.micro_batches(images):
            outputs = self.outputs(chunk)
            chunk_scores, chunk_maps = self.scores_and_maps(outputs, size)
            scores.append(chunk_scores)
            maps.append(chunk_maps)
            if which is not None:
                features.append(self.pooled_features(outputs, which))
            if position_map is not None:
                extra.append(self.image_geometry(position_map(self.feature_grid(outputs, which)).float(), size))
        return (np.concatenate(scores), torch.cat(maps), torch.cat(features) if features else None,
                torch.cat(extra) if extra else None)

    def image_geometry(self, maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Feature-grid maps ``[B, h, w]`` → the anomaly map's geometry ``[B, *size]``: ``map_padding`` zeros per
        side, then a bilinear resize (A6)."""
        return resize(pad_constant(maps, int(self.params["map_padding"])), size)

    def scores_and_maps(self, outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                        size: tuple[int, int]) -> tuple[np.ndarray, torch.Tensor]:
        """A6: quantile-normalised, combined, resized map and its maximum, from :meth:`outputs`."""
        if self.quantiles is None:
            raise DataError("EfficientAD: no quantiles.json in the model folder; compute the validation quantiles "
                            "first")
        st, ae = self.raw_maps(*outputs)
        q = self.quantiles
        st = 0.1 * (st - q["q_st_a"]) / (q["q_st_b"] - q["q_st_a"])
        ae = 0.1 * (ae - q["q_ae_a"]) / (q["q_ae_b"] - q["q_ae_a"])
        combined = 0.5 * st + 0.5 * ae
        # Normalising before the resize equals P's resize-then-normalise: bilinear weights sum to one.
        maps = self.image_geometry(combined, size)
        scores = maps.reshape(maps.shape[0], -1).amax(dim=1)
        if not bool(torch.isfinite(scores).all()):
            raise NumericalError("EfficientAD produced non-finite anomaly maps; the training images may be constant "
                                 "or the validation quantiles degenerate (q_b = q_a)")
        return scores.double().cpu().numpy(), maps

    def pooled_features(self, outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                        which: str = "student") -> torch.Tensor:
        """PUAD's f(x) ``[B, 384]`` from :meth:`outputs`: the spatial mean of the raw student ST head
        (``student``, the default) or of the normalised teacher output (``teacher``)."""
        return self._finite(self.feature_grid(outputs, which).mean(dim=(2, 3)), which)

    def feature_grid(self, outputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                     which: str = "student") -> torch.Tensor:
        """The features PUAD pools, before pooling: ``[B, 384, h, w]`` (56² for 256² inputs), from :meth:`outputs`."""
        teacher, student, _ = outputs
        return student[:, : self.out_channels] if which == "student" else teacher

    @torch.no_grad()
    def student_features(self, images: torch.Tensor) -> torch.Tensor:
        """PUAD's f(x): the spatial mean of the raw student ST head (channels 0–383), ``[B, 384]`` float32."""
        x = self._input(images)
        with autocast(self.device, self.dtype):
            student = self.student(x)
        return self._finite(student.float()[:, : self.out_channels].mean(dim=(2, 3)), "student")

    @torch.no_grad()
    def teacher_features(self, images: torch.Tensor) -> torch.Tensor:
        """PUAD's alternative f(x): the spatial mean of the normalised teacher output Ŷ, ``[B, 384]``."""
        x = self._input(images)
        with autocast(self.device, self.dtype):
            teacher = self.teacher(x)
        return self._finite(((teacher.float() - self.mean) / self.std).mean(dim=(2, 3)), "teacher")

    def _input(self, images: torch.Tensor) -> torch.Tensor:
        return images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)

    @staticmethod
    def _finite(features: torch.Tensor, name: str) -> torch.Tensor:
        if not bool(torch.isfinite(features).all()):
            raise NumericalError(f"EfficientAD: non-finite {name} features; the training images may be constant")
        return features


#: The networks' files, in the order :func:`weights_digest` reads them.
WEIGHT_ROLES = ("teacher", "student", "autoencoder", "teacher_stats")


def weights_digest(model_dir: str | os.PathLike) -> str:
    """SHA-256 over the SHA-256s of the folder's four weight files: which networks a ``quantiles.json`` describes."""
    digest = hashlib.sha256()
    for role in WEIGHT_ROLES:
        digest.update(file_digest(EFFICIENTAD_FOLDER.path(model_dir, role)).encode())
    return digest.hexdigest()


def read_quantiles(model_dir: str | os.PathLike) -> dict:
    """The folder's ``quantiles.json``, checked: complete, and computed for the networks the folder holds.

    Raises :class:`DataError` when it is missing, lacks a quantile, or names other weights (the networks were
    trained again after it was computed). Files without a ``weights`` entry (written before it existed) are
    taken as they are.
    """
    path = EFFICIENTAD_FOLDER.path(model_dir, "quantiles")
    if not path.is_file():
        raise DataError(f"{path}: not found; compute the validation quantiles first")
    quantiles = load_json(path)
    missing = [k for k in _QUANTILE_KEYS if k not in quantiles]
    if missing:
        raise DataError(f"{path}: missing {missing}")
    if "weights" in quantiles and quantiles["weights"] != weights_digest(model_dir):
        raise DataError(f"{path}: computed for other weights than the folder holds now (the networks were trained "
                        "again); compute the validation quantiles again")
    return quantiles


__all__ = ["INFERENCE_DEFAULTS", "EfficientAD", "load_into", "load_state", "read_quantiles", "weights_digest"]
