"""Where an EfficientAD teacher comes from, checked before any job runs.

A teacher (``teachers.<name>`` in the config) is a PDN trained once to imitate a WideResNet-101 on
ImageNet (A3) and shared by every category and dataset. It comes from the first of these a teacher
entry gives, per size (``s``/``m``):

=================  ============================================================================
``files.<size>``   an existing file: ours, PUAD's ``teacher.pt`` or EfficientAD's (nelson1425)
                   ``teacher_small.pth``/``teacher_medium.pth`` (state dicts, read by
                   :func:`anomalyflow.efficientad.official.load_teacher_file`)
``download.<size>``  ``{url, sha256}``: fetched once into ``resources/teachers/<name>/<size>.pth`` by a
                   local rule (cluster nodes need no internet), its checksum verified
``puad_dir``       an official PUAD model folder: ``<puad_dir>/<size>_size/teacher/teacher.pt``
``imagenet_root``  distilled here from ImageNet(-like) images (``synthetic``: generated clutter, the demo)
=================  ============================================================================

:func:`teacher_source` resolves the entry and :func:`require_teacher` refuses one whose files are not
there with one line that lists every way to provide it, so a run stops at its start, not after hours.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anomalyflow.config import resolve_weights, teacher_params
from anomalyflow.errors import ConfigError, DataError

#: Where fetched teacher files are kept (relative to the working directory, like resources/weights).
TEACHERS_DIR = "resources/teachers"
#: Where distilled teachers are written.
DISTILLED = "results/teacher/{name}/{size}/teacher.pt"
SIZE_NAMES = {"s": "EfficientAD-S", "m": "EfficientAD-M"}
#: Public PDN teachers (README, "EfficientAD teachers").
PUBLIC_TEACHERS = ("github.com/nelson1425/EfficientAD models/teacher_small.pth and teacher_medium.pth "
                   "(Apache-2.0)")


@dataclass(frozen=True)
class TeacherSource:
    """One teacher file and how it is obtained.

    ``kind`` is ``file``, ``download``, ``puad`` or ``distil``; ``path`` is the file training reads (for
    ``download`` and ``distil`` a workflow output); ``description`` is the one line logs and ``all.csv``
    show; ``url``/``sha256`` are set for ``download``; ``images`` is the ImageNet(-like) folder of a
    distilled teacher (None for generated clutter).
    """

    name: str
    size: str
    kind: str
    path: str
    description: str
    url: str | None = None
    sha256: str | None = None
    images: str | None = None


def teacher_source(name: str, spec: dict[str, Any], size: str) -> TeacherSource:
    """Resolve ``teachers.<name>`` for one PDN size (``s`` or ``m``); see the module table for the order.

    Raises :class:`ConfigError` when the entry gives no source at all.
    """
    if size not in SIZE_NAMES:
        raise ConfigError(f"teacher size {size!r}: use s or m")
    file = (spec.get("files") or {}).get(size)
    if file:
        return TeacherSource(name, size, "file", str(file), f"{name} ({size}): file {file}")
    download = (spec.get("download") or {}).get(size)
    if download:
        url, sha256 = download["url"], download["sha256"].lower()
        path = f"{TEACHERS_DIR}/{name}/{size}.pth"
        return TeacherSource(name, size, "download", path, f"{name} ({size}): {url} (sha256 {sha256[:12]})",
                             url=url, sha256=sha256)
    if spec.get("puad_dir"):
        path = str(Path(spec["puad_dir"]) / f"{size}_size" / "teacher" / "teacher.pt")
        return TeacherSource(name, size, "puad", path, f"{name} ({size}): PUAD model folder {path}")
    path = DISTILLED.format(name=name, size=size)
    iterations = spec.get("iterations")
    if spec.get("synthetic") is not None:
        return TeacherSource(name, size, "distil", path,
                             f"{name} ({size}): distilled from generated clutter images, {iterations} iterations")
    if spec.get("imagenet_root"):
        root = spec["imagenet_root"]
        return TeacherSource(name, size, "distil", path,
                             f"{name} ({size}): distilled from {root}, {iterations} iterations", images=str(root))
    raise ConfigError(f"teachers.{name}: no source for the {SIZE_NAMES[size]} teacher; " + _options(name, size))


def require_teacher(name: str, spec: dict[str, Any], size: str) -> TeacherSource:
    """:func:`teacher_source`, with its inputs checked: a given file must exist, an ImageNet folder must be
    a folder. Raises :class:`DataError` (one line: what is missing, every way to provide it)."""
    source = teacher_source(name, spec, size)
    if source.kind in ("file", "puad") and not os.path.isfile(source.path):
        key = f"teachers.{name}.files.{size}" if source.kind == "file" else f"teachers.{name}.puad_dir"
        raise DataError(f"{source.path}: teacher file not found ({key}); " + _options(name, size))
    if source.images is not None and not os.path.isdir(source.images):
        raise DataError(f"{source.images}: ImageNet folder not found, so the {SIZE_NAMES[size]} teacher "
                        f"'{name}' can't be distilled; " + _options(name, size))
    return source


def penalty_enabled(params: dict[str, Any], teacher: dict[str, Any]) -> bool:
    """``penalty: auto`` trains with the ImageNet penalty when the teacher has ImageNet(-like) images: generated
    clutter, or an ``imagenet_root`` folder that exists (a teacher given as a file needs no ImageNet)."""
    if params.get("penalty", "auto") == "auto":
        return bool(imagenet_images(teacher) or teacher.get("synthetic"))
    return bool(params["penalty"])


def imagenet_images(spec: dict[str, Any]) -> str | None:
    """The teacher's ImageNet(-like) folder when it exists (the penalty and the distillation read it)."""
    root = spec.get("imagenet_root")
    return str(root) if root and os.path.isdir(root) else None


#: Teacher keys that choose where an existing teacher comes from or how a job runs, not what a
#: distillation computes: left out of the distillation jobs' params (their rerun trigger).
NOT_DISTILLATION = ("files", "download", "puad_dir", "threads", "checkpoint_every")


def distillation_params(spec: dict[str, Any]) -> dict[str, Any]:
    """The teacher settings a distilled teacher depends on (see :data:`NOT_DISTILLATION`)."""
    return {key: value for key, value in spec.items() if key not in NOT_DISTILLATION}


def teacher_job_params(config: dict[str, Any], name: str) -> dict[str, Any]:
    """What teacher ``name``'s jobs get as parameters (their rerun trigger): the settings a distilled teacher
    depends on (:func:`distillation_params`), ``weights: imagenet`` as the file the workflow fetches once
    (:func:`anomalyflow.config.resolve_weights`)."""
    params = distillation_params(teacher_params(config, name))
    params["weights"] = resolve_weights(params["weights"], params["backbone"])
    return params


def _options(name: str, size: str) -> str:
    where = f"teachers.{name}"
    return (f"put the ILSVRC2012 train images in {where}.imagenet_root (distilled once, about a GPU-day), "
            f"or give an existing teacher as {where}.files.{size} (a file), {where}.download.{size} "
            f"({{url, sha256}}) or {where}.puad_dir (PUAD's released models); public teachers: "
            f"{PUBLIC_TEACHERS}; see the README, 'EfficientAD teachers'")
