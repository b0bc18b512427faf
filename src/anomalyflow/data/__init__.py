"""Datasets: folder layouts → one sample table, image and mask loading, the synthetic demo data."""

from anomalyflow.data.images import IMAGE_EXTENSIONS, image_size, load_image, load_mask, load_mask_channels
from anomalyflow.data.layouts import (
    LAYOUTS,
    category_files,
    list_categories,
    read_samples_from_layout,
    split_validation,
)
from anomalyflow.data.mvtec_loco import read_defects_config
from anomalyflow.data.table import (
    ANOMALY_KINDS,
    SAMPLE_COLUMNS,
    SPLITS,
    fit_rows,
    make_table,
    normal_statistics,
    read_samples,
    require_no_test,
    split_rows,
    write_samples,
)

__all__ = [
    "ANOMALY_KINDS",
    "IMAGE_EXTENSIONS",
    "LAYOUTS",
    "SAMPLE_COLUMNS",
    "SPLITS",
    "category_files",
    "fit_rows",
    "image_size",
    "list_categories",
    "load_image",
    "load_mask",
    "load_mask_channels",
    "make_table",
    "normal_statistics",
    "read_defects_config",
    "read_samples",
    "read_samples_from_layout",
    "require_no_test",
    "split_rows",
    "split_validation",
    "write_samples",
]
