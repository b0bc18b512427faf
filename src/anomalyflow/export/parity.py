"""How closely an exported file reproduces its model folder: every image of the folder's ``scores.csv``
scored through the file by onnxruntime (:class:`anomalyflow.export.runtime.ExportedModel`, no torch) and
compared with ``scores.csv`` and ``maps.npz``.

The export job runs it on every file it writes, so ``exports.csv`` and the report state each export's
measured agreement instead of trusting that the graph is right. The tolerances are those of
``tests/test_export.py`` (docs/methods.md H): scores within 1e-4 relative, with a floor of 1e-5 of the
scores' range for scores near zero (PUAD's z-scores cross it); maps within 1e-3 absolute. A folder scored on
a GPU with fp16 autocast (``inference.amp``) may exceed them, the export being float32: that is recorded
(``within_tolerance`` false, and a warning), not an error.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from anomalyflow.atomic import write_json
from anomalyflow.errors import DataError
from anomalyflow.export.runtime import ExportedModel
from anomalyflow.logs import get_logger
from anomalyflow.outputs import read_maps, read_scores

log = get_logger(__name__)

SCORE_RTOL, SCORE_RANGE_FLOOR, MAP_ATOL = 1e-4, 1e-5, 1e-3


def export_parity(onnx_path: str | os.PathLike, model_dir: str | os.PathLike, *, batch_size: int = 16,
                  threads: int | None = None) -> dict:
    """The exported file's scores and maps of the folder's ``scores.csv`` images against the folder's own.

    Returns a dict: ``images`` (count), ``max_score_difference`` (absolute, in score units),
    ``max_relative_score_difference`` (÷ |stored score|), ``max_map_difference`` (absolute, in map units) and
    ``within_tolerance`` (bool: every score within 1e-4 relative or 1e-5 of the scores' range, every map pixel
    within 1e-3). Raises :class:`DataError` when the folder has no scores or maps, or they name other images.
    """
    folder = Path(model_dir)
    scores = read_scores(folder / "scores.csv")
    maps, paths, _ = read_maps(folder / "maps.npz")
    wanted = scores["path"].tolist()
    if sorted(paths) != sorted(wanted):
        raise DataError(f"{folder}: scores.csv and maps.npz name different images")
    stored_maps = maps[[paths.index(p) for p in wanted]] if paths != wanted else maps
    got, got_maps, _ = ExportedModel(onnx_path, "cpu", threads=threads).score_paths(wanted, batch_size)
    expected = scores["score"].to_numpy(dtype=np.float64)
    difference = np.abs(got - expected)
    allowed = np.maximum(SCORE_RTOL * np.abs(expected), SCORE_RANGE_FLOOR * float(np.ptp(expected)))
    map_difference = float(np.abs(got_maps - stored_maps).max()) if len(wanted) else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(expected != 0, difference / np.abs(expected), np.where(difference == 0, 0.0, np.inf))
    result = {"images": len(wanted), "max_score_difference": float(difference.max(initial=0.0)),
              "max_relative_score_difference": float(relative.max(initial=0.0)),
              "max_map_difference": map_difference,
              "within_tolerance": bool((difference <= allowed).all() and map_difference <= MAP_ATOL)}
    if not result["within_tolerance"]:
        log.warning("%s: the export differs from %s beyond the tolerances (scores %.2e, maps %.2e); a folder "
                    "scored with fp16 autocast on a GPU does", onnx_path, folder, result["max_score_difference"],
                    map_difference)
    return result


def write_export_parity(onnx_path: str | os.PathLike, model_dir: str | os.PathLike,
                        out_path: str | os.PathLike, **kwargs) -> dict:
    """:func:`export_parity` written to ``out_path`` (JSON, atomically)."""
    result = export_parity(onnx_path, model_dir, **kwargs)
    write_json(out_path, result)
    return result


__all__ = ["MAP_ATOL", "SCORE_RANGE_FLOOR", "SCORE_RTOL", "export_parity", "write_export_parity"]
