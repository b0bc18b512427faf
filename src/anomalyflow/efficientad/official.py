"""Official EfficientAD weights: the PUAD model folders (P) and EfficientAD's teachers (N).

What the official files hold (read from the codes at the commits listed in docs/methods.md, Sources):

- P (``puad/efficientad/algorithms.py``, ``inference.py``) saves **state dicts** with ``torch.save(
  module.state_dict())``: ``<size>_size/teacher/teacher.pt`` (a PDN of 384 channels, keys ``conv1.*``
  …), and per category ``<size>_size/<dataset>/<category>/student.pt`` (768 channels, same keys) and
  ``autoencoder.pt`` (keys ``encoder.enconv1.*`` … ``decoder.deconv8.*``). ``mu.pt``/``sigma.pt`` beside
  them are plain tensors ``[384]``: the mean and *unbiased* std of the teacher output on the training
  images (P's README calls them "WRN stats"; those are ``teacher/mu.pt``/``sigma.pt``, which inference
  does not use). ``quantile.pt`` is a dict of 0-d tensors ``q_a_student``, ``q_b_student``,
  ``q_a_autoencoder``, ``q_b_autoencoder`` (0.9/0.995 quantiles of the validation maps *resized to
  256²*). Tensors may have been saved on a GPU; everything is loaded with ``map_location="cpu"``.
- N ships ``models/teacher_small.pth`` / ``teacher_medium.pth`` as state dicts of its
  ``nn.Sequential`` PDN, keys ``<layer index>.weight/bias`` (S: 0, 3, 6, 8; M: 0, 3, 6, 8, 10, 12),
  which :func:`~anomalyflow.nets.pdn.sequential_to_named` renames. Its training script saves whole
  pickled modules (``teacher_final.pth``, ``student_final.pth``, ``autoencoder_final.pth``); those are
  ``nn.Sequential`` of torch's own layers and load too.

Loading never runs arbitrary pickled code: ``torch.load(weights_only=True)`` with an allow-list of
torch's layer classes (for N's pickled modules) and, should a pickled P module ever turn up, its
class names (``puad.networks.PDN_S`` …) mapped to a stand-in ``nn.Module`` whose only use is
``state_dict()`` — so P's package need not be installed.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from anomalyflow.atomic import save_torch, write_json
from anomalyflow.errors import DataError
from anomalyflow.model_folder import EFFICIENTAD_FOLDER
from anomalyflow.nets.autoencoder import Autoencoder
from anomalyflow.nets.pdn import build_pdn, is_sequential_state, normalize_size, sequential_to_named
from anomalyflow.state_files import load_into

PUAD_QUANTILE_KEYS = {"q_a_student": "q_st_a", "q_b_student": "q_st_b", "q_a_autoencoder": "q_ae_a",
                      "q_b_autoencoder": "q_ae_b"}


class _PickledModule(nn.Module):
    """Stand-in for a pickled module class of P's package: unpickling restores its submodules and
    parameters, and ``state_dict()`` reads them; it cannot run."""

    def forward(self, *args, **kwargs):  # pragma: no cover - never called
        raise RuntimeError("a stand-in for an unpickled official module cannot run")


_SAFE_GLOBALS = [
    nn.Sequential, nn.Conv2d, nn.ReLU, nn.AvgPool2d, nn.Upsample, nn.Dropout,
    *[(_PickledModule, f"puad.networks.{name}") for name in ("PDN_S", "PDN_M", "AutoEncoder", "Encoder", "Decoder")],
]


def read_official_file(path: str | os.PathLike):
    """The object in an official torch file (state dict, tensor, dict or module), on the CPU, safely."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{file}: file not found")
    try:
        with torch.serialization.safe_globals(_SAFE_GLOBALS):
            return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"{file}: not a loadable weights file ({reason})") from None


def state_dict_for(obj, module: nn.Module, path: Path) -> dict[str, torch.Tensor]:
    """Turn whatever an official file held into a state dict with ``module``'s key names (checked)."""
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DataError(f"{path}: expected a state dict or a pickled network, found {type(obj).__name__}")
    state = {k.removeprefix("module."): v for k, v in obj.items()}
    if is_sequential_state(state):
        try:
            state = sequential_to_named(state, module)
        except ValueError as error:
            raise DataError(f"{path}: sequential weights do not fit a {type(module).__name__} ({error})") from None
    load_into(module, state, path)  # strict check of names and shapes
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def load_teacher_file(path: str | os.PathLike, size: str) -> dict[str, torch.Tensor]:
    """The teacher PDN's state dict (our key names) from ours, P's ``teacher.pt`` or N's ``teacher_*.pth``."""
    file = Path(path)
    return state_dict_for(read_official_file(file), build_pdn(normalize_size(size), 384), file)


def _vector(obj, path: Path, length: int) -> torch.Tensor:
    if not isinstance(obj, torch.Tensor) or obj.numel() != length:
        raise DataError(f"{path}: expected a tensor of {length} values, found "
                        f"{tuple(obj.shape) if isinstance(obj, torch.Tensor) else type(obj).__name__}")
    return obj.detach().float().reshape(length).clone()


def _category_dir(puad_dir: str | os.PathLike, size: str, dataset_folder: str, category: str) -> Path:
    folder = Path(puad_dir) / f"{normalize_size(size)}_size" / dataset_folder / category
    if not folder.is_dir():
        raise DataError(f"{folder}: PUAD model folder not found (expected <puad_dir>/<size>_size/"
                        "<dataset_folder>/<category>)")
    return folder


def import_puad_networks(puad_dir: str | os.PathLike, size: str, dataset_folder: str, category: str,
                         out_dir: str | os.PathLike, *, image_size: int = 256, map_padding: int = 0,
                         amp: bool = False) -> dict:
    """The ``fit`` stage's files of an EfficientAD folder from a PUAD model folder; returns its ``model.json``.

    Reads ``<puad_dir>/<size>_size/teacher/teacher.pt`` and
    ``<puad_dir>/<size>_size/<dataset_folder>/<category>/{student,autoencoder,mu,sigma}.pt`` (e.g.
    ``dataset_folder="mvtec_loco_anomaly_detection"``, ``category="breakfast_box"``) and writes ``teacher.pt``,
    ``student.pt``, ``autoencoder.pt``, ``teacher_stats.pt`` and ``model.json`` into ``out_dir``
    (:data:`anomalyflow.model_folder.EFFICIENTAD_FOLDER`). ``amp=False`` (the default) keeps inference in fp32
    on CUDA too, as P runs it, so scores match P's.
    """
    size = normalize_size(size)
    category_dir = _category_dir(puad_dir, size, dataset_folder, category)
    teacher = load_teacher_file(Path(puad_dir) / f"{size}_size" / "teacher" / "teacher.pt", size)
    student_file = category_dir / "student.pt"
    student = state_dict_for(read_official_file(student_file), build_pdn(size, 768), student_file)
    ae_file = category_dir / "autoencoder.pt"
    autoencoder = state_dict_for(read_official_file(ae_file), Autoencoder(384, image_size), ae_file)
    mean = _vector(read_official_file(category_dir / "mu.pt"), category_dir / "mu.pt", 384)
    std = _vector(read_official_file(category_dir / "sigma.pt"), category_dir / "sigma.pt", 384)
    save_torch(EFFICIENTAD_FOLDER.path(out_dir, "teacher"), teacher)
    save_torch(EFFICIENTAD_FOLDER.path(out_dir, "student"), student)
    save_torch(EFFICIENTAD_FOLDER.path(out_dir, "autoencoder"), autoencoder)
    save_torch(EFFICIENTAD_FOLDER.path(out_dir, "teacher_stats"), {"mean": mean, "std": std})
    meta = {"size": size, "image_size": image_size, "out_channels": 384,
            "params": {"source": "puad", "puad_dir": str(puad_dir), "dataset_folder": dataset_folder,
                       "category": category, "teacher_norm": "p"},
            "inference": {"map_padding": map_padding, "batch_size": 16, "amp": amp}}
    EFFICIENTAD_FOLDER.write(out_dir, meta)
    return {**meta, "family": EFFICIENTAD_FOLDER.family}


def import_puad_quantiles(puad_dir: str | os.PathLike, size: str, dataset_folder: str, category: str,
                          model_dir: str | os.PathLike) -> dict:
    """The ``fit_quantiles`` stage's ``quantiles.json`` of an imported folder, from P's ``quantile.pt`` (0.9 and
    0.995 quantiles of the validation maps resized to 256², "resized" maps), for the networks
    :func:`import_puad_networks` wrote into ``model_dir``; returns it."""
    from anomalyflow.efficientad.model import weights_digest

    quantile_file = _category_dir(puad_dir, size, dataset_folder, category) / "quantile.pt"
    raw = read_official_file(quantile_file)
    missing = [k for k in PUAD_QUANTILE_KEYS if not isinstance(raw, dict) or k not in raw]
    if missing:
        raise DataError(f"{quantile_file}: not a PUAD quantile dict (missing {missing})")
    quantiles = {ours: float(torch.as_tensor(raw[theirs]).reshape(-1)[0])
                 for theirs, ours in PUAD_QUANTILE_KEYS.items()}
    quantiles.update({"maps": "resized", "source": str(quantile_file), "weights": weights_digest(model_dir)})
    write_json(EFFICIENTAD_FOLDER.path(model_dir, "quantiles"), quantiles)
    return quantiles


def import_puad_model(puad_dir: str | os.PathLike, size: str, dataset_folder: str, category: str,
                      out_dir: str | os.PathLike, *, image_size: int = 256, map_padding: int = 0,
                      amp: bool = False) -> dict:
    """A whole EfficientAD model folder from a PUAD model folder (:func:`import_puad_networks`, then
    :func:`import_puad_quantiles`); returns its ``model.json``. The workflow runs the two as its two stages."""
    meta = import_puad_networks(puad_dir, size, dataset_folder, category, out_dir, image_size=image_size,
                                map_padding=map_padding, amp=amp)
    import_puad_quantiles(puad_dir, size, dataset_folder, category, out_dir)
    return meta


__all__ = ["import_puad_model", "import_puad_networks", "import_puad_quantiles", "load_teacher_file",
           "read_official_file", "state_dict_for"]
