from pathlib import Path

import anomalyflow
from anomalyflow.provenance import _lazy_exports, module_sources

PACKAGE = Path(anomalyflow.__file__).parent


def _names(files):
    return {str(Path(f).relative_to(PACKAGE)) for f in files}


def test_a_stage_depends_on_what_it_imports_and_not_on_other_methods():
    puad = _names(module_sources("anomalyflow.puad", package_dir=PACKAGE))
    assert {"puad.py", "__init__.py", "errors.py", "data/table.py", "efficientad/model.py"} <= puad
    assert "patchcore.py" not in puad and "ensemble.py" not in puad
    patchcore = _names(module_sources("anomalyflow.patchcore", package_dir=PACKAGE))
    assert {"patchcore.py", "patches/features.py", "patches/coreset.py", "nets/backbones.py"} <= patchcore
    assert "puad.py" not in patchcore


def test_lazy_imports_inside_functions_count():
    # evaluate imports the metrics and the LOCO reader inside functions.
    evaluate = _names(module_sources("anomalyflow.evaluate", package_dir=PACKAGE))
    assert "data/mvtec_loco.py" in evaluate and any(name.startswith("metrics/") for name in evaluate)


def test_missing_source_tree_gives_no_inputs(tmp_path):
    assert module_sources("anomalyflow.puad", package_dir=tmp_path / "nowhere") == []


def test_a_relative_package_dir_gives_relative_paths(monkeypatch):
    """The workflow passes src/anomalyflow relative to its run folder: a copied run keeps its input set."""
    monkeypatch.chdir(PACKAGE.parent)
    files = module_sources("anomalyflow.puad", package_dir="anomalyflow")
    assert files and all(not Path(f).is_absolute() and f.startswith("anomalyflow/") for f in files)
    assert _names(PACKAGE.parent / f for f in files) == _names(module_sources("anomalyflow.puad", package_dir=PACKAGE))


def test_lazy_package_exports_count_as_their_submodule(tmp_path):
    """`from anomalyflow.efficientad import EfficientAD` runs efficientad/model.py through the package's
    __getattr__: the importer depends on that submodule and on no other stage."""
    package = tmp_path / "anomalyflow"
    (package / "stages").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "stages" / "__init__.py").write_text('_EXPORTS = {"Model": "model", "train": "training"}\n')
    (package / "stages" / "model.py").write_text("")
    (package / "stages" / "training.py").write_text("")
    (package / "user.py").write_text("from anomalyflow.stages import Model\n")
    files = {Path(f).relative_to(package).as_posix() for f in module_sources("anomalyflow.user", package_dir=package)}
    assert files == {"__init__.py", "user.py", "stages/__init__.py", "stages/model.py"}
    # the real package's table is read so too
    assert _lazy_exports(PACKAGE / "efficientad" / "__init__.py")["EfficientAD"] == "model"
