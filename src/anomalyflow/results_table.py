"""The results table ``results/{dataset}/all.csv``: every category × method metric row, plus one mean row per method.

The mean row is the plain mean over categories of each metric, which is how the PUAD, EfficientAD and
PNI papers average their per-category tables (e.g. the LOCO mean image AUROC is the mean of the five
categories' AUROCs). Metrics a method does not have (a map-less method's pixel metrics) stay empty.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence

import pandas as pd

from anomalyflow.atomic import write_csv
from anomalyflow.config import method_params, teacher_params
from anomalyflow.efficientad.teachers import teacher_source
from anomalyflow.errors import ConfigError, DataError, user_errors
from anomalyflow.outputs import read_metrics

KEY_COLUMNS = ["dataset", "category", "method"]


def results_table(metric_paths: Sequence[str | os.PathLike],
              provenance: Sequence[Mapping[str, str]] | None = None) -> pd.DataFrame:
    """Concatenate per-category metric files and append one ``mean`` row per method.

    ``provenance`` (rows of ``category``, ``method``, ``provenance``: what the numbers rest on, e.g. the
    EfficientAD teacher or the backbone weights) becomes the last column; a mean row gets its method's
    value when all categories agree, else the distinct values joined by `` | ``. Raises
    :class:`DataError` for a missing or empty metrics file.
    """
    table = read_metrics(metric_paths, what="the results table")
    metric_columns = [c for c in table.columns if c not in KEY_COLUMNS]
    means = (table.groupby(["dataset", "method"], sort=False)[metric_columns].mean(numeric_only=True)
             .reset_index().assign(category="mean"))
    methods = list(dict.fromkeys(table["method"]))
    table = pd.concat([table, means[table.columns]], ignore_index=True)
    table["_method"] = table["method"].map(methods.index)
    table["_mean"] = table["category"].eq("mean")
    table = table.sort_values(["_method", "_mean", "category"], kind="stable").drop(columns=["_method", "_mean"])
    count_columns = [c for c in table.columns if c.startswith("n_test")]
    table[count_columns] = table[count_columns].round().astype("Int64")
    table = table.reset_index(drop=True)
    if provenance:
        table["provenance"] = _provenance_column(table, provenance)
    return table


def _provenance_column(table: pd.DataFrame, provenance: Sequence[Mapping[str, str]]) -> list[str]:
    given = {(str(row["category"]), row["method"]): row["provenance"] for row in provenance}
    per_method: dict[str, list[str]] = {}
    for (_, method), text in given.items():
        if text not in per_method.setdefault(method, []):
            per_method[method].append(text)
    return [" | ".join(per_method.get(method, [])) if category == "mean" else given.get((category, method), "")
            for category, method in zip(table["category"].astype(str), table["method"], strict=True)]


def method_provenance(config: dict, dataset: str, category: str, method: str) -> str:
    """One line naming what a method's numbers rest on: its backbone weights or EfficientAD teacher, its
    base or members (the ``provenance`` column of ``all.csv``)."""
    params = method_params(config, dataset, category, method)
    family = params["family"]
    if family == "efficientad":
        if params.get("pretrained"):
            return f"PUAD model folder {params['pretrained'].get('puad_dir')}"
        try:
            source = teacher_source(params["teacher"], teacher_params(config, params["teacher"]), params["size"])
        except ConfigError:
            return f"teacher {params['teacher']} ({params['size']}): no source"
        return f"teacher {source.description}"
    if family == "puad":
        return f"{params['base']} + pooled {params['feature']} features; " + \
            method_provenance(config, dataset, category, params["base"])
    if family == "ensemble":
        return "ensemble of " + " + ".join(params["members"])
    if family == "pni_refined":
        return f"{params['base']} refined by densenet161 (weights {params['weights']})"
    return f"{params.get('backbone')} (weights {params['weights']})"


def write_results_table(path: str | os.PathLike, table: pd.DataFrame) -> None:
    write_csv(path, table, float_format="%.6f")


def format_table(table: pd.DataFrame) -> str:
    """A compact human-readable view (percentages) of the main columns."""
    shown = [c for c in ["category", "method", "image_auroc", "image_auroc_logical", "image_auroc_structural",
                         "image_auroc_lo_st_mean", "pixel_auroc", "aupro", "auc_spro_0.05"] if c in table.columns]
    view = table[shown].copy()
    for column in shown[2:]:
        view[column] = (100 * view[column]).map(lambda v: "" if pd.isna(v) else f"{v:.2f}")
    return view.to_string(index=False)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m anomalyflow.results_table")
    parser.add_argument("--show", required=True, help="an all.csv to print")
    args = parser.parse_args(argv)
    with user_errors():
        try:
            table = pd.read_csv(args.show, dtype={"category": str})
        except FileNotFoundError:
            raise DataError(f"{args.show}: not found; run the workflow first") from None
        print(format_table(table))


if __name__ == "__main__":
    main()
