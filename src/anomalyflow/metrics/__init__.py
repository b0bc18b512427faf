"""Exact evaluation metrics: image/pixel AUROC, the official MVTec AD AU-PRO and MVTec LOCO AUC-sPRO.

All functions take numpy arrays or torch tensors (CUDA tensors are evaluated on their GPU) and return
plain Python floats (curves as float64 numpy arrays). Every value is exact, not binned: AUROC is the
Mann-Whitney statistic with ties counted ½ (as sklearn's ``roc_auc_score``), and the PRO/sPRO curves
are evaluated at every distinct score. User-caused problems (one class only, empty masks, shape
mismatches) raise :class:`anomalyflow.errors.DataError`; NaN/inf scores raise
:class:`anomalyflow.errors.NumericalError`.
"""

from anomalyflow.metrics.auroc import image_auroc, pixel_auroc
from anomalyflow.metrics.loco import auc_spro, loco_image_aurocs, saturation_areas, spro_curve
from anomalyflow.metrics.pro import aupro, pro_curve

__all__ = [
    "auc_spro",
    "aupro",
    "image_auroc",
    "loco_image_aurocs",
    "pixel_auroc",
    "pro_curve",
    "saturation_areas",
    "spro_curve",
]
