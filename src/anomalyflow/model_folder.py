"""The model-folder contract: which files each method family's folder holds, which stage writes them, and
its ``model.json``.

A trained model is a folder (``results/<dataset>/<category>/<method>/`` in the workflow) of files with fixed
names. Each family's :class:`ModelFolder` below is the one place that names them: the workflow's rules
declare exactly these files as their outputs and inputs (``model_files()`` in workflow/rules/common.smk),
and the library writes and reads them through the same object (:meth:`ModelFolder.path`), so a stage can
neither write a file its rule does not declare nor miss one it does. Stages are listed in the order they
run; the stage that writes ``model.json`` writes it last, so its presence means that stage finished.

``model.json`` names the family; :meth:`ModelFolder.read` refuses a folder of another family with one line
naming the file, and :func:`read_family` tells which family a folder holds. This module imports no
network code: the workflow reads it while it builds the DAG.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anomalyflow.atomic import write_json
from anomalyflow.errors import ConfigError, DataError
from anomalyflow.readers import load_json

MODEL_JSON = "model.json"


@dataclass(frozen=True)
class ModelFolder:
    """The files of one family's model folder.

    ``files`` maps a role (how the code names a file) to its file name; the role ``model`` is
    ``model.json`` in every family and is added here. ``stages`` maps each stage that writes into the folder
    (the workflow's ``<family>_<stage>`` rule) to the roles it writes, in the order the rule lists them.
    """

    family: str
    files: Mapping[str, str]
    stages: Mapping[str, tuple[str, ...]]
    roles: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        files = {**self.files, "model": MODEL_JSON}
        object.__setattr__(self, "files", files)
        listed = [role for roles in self.stages.values() for role in roles]
        if sorted(listed) != sorted(files) or len(set(listed)) != len(listed):
            raise ValueError(f"{self.family}: every file must be written by exactly one stage")
        object.__setattr__(self, "roles", tuple(listed))

    def names(self, *stages: str) -> list[str]:
        """File names written by ``stages`` (every stage when none is given), in stage order."""
        unknown = [stage for stage in stages if stage not in self.stages]
        if unknown:
            raise ValueError(f"{self.family}: no stage {unknown[0]!r}; stages: {', '.join(self.stages)}")
        chosen = stages or tuple(self.stages)
        return [self.files[role] for stage in self.stages if stage in chosen for role in self.stages[stage]]

    def path(self, folder: str | os.PathLike, role: str) -> Path:
        """The file of ``role`` in ``folder`` (a :class:`KeyError` names an unknown role: a library mistake)."""
        return Path(folder) / self.files[role]

    def read(self, folder: str | os.PathLike) -> dict[str, Any]:
        """``model.json`` of ``folder``; raises :class:`ConfigError` when it is another family's."""
        path = Path(folder) / MODEL_JSON
        meta = load_json(path)
        family = meta.get("family") if isinstance(meta, dict) else None
        if family != self.family:
            raise ConfigError(f"{path}: family {family!r} is not {self.family!r}")
        return meta

    def write(self, folder: str | os.PathLike, meta: Mapping[str, Any]) -> None:
        """``model.json``: ``meta`` with this folder's family (written atomically)."""
        write_json(Path(folder) / MODEL_JSON, {**meta, "family": self.family})


PATCHCORE_FOLDER = ModelFolder("patchcore", {"bank": "memory.faiss"}, {"fit": ("bank", "model")})
EFFICIENTAD_FOLDER = ModelFolder(
    "efficientad",
    {"student": "student.pt", "autoencoder": "autoencoder.pt", "teacher": "teacher.pt",
     "teacher_stats": "teacher_stats.pt", "quantiles": "quantiles.json"},
    {"fit": ("model", "student", "autoencoder", "teacher", "teacher_stats"), "fit_quantiles": ("quantiles",)},
)
PUAD_FOLDER = ModelFolder("puad", {"gaussian": "gaussian.npz", "position_mean": "position_mean.npz"},
                          {"fit": ("gaussian", "position_mean", "model")})
PNI_FOLDER = ModelFolder(
    "pni",
    {"emb": "coreset_emb.faiss", "dist": "coreset_dist.faiss", "emb_edge": "coreset_emb_edge.faiss",
     "position": "position.npz", "memory": "memory.json", "mlp": "neighbourhood.pt",
     "mlp_spec": "neighbourhood.json"},
    {"fit_memory": ("emb", "dist", "emb_edge", "position", "memory"), "fit_mlp": ("mlp", "mlp_spec", "model")},
)
PNI_REFINED_FOLDER = ModelFolder("pni_refined", {"refiner": "refiner.pt", "history": "refiner.json"},
                          {"fit": ("refiner", "history", "model")})
ENSEMBLE_FOLDER = ModelFolder("ensemble", {}, {"score": ("model",)})

#: Every family's folder, by family name (the ``family`` of a method's config entry and of ``model.json``).
FOLDERS: dict[str, ModelFolder] = {folder.family: folder for folder in (
    PATCHCORE_FOLDER, EFFICIENTAD_FOLDER, PUAD_FOLDER, PNI_FOLDER, PNI_REFINED_FOLDER, ENSEMBLE_FOLDER)}


def read_family(folder: str | os.PathLike) -> str:
    """The family a model folder holds, from its ``model.json``; :class:`DataError` for none we know."""
    path = Path(folder) / MODEL_JSON
    meta = load_json(path)
    family = meta.get("family") if isinstance(meta, dict) else None
    if family not in FOLDERS:
        raise DataError(f"{path}: not a model folder of a known family ({family!r}; known: {', '.join(FOLDERS)})")
    return family


__all__ = ["EFFICIENTAD_FOLDER", "ENSEMBLE_FOLDER", "FOLDERS", "MODEL_JSON", "PATCHCORE_FOLDER", "PNI_FOLDER",
           "PNI_REFINED_FOLDER", "PUAD_FOLDER", "ModelFolder", "read_family"]
