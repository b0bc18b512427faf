"""EfficientAD (Batzner et al., WACV 2024) as the PUAD code (P) runs it, with N's variants as options.

Stages, one module each (docs/methods.md A):

- :mod:`.target` — the distillation target Ψ (a frozen WRN-101 on 2× images; variants "p" and "n");
- :mod:`.imagenet_stats` — image lists and Ψ's channel statistics (A3);
- :mod:`.distill` — teacher distillation into a padded PDN (A3);
- :mod:`.train` — student and autoencoder training for one category (A5);
- :mod:`.quantiles` — validation quantiles of the maps (A6);
- :mod:`.model` — :class:`EfficientAD`, the inference model the generic scorer drives (A6);
- :mod:`.official` — importing P's model folders and N's teachers.

The networks live in :mod:`anomalyflow.nets.pdn` and :mod:`anomalyflow.nets.autoencoder`.
"""

import importlib

# Exports resolve on first use: importing one stage (e.g. the inference model in a scoring job) must not
# import the others, which keeps jobs light and lets the workflow's code trigger (anomalyflow.provenance)
# rerun only the stages whose modules changed.
_EXPORTS = {
    "EfficientAD": "model",
    "TeacherTarget": "target",
    "compute_imagenet_stats": "imagenet_stats",
    "distill_teacher": "distill",
    "fit_teacher": "distill",
    "import_puad_model": "official",
    "list_images": "imagenet_stats",
    "teacher_stats": "imagenet_stats",
    "load_teacher_file": "official",
    "train_efficientad": "train",
    "validation_quantiles": "quantiles",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
