"""Tiny image sets for the EfficientAD tests (built in tmp_path; nothing downloaded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from anomalyflow.data.table import make_table, write_samples


def textured_image(rng: np.random.Generator, side: int = 64, *, defect: bool = False) -> Image.Image:
    """A smooth random colour field with a bright square (a scratch-like bar when ``defect``)."""
    base = rng.uniform(60, 200, size=(4, 4, 3))
    field = np.kron(base, np.ones((side // 4, side // 4, 1)))
    field += rng.normal(0, 8, size=field.shape)
    y, x = rng.integers(side // 8, side // 2, size=2)
    field[y:y + side // 4, x:x + side // 4] = (230, 220, 210)
    if defect:
        field[side // 2 - 2:side // 2 + 2, :] = (10, 10, 10)
    return Image.fromarray(np.clip(field, 0, 255).astype(np.uint8))


def write_images(folder: Path, count: int, seed: int, *, side: int = 64, defect: bool = False,
                 constant: bool = False) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        image = (Image.new("RGB", (side, side), (120, 120, 120)) if constant
                 else textured_image(rng, side, defect=defect))
        path = folder / f"{i:03d}.png"
        image.save(path)
        paths.append(str(path))
    return paths


def make_category(root: Path, *, n_train: int = 6, n_val: int = 3, n_test: int = 2, side: int = 64,
                  constant: bool = False) -> Path:
    """A category with train/validation/test images and its ``samples.csv``; returns the table's path."""
    rows = []

    def add(paths, split, label, defect_type):
        kind = "none" if label == 0 else "structural"
        rows.extend({"dataset": "tiny", "category": "widget", "path": p, "split": split, "label": label,
                     "defect_type": defect_type, "anomaly_kind": kind, "mask_paths": []} for p in paths)

    add(write_images(root / "train", n_train, 1, side=side, constant=constant), "train", 0, "good")
    add(write_images(root / "validation", n_val, 2, side=side, constant=constant), "validation", 0, "good")
    add(write_images(root / "test_good", n_test, 3, side=side), "test", 0, "good")
    add(write_images(root / "test_bad", n_test, 4, side=side, defect=True), "test", 1, "scratch")
    table_path = root / "samples.csv"
    write_samples(make_table(rows), table_path)
    return table_path
