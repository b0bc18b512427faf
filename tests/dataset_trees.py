"""Stand-ins for the public datasets: tiny trees in each official layout, at the folder names the default
config looks for under ``data_root`` (config/config.yaml), plus an ``imagenet/train`` folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from anomalyflow.data.synth import generate

LOCO = ["breakfast_box", "juice_bottle", "pushpins", "screw_bag", "splicing_connectors"]
MVTEC_AD = ["bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut", "pill", "screw",
            "tile", "toothbrush", "transistor", "wood", "zipper"]
VISA = ["candle", "capsules", "cashew", "chewinggum", "fryum", "macaroni1", "macaroni2", "pcb1", "pcb2", "pcb3",
        "pcb4", "pipe_fryum"]
BTAD = ["01", "02", "03"]
SIZE = (32, 24)


def _image(path: Path, value: int = 90) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    pixels = np.clip(value + rng.normal(0, 20, (SIZE[1], SIZE[0], 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)


def _mask(path: Path, value: int = 255) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    values = np.zeros((SIZE[1], SIZE[0]), dtype=np.uint8)
    values[4:12, 6:14] = value
    Image.fromarray(values).save(path)


def loco(root: Path) -> Path:
    """MVTec LOCO AD: the synthetic generator's LOCO-layout category under the five official names."""
    base = root / "mvtec_loco_anomaly_detection"
    generate(root / "_synth", categories=["tray"], n_train=3, n_validation=2, n_test_good=2, n_test_logical=2,
             n_test_structural=2)
    for name in LOCO:
        shutil.copytree(root / "_synth" / "tray", base / name)
    shutil.rmtree(root / "_synth")
    return base


def _train_test(base: Path, categories: list[str], normal: str, defect: str, name: str, mask_name: str) -> Path:
    """MVTec AD and BTAD: ``train/<normal>``, ``test/{<normal>,<defect>}``, ``ground_truth/<defect>``;
    ``name``/``mask_name`` format an index into file names."""
    for category in categories:
        for i in range(7):
            _image(base / category / "train" / normal / name.format(i), 80 + i)
        _image(base / category / "test" / normal / name.format(0), 70)
        for i in range(2):
            _image(base / category / "test" / defect / name.format(i), 150 + i)
            _mask(base / category / "ground_truth" / defect / mask_name.format(i))
    return base


def mvtec_ad(root: Path) -> Path:
    return _train_test(root / "mvtec_anomaly_detection", MVTEC_AD, "good", "crack", "{:03d}.png", "{:03d}_mask.png")


def visa(root: Path) -> Path:
    base = root / "VisA_20220922"
    lines = ["object,split,label,image,mask"]
    for category in VISA:
        data = Path(category) / "Data"
        for i in range(8):
            rel = data / "Images" / "Normal" / f"{i:04d}.JPG"
            _image(base / rel, 80 + i)
            lines.append(f"{category},{'train' if i < 7 else 'test'},normal,{rel},")
        for i in range(2):
            rel, mask = data / "Images" / "Anomaly" / f"{i:03d}.JPG", data / "Masks" / "Anomaly" / f"{i:03d}.png"
            _image(base / rel, 150 + i)
            _mask(base / mask, value=i + 1)
            lines.append(f"{category},test,anomaly,{rel},{mask}")
    (base / "split_csv").mkdir(parents=True)
    (base / "split_csv" / "1cls.csv").write_text("\n".join(lines) + "\n")
    return base


def btad(root: Path) -> Path:
    return _train_test(root / "BTech_Dataset_transformed", BTAD, "ok", "ko", "{:04d}.bmp", "{:04d}.png")


def imagenet(root: Path) -> Path:
    """``imagenet/train/<synset>/*.JPEG``, the layout of ILSVRC2012's train folder."""
    base = root / "imagenet" / "train"
    for i, synset in enumerate(("n01440764", "n01443537")):
        _image(base / synset / f"{synset}_{i}.JPEG", 40 + 60 * i)
    return base


def data_root(root: Path) -> Path:
    """All four public datasets and ImageNet under one ``data_root``, as the README describes."""
    root.mkdir(parents=True, exist_ok=True)
    for build in (loco, mvtec_ad, visa, btad, imagenet):
        build(root)
    return root
