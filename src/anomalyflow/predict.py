"""``anomalyflow predict``: score new images with a trained model folder of the workflow.

For each image it writes a float anomaly map (TIFF or NPY, at the model's input resolution) and an
overlay PNG (the map as a heatmap over the part of the image it covers — all of it, or PNI's centre
crop, see :mod:`anomalyflow.frames` — and the image as it is elsewhere), plus ``predictions.csv``
with the image score, the pixel box the map covers (``map_top, map_left, map_bottom, map_right``:
rows ``map_top`` to ``map_bottom − 1``, columns likewise) and, given a threshold, the decision: anomalous
iff ``score >= threshold``, the convention of :mod:`anomalyflow.thresholds` and of the ROC curve.
Images are scored exactly as the workflow scores a category (:func:`anomalyflow.scoring.score_paths`,
each ensemble member through its own preprocessing), so a model folder's ``scores.csv`` and
``predict`` give the same score for the same image (``tests/test_predict.py`` checks every model
folder of the demo). The colour scale of the overlays is fixed per model — from the median of the
validation normals' map values to the larger of their maximum and the threshold — so overlays of
different images compare, and red means "beyond anything seen in a normal image".
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

from anomalyflow.atomic import atomic_path, write_csv
from anomalyflow.data.images import IMAGE_EXTENSIONS, is_image_name, load_image
from anomalyflow.errors import DataError
from anomalyflow.frames import FULL_FRAME, map_frames, pixel_box
from anomalyflow.logs import get_logger
from anomalyflow.model_folder import MODEL_JSON
from anomalyflow.outputs import colour_range, method_outputs, read_scores

log = get_logger(__name__)


def list_input_images(source: str | os.PathLike) -> list[str]:
    """An image file, or every image under a folder (recursively, sorted)."""
    path = Path(source)
    if path.is_file():
        return [str(path)]
    if not path.is_dir():
        raise DataError(f"{path}: no such image or folder")
    images = sorted(str(p) for p in path.rglob("*") if p.is_file() and is_image_name(p.name))
    if not images:
        raise DataError(f"{path}: no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in this folder")
    return images


def resolve_threshold(model_dir: Path, threshold: str | None, quantile: float) -> float | None:
    """The threshold ``--threshold`` names (None for ``none``): ``quantile``, ``f1``, ``fpr:<rate>`` (the operating
    point of that validation false-alarm rate in the folder's ``operating_points.csv``) or a number. Raises
    :class:`DataError` for any other text and for an operating point the folder does not have."""
    from anomalyflow.thresholds import f1_threshold, parse_false_alarm_rate, quantile_threshold, read_operating_point

    if threshold in (None, "none"):
        return None
    rate = parse_false_alarm_rate(threshold)
    if rate is not None:
        return read_operating_point(model_dir, rate)
    if threshold in ("quantile", "f1"):
        scores_path, _ = method_outputs(model_dir)
        scores = read_scores(scores_path)
        return quantile_threshold(scores, quantile) if threshold == "quantile" else f1_threshold(scores)
    try:
        return float(threshold)
    except ValueError:
        raise DataError(f"--threshold: {threshold!r} is not none, quantile, f1, fpr:<rate> or a number") from None


def overlay(image: np.ndarray, anomaly_map: np.ndarray, low: float, high: float, alpha: float = 0.5,
            frame=FULL_FRAME) -> np.ndarray:
    """A jet heatmap of ``anomaly_map`` blended over the part of the uint8 RGB ``image`` ``[H, W, 3]`` it covers.

    ``frame`` (fractions, :mod:`anomalyflow.frames`) says which part: the map is resized to that pixel
    box and blended there; the rest of the image is returned unchanged.
    """
    from matplotlib import colormaps
    from PIL import Image

    y0, x0, y1, x1 = pixel_box(frame, *image.shape[:2])
    scaled = np.clip((anomaly_map - low) / (high - low), 0.0, 1.0)
    heat = Image.fromarray((colormaps["jet"](scaled)[..., :3] * 255).astype(np.uint8))
    heat = np.asarray(heat.resize((x1 - x0, y1 - y0), Image.BILINEAR), dtype=np.float32)
    out = image.copy()
    out[y0:y1, x0:x1] = (alpha * heat + (1 - alpha) * image[y0:y1, x0:x1].astype(np.float32)).astype(np.uint8)
    return out


def predict_images(model_dir: str | os.PathLike, images: str | os.PathLike, out_dir: str | os.PathLike, *,
                   threshold: str | None = "quantile", quantile: float = 0.99, map_format: str = "tiff",
                   batch_size: int | None = None, device: str = "auto", num_workers: int = 0) -> pd.DataFrame:
    """Score ``images`` with the model in ``model_dir``; write maps, overlays and predictions.csv to ``out_dir``.

    ``model_dir`` may also be an exported ``.onnx`` file (``anomalyflow export``), scored by onnxruntime without
    torch (:func:`anomalyflow.export.runtime.predict_exported`)."""
    if str(model_dir).endswith(".onnx"):
        from anomalyflow.export.runtime import predict_exported

        return predict_exported(model_dir, images, out_dir, threshold=threshold, quantile=quantile,
                                map_format=map_format, batch_size=batch_size, device=device)
    from anomalyflow.families import load_model
    from anomalyflow.scoring import score_paths

    check_map_format(map_format)
    folder = Path(model_dir)
    if not (folder / MODEL_JSON).is_file():
        raise DataError(f"{folder}: not a trained model folder (no model.json); point --model at "
                        "results/<dataset>/<category>/<method>")
    paths = list_input_images(images)
    cut = resolve_threshold(folder, threshold, quantile)  # before loading: a bad threshold costs no model load
    model = load_model(folder, device)
    scores, maps, _ = score_paths(model, paths, batch_size=batch_size or model.params.get("batch_size", 16),
                                  num_workers=num_workers, desc="predict")
    return write_predictions(out_dir, paths, scores, maps, map_frames(model, paths), colour_range(folder), cut,
                             map_format)


def check_map_format(map_format: str) -> None:
    if map_format not in ("tiff", "npy"):
        raise DataError(f"--map-format: {map_format!r} is not tiff or npy")


def write_predictions(out_dir: str | os.PathLike, paths: list[str], scores: np.ndarray, maps: np.ndarray, frames,
                      colours: tuple[float, float], cut: float | None, map_format: str) -> pd.DataFrame:
    """Per image a map file and an overlay PNG, then ``predictions.csv`` (scores ``[N]``, maps ``[N, H, W]``,
    frames ``[N, 4]``, the overlay colour range ``(low, high)``, the threshold or None)."""
    from PIL import Image

    from anomalyflow.thresholds import is_anomalous

    low, high = colours
    out = Path(out_dir)
    names = _unique_stems(paths)
    boxes = []
    for path, name, anomaly_map, frame in zip(paths, names, maps, frames, strict=True):
        _write_map(out / "maps" / f"{name}.{map_format}", anomaly_map)
        picture = np.asarray(load_image(path))
        boxes.append(pixel_box(frame, *picture.shape[:2]))
        with atomic_path(out / "overlays" / f"{name}.png") as tmp:
            Image.fromarray(overlay(picture, anomaly_map, low, high, frame=frame)).save(tmp, format="PNG")
    table = pd.DataFrame({"path": paths, "score": scores, "map": [f"maps/{n}.{map_format}" for n in names],
                          "overlay": [f"overlays/{n}.png" for n in names]})
    table[["map_top", "map_left", "map_bottom", "map_right"]] = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    if cut is not None:
        table["threshold"] = cut
        table["anomalous"] = is_anomalous(table["score"], cut)
    # The threshold in full: an operating point's sits one float above a normal score, which 9 digits would round
    # onto, and the file should name the threshold the verdicts used.
    written = table.assign(threshold=format(cut, ".17g")) if cut is not None else table
    write_csv(out / "predictions.csv", written, float_format="%.9g")
    flagged = f", {int(table['anomalous'].sum())} at or above the threshold {cut:.6g}" if cut is not None else ""
    log.info("%d images scored%s; results in %s", len(paths), flagged, out)
    return table


def _unique_stems(paths: list[str]) -> list[str]:
    """File stems, disambiguated by their parent folder when two images share a name."""
    stems = [Path(p).stem for p in paths]
    return [f"{Path(p).parent.name}_{s}" if stems.count(s) > 1 else s for p, s in zip(paths, stems, strict=True)]


def _write_map(path: Path, anomaly_map: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        if path.suffix == ".npy":
            np.save(tmp, anomaly_map.astype(np.float32))
        else:
            import tifffile

            tifffile.imwrite(tmp, anomaly_map.astype(np.float32))


def add_predict_command(sub) -> None:
    parser = sub.add_parser("predict", help="score new images with a trained model folder or an exported model")
    parser.add_argument("--model", required=True, help="a model folder (results/<dataset>/<category>/<method>) or "
                                                       "an exported .onnx file (anomalyflow export; needs no torch)")
    parser.add_argument("--images", required=True, help="an image file or a folder of images (searched recursively)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--threshold", default="quantile",
                        help="none | quantile (of validation normals' scores, default) | fpr:<rate> (the operating "
                             "point of that false-alarm rate on the validation normals, e.g. fpr:0.01) | f1 (fitted "
                             "on the labelled test set, optimistic) | a number; an image is anomalous iff its "
                             "score >= the threshold")
    parser.add_argument("--quantile", type=float, default=0.99, help="for --threshold quantile (default 0.99)")
    parser.add_argument("--map-format", choices=("tiff", "npy"), default="tiff")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (an .onnx model: auto | cpu | cuda)")
    parser.add_argument("--num-workers", type=int, default=0)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> None:
    table = predict_images(args.model, args.images, args.out, threshold=args.threshold, quantile=args.quantile,
                           map_format=args.map_format, batch_size=args.batch_size, device=args.device,
                           num_workers=args.num_workers)
    print(f"{len(table)} images scored; see {Path(args.out) / 'predictions.csv'}")
