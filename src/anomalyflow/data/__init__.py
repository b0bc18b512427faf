"""Datasets: folder layouts → one sample table, image and mask loading, the synthetic demo data."""

from anomalyflow.data.table import (
    ANOMALY_KINDS,
    SAMPLE_COLUMNS,
    SPLITS,
    fit_rows,
    make_table,
    read_samples,
    require_no_test,
    split_rows,
    write_samples,
)

__all__ = [
    "ANOMALY_KINDS",
    "SAMPLE_COLUMNS",
    "SPLITS",
    "fit_rows",
    "make_table",
    "read_samples",
    "require_no_test",
    "split_rows",
    "write_samples",
]
