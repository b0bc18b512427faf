"""PUAD (Sugawara & Imamura, ICIP 2024): EfficientAD plus a Gaussian on pooled student features.

EfficientAD's image score s_P catches "picturable" anomalies, ones with a local trace. A logical
anomaly (a missing, extra or misplaced part) may leave none, but it moves the image's *pooled*
features: f(x) = the spatial mean of the student's ST head (384 values; option ``teacher``: of the
normalised teacher output). A Gaussian fitted to f on the training normals — Ledoit–Wolf shrinkage,
since there are fewer images than dimensions — gives the "unpicturable" score
s_U = sqrt(max(0, (f−μ)ᵀ Σ⁺ (f−μ))), exactly the official formula (docs/methods.md B).

Both scores are z-scored with the mean and population standard deviation of the validation normals
and added (weights configurable, equal by default).

The logical score has a map too (ours, not the paper's). f(x) is a mean over the h·w positions p of the
feature grid, so d² = (f−μ)ᵀ P (f−μ) = Σ_p (1/hw) (f_p−μ_p)ᵀ P (f−μ) splits exactly into one term per
position (:meth:`PooledGaussian.position_terms`) for any centres μ_p whose mean over p is μ; we take the
training normals' mean feature at p (``position_mean.npz``), which removes what every normal image has at p
(with μ everywhere, the demo's maps peaked at the grid's border, where every image's features are unusual).
The logical map L_p = (f_p−μ_p)ᵀ P (f−μ), whose mean over the grid is d², is brought into EfficientAD's
map geometry (padding, bilinear resize) and fused with EfficientAD's (structural) map M the way the scores
are fused: F = w_P (M − m_M)/sd_M + w_U (L − m_L)/sd_L, with the mean and population std of each map's
pixel values over the validation normals. F is PUAD's anomaly map (the one evaluated); ``maps.npz`` also
holds L as the extra array ``logical`` (shown by the report, ignored by the metrics). M is EfficientAD's
own ``maps.npz``, not copied.

Model folder (:data:`anomalyflow.model_folder.PUAD_FOLDER`): ``gaussian.npz`` (mean, covariance, precision),
``position_mean.npz`` (``position_mean``: μ_p, float64 ``[C, h, w]``) and ``model.json`` (family "puad",
the EfficientAD folder relative to this one, the feature source, the z-score statistics of the scores
(``normalisation``) and of the maps (``map_normalisation``), and the weights).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.covariance import LedoitWolf

from anomalyflow.atomic import save_npz
from anomalyflow.batching import map_batches
from anomalyflow.data.table import fit_rows, normal_statistics, read_samples
from anomalyflow.device import resolve_device
from anomalyflow.errors import ConfigError, DataError, NumericalError
from anomalyflow.logs import get_logger
from anomalyflow.model_folder import PUAD_FOLDER
from anomalyflow.params import check_known, family_params, family_schema

log = get_logger(__name__)

FEATURES = ("student", "teacher")


class PooledGaussian:
    """Mean, Ledoit–Wolf covariance and its pseudo-inverse; ``score`` is the Mahalanobis distance."""

    def __init__(self, mean: np.ndarray | None = None, covariance: np.ndarray | None = None,
                 precision: np.ndarray | None = None):
        self.mean, self.covariance, self.precision = mean, covariance, precision

    def fit(self, features: np.ndarray) -> PooledGaussian:
        x = _as_matrix(features)
        if len(x) < 2:
            raise DataError(f"the pooled Gaussian needs at least 2 training images, got {len(x)}")
        self.mean = x.mean(axis=0)
        self.covariance = LedoitWolf().fit(x).covariance_
        self.precision = np.linalg.pinv(self.covariance)
        return self

    def score(self, features: np.ndarray) -> np.ndarray:
        if self.precision is None:
            raise RuntimeError("PooledGaussian.score before fit")
        centred = _as_matrix(features) - self.mean
        squared = np.einsum("ij,jk,ik->i", centred, self.precision, centred)
        return np.sqrt(np.maximum(0.0, squared))

    def position_terms(self, grid: torch.Tensor, centre: np.ndarray | None = None) -> torch.Tensor:
        """Each position's share of the squared distance: ``grid`` ``[B, C, h, w]`` (any float dtype and device)
        → ``[B, h, w]`` float64 on ``grid``'s device, t_p = (1/hw) (f_p − c_p)ᵀ P (f − μ) with f the grid's spatial
        mean and c_p the ``centre`` ``[C, h, w]`` (default μ at every position; any centre whose spatial mean is
        μ, such as the training normals' mean grid, works), so that Σ_p t_p = (f − μ)ᵀ P (f − μ) = d² exactly (up
        to rounding). Terms may be negative: a position whose features lie on the far side of c_p from the
        direction f moved pulls f back. Not in the PUAD paper (its score has no map); float64, because positive
        and negative terms cancel."""
        if self.precision is None:
            raise RuntimeError("PooledGaussian.position_terms before fit")
        x = grid.double()
        mean = torch.as_tensor(self.mean, dtype=torch.float64, device=x.device)
        precision = torch.as_tensor(self.precision, dtype=torch.float64, device=x.device)
        # P (f − μ) per image; (f_p − c_p)·v = f_p·v − c_p·v avoids a centred copy of the grid.
        direction = (x.mean(dim=(2, 3)) - mean) @ precision.T
        if centre is None:
            offset = (direction @ mean)[:, None, None]
        else:
            offset = torch.einsum("chw,bc->bhw", torch.as_tensor(centre, dtype=torch.float64, device=x.device),
                                  direction)
        return (torch.einsum("bchw,bc->bhw", x, direction) - offset) / (x.shape[2] * x.shape[3])

    def save(self, path: str | os.PathLike) -> None:
        save_npz(path, mean=self.mean, covariance=self.covariance, precision=self.precision)

    @classmethod
    def load(cls, path: str | os.PathLike) -> PooledGaussian:
        try:
            with np.load(path) as data:
                return cls(data["mean"], data["covariance"], data["precision"])
        except FileNotFoundError:
            raise DataError(f"{path}: PUAD Gaussian not found; run fit_puad first") from None
        except (KeyError, ValueError, OSError) as error:
            raise DataError(f"{path}: not a PUAD Gaussian ({error})") from None


def _as_matrix(features) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be [N, C], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise NumericalError("non-finite pooled features; the training images may be constant")
    return x


def zscore_statistics(scores: np.ndarray, rows: pd.DataFrame, *, purpose: str) -> tuple[float, float]:
    """Mean and population std (ddof 0, as PUAD) of validation scores ``[N]``, or of every pixel of validation
    maps ``[N, H, W]`` (the map fusion's constants); ``rows`` are checked for leakage."""
    mean, std = normal_statistics(np.asarray(scores, dtype=np.float64), rows, purpose=purpose)
    if not std > 0 or not np.isfinite(std):
        raise NumericalError(f"{purpose}: the validation values have no spread (std {std}); z-scores are undefined. "
                             "Check that the validation images are not all identical")
    return mean, std


class PUAD:
    """EfficientAD + pooled Gaussian; ``predict`` gives the fused score, the fused map and the parts."""

    family = "puad"

    def __init__(self, efficientad, gaussian: PooledGaussian, *, feature: str = "student",
                 normalisation: dict | None = None, fusion_weights: dict | None = None,
                 map_normalisation: dict | None = None, position_mean: np.ndarray | None = None):
        if feature not in FEATURES:
            raise ConfigError(f"feature: {feature!r} is not one of {', '.join(FEATURES)}")
        self.efficientad = efficientad
        self.gaussian = gaussian
        self.feature = feature
        self.normalisation = normalisation
        self.map_normalisation = map_normalisation
        self.position_mean = position_mean
        self.fusion_weights = fusion_weights_of(fusion_weights)
        self.device = efficientad.device
        self.params = {"batch_size": efficientad.params.get("batch_size", 16), "feature": feature}

    def transform(self):
        return self.efficientad.transform()

    def map_frame(self, height: int, width: int):
        return self.efficientad.map_frame(height, width)

    @torch.no_grad()
    def components(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray, torch.Tensor, np.ndarray | None,
                                                          torch.Tensor | None]:
        """From one forward pass: s_P ``[B]``, pooled features ``[B, 384]`` (float64), EfficientAD's map
        ``[B, H, W]`` and, once the Gaussian is fitted, s_U ``[B]`` and the logical map ``[B, H, W]`` float32 (both
        maps on the model's device)."""
        fitted = self.gaussian.precision is not None
        s_p, maps, features, logical = self.efficientad.predict_and_pool(
            images, self.feature, self.logical_map if fitted else None)
        features = features.double().cpu().numpy()
        return s_p, features, maps, self.gaussian.score(features) if fitted else None, logical

    def logical_map(self, grid: torch.Tensor) -> torch.Tensor:
        """L_p = (f_p − μ_p)ᵀ P (f − μ) ``[B, h, w]`` from the feature grid, μ_p the training normals' mean feature
        at p (:func:`centred_position_mean`): hw × the position terms, so its mean over the grid is d² whatever
        its size."""
        if self.position_mean is None:
            raise DataError("PUAD: the model folder has no position_mean.npz (fitted before PUAD had a map); rerun "
                            "puad_fit")
        return self.gaussian.position_terms(grid, self.position_mean) * (grid.shape[2] * grid.shape[3])

    def fuse(self, s_p: np.ndarray, s_u: np.ndarray) -> np.ndarray:
        n, w = self.normalisation, self.fusion_weights
        return (w["picturable"] * (s_p - n["mean_p"]) / n["std_p"]
                + w["unpicturable"] * (s_u - n["mean_u"]) / n["std_u"])

    def fuse_maps(self, structural: torch.Tensor, logical: torch.Tensor) -> torch.Tensor:
        """F = w_P (M − m_M)/sd_M + w_U (L − m_L)/sd_L ``[B, H, W]`` float32: the maps z-scored with their pixel
        statistics over the validation normals (:func:`zscore_statistics`), weighted as the scores are."""
        n, w = self.map_normalisation, self.fusion_weights
        if n is None:
            raise DataError("PUAD: the model folder has no map_normalisation (fitted before PUAD had a map); "
                            "rerun puad_fit")
        return (w["picturable"] * (structural.float() - n["mean_structural"]) / n["std_structural"]
                + w["unpicturable"] * (logical.float() - n["mean_logical"]) / n["std_logical"])

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> tuple[np.ndarray, torch.Tensor, dict]:
        """Fused scores ``[B]``, the fused map ``[B, H, W]`` and the parts: the two scores ``[B]`` (scores.csv
        columns) and the logical map ``[B, H, W]`` (the ``logical`` array of maps.npz)."""
        s_p, _, structural, s_u, logical = self.components(images)
        return (self.fuse(s_p, s_u), self.fuse_maps(structural, logical),
                {"score_efficientad": s_p, "score_mahalanobis": s_u, "logical": logical})

    @classmethod
    def load(cls, model_dir: str | os.PathLike, device: str | torch.device = "cpu") -> PUAD:
        from anomalyflow.efficientad.model import EfficientAD

        folder = Path(model_dir)
        meta = PUAD_FOLDER.read(folder)
        efficientad = EfficientAD.load((folder / meta["efficientad_dir"]).resolve(), device)
        return cls(efficientad, PooledGaussian.load(PUAD_FOLDER.path(folder, "gaussian")), feature=meta["feature"],
                   normalisation=meta["normalisation"], fusion_weights=meta["fusion_weights"],
                   map_normalisation=meta.get("map_normalisation"), position_mean=_load_position_mean(folder))


def _validation_components(model: PUAD, paths: list[str], *, batch_size: int, num_workers: int):
    """Of a fitted model: s_P ``[N]``, pooled features ``[N, 384]`` and both maps ``[2, N, H, W]`` float32
    (structural, logical)."""
    s_p = np.empty(len(paths))
    features = maps = None

    def components(batch: torch.Tensor):
        scores, pooled, structural, _, logical = model.components(batch)
        return scores, pooled, torch.stack([structural.float(), logical]).cpu().numpy()

    for rows, (scores, pooled, both) in map_batches(components, paths, model.transform(), batch_size,
                                                    device=model.device, num_workers=num_workers,
                                                    desc="validation scores", what="PUAD features"):
        if features is None:
            features = np.empty((len(paths), pooled.shape[1]))
            maps = np.empty((2, len(paths), *both.shape[2:]), dtype=np.float32)
        s_p[rows], features[rows], maps[:, rows] = scores, pooled, both
    return s_p, features, maps


def _load_position_mean(folder: Path) -> np.ndarray | None:
    path = PUAD_FOLDER.path(folder, "position_mean")
    if not path.is_file():
        return None
    with np.load(path) as data:
        return data["position_mean"]


@torch.no_grad()
def _train_statistics(model: PUAD, paths: list[str], *, batch_size: int,
                      num_workers: int) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features ``[N, 384]`` (float64, the Gaussian's data) and the mean feature grid ``[C, h, w]``
    (float64, the logical map's centre before :func:`centred_position_mean`) of the training images, from one
    forward pass each."""
    ead = model.efficientad
    features = total = None

    def one_pass(batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        pooled, sums = [], []
        for chunk in ead.micro_batches(batch):
            outputs = ead.outputs(chunk)
            pooled.append(ead.pooled_features(outputs, model.feature))
            sums.append(ead.feature_grid(outputs, model.feature).double().sum(dim=0))
        return torch.cat(pooled).double().cpu().numpy(), torch.stack(sums).sum(dim=0).cpu().numpy()

    for rows, (pooled, grid_sum) in map_batches(one_pass, paths, model.transform(), batch_size, device=model.device,
                                                num_workers=num_workers, desc="train features",
                                                what="PUAD features"):
        if features is None:
            features = np.empty((len(paths), pooled.shape[1]))
        features[rows] = pooled
        total = grid_sum if total is None else total + grid_sum
    return features, total / len(paths)


def centred_position_mean(grid: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """μ_p: the training normals' mean feature grid ``grid`` ``[C, h, w]`` shifted by a constant so that its
    spatial mean is exactly μ (``mean`` ``[C]``, the Gaussian's, from float32 pooling): the logical map's centre,
    which keeps Σ_p t_p = d² exact while taking out what every normal image has at p (its layout)."""
    return grid - grid.mean(axis=(1, 2), keepdims=True) + np.asarray(mean, dtype=np.float64)[:, None, None]


def fusion_weights_of(given: Mapping[str, float] | None) -> dict[str, float]:
    """The weights of the two z-scored parts (``fusion_weights``): ``given`` over the schema's defaults (1 and 1);
    :class:`ConfigError` for a part the schema does not know."""
    parts = family_schema("puad")["properties"]["fusion_weights"]["properties"]
    check_known(given, parts, what="puad fusion_weights")
    return {**{name: spec["default"] for name, spec in parts.items()}, **(given or {})}


def fit_puad(samples_path: str | os.PathLike, efficientad_dir: str | os.PathLike, out_dir: str | os.PathLike,
             params: Mapping | None, *, device: str = "auto", num_workers: int = 0) -> PUAD:
    """Fit the Gaussian on the training normals and the z-scores on the validation normals; write the folder.

    ``params`` is the method's merged config entry (:func:`anomalyflow.params.family_params`: an unknown key
    raises :class:`ConfigError`, unset keys take the schema's defaults).
    """
    from anomalyflow.efficientad.model import EfficientAD

    params = family_params("puad", params)
    table = read_samples(samples_path)
    train = fit_rows(table, "train", purpose="PUAD Gaussian")
    validation = fit_rows(table, "validation", purpose="PUAD z-score normalisation")
    model = PUAD(EfficientAD.load(efficientad_dir, resolve_device(device)), PooledGaussian(),
                 feature=params["feature"], fusion_weights=params["fusion_weights"])
    batch_size = params["batch_size"]
    train_features, train_grid = _train_statistics(model, train["path"].tolist(), batch_size=batch_size,
                                                   num_workers=num_workers)
    model.gaussian.fit(train_features)
    model.position_mean = centred_position_mean(train_grid, model.gaussian.mean)
    s_p, val_features, val_maps = _validation_components(model, validation["path"].tolist(), batch_size=batch_size,
                                                         num_workers=num_workers)
    s_u = model.gaussian.score(val_features)
    mean_p, std_p = zscore_statistics(s_p, validation, purpose="PUAD z-score of the EfficientAD score")
    mean_u, std_u = zscore_statistics(s_u, validation, purpose="PUAD z-score of the Mahalanobis score")
    model.normalisation = {"mean_p": mean_p, "std_p": std_p, "mean_u": mean_u, "std_u": std_u}
    mean_m, std_m = zscore_statistics(val_maps[0], validation, purpose="PUAD z-score of the structural map")
    mean_l, std_l = zscore_statistics(val_maps[1], validation, purpose="PUAD z-score of the logical map")
    model.map_normalisation = {"mean_structural": mean_m, "std_structural": std_m,
                               "mean_logical": mean_l, "std_logical": std_l}
    log.info("PUAD: Gaussian on %d training images (%d features); z-scores from %d validation images",
             len(train), train_features.shape[1], len(validation))
    folder = Path(out_dir)
    model.gaussian.save(PUAD_FOLDER.path(folder, "gaussian"))
    save_npz(PUAD_FOLDER.path(folder, "position_mean"), position_mean=model.position_mean)
    PUAD_FOLDER.write(folder, {
        "efficientad_dir": os.path.relpath(Path(efficientad_dir).resolve(), folder.resolve()),
        "feature": model.feature, "normalisation": model.normalisation, "fusion_weights": model.fusion_weights,
        "map_normalisation": model.map_normalisation, "n_train": len(train), "n_validation": len(validation)})
    return model
