"""``anomalyflow export``: one self-contained ONNX file per trained model folder.

The file holds the graph of :mod:`anomalyflow.export.graphs` (preprocessing, networks, bank search, map
normalisation, z-scores) and, as ONNX metadata (key ``anomalyflow``, JSON), what scoring needs beside the
graph: the family, the input size, the validation normals' scores (for ``--threshold quantile``) and the
overlay colour range. :mod:`anomalyflow.export.runtime` scores with it through onnxruntime alone.

Exporter: ``torch.onnx.export(..., dynamo=True)``, opset 18, batch dimension dynamic. The TorchScript-based
exporter (``dynamo=False``) cannot export PatchCore's adaptive 1-D channel pooling when the sizes do not
divide (4,608 → 1,024 for WideResNet-50's layer2); for EfficientAD both exporters gave the same numbers, so one
exporter serves all families. TorchScript as a format would need torch at scoring time, which the export
exists to avoid, so ONNX is the only format.

PNI, its refined maps and ensembles are refused with one line (:data:`NOT_EXPORTABLE`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from anomalyflow import __version__
from anomalyflow.atomic import atomic_path
from anomalyflow.errors import ConfigError, DataError
from anomalyflow.logs import get_logger
from anomalyflow.model_folder import MODEL_JSON, read_family

log = get_logger(__name__)

FORMATS = ("onnx",)
OPSET = 18
METADATA_KEY = "anomalyflow"  # the ONNX metadata entry holding export_metadata's JSON
#: Why a family cannot be exported (yet); ``anomalyflow export`` stops with this line.
NOT_EXPORTABLE = {
    "pni": "PNI is not exportable yet: its map covers a centre crop that depends on each image's aspect ratio, "
           "and its position and neighbourhood gates are not built as an ONNX graph",
    "pni_refined": "refined PNI is not exportable: it refines PNI's maps, and PNI is not exportable yet",
    "ensemble": "ensembles are not exportable yet: fusing the members' normalised maps is not built as an ONNX "
                "graph; export each PatchCore, EfficientAD or PUAD member on its own",
}
EXPORTABLE = ("patchcore", "efficientad", "puad")


def build_graph(model_dir: str | os.PathLike):
    """``(graph, output names, image size, family)`` for the model folder; :class:`ConfigError` for a family that
    cannot be exported, naming why."""
    import torch

    from anomalyflow.efficientad.model import EfficientAD
    from anomalyflow.export.graphs import EfficientADGraph, PatchCoreGraph, PUADGraph
    from anomalyflow.patchcore import PatchCore
    from anomalyflow.puad import PUAD

    folder = Path(model_dir)
    if not (folder / MODEL_JSON).is_file():
        raise DataError(f"{folder}: not a trained model folder (no model.json); point --model at "
                        "results/<dataset>/<category>/<method>")
    family = read_family(folder)
    if family in NOT_EXPORTABLE:
        raise ConfigError(f"{folder}: {NOT_EXPORTABLE[family]}")
    # Each family's own class, not anomalyflow.families: an export job's code is its families' alone (no PNI).
    model_class, graph_class = {"patchcore": (PatchCore, PatchCoreGraph), "puad": (PUAD, PUADGraph),
                                "efficientad": (EfficientAD, EfficientADGraph)}[family]
    graph = graph_class(model_class.load(folder, torch.device("cpu"))).eval()
    names = ["score", "map"] + (["score_efficientad", "score_mahalanobis", "logical"] if family == "puad" else [])
    size = graph.efficientad.size if family == "puad" else graph.size
    return graph, names, size, family


def export_model(model_dir: str | os.PathLike, out_path: str | os.PathLike | None = None, *,
                 fmt: str = "onnx") -> Path:
    """Write the model of ``model_dir`` as one ONNX file (default: ``<model_dir>.onnx`` beside the folder).

    Input ``image``: uint8 ``[B, 3, S, S]`` RGB 0–255 (see :mod:`anomalyflow.export.graphs`); outputs
    ``score`` float64 ``[B]``, ``map`` float32 ``[B, S, S]`` (PUAD: its fused map, and also its two scores and its
    logical map). Raises
    :class:`ConfigError` for an unknown format or a family that cannot be exported, :class:`DataError` for a
    folder that is not a trained model.
    """
    import onnx
    import torch

    if fmt not in FORMATS:
        raise ConfigError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    folder = Path(model_dir)
    out = Path(out_path) if out_path is not None else folder.with_name(folder.name + ".onnx")
    graph, names, size, family = build_graph(folder)
    example = torch.zeros((2, 3, size, size), dtype=torch.uint8)
    batch = torch.export.Dim("batch", min=1)
    with atomic_path(out) as tmp:
        program = torch.onnx.export(graph, (example,), dynamo=True, opset_version=OPSET, input_names=["image"],
                                    output_names=names, dynamic_shapes=({0: batch},), verbose=False)
        program.save(str(tmp))
        proto = onnx.load(str(tmp))
        onnx.helper.set_model_props(proto, {METADATA_KEY: json.dumps(export_metadata(folder, family, size))})
        onnx.save(proto, str(tmp))
    log.info("exported %s (%s) to %s", folder, family, out)
    return out


def export_metadata(folder: Path, family: str, size: int) -> dict:
    """What scoring from the file alone needs beside the graph (stored as JSON in the ONNX metadata)."""
    from anomalyflow.outputs import colour_range, read_scores

    scores_path = folder / "scores.csv"
    validation = []
    if scores_path.is_file():
        table = read_scores(scores_path)
        rows = table.loc[(table["split"] == "validation") & (table["label"] == 0)]
        validation = [float(v) for v in rows["score"]]
    return {"anomalyflow": __version__, "family": family, "method": folder.name, "category": folder.parent.name,
            "image_size": size, "input": f"image: uint8 [B, 3, {size}, {size}], RGB, 0-255, resized with PIL bilinear",
            "validation_scores": validation, "colour_range": list(colour_range(folder))}


def export_checked(model_dir: str | os.PathLike, out_path: str | os.PathLike,
                   parity_path: str | os.PathLike) -> dict:
    """:func:`export_model`, then the file's parity with the folder (:func:`anomalyflow.export.parity.export_parity`:
    every image of its scores.csv through onnxruntime) written to ``parity_path`` (JSON); returns the parity."""
    import torch

    from anomalyflow.export.parity import write_export_parity

    export_model(model_dir, out_path)
    return write_export_parity(out_path, model_dir, parity_path, threads=torch.get_num_threads())


PARITY_COLUMNS = ["images", "max_score_difference", "max_relative_score_difference", "max_map_difference",
                  "within_tolerance"]


def write_export_table(path: str | os.PathLike, entries, html_path: str | os.PathLike | None = None,
                       title: str = "") -> pd.DataFrame:
    """``exports.csv``: per category × method (``entries``: dicts of category, method, family, file and parity,
    the JSON of :func:`export_checked`), the export file and its measured parity (:data:`PARITY_COLUMNS`), or
    an empty file and the line that says why the family has none; ``html_path``: the same as the report's
    table (:func:`anomalyflow.viz.exports_table_html`)."""
    from anomalyflow.atomic import write_csv, write_text
    from anomalyflow.readers import load_json

    rows = []
    for e in entries:
        row = {"category": e["category"], "method": e["method"], "family": e["family"],
               "export": e["file"] if e["family"] in EXPORTABLE else "", "note": NOT_EXPORTABLE.get(e["family"], "")}
        parity = load_json(e["parity"]) if e["family"] in EXPORTABLE else {}
        rows.append({**row, **{column: parity.get(column) for column in PARITY_COLUMNS}})
    table = pd.DataFrame(rows, columns=["category", "method", "family", "export", "note", *PARITY_COLUMNS])
    table["images"] = table["images"].astype("Int64")  # a count, empty where there is no file
    write_csv(path, table)
    if html_path is not None:
        from anomalyflow.viz import exports_table_html

        write_text(html_path, exports_table_html(table, title=title))
    return table


def add_export_command(sub) -> None:
    parser = sub.add_parser("export", help="write a trained model folder as one self-contained ONNX file")
    parser.add_argument("--model", required=True, help="a model folder: results/<dataset>/<category>/<method>")
    parser.add_argument("--format", default="onnx", choices=FORMATS, help="the file format (onnx)")
    parser.add_argument("--out", help="the file to write (default: <model folder>.onnx beside the folder)")
    parser.set_defaults(func=_run)


def _run(args) -> None:
    print(f"wrote {export_model(args.model, args.out, fmt=args.format)}")


__all__ = [
    "EXPORTABLE",
    "FORMATS",
    "NOT_EXPORTABLE",
    "add_export_command",
    "build_graph",
    "export_checked",
    "export_metadata",
    "export_model",
    "write_export_table",
]
