"""Quantiles: exact, linear-interpolated, without ``torch.quantile``'s 16,777,216-element limit (E7),
and the validation quantiles that normalise EfficientAD's maps (docs/methods.md A6).

``validation_quantiles`` writes ``quantiles.json``::

    {"q_st_a": float, "q_st_b": float, "q_ae_a": float, "q_ae_b": float, "maps": "resized" | "raw",
     "n_images": int, "n_values": int, "weights": str}

``weights`` is :func:`~anomalyflow.efficientad.model.weights_digest` of the networks the quantiles were computed
for; loading the model refuses quantiles of other weights.

``q_*_a`` is the 0.9 quantile and ``q_*_b`` the 0.995 quantile over every pixel of every validation
map, separately for the student–teacher (ST) and the autoencoder (AE) maps. ``maps="resized"`` (P
and the paper, the default) takes them after a bilinear resize of the 56² maps to ``image_size``²;
``maps="raw"`` (N) on the 56² maps themselves. Rows come through
:func:`~anomalyflow.data.table.fit_rows` (validation normals only): the test split never informs them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from anomalyflow.atomic import write_json
from anomalyflow.batching import map_batches
from anomalyflow.data.table import fit_rows, read_samples, require_no_test
from anomalyflow.device import resolve_device
from anomalyflow.errors import ConfigError, NumericalError
from anomalyflow.logs import get_logger
from anomalyflow.maps import resize

log = get_logger(__name__)

MAP_MODES = ("resized", "raw")
Q_A, Q_B = 0.9, 0.995


def quantile_linear(values: np.ndarray | torch.Tensor, qs: Sequence[float]) -> list[float]:
    """Quantiles of all elements with linear interpolation (``torch.quantile``'s and numpy's default).

    Any size: numpy partitions the flattened float32 array (no copy to float64, no 16.8 M limit).
    """
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    flat = array.reshape(-1)
    if flat.size == 0:
        raise ValueError("quantile of an empty array")
    return [float(v) for v in np.quantile(flat, list(qs), method="linear")]


def row_quantile(rows: torch.Tensor, q: float) -> torch.Tensor:
    """The ``q`` quantile of each row of ``[B, n]`` (linear interpolation), via ``kthvalue`` on the device.

    Used for the hard-feature threshold of every training step (A5.3: 384·56·56 = 1.2 M values per
    image; ``torch.quantile`` would also work there but sorts, and refuses > 16.8 M elements).
    """
    n = rows.shape[1]
    position = q * (n - 1)
    low = int(np.floor(position))
    high = min(low + 1, n - 1)
    fraction = position - low
    v_low = rows.kthvalue(low + 1, dim=1).values
    if fraction == 0 or high == low:
        return v_low
    v_high = rows.kthvalue(high + 1, dim=1).values
    return v_low + fraction * (v_high - v_low)


@torch.no_grad()
def map_quantiles(model, rows: pd.DataFrame, *, maps: str = "resized", batch_size: int = 16,
                  num_workers: int = 0) -> dict:
    """The four quantiles of ``model``'s raw ST and AE maps over the images of ``rows`` (no test rows)."""
    require_no_test(rows, purpose="EfficientAD map quantiles")
    if maps not in MAP_MODES:
        raise ConfigError(f"maps: {maps!r} is not a quantile mode; use 'resized' (P) or 'raw' (N)")
    paths = rows["path"].tolist()
    st_maps = ae_maps = None

    def raw_maps(batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        st, ae = model.maps(batch)
        if maps == "resized":
            st, ae = resize(st, model.image_size), resize(ae, model.image_size)
        return st.float().cpu().numpy(), ae.float().cpu().numpy()

    # The batch halves on CUDA out-of-memory (the resized maps of a large batch are the big part).
    for index, (st, ae) in map_batches(raw_maps, paths, model.transform(), batch_size, device=model.device,
                                       num_workers=num_workers, desc="validation maps", what="EfficientAD quantiles"):
        if st_maps is None:  # one float32 array per kind, filled in place: no list of tensors to concatenate
            st_maps = np.empty((len(paths), *st.shape[1:]), dtype=np.float32)
            ae_maps = np.empty_like(st_maps)
        st_maps[index] = st
        ae_maps[index] = ae
    if not (np.isfinite(st_maps).all() and np.isfinite(ae_maps).all()):
        raise NumericalError("EfficientAD produced non-finite validation maps; the training images may be constant")
    q_st_a, q_st_b = quantile_linear(st_maps, (Q_A, Q_B))
    q_ae_a, q_ae_b = quantile_linear(ae_maps, (Q_A, Q_B))
    return {"q_st_a": q_st_a, "q_st_b": q_st_b, "q_ae_a": q_ae_a, "q_ae_b": q_ae_b, "maps": maps,
            "n_images": len(paths), "n_values": int(st_maps.size)}


def validation_quantiles(
    model_dir: str | os.PathLike,
    samples_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    device: str | torch.device = "auto",
    batch_size: int = 16,
    num_workers: int = 0,
    maps: str = "resized",
) -> dict:
    """Quantiles of the trained model's maps on the category's validation normals → ``quantiles.json``."""
    from anomalyflow.efficientad.model import EfficientAD, weights_digest

    rows = fit_rows(read_samples(samples_path), "validation", purpose="EfficientAD map quantiles")
    model = EfficientAD.load(model_dir, resolve_device(device), with_quantiles=False)
    quantiles = map_quantiles(model, rows, maps=maps, batch_size=batch_size, num_workers=num_workers)
    quantiles["weights"] = weights_digest(model_dir)
    for kind in ("st", "ae"):
        if not quantiles[f"q_{kind}_b"] > quantiles[f"q_{kind}_a"]:
            log.warning("%s: the %s map's 0.995 quantile does not exceed its 0.9 quantile (%.6g ≤ %.6g); its "
                        "normalised maps will be infinite", out_path, kind.upper(), quantiles[f"q_{kind}_b"],
                        quantiles[f"q_{kind}_a"])
    write_json(out_path, quantiles)
    log.info("quantiles over %d validation images (%s maps) written to %s", len(rows), maps, out_path)
    return quantiles


__all__ = ["MAP_MODES", "map_quantiles", "quantile_linear", "row_quantile", "validation_quantiles"]
