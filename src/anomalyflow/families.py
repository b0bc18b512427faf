"""Every method family's model class, by plain imports: load any trained model folder.

:func:`load_model` reads which family a folder holds (:func:`anomalyflow.model_folder.read_family`) and loads
it with that family's class; an ensemble's members are sibling folders, loaded the same way. This is what
``anomalyflow predict`` and library users call. The workflow's scoring jobs import only their own family's
class (``workflow/scripts/<family>_score.py``), so editing one family's code reruns that family's jobs alone;
nothing imports this module but those that may meet any family.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from anomalyflow.device import resolve_device
from anomalyflow.efficientad.model import EfficientAD
from anomalyflow.ensemble import Ensemble
from anomalyflow.model_folder import ENSEMBLE_FOLDER, read_family
from anomalyflow.patchcore import PatchCore
from anomalyflow.pni.model import PNI
from anomalyflow.pni.refined import RefinedPNI
from anomalyflow.puad import PUAD
from anomalyflow.scoring import score_category

#: The model class of each family that loads from its own folder (an ensemble is built from its members').
MODEL_CLASSES = {cls.family: cls for cls in (PatchCore, EfficientAD, PUAD, PNI, RefinedPNI)}


def load_model(model_dir: str | os.PathLike, device: str | torch.device = "auto"):
    """The trained model in ``model_dir`` (any family), ready to ``predict``, on ``device`` (``auto``: CUDA when
    there is one). Raises :class:`~anomalyflow.errors.DataError` for a folder of no known family."""
    folder = Path(model_dir)
    device = resolve_device(device)
    family = read_family(folder)
    if family == ENSEMBLE_FOLDER.family:
        meta = ENSEMBLE_FOLDER.read(folder)
        members = [load_model(folder.parent / name, device) for name in meta["members"]]
        return Ensemble(members, meta, members[0].device)
    return MODEL_CLASSES[family].load(folder, device)


def score_folder(model_dir: str | os.PathLike, samples_path: str | os.PathLike, scores_path: str | os.PathLike,
                 maps_path: str | os.PathLike | None, *, device: str | torch.device = "auto",
                 batch_size: int | None = None, num_workers: int = 0):
    """:func:`anomalyflow.scoring.score_category` with the model in ``model_dir``, of any family."""
    return score_category(load_model(model_dir, device), samples_path, scores_path, maps_path, batch_size=batch_size,
                          num_workers=num_workers)


__all__ = ["MODEL_CLASSES", "load_model", "score_folder"]
