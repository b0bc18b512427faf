"""EfficientAD's workflow stages as single calls: config parameters in, model-folder files out.

The rule scripts call these; each maps the merged method parameters (see :mod:`anomalyflow.config`)
onto the library functions of this package and handles the choice between training and importing an
official PUAD model folder (``pretrained:``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from anomalyflow.atomic import atomic_path
from anomalyflow.efficientad.official import import_puad_model
from anomalyflow.efficientad.quantiles import validation_quantiles
from anomalyflow.efficientad.train import train_efficientad
from anomalyflow.errors import ConfigError
from anomalyflow.logs import get_logger
from anomalyflow.params import check_known

# An imported PUAD folder brings its own quantiles; kept beside the model until the quantile stage.
OFFICIAL_QUANTILES = "official_quantiles.json"
#: The keys of an ``efficientad`` method's config entry (its family in config/schema.yaml, which the tests
#: compare): references (family, teacher), the training settings and what the stages below read. ``weights``
#: is there because every method entry inherits the top-level value; EfficientAD's teacher has its own.
PARAMETERS = frozenset({
    "family", "teacher", "size", "pretrained", "weights", "seed", "image_size", "iterations", "batch_size", "lr",
    "weight_decay", "lr_drop", "hard_quantile", "penalty", "teacher_norm", "quantile_maps", "map_padding",
    "dropout", "amp", "checkpoint_every", "score_batch_size",
})


def fit_efficientad(samples_path: str | os.PathLike, out_dir: str | os.PathLike, params: dict, *,
                    category: str, teacher_file: str | os.PathLike | None, penalty_images: str | None,
                    device: str = "auto", num_workers: int = 0, teacher_label: str | None = None) -> None:
    """Train the student and autoencoder, or import an official PUAD model folder (``pretrained:``).

    ``params`` is the method's merged config entry; a key not in :data:`PARAMETERS` raises
    :class:`ConfigError`. ``teacher_label`` (the workflow's description of the teacher's source) goes to
    the job's log.
    """
    check_known(params, PARAMETERS, what="efficientad")
    if teacher_label:
        get_logger("efficientad").info("teacher: %s", teacher_label)
    pretrained = params.get("pretrained")
    if pretrained:
        missing = [key for key in ("puad_dir", "dataset_folder") if not pretrained.get(key)]
        if missing:
            raise ConfigError(f"pretrained: needs {', '.join(missing)} (the PUAD model folder and its dataset "
                              "folder name, e.g. mvtec_loco_anomaly_detection)")
        import_puad_model(pretrained["puad_dir"], params["size"], pretrained["dataset_folder"],
                          pretrained.get("category", category), out_dir, image_size=params["image_size"],
                          map_padding=params["map_padding"])
        os.replace(Path(out_dir) / "quantiles.json", Path(out_dir) / OFFICIAL_QUANTILES)
        return
    if teacher_file is None:
        raise ConfigError("efficientad: no teacher file; set teachers.<name>.files or imagenet_root")
    train_efficientad(
        samples_path, teacher_file, out_dir,
        size=params["size"], iterations=params["iterations"], batch_size=params["batch_size"], lr=params["lr"],
        weight_decay=params["weight_decay"], lr_drop=params["lr_drop"], hard_quantile=params["hard_quantile"],
        penalty_paths=penalty_images, teacher_norm=params["teacher_norm"], image_size=params["image_size"],
        seed=params["seed"], device=device, amp=params["amp"], checkpoint_every=params["checkpoint_every"],
        num_workers=num_workers, dropout=params["dropout"], map_padding=params["map_padding"],
    )


def fit_efficientad_quantiles(model_dir: str | os.PathLike, samples_path: str | os.PathLike,
                              out_path: str | os.PathLike, params: dict, *, device: str = "auto",
                              num_workers: int = 0) -> None:
    """The map quantiles: validation normals (A6), or the imported official folder's own (``params`` as
    :func:`fit_efficientad`'s)."""
    check_known(params, PARAMETERS, what="efficientad")
    official = Path(model_dir) / OFFICIAL_QUANTILES
    if params.get("pretrained") and official.is_file():
        with atomic_path(out_path) as tmp:
            shutil.copyfile(official, tmp)
        return
    validation_quantiles(model_dir, samples_path, out_path, device=device, batch_size=params["score_batch_size"],
                         num_workers=num_workers, maps=params["quantile_maps"])
