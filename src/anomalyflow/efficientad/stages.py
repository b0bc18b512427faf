"""EfficientAD's workflow stages as single calls: config parameters in, model-folder files out.

The rule scripts call these; each maps the merged method parameters (see :mod:`anomalyflow.config`)
onto the library functions of this package and handles the choice between training and importing an
official PUAD model folder (``pretrained:``). Each stage writes exactly its files of
:data:`anomalyflow.model_folder.EFFICIENTAD_FOLDER`: :func:`fit_efficientad` the networks and ``model.json``,
:func:`fit_efficientad_quantiles` ``quantiles.json`` (for an imported folder, P's own quantiles).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from anomalyflow.efficientad.official import import_puad_networks, import_puad_quantiles
from anomalyflow.efficientad.quantiles import validation_quantiles
from anomalyflow.efficientad.train import train_efficientad
from anomalyflow.errors import ConfigError
from anomalyflow.logs import get_logger
from anomalyflow.model_folder import EFFICIENTAD_FOLDER
from anomalyflow.params import family_params


def fit_efficientad(samples_path: str | os.PathLike, out_dir: str | os.PathLike, params: Mapping | None, *,
                    category: str, teacher_file: str | os.PathLike | None, penalty_images: str | None,
                    device: str = "auto", num_workers: int = 0, checkpoint_every: int | None = None,
                    teacher_label: str | None = None) -> None:
    """Train the student and autoencoder, or import an official PUAD model folder (``pretrained:``).

    ``params`` is the method's merged config entry (:func:`anomalyflow.params.family_params`: an unknown key
    raises :class:`ConfigError`). ``teacher_label`` (the workflow's description of the teacher's source) goes to
    the job's log.
    """
    params = family_params("efficientad", params)
    if teacher_label:
        get_logger("efficientad").info("teacher: %s", teacher_label)
    pretrained = _pretrained(params, category)
    if pretrained:
        import_puad_networks(*pretrained, out_dir, image_size=params["image_size"], map_padding=params["map_padding"])
        return
    if teacher_file is None:
        raise ConfigError("efficientad: no teacher file; set teachers.<name>.files or imagenet_root")
    train_efficientad(samples_path, teacher_file, out_dir, params, penalty_paths=penalty_images, device=device,
                      num_workers=num_workers, checkpoint_every=checkpoint_every)


def fit_efficientad_quantiles(model_dir: str | os.PathLike, samples_path: str | os.PathLike,
                              params: Mapping | None, *, category: str, device: str = "auto",
                              num_workers: int = 0) -> None:
    """``quantiles.json`` of ``model_dir``: of the validation normals' maps (A6), or an imported PUAD folder's own
    (``params`` as :func:`fit_efficientad`'s)."""
    params = family_params("efficientad", params)
    pretrained = _pretrained(params, category)
    if pretrained:
        import_puad_quantiles(*pretrained, model_dir)
        return
    validation_quantiles(model_dir, samples_path, EFFICIENTAD_FOLDER.path(model_dir, "quantiles"), device=device,
                         batch_size=params["score_batch_size"], num_workers=num_workers, maps=params["quantile_maps"])


def _pretrained(params: Mapping, category: str) -> tuple[str, str, str, str] | None:
    """(puad_dir, size, dataset folder, category folder) of ``pretrained:``, checked, or None to train."""
    pretrained = params.get("pretrained")
    if not pretrained:
        return None
    missing = [key for key in ("puad_dir", "dataset_folder") if not pretrained.get(key)]
    if missing:
        raise ConfigError(f"pretrained: needs {', '.join(missing)} (the PUAD model folder and its dataset "
                          "folder name, e.g. mvtec_loco_anomaly_detection)")
    return (pretrained["puad_dir"], params["size"], pretrained["dataset_folder"],
            pretrained.get("category", category))
