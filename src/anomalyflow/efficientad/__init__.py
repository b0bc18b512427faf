"""EfficientAD (Batzner et al., WACV 2024) as the PUAD code (P) runs it, with N's variants as options.

Stages, one module each (algorithms.md A):

- :mod:`.target` — the distillation target Ψ (a frozen WRN-101 on 2× images; variants "p" and "n");
- :mod:`.imagenet_stats` — image lists and Ψ's channel statistics (A3);
- :mod:`.distill` — teacher distillation into a padded PDN (A3);
- :mod:`.train` — student and autoencoder training for one category (A5);
- :mod:`.quantiles` — validation quantiles of the maps (A6);
- :mod:`.model` — :class:`EfficientAD`, the inference model the generic scorer drives (A6);
- :mod:`.official` — importing P's model folders and N's teachers.

The networks live in :mod:`anomalyflow.nets.pdn` and :mod:`anomalyflow.nets.autoencoder`.
"""

from anomalyflow.efficientad.distill import distill_teacher
from anomalyflow.efficientad.imagenet_stats import compute_imagenet_stats, list_images
from anomalyflow.efficientad.model import EfficientAD
from anomalyflow.efficientad.official import import_puad_model, load_teacher_file
from anomalyflow.efficientad.quantiles import validation_quantiles
from anomalyflow.efficientad.target import TeacherTarget
from anomalyflow.efficientad.train import train_efficientad

__all__ = ["EfficientAD", "TeacherTarget", "compute_imagenet_stats", "distill_teacher", "import_puad_model",
           "list_images", "load_teacher_file", "train_efficientad", "validation_quantiles"]
