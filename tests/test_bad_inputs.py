"""Bad inputs: a corpus of broken and unusual datasets and configs, built here, run through the library,
the ``check-data`` CLI and the workflow.

Every case either **works** — the formats anomalyflow supports (16-bit grayscale, palette, RGBA, CMYK
JPEG, BMP, TIFF, 1×1 and 2000:1 images, masks with values other than 0/255, non-ASCII names with
spaces), checked to load the right pixels and to run through the workflow — or **stops with one
line** that names the file or config key and says what to do: exit status 1, no Python traceback, and
no output of the failing job left behind. The session summary prints a table of every case.

Cases of single image files are also unit-tested in ``test_images.py`` (every mode and broken file)
and ``test_layouts.py`` (malformed trees of every layout); here they run end to end. The subprocesses
run without root's file-permission override (:func:`as_user`), so a chmod-000 file is unreadable.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image
from workflow_helpers import copy_workflow

from anomalyflow.data.check import check_data
from anomalyflow.data.images import load_image, load_mask
from anomalyflow.errors import AnomalyflowError, NumericalError

SIDE = 64
CATEGORY = "widget"
N_TRAIN, N_TEST_GOOD, N_TEST_BAD = 8, 3, 3


# --- the base dataset: a `folder` layout category that works ---------------------------------------


def _texture(rng: np.random.Generator, *, defect: bool = False) -> np.ndarray:
    field = np.kron(rng.uniform(60, 200, (4, 4, 3)), np.ones((SIDE // 4, SIDE // 4, 1)))
    field += rng.normal(0, 8, field.shape)
    if defect:
        field[28:36, 8:56] = 15
    return np.clip(field, 0, 255).astype(np.uint8)


def _defect_mask() -> np.ndarray:
    mask = np.zeros((SIDE, SIDE), np.uint8)
    mask[28:36, 8:56] = 255
    return mask


def _save(path: Path, image: Image.Image | np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(path, **kwargs)
    return path


def base_category(root: Path) -> Path:
    """``root/widget``: 8 training normals, 3 good and 3 scratched test images with 0/255 masks."""
    category = root / CATEGORY
    rng = np.random.default_rng(0)
    for i in range(N_TRAIN):
        _save(category / "train" / "good" / f"{i:03d}.png", _texture(rng))
    for i in range(N_TEST_GOOD):
        _save(category / "test" / "good" / f"{i:03d}.png", _texture(rng))
    for i in range(N_TEST_BAD):
        _save(category / "test" / "scratch" / f"{i:03d}.png", _texture(rng, defect=True))
        _save(category / "ground_truth" / "scratch" / f"{i:03d}_mask.png", _defect_mask())
    return category


# --- cases that work: written together into one dataset, each with the pixels it must load as --------


@dataclass(frozen=True)
class Works:
    """A file anomalyflow supports: ``write(category)`` returns (path, expected RGB or mask, tolerance)."""

    write: Callable[[Path], tuple[Path, np.ndarray, int]]
    is_mask: bool = False


def _gray16(category: Path):
    values = np.linspace(0, 65535, SIDE * SIDE).reshape(SIDE, SIDE).astype(np.uint16)
    path = _save(category / "train" / "good" / "gray16.png", values)
    assert Image.open(path).mode.startswith("I;16")
    scaled = np.rint(values * (255 / 65535)).astype(np.uint8)  # the bit depth's full range onto 0..255
    return path, np.repeat(scaled[..., None], 3, axis=2), 0


def _palette(category: Path):
    colours = np.array([[10, 20, 30], [200, 40, 0], [0, 90, 250], [250, 250, 250]], np.uint8)
    index = np.random.default_rng(1).integers(0, 4, (SIDE, SIDE)).astype(np.uint8)
    image = Image.fromarray(index, "P")
    image.putpalette(colours.reshape(-1).tolist() + [0] * (256 * 3 - colours.size))
    return _save(category / "train" / "good" / "palette.png", image, transparency=3), colours[index], 0


def _rgba(category: Path):
    rgb = _texture(np.random.default_rng(2))
    alpha = np.random.default_rng(3).integers(0, 256, (SIDE, SIDE), dtype=np.uint8)  # alpha is dropped
    return _save(category / "train" / "good" / "rgba.png", Image.fromarray(np.dstack([rgb, alpha]), "RGBA")), rgb, 0


def _cmyk_jpeg(category: Path):
    path = _save(category / "train" / "good" / "cmyk.jpg", Image.new("CMYK", (SIDE, SIDE), (0, 255, 255, 0)),
                 quality=95)
    assert Image.open(path).mode == "CMYK"
    return path, np.broadcast_to(np.array([255, 0, 0], np.uint8), (SIDE, SIDE, 3)), 25  # red, up to JPEG loss


def _bmp(category: Path):
    rgb = _texture(np.random.default_rng(4))
    return _save(category / "train" / "good" / "image.bmp", rgb), rgb, 0


def _tiff(category: Path):
    rgb = _texture(np.random.default_rng(5))
    return _save(category / "train" / "good" / "image.tif", rgb, compression="tiff_lzw"), rgb, 0


def _one_pixel(category: Path):
    return _save(category / "test" / "good" / "one_pixel.png", Image.new("RGB", (1, 1), (90, 140, 60))), \
        np.array([[[90, 140, 60]]], np.uint8), 0


def _huge_aspect(category: Path):
    row = np.tile(np.arange(256, dtype=np.uint8), 8)[None, :2000]  # 2000 x 1 pixels
    return _save(category / "test" / "good" / "wide.png", row), np.repeat(row[..., None], 3, axis=2), 0


def _mask_values(category: Path):
    # 0 outside; 1, 77 and 255 inside: every nonzero value marks defect (0/1 and LOCO-style pixel values
    # are common), so the mask is the same region as a 0/255 one.
    values = _defect_mask()
    values[28:30] = np.where(values[28:30] > 0, 1, 0)
    values[30:32] = np.where(values[30:32] > 0, 77, 0)
    path = _save(category / "ground_truth" / "scratch" / "000_mask.png", values)
    return path, _defect_mask() > 0, 0


def _non_ascii_names(category: Path):
    rgb = _texture(np.random.default_rng(6), defect=True)
    image = _save(category / "test" / "scratch" / "défaut ü 7.png", rgb)
    _save(category / "ground_truth" / "scratch" / "défaut ü 7_mask.png", _defect_mask())
    _save(category / "train" / "good" / "prüfung 01.png", _texture(np.random.default_rng(7)))
    return image, rgb, 0


WORKS: dict[str, Works] = {
    "16-bit grayscale PNG": Works(_gray16),
    "palette PNG (with transparency)": Works(_palette),
    "RGBA PNG": Works(_rgba),
    "CMYK JPEG": Works(_cmyk_jpeg),
    "BMP": Works(_bmp),
    "TIFF (LZW)": Works(_tiff),
    "1x1 image": Works(_one_pixel),
    "2000:1 aspect image": Works(_huge_aspect),
    "mask values other than 0/255": Works(_mask_values, is_mask=True),
    "non-ASCII names with spaces (root too)": Works(_non_ascii_names),
}
WORKS_DATASET = "works"
WORKS_ROOT = "data ü x"  # the works dataset lies under a folder name with a space and a non-ASCII letter


# --- cases that must stop: one dataset each --------------------------------------------------------


@dataclass(frozen=True)
class Fails:
    """A broken dataset: ``make(category)`` breaks a copy of the base category and returns the culprit
    (a path that the message must name). ``words``: what the message must say. ``rule``: the workflow
    job that stops, with its outputs (relative to results/<case>/widget/), or None when the workflow
    stops before running any job."""

    make: Callable[[Path], Path]
    words: str
    rule: str | None
    outputs: tuple[str, ...] = ()
    methods: tuple[str, ...] = ("patchcore",)


SAMPLES = ("samples.csv",)


def _truncate(category: Path) -> Path:
    path = category / "train" / "good" / "003.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the header still reads: found by the file's missing end
    return path


def _corrupt_pixels(category: Path) -> Path:
    path = category / "test" / "good" / "002.png"
    data = path.read_bytes()
    middle = len(data) // 2  # header and end intact: only decoding the pixels finds it
    path.write_bytes(data[:middle] + bytes(b ^ 0xFF for b in data[middle:middle + 8]) + data[middle + 8:])
    return path


def _zero_bytes(category: Path) -> Path:
    path = category / "test" / "good" / "001.png"
    path.write_bytes(b"")
    return path


def _not_an_image(category: Path) -> Path:
    path = category / "train" / "good" / "notes.png"
    path.write_text("measurement notes, saved with the wrong extension\n")
    return path


def _mask_size(category: Path) -> Path:
    return _save(category / "ground_truth" / "scratch" / "001_mask.png", np.zeros((32, 32), np.uint8))


def _defect_without_mask(category: Path) -> Path:
    (category / "ground_truth" / "scratch" / "002_mask.png").unlink()
    return category / "test" / "scratch" / "002.png"


def _mask_without_image(category: Path) -> Path:
    return _save(category / "ground_truth" / "scratch" / "009_mask.png", _defect_mask())


def _empty_split(category: Path) -> Path:
    folder = category / "train" / "good"
    for path in folder.iterdir():
        path.unlink()
    return folder


def _only_good(category: Path) -> Path:
    shutil.rmtree(category / "test" / "scratch")
    shutil.rmtree(category / "ground_truth")
    return category


def _only_anomalous(category: Path) -> Path:
    shutil.rmtree(category / "test" / "good")
    return category


def _symlink_loop(category: Path) -> Path:
    path = category / "train" / "good" / "loop.png"
    os.symlink(path.name, path)
    return path


def _unreadable(category: Path) -> Path:
    path = category / "train" / "good" / "004.png"
    path.chmod(0)
    return path


def _constant(category: Path) -> Path:
    for path in (category / "train" / "good").iterdir():
        _save(path, Image.new("RGB", (SIDE, SIDE), (120, 120, 120)))
    return category / "train" / "good"


UNREADABLE = "unreadable file (chmod 000)"
EFFICIENTAD_MODEL = tuple(f"efficientad_s/{name}" for name in
                          ("model.json", "student.pt", "autoencoder.pt", "teacher.pt", "teacher_stats.pt"))

FAILS: dict[str, Fails] = {
    "truncated PNG": Fails(_truncate, "truncated PNG file", "data_samples", SAMPLES),
    "corrupt PNG pixel data": Fails(_corrupt_pixels, "truncated or corrupt image data", "data_samples", SAMPLES),
    "zero-byte file": Fails(_zero_bytes, "empty file (0 bytes)", "data_samples", SAMPLES),
    "text file named .png": Fails(_not_an_image, "not an image that can be read", "data_samples", SAMPLES),
    "mask size != image size": Fails(_mask_size, "mask is 32x32 but its image", "data_samples", SAMPLES),
    "defect image without mask": Fails(_defect_without_mask, "no ground-truth mask", "data_samples", SAMPLES),
    "mask without image": Fails(_mask_without_image, "mask without a test image", "data_samples", SAMPLES),
    "empty split folder": Fails(_empty_split, "no images", "data_samples", SAMPLES),
    "test set of good images only": Fails(_only_good, "no anomalous test images", "results_metrics",
                                          ("patchcore/metrics.csv",)),
    "test set of anomalous images only": Fails(_only_anomalous, "no good test images", "results_metrics",
                                               ("patchcore/metrics.csv",)),
    "symbolic link loop": Fails(_symlink_loop, "symbolic link loop", None),
    UNREADABLE: Fails(_unreadable, "permission denied", None),
    "constant training images (EfficientAD)": Fails(_constant, "does not vary", "efficientad_fit",
                                                      EFFICIENTAD_MODEL, methods=("efficientad_s",)),
}


# --- config mistakes: the workflow stops at start, before any job --------------------------------


def _misspelt_key(config: dict) -> str:
    config["datasets"]["base"]["catgories"] = config["datasets"]["base"].pop("categories")
    return "datasets.base.catgories"


def _misspelt_method_key(config: dict) -> str:
    config["methods"]["patchcore"]["coreset_fracton"] = config["methods"]["patchcore"].pop("coreset_fraction")
    return "methods.patchcore.coreset_fracton"


def _unknown_backbone(config: dict) -> str:
    config["methods"]["patchcore"]["backbone"] = "resnet19"
    return "methods.patchcore.backbone"


def _unknown_method(config: dict) -> str:
    config["datasets"]["base"]["methods"] = ["patchcor"]
    return "datasets.base.methods"


def _missing_root(config: dict) -> str:
    config["datasets"]["base"]["root"] = str(Path(config["datasets"]["base"]["root"]) / "no such folder")
    return config["datasets"]["base"]["root"]


CONFIG_FAILS: dict[str, tuple[Callable[[dict], str], str]] = {
    "config: misspelt key": (_misspelt_key, "is not known; did you mean 'categories'?"),
    "config: misspelt method key": (_misspelt_method_key, "is not known; did you mean 'coreset_fraction'?"),
    "config: unknown backbone": (_unknown_backbone, "did you mean 'resnet18'?"),
    "config: unknown method name": (_unknown_method, "did you mean 'patchcore'?"),
    "config: root that does not exist": (_missing_root, "dataset root not found"),
}


# --- running things without root's power to read any file ---------------------------------------

# Root reads a chmod-000 file. As root, subprocesses start through this launcher, which drops
# CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the capability bounding set (prctl PR_CAPBSET_DROP)
# and then execs the command: it and every job it starts obey file permissions like any user.
_DROP_FILE_OVERRIDE = ("import ctypes, os, sys; libc = ctypes.CDLL(None, use_errno=True); "
                       "failed = [c for c in (1, 2) if libc.prctl(24, c, 0, 0, 0) != 0]; "
                       "failed and sys.exit('cannot drop CAP_DAC_OVERRIDE'); os.execv(sys.argv[1], sys.argv[1:])")


def as_user(command: list[str]) -> list[str]:
    return [sys.executable, "-c", _DROP_FILE_OVERRIDE, *command] if os.geteuid() == 0 else command


@functools.cache
def permissions_enforced() -> bool:
    """Whether a chmod-000 file is unreadable to the subprocesses (False where root cannot drop the override)."""
    with tempfile.TemporaryDirectory() as folder:
        secret = Path(folder) / "secret"
        secret.write_text("x")
        secret.chmod(0)
        result = subprocess.run(as_user([sys.executable, "-c", f"open({str(secret)!r}).read()"]),
                                capture_output=True)
        return result.returncode != 0 and b"PermissionError" in result.stderr


def run(command: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ANOMALYFLOW_DEBUG"}
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.run(as_user(command), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


# --- the corpus on disk ----------------------------------------------------------------------------


@dataclass
class Corpus:
    root: Path
    scratch: Path  # workflow copies, the teacher file, stage outputs
    culprits: dict[str, Path]  # failing data case -> the file or folder the message must name
    works_files: dict[str, tuple[Path, np.ndarray, int]]

    def dataset(self, case: str) -> Path:
        return self.root / (WORKS_ROOT if case == WORKS_DATASET else "data") / slug(case)


def slug(case: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in case.lower()).strip("_")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Corpus:
    root = tmp_path_factory.mktemp("bad_inputs")
    built = Corpus(root, root / "scratch", {}, {})
    built.scratch.mkdir()
    category = base_category(built.dataset(WORKS_DATASET))
    for name, case in WORKS.items():
        built.works_files[name] = case.write(category)
    for name, case in FAILS.items():
        built.culprits[name] = case.make(base_category(built.dataset(name)))
    return built


# --- the library, in this process ------------------------------------------------------------------


OUTCOMES: dict[str, dict[str, str]] = {}


def record(case: str, where: str, outcome: str) -> None:
    OUTCOMES.setdefault(case, {})[where] = outcome


def _one_line_error(error: BaseException, culprit: str | Path | None) -> str:
    message = str(error)
    assert "\n" not in message, message
    if culprit is not None:
        assert str(culprit) in message, (culprit, message)
    return message


@pytest.mark.parametrize("case", list(WORKS))
def test_supported_file_loads_right(corpus, case):
    path, expected, tolerance = corpus.works_files[case]
    if WORKS[case].is_mask:
        assert np.array_equal(load_mask(path), expected)
    else:
        got = np.asarray(load_image(path), dtype=int)
        assert got.shape == expected.shape
        assert np.abs(got - expected.astype(int)).max() <= tolerance
    record(case, "library", "loads correctly")


def test_works_dataset_passes_check_data(corpus):
    report = check_data("folder", corpus.dataset(WORKS_DATASET), full=True)
    rows = [line.split() for line in report.splitlines()]
    assert [CATEGORY, "test", "good", "none", str(N_TEST_GOOD + 2), "0"] in rows  # + 1x1 and 2000:1
    assert [CATEGORY, "test", "scratch", "structural", str(N_TEST_BAD + 1), str(N_TEST_BAD + 1)] in rows


@pytest.mark.parametrize("case", list(FAILS))
def test_broken_dataset_is_one_clear_error(corpus, case):
    if case == UNREADABLE and os.access(corpus.culprits[case], os.R_OK):
        record(case, "library", "(readable to this process, which runs as root: see check-data and workflow)")
        pytest.skip("root reads a chmod-000 file; the CLI and workflow tests run without that override")
    spec = FAILS[case]
    if spec.rule in ("results_metrics", "efficientad_fit"):
        # Legal tables: check-data warns, the stage that needs the missing data stops (below).
        report = check_data("folder", corpus.dataset(case), full=True)
        assert "warning" in report or spec.rule == "efficientad_fit"
        message = _stage_error(corpus, case)
    else:
        with pytest.raises(AnomalyflowError) as error:
            check_data("folder", corpus.dataset(case), full=True)
        message = _one_line_error(error.value, corpus.culprits[case])
    assert spec.words in message
    record(case, "library", f"clear error: {message}")


def _stage_error(corpus: Corpus, case: str) -> str:
    from anomalyflow.data.layouts import read_samples_from_layout
    from anomalyflow.data.table import write_samples

    folder = Path(tempfile.mkdtemp(dir=corpus.scratch))
    samples = folder / "samples.csv"
    write_samples(read_samples_from_layout("folder", corpus.dataset(case), CATEGORY), samples)
    if FAILS[case].rule == "results_metrics":
        from anomalyflow.evaluate import evaluate_category
        from anomalyflow.outputs import scores_table, write_scores

        table = pd.read_csv(samples)
        rows = table.loc[table["split"] != "train"].reset_index(drop=True)
        write_scores(folder / "scores.csv", scores_table(rows, np.arange(len(rows), dtype=float)))
        with pytest.raises(AnomalyflowError) as error:
            evaluate_category(samples, folder / "scores.csv", None, method="patchcore")
        return _one_line_error(error.value, samples)
    from anomalyflow.efficientad.train import train_efficientad

    with pytest.raises(NumericalError) as error:
        train_efficientad(samples, random_teacher(folder), folder / "model",
                          {"size": "s", "iterations": 2, "image_size": SIDE}, device="cpu")
    assert not (folder / "model").exists()
    return _one_line_error(error.value, samples)


def random_teacher(folder: Path) -> Path:
    """A random-init PDN-S as the teacher file (the workflow skips distillation for given files)."""
    from anomalyflow.nets.pdn import pdn_small

    torch.manual_seed(0)
    path = folder / "teacher_s.pt"
    torch.save(pdn_small(padding=True).state_dict(), path)  # a distilled teacher's format
    return path


def test_constant_training_images_give_finite_patchcore_scores(tmp_path):
    """A constant training set is legal for PatchCore (any deviation is anomalous): finite scores, no NaN."""
    from test_patchcore import PARAMS, _dataset

    from anomalyflow.families import score_folder
    from anomalyflow.patchcore import fit_patchcore

    samples = _dataset(tmp_path, n_train=4, n_test=4)
    for path in pd.read_csv(samples).query("split == 'train'")["path"]:
        Image.new("RGB", (SIDE, SIDE), (120, 120, 120)).save(path)
    fit_patchcore(samples, tmp_path / "model", PARAMS, device="cpu")
    table = score_folder(tmp_path / "model", samples, tmp_path / "scores.csv", tmp_path / "maps.npz", device="cpu")
    assert np.isfinite(table["score"]).all() and table["score"].std() > 0


def test_nan_inside_a_model_is_a_numerical_error_and_writes_nothing(tmp_path, monkeypatch):
    from test_patchcore import PARAMS, _dataset

    from anomalyflow.families import score_folder
    from anomalyflow.patchcore import PatchCore, fit_patchcore

    samples = _dataset(tmp_path, n_train=4, n_test=2)
    fit_patchcore(samples, tmp_path / "model", PARAMS, device="cpu")
    predict = PatchCore.predict

    def nan_maps(self, images):
        scores, maps = predict(self, images)
        return scores, maps * float("nan")

    monkeypatch.setattr(PatchCore, "predict", nan_maps)
    with pytest.raises(NumericalError, match="non-finite anomaly maps") as error:
        score_folder(tmp_path / "model", samples, tmp_path / "scores.csv", tmp_path / "maps.npz", device="cpu")
    assert not (tmp_path / "scores.csv").exists() and not (tmp_path / "maps.npz").exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
    record("NaN maps inside a model (simulated)", "library", f"clear error: {error.value}")


# --- the CLI: `anomalyflow check-data --full` -----------------------------------------------------

CLI_CASES = [WORKS_DATASET, *FAILS, "config: root that does not exist"]
# Run as real subprocesses (`python -m anomalyflow`), the others through the same entry point in this
# process (each subprocess costs seconds of imports): the one that works, one that fails, and the
# unreadable file, which needs a process without root's file-permission override.
CLI_SUBPROCESS_CASES = [WORKS_DATASET, "truncated PNG", UNREADABLE]


def _cli_root(corpus: Corpus, case: str) -> Path:
    return corpus.root / "data" / "no such folder" if case.startswith("config:") else corpus.dataset(case)


def _cli_args(corpus: Corpus, case: str) -> list[str]:
    return ["check-data", "--dataset", "folder", "--root", str(_cli_root(corpus, case)), "--full"]


def _check_cli_result(corpus: Corpus, case: str, status: int, stdout: str, stderr: str) -> str:
    """The outcome of one check-data run: exit 0 for a usable dataset, else one clean line."""
    assert "Traceback" not in stdout + stderr, stderr
    if case == WORKS_DATASET or (case in FAILS and FAILS[case].rule in ("results_metrics", "efficientad_fit")):
        assert status == 0, stderr  # usable; a legal but one-class test set gets a warning line
        return "exit 0" + (" + warning" if "warning" in stdout else "")
    culprit, words = ((str(_cli_root(corpus, case)), "dataset root not found") if case.startswith("config:")
                      else (str(corpus.culprits[case]), FAILS[case].words))
    assert status == 1, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("anomalyflow: error: ") and culprit in lines[0] and words in lines[0], lines[0]
    return lines[0].removeprefix("anomalyflow: error: ")


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli(corpus, case, capsys, monkeypatch):
    from anomalyflow.cli import main

    if case == UNREADABLE and os.access(corpus.culprits[case], os.R_OK):
        pytest.skip("root reads a chmod-000 file: see test_cli_subprocess")
    monkeypatch.delenv("ANOMALYFLOW_DEBUG", raising=False)
    try:
        main(_cli_args(corpus, case))
        status = 0
    except SystemExit as stop:
        status = stop.code
    captured = capsys.readouterr()
    outcome = _check_cli_result(corpus, case, status, captured.out, captured.err)
    if case == WORKS_DATASET:
        for name in WORKS:
            record(name, "check-data", outcome)
    else:
        record(case, "check-data", outcome)


@pytest.mark.slow
def test_cli_subprocess(corpus):
    def check(case: str) -> subprocess.CompletedProcess:
        return run([sys.executable, "-m", "anomalyflow", *_cli_args(corpus, case)], cwd=corpus.scratch)

    with ThreadPoolExecutor(max_workers=3) as pool:  # each run pays for its imports; overlap them
        results = dict(zip(CLI_SUBPROCESS_CASES, pool.map(check, CLI_SUBPROCESS_CASES), strict=True))
    for case, result in results.items():
        if case == UNREADABLE and not permissions_enforced():
            continue
        outcome = _check_cli_result(corpus, case, result.returncode, result.stdout, result.stderr)
        if case == UNREADABLE:
            record(case, "check-data", outcome)


# --- the workflow: a scratch copy whose config points at the corpus --------------------------------


def workflow_config(corpus: Corpus, datasets: list[str]) -> dict:
    teacher = random_teacher(corpus.scratch)
    methods = {
        "patchcore": {"family": "patchcore", "backbone": "resnet18", "layers": ["layer2", "layer3"],
                      "image_size": SIDE, "embed_dim": 64, "coreset_fraction": 0.25, "batch_size": 8,
                      "blur_sigma": 1.0},
        "efficientad_s": {"family": "efficientad", "size": "s", "teacher": "random", "image_size": SIDE,
                          "iterations": 2, "penalty": False, "score_batch_size": 8},
    }
    spec = {name: {"layout": "folder", "root": str(corpus.dataset(name)), "categories": [CATEGORY],
                   "methods": list(FAILS[name].methods) if name in FAILS else ["patchcore"]} for name in datasets}
    return {"dataset": slug(datasets[0]), "device": "cpu", "weights": "none", "threads": 1,
            "evaluation": {"size": SIDE}, "teachers": {"random": {"files": {"s": str(teacher)}}},
            "methods": methods, "datasets": {slug(name): value for name, value in spec.items()}}


def _workdir(corpus: Corpus, name: str, config: dict) -> Path:
    workdir = copy_workflow(corpus.scratch / "workflows" / name)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    return workdir


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "snakemake", "--cores", "2", *args], cwd=workdir)


@dataclass
class WorkflowRun:
    workdir: Path
    result: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def workflow(corpus) -> dict[str, WorkflowRun]:
    # The datasets whose problem shows in a job run together (--keep-going): one Snakemake, one DAG.
    in_jobs = [WORKS_DATASET, *(name for name, spec in FAILS.items() if spec.rule is not None)]
    together = _workdir(corpus, "together", workflow_config(corpus, in_jobs))
    # Each case's metrics, not all.csv: results_table would add the report's figure jobs, which test nothing here.
    targets = [f"results/{slug(name)}/{CATEGORY}/{method}/metrics.csv" for name in in_jobs
               for method in (FAILS[name].methods if name in FAILS else ["patchcore"])]
    runs = {"together": WorkflowRun(together, snakemake(together, "--keep-going", *targets))}
    # Problems Snakemake meets while building the DAG stop everything: one run each.
    alone: dict[str, dict] = {name: workflow_config(corpus, [name]) for name, spec in FAILS.items()
                              if spec.rule is None}
    for name, (mutate, _) in CONFIG_FAILS.items():
        config = workflow_config(corpus, [WORKS_DATASET])
        config["datasets"]["base"] = config["datasets"].pop(WORKS_DATASET)
        config["dataset"] = "base"
        alone[name] = config
        corpus.culprits[name] = mutate(config)
    workdirs = {name: _workdir(corpus, slug(name), config) for name, config in alone.items()}
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {name: pool.submit(snakemake, workdir) for name, workdir in workdirs.items()}
    runs.update({name: WorkflowRun(workdirs[name], future.result()) for name, future in futures.items()})
    return runs


def _job_logs(workdir: Path, dataset: str) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted((workdir / "logs" / dataset).rglob("*.log")))


@pytest.mark.slow
def test_workflow_runs_the_supported_files(corpus, workflow):
    run_ = workflow["together"]
    output = run_.result.stdout + run_.result.stderr
    assert "Traceback" not in output, output[-5000:]
    results = run_.workdir / "results" / WORKS_DATASET
    assert (results / CATEGORY / "patchcore" / "metrics.csv").is_file(), output[-5000:]
    scores = pd.read_csv(results / CATEGORY / "patchcore" / "scores.csv")
    scored = set(scores["path"])
    for name in ("1x1 image", "2000:1 aspect image", "non-ASCII names with spaces (root too)"):
        assert str(corpus.works_files[name][0]) in scored, name
    assert np.isfinite(scores["score"]).all()
    metrics = pd.read_csv(results / CATEGORY / "patchcore" / "metrics.csv").iloc[0]
    assert np.isfinite(metrics[["image_auroc", "pixel_auroc", "aupro"]].to_numpy(dtype=float)).all()
    for name in WORKS:
        record(name, "workflow", "runs (metrics.csv written)")


@pytest.mark.slow
@pytest.mark.parametrize("case", list(FAILS))
def test_workflow_stops_cleanly(corpus, workflow, case):
    if case == UNREADABLE and not permissions_enforced():
        pytest.skip("this root cannot drop its file-permission override")
    spec = FAILS[case]
    run_ = workflow["together" if spec.rule is not None else case]
    output = run_.result.stdout + run_.result.stderr
    assert run_.result.returncode != 0
    assert "Traceback" not in output, output[-5000:]
    results = run_.workdir / "results" / slug(case)
    assert not list(results.rglob("metrics.csv"))
    culprit = str(corpus.culprits[case])
    if spec.rule in ("results_metrics", "efficientad_fit"):  # a problem of the whole table: it names the table
        culprit = f"results/{slug(case)}/{CATEGORY}/samples.csv"
    lines = [line for line in run_.result.stderr.splitlines() if "error:" in line and culprit in line]
    assert lines, (culprit, run_.result.stderr[-5000:])
    message = lines[0].split("error: ", 1)[1]
    assert spec.words in message
    if spec.rule is not None:
        assert f"Error in rule {spec.rule}:" in run_.result.stderr
        assert message in _job_logs(run_.workdir, slug(case))
        for output_file in spec.outputs:
            assert not (results / CATEGORY / output_file).exists(), output_file
        assert not [p for p in results.rglob("*") if ".tmp-" in p.name]
    else:
        assert not results.exists()
    record(case, "workflow", f"{spec.rule or 'start'}: {message}")


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CONFIG_FAILS))
def test_workflow_config_mistakes(corpus, workflow, case):
    run_ = workflow[case]
    output = run_.result.stdout + run_.result.stderr
    assert run_.result.returncode == 1, output[-3000:]
    assert "Traceback" not in output, output[-5000:]
    lines = [line for line in run_.result.stderr.splitlines() if line.startswith("anomalyflow: error:")]
    assert len(lines) == 1, run_.result.stderr
    message = lines[0].removeprefix("anomalyflow: error: ")
    assert corpus.culprits[case] in message and CONFIG_FAILS[case][1] in message, message
    assert not (run_.workdir / "results").exists()
    record(case, "workflow", f"start: {message}")


# --- the table -------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def outcome_table(summary_table):
    yield
    width = max((len(case) for case in OUTCOMES), default=0)
    summary_table("bad-input corpus: case -> outcome (library | check-data CLI | workflow)",
                  [f"{case:{width}s}  " + " | ".join(f"{where}: {outcome}" for where, outcome in found.items())
                   for case, found in OUTCOMES.items()])
