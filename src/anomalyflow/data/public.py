"""The public datasets the workflow knows: where to get each, and where the config looks for it.

Each is looked for under the config's ``data_root`` at its official archive's folder name, so that
unpacking the archive there is the whole installation. :func:`require_dataset` checks a dataset's
root and category folders before any job runs and, when they are missing, says in one line what to put
where and where to get it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from anomalyflow.errors import DataError


@dataclass(frozen=True)
class PublicDataset:
    title: str
    folder: str      # the archive's folder name under data_root
    url: str         # where to download it
    licence: str
    example: str     # a path under <folder>/<category>/ that the layout needs


#: layout name -> the public dataset of that layout.
PUBLIC_DATASETS = {
    "mvtec_ad": PublicDataset("MVTec AD", "mvtec_anomaly_detection",
                              "https://www.mvtec.com/company/research/datasets/mvtec-ad", "CC BY-NC-SA 4.0",
                              "train/good"),
    "mvtec_loco": PublicDataset("MVTec LOCO AD", "mvtec_loco_anomaly_detection",
                                "https://www.mvtec.com/company/research/datasets/mvtec-loco", "CC BY-NC-SA 4.0",
                                "train/good"),
    "visa": PublicDataset("VisA", "VisA_20220922",
                          "https://github.com/amazon-science/spot-diff (VisA_20220922.tar)", "CC BY 4.0",
                          "Data/Images"),
    "btad": PublicDataset("BTAD", "BTech_Dataset_transformed",
                          "https://avires.dimi.uniud.it/papers/btad/btad.zip", "licence on its page", "train/ok"),
}
PUBLIC_DATASETS["loco"] = PUBLIC_DATASETS["mvtec_loco"]


def require_dataset(name: str, layout: str, root: str | os.PathLike, category: str) -> None:
    """Check that a dataset's root exists before a run plans its jobs.

    Raises :class:`DataError` with one line: the missing folder and, for a public dataset, what to
    download, where to unpack it, and how to point ``data_root`` elsewhere. (A missing category folder
    under an existing root is the layout reader's to report: it lists the categories it finds.)
    """
    base = Path(root)
    if base.is_dir():
        return
    public = PUBLIC_DATASETS.get(layout)
    if public is None:
        raise DataError(f"{base}: dataset root not found (dataset '{name}'); set datasets.{name}.root to the "
                        "folder that holds the category folders")
    expected = base / category / public.example
    raise DataError(f"{base}: dataset root not found, so dataset '{name}' ({public.title}) can't be read; "
                    f"download it from {public.url} ({public.licence}) and unpack it so that {expected} exists, "
                    f"or pass --config data_root=<the folder that holds {public.folder}/>")
