"""Scoring with an exported model through onnxruntime alone: no torch, no faiss (``pip install anomalyflow[export]``).

``anomalyflow predict --model model.onnx`` lands here. Each image is decoded by
:func:`anomalyflow.data.images.load_image` and resized to the model's ``S × S`` with PIL's bilinear filter,
exactly as the library's :mod:`anomalyflow.data.transforms` does before its ``to_tensor``; the uint8 pixels go
into the graph, which does the rest. The outputs are written as ``anomalyflow predict`` writes a model
folder's (:func:`anomalyflow.predict.write_predictions`). This module and what it imports never import torch
(``tests/test_export.py`` runs it with torch made unimportable).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from anomalyflow.data.images import load_image
from anomalyflow.errors import AnomalyflowError, ConfigError, DataError
from anomalyflow.export.writer import METADATA_KEY  # writer imports torch only inside its functions
from anomalyflow.frames import FULL_FRAME
from anomalyflow.predict import check_map_format, list_input_images, write_predictions
from anomalyflow.thresholds import false_alarm_thresholds, parse_false_alarm_rate


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise AnomalyflowError("onnxruntime is not installed: pip install 'anomalyflow[export]'") from None
    return onnxruntime


class ExportedModel:
    """An exported model file, ready to score: ``predict(uint8 [B, 3, S, S]) -> {output name: array}``."""

    def __init__(self, path: str | os.PathLike, device: str = "auto", threads: int | None = None):
        ort = _onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"{self.path}: no such exported model")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        available = ort.get_available_providers()
        providers = ["CPUExecutionProvider"]
        if device in ("auto", "cuda") and "CUDAExecutionProvider" in available:
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as error:  # onnxruntime raises its own exception types for unreadable files
            raise DataError(f"{self.path}: not a readable ONNX model ({str(error).splitlines()[0]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            raise DataError(f"{self.path}: not an anomalyflow export (no '{METADATA_KEY}' metadata); "
                            "write it with `anomalyflow export`")
        self.meta = json.loads(meta[METADATA_KEY])
        self.size = int(self.meta["image_size"])
        self.outputs = [output.name for output in self.session.get_outputs()]

    def model_input(self, path: str) -> np.ndarray:
        """One image as the graph's input: uint8 ``[3, S, S]``, RGB (PIL bilinear resize, as the library)."""
        from PIL import Image

        picture = load_image(path).resize((self.size, self.size), Image.BILINEAR)
        return np.asarray(picture, dtype=np.uint8).transpose(2, 0, 1)

    def predict(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(self.outputs, self.session.run(None, {"image": batch}), strict=True))

    def score_paths(self, paths: Sequence[str], batch_size: int = 16) -> tuple[np.ndarray, np.ndarray,
                                                                                 dict[str, np.ndarray]]:
        """Scores ``[N]`` float64, maps ``[N, S, S]`` float32 and any extra outputs ``[N]`` of the images."""
        parts: dict[str, list[np.ndarray]] = {name: [] for name in self.outputs}
        for begin in range(0, len(paths), batch_size):
            batch = np.stack([self.model_input(p) for p in paths[begin:begin + batch_size]])
            for name, values in self.predict(batch).items():
                parts[name].append(values)
        joined = {name: np.concatenate(values) for name, values in parts.items()}
        scores, maps = joined.pop("score").astype(np.float64), joined.pop("map").astype(np.float32)
        return scores, maps, joined

    def threshold(self, threshold: str | None, quantile: float) -> float | None:
        """None, the ``quantile`` of the validation normals' scores (stored in the file), the operating point
        ``fpr:<rate>`` on those same scores (:func:`anomalyflow.thresholds.false_alarm_thresholds`, so the model
        folder's ``operating_points.csv`` threshold at that rate, bit for bit), or a number."""
        if threshold in (None, "none"):
            return None
        rate = parse_false_alarm_rate(threshold)
        if threshold == "quantile" or rate is not None:
            values = self.meta.get("validation_scores") or []
            if not values:
                raise DataError(f"{self.path}: holds no validation scores; give --threshold a number or none")
            if rate is not None:
                try:
                    return float(false_alarm_thresholds(values, [rate])[0])
                except ConfigError as error:
                    raise DataError(f"--threshold {threshold}: {error}") from None
            if not 0 < quantile < 1:
                raise DataError(f"threshold quantile must lie in (0, 1), got {quantile}")
            return float(np.quantile(np.asarray(values, dtype=np.float64), quantile))
        if threshold == "f1":
            raise DataError("--threshold f1 needs the category's labelled test scores, which an exported model does "
                            "not hold; use quantile, a number or none")
        try:
            return float(threshold)
        except ValueError:
            raise DataError(f"--threshold: {threshold!r} is not none, quantile, fpr:<rate> or a number") from None


def predict_exported(model_path: str | os.PathLike, images: str | os.PathLike, out_dir: str | os.PathLike, *,
                     threshold: str | None = "quantile", quantile: float = 0.99, map_format: str = "tiff",
                     batch_size: int | None = None, device: str = "auto") -> pd.DataFrame:
    """:func:`anomalyflow.predict.predict_images` for an exported ``.onnx`` file: the same files, without torch."""
    check_map_format(map_format)
    model = ExportedModel(model_path, device)
    paths = list_input_images(images)
    cut = model.threshold(threshold, quantile)
    scores, maps, _ = model.score_paths(paths, batch_size or 16)
    frames = np.tile(np.asarray(FULL_FRAME, dtype=np.float64), (len(paths), 1))
    low, high = model.meta.get("colour_range", (0.0, 1.0))
    return write_predictions(out_dir, paths, scores, maps, frames, (float(low), float(high)), cut, map_format)


__all__ = ["ExportedModel", "predict_exported"]
