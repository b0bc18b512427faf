"""PNI (Bae, Lee and Kim, ICCV 2023): the model class the generic scorer drives (docs/methods.md C1–C6).

Fit, in two stages (:mod:`anomalyflow.pni.stages`):

1. **memory** — patch features of the training normals (C1, C2), the banks C_emb, C_dist, C_emb_edge (C3),
   the position histograms without and with edge (C5);
2. **mlp** — the neighbourhood MLP q(c | N(u)) on the same features (C4).

Score a batch (C6): each patch's distances to every C_emb entry; s_nb (gate q_nb(parent(c)) > τ_nb) and
s_pos (gate H_u(c) > τ_pos, no-edge histogram); ``score: nb_coor`` (default) maps (s_nb + s_pos)/2,
``nb`` maps s_nb, ``coor`` maps s_pos_edge (with-edge histogram and C_emb_edge, over the full grid, as the
official "coor" map). Both gates are defined on every position (the MLP sees zero-padded
neighbourhoods, and edge positions of the no-edge histogram hold the votes of interior positions within
r); for ``nb_coor`` and ``nb`` the edge values are then dropped by the map geometry anyway: the map's
``patch_size // 2`` edge is cut and replicate-padded back, resized to the crop and blurred (σ 8); the image
score is the maximum of the interior patch map. ``coor`` keeps the full grid and its maximum.

Model folder (:data:`anomalyflow.model_folder.PNI_FOLDER`; stage ``fit_memory`` writes the banks,
``position.npz`` and ``memory.json``, stage ``fit_mlp`` the rest):

- ``coreset_emb.faiss``, ``coreset_dist.faiss``, ``coreset_emb_edge.faiss``: the banks (faiss ``IndexFlatL2``);
- ``position.npz``: vote counts ``no_edge`` ``[h·w, |C_emb|]`` and ``with_edge`` ``[h·w, |C_emb_edge|]``
  (:mod:`anomalyflow.pni.position`), plus ``grid`` and ``radius``;
- ``memory.json``: {params, grid, sizes} written by the memory stage (folders written before maps
  had a frame per image also hold one ``frame``, now unused: :meth:`PNI.map_frame` gives each image's);
- ``neighbourhood.pt`` (the best-validation MLP state dict), ``neighbourhood.json`` (its training history);
- ``model.json``: {"family": "pni", params, grid, sizes}, written last by the MLP stage.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from anomalyflow.atomic import save_torch, write_json
from anomalyflow.batching import map_batches
from anomalyflow.device import resolve_device
from anomalyflow.errors import ConfigError, DataError, NumericalError
from anomalyflow.logs import get_logger
from anomalyflow.model_folder import PNI_FOLDER
from anomalyflow.params import Params, family_params
from anomalyflow.patches.features import PatchFeatures
from anomalyflow.patches.memory import MemoryBank
from anomalyflow.patches.nearest import block_rows, distances, nearest
from anomalyflow.pni import gates
from anomalyflow.pni.banks import Banks, select_banks
from anomalyflow.pni.geometry import (
    Frame,
    border,
    crop_frame,
    interior_mask,
    interior_max,
    patch_map_to_pixels,
    pni_transform,
)
from anomalyflow.pni.neighbourhood import NeighbourhoodMLP, neighbour_probabilities, train_mlp
from anomalyflow.pni.position import load_counts, position_counts, position_gate, save_counts
from anomalyflow.readers import load_json
from anomalyflow.state_files import load_into, load_state

log = get_logger(__name__)

#: Parameters that define the memory stage's files; the MLP stage must see the same values.
MEMORY_KEYS = ("backbone", "weights", "layers", "resize", "crop", "patch_size", "embed_dim", "coreset_fraction",
               "dist_coreset_size", "coreset_projection", "coreset_storage", "position_radius", "seed")
#: The three banks (C3): attributes of :class:`~anomalyflow.pni.banks.Banks` and roles in the model folder.
BANKS = ("emb", "dist", "emb_edge")


def resolve_params(params: Mapping | None) -> Params:
    """A ``pni`` method's parameters (:func:`anomalyflow.params.family_params`: checked, unset keys from the
    schema); raises :class:`ConfigError` for an unknown key or a value out of range."""
    return family_params("pni", params)


class PNI:
    """Fit on normal images (two stages), then ``predict(images) -> (scores, maps)`` on batches."""

    family = "pni"

    def __init__(self, params: Mapping | None = None, device: str | torch.device = "cpu"):
        self.params = resolve_params(params)
        self.device = resolve_device(device)  # "auto" too: a scoring script passes the config's device
        p = self.params
        self._features: PatchFeatures | None = None
        self.edge = border(p["patch_size"])
        self.grid: tuple[int, int] | None = None
        self.banks: Banks | None = None
        self.counts: dict[str, torch.Tensor] | None = None
        self.mlp: NeighbourhoodMLP | None = None
        self._derived: dict | None = None

    @property
    def features(self) -> PatchFeatures:
        """The backbone + aggregation (C2), built on first use: the MLP stage with a feature cache never needs it."""
        if self._features is None:
            p = self.params
            self._features = PatchFeatures(p["backbone"], p["layers"], weights=p["weights"],
                                           patch_size=p["patch_size"], embed_dim=p["embed_dim"]).to(self.device)
        return self._features

    @property
    def batch_size(self) -> int:
        return int(self.params["batch_size"])

    def transform(self):
        return pni_transform(self.params["resize"], self.params["crop"])

    def map_frame(self, height: int, width: int) -> Frame:
        """The centre crop's part of a ``height × width`` image (C1); it depends on the aspect ratio."""
        return crop_frame(height, width, self.params["resize"], self.params["crop"])

    # --- fitting ---------------------------------------------------------------------------------

    @torch.no_grad()
    def embed(self, paths: Sequence[str], *, num_workers: int = 0, desc: str | None = "features") -> torch.Tensor:
        """Patch features ``[N, h, w, E]`` (float32, CPU) of the images (the batch halves on CUDA out-of-memory)."""
        chunks = [features for _, features in map_batches(lambda batch: self.features(batch).float().cpu(), paths,
                                                           self.transform(), self.batch_size, device=self.device,
                                                           num_workers=num_workers, desc=desc, what="PNI features")]
        features = torch.cat(chunks)
        if not torch.isfinite(features).all():
            raise NumericalError("pni: the backbone produced non-finite features on the training images")
        return features

    @torch.no_grad()
    def fit_memory(self, train_paths: Sequence[str], *, num_workers: int = 0,
                   features: torch.Tensor | None = None) -> torch.Tensor:
        """C3 and C5 from the training images; returns their features ``[N, h, w, E]`` for the MLP stage."""
        p = self.params
        if features is None:
            features = self.embed(train_paths, num_workers=num_workers, desc="train features")
        n, h, w, e = features.shape
        self.grid = (h, w)
        self.banks = select_banks(features, edge=self.edge, fraction=p["coreset_fraction"],
                                  dist_size=p["dist_coreset_size"], projection=p["coreset_projection"],
                                  storage=p["coreset_storage"], seed=p["seed"], device=self.device)
        flat = features.reshape(-1, e)
        ids = nearest(flat, self.banks.emb)[1].view(n, h, w)
        ids_edge = nearest(flat, self.banks.emb_edge)[1].view(n, h, w)
        radius = p["position_radius"]
        self.counts = {
            "no_edge": position_counts(ids, len(self.banks.emb), radius, interior_mask(h, w, self.edge, ids.device)),
            "with_edge": position_counts(ids_edge, len(self.banks.emb_edge), radius),
        }
        self._derived = None
        return features

    def fit_mlp(self, features: torch.Tensor) -> list[dict]:
        """C4: train the neighbourhood MLP on train features ``[N, h, w, E]``; returns the history."""
        p = self.params
        if self.banks is None:
            raise DataError("pni: the memory stage (coresets) must run before the neighbourhood MLP")
        if tuple(features.shape[1:3]) != self.grid or features.shape[3] != self.banks.dist.shape[1]:
            raise DataError(f"pni: train features of shape {tuple(features.shape[1:])} do not match the memory "
                            f"stage's grid {self.grid} and {self.banks.dist.shape[1]} dims")
        self.mlp, history = train_mlp(
            features, self.banks.dist, edge=self.edge, radius=p["dist_padding"], hidden=p["mlp_hidden"],
            num_layers=p["mlp_layers"], dropout=p["mlp_dropout"], epochs=p["mlp_epochs"],
            batch_size=p["mlp_batch_size"], lr=p["mlp_lr"], lr_step=p["mlp_lr_step"], lr_gamma=p["mlp_lr_gamma"],
            val_fraction=p["mlp_val_fraction"], seed=p["seed"], device=self.device, amp=p["amp"])
        self._derived = None
        return history

    # --- files -----------------------------------------------------------------------------------

    def _meta(self) -> dict:
        sizes = {name: len(getattr(self.banks, name)) for name in BANKS}
        return {"params": self.params, "grid": list(self.grid), "sizes": sizes}

    def save_memory(self, model_dir: str | os.PathLike) -> None:
        for name in BANKS:
            MemoryBank(getattr(self.banks, name)).save(PNI_FOLDER.path(model_dir, name))
        save_counts(PNI_FOLDER.path(model_dir, "position"), grid=self.grid, radius=self.params["position_radius"],
                    **self.counts)
        write_json(PNI_FOLDER.path(model_dir, "memory"), self._meta())

    def save_mlp(self, model_dir: str | os.PathLike, history: list[dict] | None = None) -> None:
        save_torch(PNI_FOLDER.path(model_dir, "mlp"), {k: v.detach().cpu() for k, v in self.mlp.state_dict().items()})
        write_json(PNI_FOLDER.path(model_dir, "mlp_spec"), {
            "input_dim": self.mlp.input_dim, "hidden": self.mlp.hidden, "num_layers": self.mlp.num_layers,
            "n_classes": self.mlp.n_classes, "history": history or []})

    def save(self, model_dir: str | os.PathLike, history: list[dict] | None = None) -> None:
        """Every file of the model folder; ``model.json`` last, so its presence means a complete model."""
        self.save_memory(model_dir)
        self.save_mlp(model_dir, history)
        self.save_model_json(model_dir)

    def save_model_json(self, model_dir: str | os.PathLike) -> None:
        PNI_FOLDER.write(model_dir, self._meta())

    @classmethod
    def load_memory(cls, model_dir: str | os.PathLike, device: str | torch.device = "cpu",
                    params: dict | None = None) -> PNI:
        """The memory stage's model; ``params`` may change the non-memory keys (MLP, scoring)."""
        folder = Path(model_dir)
        meta = load_json(PNI_FOLDER.path(folder, "memory"))
        stored = resolve_params(meta["params"])
        if params is not None:
            given = resolve_params(params)
            changed = [k for k in MEMORY_KEYS if given[k] != stored[k]]
            if changed:
                raise ConfigError(f"pni: {changed[0]} is {given[changed[0]]!r} but the memory stage in {folder} used "
                                  f"{stored[changed[0]]!r}; rerun the memory stage")
            stored = {**given, **{k: stored[k] for k in MEMORY_KEYS}}
        model = cls(stored, device)
        model._read_memory(folder, meta)
        return model

    def _read_memory(self, folder: Path, meta: dict) -> None:
        self.grid = tuple(meta["grid"])
        banks = {name: torch.from_numpy(MemoryBank.load(PNI_FOLDER.path(folder, name)).vectors()).to(self.device)
                 for name in BANKS}
        self.banks = Banks(**banks)
        position = PNI_FOLDER.path(folder, "position")
        self.counts = {k: v.to(self.device) for k, v in load_counts(position, ("no_edge", "with_edge")).items()}
        for name, bank in (("no_edge", self.banks.emb), ("with_edge", self.banks.emb_edge)):
            if self.counts[name].shape != (self.grid[0] * self.grid[1], len(bank)):
                raise DataError(f"{position}: {name} counts do not match the grid and bank sizes")
        self._derived = None

    @classmethod
    def load(cls, model_dir: str | os.PathLike, device: str | torch.device = "cpu") -> PNI:
        folder = Path(model_dir)
        meta = PNI_FOLDER.read(folder)
        model = cls(meta["params"], device)
        model._read_memory(folder, meta)
        spec = load_json(PNI_FOLDER.path(folder, "mlp_spec"))
        model.mlp = NeighbourhoodMLP(spec["input_dim"], spec["hidden"], spec["num_layers"], spec["n_classes"],
                                     model.params["mlp_dropout"])
        state = PNI_FOLDER.path(folder, "mlp")
        load_into(model.mlp, load_state(state), state)
        model.mlp.to(model.device).eval()
        return model

    # --- scoring ---------------------------------------------------------------------------------

    def derived(self) -> dict:
        """Per-model constants of C6, computed once: parents, gate masks, thresholds, bank norms."""
        if self._derived is None:
            p, banks = self.params, self.banks
            self._derived = {
                "parent": nearest(banks.emb, banks.dist)[1],
                "pos_pass": position_gate(self.counts["no_edge"], p["pos_gamma"]),
                "pos_pass_edge": position_gate(self.counts["with_edge"], p["pos_gamma"]),
                "tau_nb": p["nb_gamma"] / len(banks.emb),
                "emb_sq": banks.emb.pow(2).sum(1),
                "edge_sq": banks.emb_edge.pow(2).sum(1),
                "dist_sq": banks.dist.pow(2).sum(1),
            }
        return self._derived

    @torch.no_grad()
    def patch_scores(self, images: torch.Tensor, kinds: Sequence[str] = ("nb", "pos")) -> dict[str, torch.Tensor]:
        """Per-position scores ``[B, h, w]`` of the requested kinds (``nb``, ``pos``, ``pos_edge``)."""
        features = self.features(images.to(self.device, non_blocking=True)).float()
        h, w = features.shape[1:3]
        if (h, w) != self.grid:
            raise DataError(f"pni: images give a {h}x{w} feature grid but the model was fitted on {self.grid}; "
                            f"score {self.params['crop']}px crops (the model's transform)")
        return self.patch_scores_of_features(features, kinds)

    @torch.no_grad()
    def patch_scores_of_features(self, features: torch.Tensor, kinds: Sequence[str]) -> dict[str, torch.Tensor]:
        p, banks, c = self.params, self.banks, self.derived()
        b, h, w, e = features.shape
        queries = features.reshape(-1, e)
        positions = torch.arange(h * w, device=self.device).repeat(b)
        q_nb = None
        if "nb" in kinds:
            q_nb = neighbour_probabilities(self.mlp, features, p["dist_padding"], p["temperature"], amp=p["amp"])
        out = {kind: torch.empty(len(queries), device=self.device) for kind in kinds}
        compat = bool(p["official_compat"])
        rows = block_rows(max(len(banks.emb), len(banks.emb_edge)))
        for begin in range(0, len(queries), rows):
            part = slice(begin, begin + rows)
            chunk = queries[part]
            if "nb" in kinds or "pos" in kinds:
                dist = distances(chunk, banks.emb, c["emb_sq"])
            if "nb" in kinds:
                if compat:
                    to_cdist = distances(chunk, banks.dist, c["dist_sq"])
                    out["nb"][part] = gates.compat_nb_distance(dist, q_nb[part], to_cdist, c["parent"], c["tau_nb"])
                else:
                    out["nb"][part] = gates.gated_distance(dist, gates.nb_gate(q_nb[part], c["parent"], c["tau_nb"]))
            if "pos" in kinds:
                out["pos"][part] = self._pos_distance(dist, c["pos_pass"][positions[part]], compat)
            if "pos_edge" in kinds:
                dist_edge = distances(chunk, banks.emb_edge, c["edge_sq"])
                out["pos_edge"][part] = self._pos_distance(dist_edge, c["pos_pass_edge"][positions[part]], compat)
        return {kind: gates.score(value, p["prob_gamma"]).view(b, h, w) for kind, value in out.items()}

    @staticmethod
    def _pos_distance(dist: torch.Tensor, pos_pass: torch.Tensor, compat: bool) -> torch.Tensor:
        if compat:
            return gates.compat_pos_distance(dist, pos_pass)
        return gates.gated_distance(dist, pos_pass)

    def patch_map(self, images: torch.Tensor) -> tuple[torch.Tensor, int]:
        """The configured score's patch map ``[B, h, w]`` and the edge width its geometry crops."""
        kind = self.params["score"]
        if kind == "coor":
            return self.patch_scores(images, ("pos_edge",))["pos_edge"], 0
        if kind == "nb":
            return self.patch_scores(images, ("nb",))["nb"], self.edge
        scores = self.patch_scores(images, ("nb", "pos"))
        return 0.5 * (scores["nb"] + scores["pos"]), self.edge

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
        """Image scores ``[B]`` (numpy float64) and maps ``[B, crop, crop]`` (torch, on the device)."""
        patch, edge = self.patch_map(images)
        if not bool(torch.isfinite(patch).all()):
            raise NumericalError("pni: non-finite patch scores; the features or the MLP are degenerate")
        maps = patch_map_to_pixels(patch, edge, tuple(images.shape[-2:]), self.params["blur_sigma"])
        return interior_max(patch, edge).double().cpu().numpy(), maps


def feature_cache_dtype(name: str) -> np.dtype:
    if name not in ("float16", "float32"):
        raise ConfigError(f"pni: feature_cache_dtype must be float16 or float32, not {name!r}")
    return np.dtype(name)


__all__ = ["BANKS", "MEMORY_KEYS", "PNI", "feature_cache_dtype", "resolve_params"]
