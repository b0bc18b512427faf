"""A tiny image dataset and tiny PNI settings for the tests of the PNI library (CPU, seconds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from anomalyflow.data.table import make_table, write_samples

# resnet18 at a 72→64 px geometry: an 8×8 grid, 2-px edge, 4×4 interior.
TINY = {"backbone": "resnet18", "weights": "none", "resize": 72, "crop": 64, "embed_dim": 32,
        "coreset_fraction": 0.25, "dist_coreset_size": 16, "mlp_hidden": 32, "mlp_layers": 3, "mlp_epochs": 2,
        "mlp_batch_size": 32, "blur_sigma": 2.0, "batch_size": 4, "feature_cache_dtype": "float32"}


def tiny_dataset(root: Path, n_train: int = 8, n_test: int = 4, size: tuple[int, int] = (80, 96)) -> Path:
    """Noisy grey images (height × width = ``size``); the second half of the test set has a bright square."""
    rng = np.random.default_rng(0)
    rows = []
    height, width = size
    for split, n in (("train", n_train), ("validation", 2), ("test", n_test)):
        for i in range(n):
            image = np.full((height, width, 3), 110, np.uint8) + rng.integers(0, 40, (height, width, 3), dtype=np.uint8)
            anomalous = split == "test" and i >= n_test // 2
            masks = []
            if anomalous:
                image[30:46, 40:56] = 250
                mask = np.zeros((height, width), np.uint8)
                mask[30:46, 40:56] = 255
                Image.fromarray(mask).save(root / f"{split}{i}_mask.png")
                masks = [str(root / f"{split}{i}_mask.png")]
            Image.fromarray(image).save(root / f"{split}{i}.png")
            rows.append(dict(dataset="t", category="c", path=str(root / f"{split}{i}.png"), split=split,
                             label=int(anomalous), defect_type="bright" if anomalous else "good",
                             anomaly_kind="structural" if anomalous else "none", mask_paths=masks))
    write_samples(make_table(rows), root / "samples.csv")
    return root / "samples.csv"
