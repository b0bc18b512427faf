"""Issue 15 (acceptance): the library's structure, checked, so that the next change keeps it.

- the library never imports Snakemake (rules wire, the library computes);
- the two method families are independent: nothing under ``efficientad/`` or ``puad.py`` imports from ``pni/``,
  and nothing under ``pni/`` from ``efficientad/`` or ``puad.py`` (the patch machinery both use is
  ``patches/``, which imports no method), so editing one family never reruns the other's jobs;
- the metrics import neither data loading nor networks; the generic scorer imports no family;
- no file under ``src/`` is longer than 400 lines and no rule script longer than 15.

Imports are followed transitively, as the workflow's code inputs are (:mod:`anomalyflow.provenance`: every
``import`` statement, also inside functions): what a module reaches is what a job running it depends on.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from workflow_helpers import REPO

from anomalyflow.provenance import module_sources

PACKAGE = REPO / "src" / "anomalyflow"
MAX_SOURCE_LINES = 400
MAX_SCRIPT_LINES = 15


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(*patterns: str) -> list[str]:
    return sorted({_module(path) for pattern in patterns for path in PACKAGE.glob(pattern)})


def _reached(module: str) -> set[str]:
    """Package-relative source files ``module`` imports, transitively (itself included)."""
    return {Path(file).relative_to(PACKAGE).as_posix() for file in module_sources(module, package_dir=PACKAGE)}


def _offenders(modules: list[str], forbidden) -> dict[str, list[str]]:
    found = {module: sorted(f for f in _reached(module) if forbidden(f)) for module in modules}
    return {module: files for module, files in found.items() if files}


def _is_pni(file: str) -> bool:
    return file.startswith("pni/")


def _is_efficientad_or_puad(file: str) -> bool:
    return file.startswith("efficientad/") or file == "puad.py"


def test_the_library_never_imports_snakemake():
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.relative_to(PACKAGE)}: {name}" for name in names if name.split(".")[0] == "snakemake"]
    assert not found, found


def test_efficientad_and_puad_import_nothing_from_pni():
    modules = _modules("efficientad/*.py", "puad.py")
    assert "anomalyflow.efficientad.train" in modules and "anomalyflow.puad" in modules
    assert not _offenders(modules, _is_pni)


def test_pni_imports_nothing_from_efficientad_or_puad():
    modules = _modules("pni/*.py")
    assert "anomalyflow.pni.model" in modules and "anomalyflow.pni.refine" in modules
    assert not _offenders(modules, _is_efficientad_or_puad)


def test_patch_features_belong_to_no_method():
    """PatchCore, PNI and EfficientAD's distillation target share them; they import none of those."""
    method = ("pni/", "efficientad/", "patchcore.py", "puad.py", "ensemble.py")
    assert not _offenders(_modules("patches/*.py"), lambda f: f.startswith(method))
    assert "patches/features.py" in _reached("anomalyflow.efficientad.target")


def test_metrics_import_neither_data_loading_nor_networks():
    modules = _modules("metrics/*.py")
    assert len(modules) >= 4
    assert not _offenders(modules, lambda f: f.startswith(("data/", "nets/", "patches/")))


def test_the_generic_scorer_imports_no_family():
    """A scoring job's code is the scorer's and its own family's (workflow/scripts/<family>_score.py)."""
    families = ("pni/", "efficientad/", "patchcore.py", "puad.py", "ensemble.py", "families.py")
    assert not _offenders(["anomalyflow.scoring"], lambda f: f.startswith(families))


def _line_counts(paths) -> dict[str, int]:
    return {str(path.relative_to(REPO)): len(path.read_text().splitlines()) for path in paths}


@pytest.mark.parametrize(("where", "pattern", "limit"), [
    ("src", "**/*.py", MAX_SOURCE_LINES), ("workflow/scripts", "*.py", MAX_SCRIPT_LINES)])
def test_no_file_is_longer_than_its_limit(where, pattern, limit):
    counts = _line_counts((REPO / where).glob(pattern))
    assert counts, where
    assert {path: n for path, n in counts.items() if n > limit} == {}


def test_no_tracked_file_holds_a_merge_conflict():
    # One README once shipped with both sides of a merge and the markers between them.
    import subprocess

    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout: no list of tracked files")
    files = [name for name in listed.stdout.split("\0") if name]
    markers = ("<<<<<<< ", ">>>>>>> ")
    found = []
    for name in files:
        path = REPO / name
        if path.suffix in {".png", ".jpg", ".npz", ".pt", ".pth", ".whl"} or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        found += [f"{name}:{i}" for i, line in enumerate(text.splitlines(), 1) if line.startswith(markers)]
    assert not found, "merge conflict markers in " + ", ".join(found)


def test_code_cites_the_projects_own_method_notes():
    # The method notes a clone has are docs/methods.md; a private reference file is not in the repository.
    cited = [f"{path.relative_to(REPO)}:{i}" for folder in ("src", "workflow", "bench")
             for path in sorted((REPO / folder).rglob("*.py"))
             for i, line in enumerate(path.read_text().splitlines(), 1) if "algorithms.md" in line]
    assert not cited, "cite docs/methods.md instead of algorithms.md: " + ", ".join(cited)
