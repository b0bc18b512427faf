"""Figures for the HTML report: metric tables, ROC curves, anomaly-map overlays and a summary bar chart.

Everything reads the files the workflow writes (``samples.csv``, ``scores.csv``, ``maps.npz``,
``metrics.csv``; formats in :mod:`anomalyflow.outputs` and :mod:`anomalyflow.data.table`) and writes one
file per figure, atomically. Matplotlib runs on the Agg backend: no display is needed, on a laptop or on
a cluster node. Vector figures (ROC curves, the bar chart) are SVG; the image grid is PNG.

What a figure shows, and why:

- ROC curves: image-level, one curve per method, from the test images' scores. For datasets with
  logical and structural anomalies (MVTec LOCO, the demo) also one panel per kind, each kind against all
  good test images, as the LOCO protocol scores them.
- The anomaly-map grid: a few test images per defect type (round-robin over the types, so every kind of
  defect appears), their ground truth, and each method's map over the image. A method's maps share one
  colour scale across the grid (its test maps' 1st-99.9th percentile), so a bright region means the same
  in every row. Methods that share one maps file share one column. A method's extra maps (PUAD's
  ``logical``: each position's share of the Mahalanobis distance) get a column each, coloured from 0 to the
  99.9th percentile: a signed contribution map, whose negative terms (positions that pull the pooled
  features back towards the normal mean) are evidence of nothing and are drawn like zero.
- The metric table and bar chart show the numbers of ``metrics.csv``, nothing recomputed; the operating
  points table those of each method's ``operating_points.csv``.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from anomalyflow.atomic import atomic_path, write_text
from anomalyflow.data.table import read_samples, split_rows
from anomalyflow.errors import DataError
from anomalyflow.frames import pixel_box
from anomalyflow.outputs import map_layer_names, read_map_layers, read_maps, read_metrics, read_scores

PathLike = str | os.PathLike
# Columns of the metric table, in this order, where a dataset has them (anomalyflow.evaluate's names; not
# imported from there, because that module imports torch and a figure job should start in a second).
TABLE_COLUMNS = ["image_auroc", "image_auroc_logical", "image_auroc_structural", "image_auroc_lo_st_mean",
                 "pixel_auroc", "aupro", "auc_spro_0.05"]
SUMMARY_METRICS = {"image_auroc": "image AUROC", "pixel_auroc": "pixel AUROC", "aupro": "AUPRO"}
CELL_INCHES = 1.6
GRID_DPI = 80


def _pyplot():
    """matplotlib.pyplot on the Agg backend (set before the first pyplot import; no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    # SVG text stays text (small files, searchable), and the same fonts give the same bytes on every machine.
    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "anomalyflow", "font.size": 9})
    return plt


def save_figure(figure, path: PathLike) -> None:
    """Write a figure atomically; SVG without a timestamp so that reruns give identical files."""
    plt = _pyplot()
    metadata = {"Date": None} if str(path).endswith(".svg") else {}
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=Path(path).suffix[1:], metadata=metadata, bbox_inches="tight",
                       dpi=GRID_DPI if str(path).endswith(".png") else None)
    plt.close(figure)


# --- tables ------------------------------------------------------------------------------------


def _html_table(header: Sequence[str], rows: Sequence[str], caption: str) -> str:
    """A self-contained HTML page holding one table: ``header`` texts, ``rows`` as ``<tr>`` markup."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in header)
    style = ("body{font-family:sans-serif;font-size:14px}table{border-collapse:collapse}"
             "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}"
             "td:first-child,th:first-child{text-align:left}th{background:#f0f0f0}")
    caption = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><style>{style}</style></head><body>"
            f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            "</body></html>\n")


def metrics_table_html(metrics: pd.DataFrame, *, title: str = "") -> str:
    """A self-contained HTML table of one category's metrics: a row per method, the best value in bold."""
    columns = [c for c in TABLE_COLUMNS if c in metrics.columns and metrics[c].notna().any()]
    best = {c: metrics[c].max() for c in columns}
    rows = []
    for _, row in metrics.iterrows():
        cells = [f"<td>{html.escape(str(row['method']))}</td>"]
        for c in columns:
            value = row[c]
            text = "" if pd.isna(value) else f"{100 * value:.2f}"
            cells.append(f"<td><b>{text}</b></td>" if value == best[c] else f"<td>{text}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return _html_table(["method", *columns], rows, f"{title} (in %)" if title else "")


def _percent(value: float) -> str:
    return "" if pd.isna(value) else f"{100 * value:.3g} %"


def operating_points_table_html(points: Mapping[str, PathLike], *, title: str = "") -> str:
    """A self-contained HTML table of one category's operating points: per method (``points`` maps its name to its
    ``operating_points.csv``, :mod:`anomalyflow.thresholds`) a row per false-alarm rate, with the threshold, the
    validation normals it flags, and the test set's false alarms and recall at it (counts and percent)."""
    header = ["method", "false-alarm rate", "threshold (score ≥)", "validation false alarms",
              "test false alarms", "test recall"]
    rows = []
    for method, path in points.items():
        table = pd.read_csv(path)
        for p in table.to_dict("records"):  # whole-row records keep the counts' integer type
            cells = [html.escape(method), f"fpr:{p['false_alarm_rate']:g}", f"{p['threshold']:.6g}",
                     f"{p['validation_false_alarms']}/{p['validation_normals']}",
                     f"{p['fp']}/{p['fp'] + p['tn']} ({_percent(p['test_false_alarm_rate'])})",
                     f"{p['tp']}/{p['tp'] + p['fn']} ({_percent(p['recall'])})"]
            rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return _html_table(header, rows, f"{title}: operating points from the validation normals" if title else "")


def exports_table_html(exports: pd.DataFrame, *, title: str = "") -> str:
    """A self-contained HTML table of a dataset's ``exports.csv``
    (:func:`anomalyflow.export.writer.write_export_table`): per category and method its ONNX file and how
    closely the file reproduces the folder's scores and maps (measured by the export job), or why the method
    has no file."""
    header = ["category", "method", "ONNX file", "images checked", "max score difference (relative)",
              "max map difference", "within tolerance"]
    rows = []
    for e in exports.to_dict("records"):
        if not isinstance(e["export"], str) or not e["export"]:
            cells = [e["category"], e["method"], f"none: {e['note']}", "", "", "", ""]
        else:
            cells = [e["category"], e["method"], e["export"], f"{int(e['images'])}",
                     f"{e['max_score_difference']:.2g} ({e['max_relative_score_difference']:.2g})",
                     f"{e['max_map_difference']:.2g}", "yes" if e["within_tolerance"] else "<b>no</b>"]
        rows.append("<tr>" + "".join(f"<td>{c if c.startswith('<b>') else html.escape(c)}</td>" for c in cells)
                    + "</tr>")
    return _html_table(header, rows, f"{title}: exported models and their parity" if title else "")


# --- ROC curves --------------------------------------------------------------------------------


def roc_points(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rate, true-positive rate) at every distinct threshold, from (0, 0) to (1, 1)."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_labels = scores[order], labels[order]
    # One point per distinct score: tied images enter together (a diagonal step, as AUROC counts ties).
    last_of_tie = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(scores) - 1]
    tp = np.cumsum(sorted_labels)[last_of_tie]
    fp = (last_of_tie + 1) - tp
    positives, negatives = max(int(labels.sum()), 1), max(int((1 - labels).sum()), 1)
    return np.r_[0.0, fp / negatives], np.r_[0.0, tp / positives]


def _area(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Trapezoidal area under the curve (ties give diagonal steps, so this equals the rank AUROC)."""
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def roc_figure(samples: PathLike, scores: Mapping[str, PathLike]):
    """Image-level ROC curves of every method of one category (plus per anomaly kind for LOCO-style data)."""
    plt = _pyplot()
    test = split_rows(read_samples(samples), "test")
    kinds = sorted(set(test["anomaly_kind"]) - {"none"})
    panels = ["all"] + (kinds if "logical" in kinds and len(kinds) > 1 else [])
    figure, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.6), squeeze=False)
    for method, path in scores.items():
        table = _test_scores(read_scores(path), test, path)
        for axis, panel in zip(axes[0], panels, strict=True):
            keep = np.ones(len(table), bool) if panel == "all" else table["anomaly_kind"].isin(["none", panel])
            labels = table.loc[keep, "label"].to_numpy(dtype=np.int64)
            values = table.loc[keep, "score"].to_numpy(dtype=np.float64)
            fpr, tpr = roc_points(labels, values)
            axis.plot(fpr, tpr, label=f"{method} ({100 * _area(fpr, tpr):.1f})")
    for axis, panel in zip(axes[0], panels, strict=True):
        axis.plot([0, 1], [0, 1], color="0.7", linestyle=":", linewidth=1)
        axis.set(xlim=(0, 1), ylim=(0, 1.01), aspect="equal", xlabel="false-positive rate",
                 title="all anomalies" if panel == "all" else f"{panel} vs good")
        axis.legend(loc="lower right", fontsize=7, title="method (AUROC %)", title_fontsize=7)
    axes[0][0].set_ylabel("true-positive rate")
    figure.suptitle(f"{test['category'].iloc[0]}: image-level ROC")
    return figure


def _test_scores(scores: pd.DataFrame, test: pd.DataFrame, path: PathLike) -> pd.DataFrame:
    indexed = scores.drop_duplicates("path").set_index("path")
    missing = test.loc[~test["path"].isin(indexed.index), "path"]
    if len(missing):
        raise DataError(f"{path}: no score for test image {missing.iloc[0]}; rerun the scoring rule")
    table = test[["path", "label", "anomaly_kind"]].copy()
    table["score"] = indexed.loc[test["path"], "score"].to_numpy()
    return table


# --- anomaly-map grid --------------------------------------------------------------------------


def pick_examples(test: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` test images, round-robin over defect types (anomalous types first, good last), by path."""
    types = sorted(set(test["defect_type"]) - {"good"}) + (["good"] if (test["defect_type"] == "good").any() else [])
    queues = {t: list(test.loc[test["defect_type"] == t].sort_values("path").index) for t in types}
    chosen: list[int] = []
    while len(chosen) < n and any(queues.values()):
        for t in types:
            if queues[t] and len(chosen) < n:
                chosen.append(queues[t].pop(0))
    return test.loc[chosen]


def map_grid_figure(samples: PathLike, maps: Mapping[str, PathLike], *, n_images: int = 6):
    """Test images, their ground truth and every method's anomaly map over them, one row per image."""
    from anomalyflow.data.images import load_image, load_mask

    plt = _pyplot()
    test = split_rows(read_samples(samples), "test")
    examples = pick_examples(test, n_images)
    columns = _map_columns(maps)
    loaded = {title: _selected_maps(path, list(examples["path"]), layer) for title, (path, layer) in columns.items()}
    n_cols = 2 + len(columns)
    figure, axes = plt.subplots(len(examples), n_cols, figsize=(CELL_INCHES * n_cols, CELL_INCHES * len(examples)),
                                squeeze=False)
    for row, (_, sample) in enumerate(examples.iterrows()):
        image = np.asarray(load_image(sample["path"]), dtype=np.float32) / 255.0
        mask = (load_mask(sample["mask_paths"]) if sample["mask_paths"]
                else np.zeros(image.shape[:2], dtype=bool))
        axes[row, 0].imshow(image)
        axes[row, 0].set_ylabel(f"{sample['defect_type']}\n{Path(sample['path']).stem}", fontsize=7)
        axes[row, 1].imshow(image)
        axes[row, 1].imshow(np.ma.masked_where(~mask, mask), cmap="autumn", alpha=0.6, vmin=0, vmax=1)
        for col, (title, (selected, frames, scale)) in enumerate(loaded.items(), start=2):
            y0, x0, y1, x1 = pixel_box(frames[row], *image.shape[:2])
            crop = image[y0:y1, x0:x1]  # the part of this image the method's map covers
            axes[row, col].imshow(crop)
            axes[row, col].imshow(selected[row], cmap="jet", alpha=0.5, vmin=scale[0], vmax=scale[1],
                                  extent=(-0.5, crop.shape[1] - 0.5, crop.shape[0] - 0.5, -0.5))
            if row == 0:
                axes[row, col].set_title(title, fontsize=7)
        if row == 0:
            axes[row, 0].set_title("image", fontsize=7)
            axes[row, 1].set_title("ground truth", fontsize=7)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle(f"{test['category'].iloc[0]}: anomaly maps", fontsize=9)
    figure.tight_layout()
    return figure


def _map_columns(maps: Mapping[str, PathLike]) -> dict[str, tuple[PathLike, str | None]]:
    """Title → (maps file, extra map or None): one column per distinct maps file, titled by every method that uses
    it, then one per extra map it holds."""
    by_file: dict[str, list[str]] = {}
    for method, path in maps.items():
        by_file.setdefault(os.fspath(path), []).append(method)
    columns: dict[str, tuple[PathLike, str | None]] = {}
    for path, methods in by_file.items():
        title = " / ".join(methods)
        columns[title] = (path, None)
        columns.update({f"{title}: {layer}": (path, layer) for layer in map_layer_names(path)})
    return columns


def _selected_maps(path: PathLike, wanted: list[str],
                   layer: str | None = None) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """The maps (or extra ``layer``) of ``wanted`` images, the frames they cover, and a colour scale from all
    test maps (from 0 for an extra layer: only positive contributions are drawn)."""
    maps, paths, frames = read_maps(path)
    if layer is not None:
        maps = read_map_layers(path, [layer])[layer]
    position = {p: i for i, p in enumerate(paths)}
    missing = [p for p in wanted if p not in position]
    if missing:
        raise DataError(f"{path}: no anomaly map for test image {missing[0]}; rerun the scoring rule")
    low, high = np.percentile(maps, [1.0, 99.9])
    low = low if layer is None else 0.0
    order = [position[p] for p in wanted]
    return maps[order], frames[order], (float(low), float(max(high, low + 1e-12)))


# --- the dataset summary -----------------------------------------------------------------------


def summary_figure(metrics: pd.DataFrame):
    """Grouped bars: categories (and their mean) on the x axis, one bar per method, a panel per metric."""
    plt = _pyplot()
    shown = {k: v for k, v in SUMMARY_METRICS.items() if k in metrics.columns and metrics[k].notna().any()}
    methods = list(dict.fromkeys(metrics["method"]))
    categories = list(dict.fromkeys(metrics["category"]))
    means = metrics.groupby("method", sort=False)[list(shown)].mean()
    groups = [*categories, "mean"]
    figure, axes = plt.subplots(len(shown), 1, figsize=(max(5.0, 1.1 * len(groups) * max(1, len(methods)) / 3),
                                                        2.4 * len(shown)), squeeze=False)
    width = 0.8 / max(1, len(methods))
    x = np.arange(len(groups))
    for axis, (column, label) in zip(axes[:, 0], shown.items(), strict=True):
        for i, method in enumerate(methods):
            rows = metrics[metrics["method"] == method].set_index("category")[column]
            values = [rows.get(c, np.nan) for c in categories] + [means.loc[method, column]]
            axis.bar(x - 0.4 + width * (i + 0.5), 100 * np.asarray(values, dtype=float), width, label=method)
        axis.set(ylabel=f"{label} (%)", ylim=(0, 100), xticks=x, xticklabels=groups)
        axis.axhline(50, color="0.6", linestyle=":", linewidth=1)
    # Above the first panel: inside it, the legend would hide bars.
    axes[0, 0].legend(ncols=min(len(methods), 4), fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0),
                      frameon=False)
    figure.suptitle(f"{metrics['dataset'].iloc[0]}: methods by category")
    figure.tight_layout()
    return figure


# --- what the workflow calls -------------------------------------------------------------------


def write_category_figures(
    samples: PathLike,
    scores: Mapping[str, PathLike],
    maps: Mapping[str, PathLike],
    metrics: Sequence[PathLike],
    *,
    table: PathLike,
    roc: PathLike,
    grid: PathLike,
    points: Mapping[str, PathLike] | None = None,
    points_table: PathLike | None = None,
    n_images: int = 6,
) -> None:
    """The report's items for one category: metric table (HTML), ROC curves (SVG), map grid (PNG) and, given
    ``points`` and ``points_table``, the operating points table (HTML).

    ``scores``, ``maps`` and ``points`` map method names to files; a method without maps has no grid column.
    """
    frame = read_metrics(metrics, what="the report")
    category = str(frame["category"].iloc[0])
    write_text(table, metrics_table_html(frame, title=category))
    if points_table is not None:
        write_text(points_table, operating_points_table_html(points or {}, title=category))
    save_figure(roc_figure(samples, scores), roc)
    if maps:
        save_figure(map_grid_figure(samples, maps, n_images=n_images), grid)
    else:  # e.g. a dataset of map-less methods: an explicit placeholder, so the output always exists
        plt = _pyplot()
        figure, axis = plt.subplots(figsize=(4, 1))
        axis.axis("off")
        axis.text(0.5, 0.5, "no method of this category writes anomaly maps", ha="center", va="center")
        save_figure(figure, grid)


def write_summary_figure(metrics: Sequence[PathLike], path: PathLike) -> None:
    save_figure(summary_figure(read_metrics(metrics, what="the report")), path)


__all__ = [
    "exports_table_html", "map_grid_figure", "metrics_table_html", "operating_points_table_html", "pick_examples",
    "roc_figure", "roc_points",
    "save_figure", "summary_figure", "write_category_figures", "write_summary_figure",
]
