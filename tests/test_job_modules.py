"""Issue 14 (4): editing library code reruns exactly the jobs that run it.

A rule lists, as its ``code`` inputs, the ``src/anomalyflow`` files its job imports (``code(...)`` in
``workflow/rules/common.smk``, found statically by :mod:`anomalyflow.provenance`). A module loaded by a
name computed at run time (a layout's reader, a model family's class) is invisible to that search, so a
rule must name it. Here every job of a real run records the modules its process actually imported
(``sys.modules``, via ``tests/job_modules/sitecustomize.py``), and each must be among its rule's code
inputs: the shared demo run covers every rule but ``weights_download`` (it needs the internet), and a run
of the samples rule on a tiny tree of each other layout covers the layout readers the demo does not use.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml
from test_layouts import _btad, _folder, _mvtec_ad, _visa
from workflow_helpers import REPO, copy_workflow, job_module_records, snakemake

from anomalyflow.data.layouts import LAYOUT_MODULES, layout_module_name

#: The library's loaders by run-time name, and who names their modules for the rules (a new one must be
#: added here with its answer, and its modules named where the rules' code inputs are built).
LOADERS_BY_NAME = {
    "data/layouts.py": "layout_code() in common.smk: the data_samples rule adds its dataset's reader",
    "efficientad/__init__.py": "its literal _EXPORTS table, which anomalyflow.provenance reads",
}


def _not_in_code(record: dict) -> list[str]:
    return sorted(set(record["modules"]) - set(record["code"]))


def _rules_that_ran(workdir: Path) -> set[str]:
    # Snakemake keeps one metadata record per output file, naming the rule that wrote it.
    return {json.loads(path.read_text())["rule"] for path in (workdir / ".snakemake" / "metadata").iterdir()}


@pytest.mark.slow
def test_every_demo_job_imports_only_its_rules_code_inputs(demo_run, demo_job_modules):
    records = job_module_records(demo_job_modules)
    assert {record["rule"] for record in records} == _rules_that_ran(demo_run)
    assert len(records) > 40  # one per job, both categories
    missing = {f"{r['rule']} {r['wildcards']}": _not_in_code(r) for r in records if _not_in_code(r)}
    assert not missing, f"jobs imported library files that their rule does not list as code inputs: {missing}"
    # The records are real: the by-name loads show up in them.
    by_rule = {record["rule"]: record for record in records}
    assert "src/anomalyflow/data/mvtec_loco.py" in by_rule["data_samples"]["modules"]
    assert "src/anomalyflow/patchcore.py" in by_rule["patchcore_score"]["modules"]
    assert "src/anomalyflow/pni/refined.py" in by_rule["pni_refined_score"]["modules"]


@pytest.mark.slow
def test_samples_jobs_of_every_layout_list_their_reader(tmp_path):
    data = tmp_path / "data"
    _mvtec_ad(data / "mvtec_ad")
    _visa(data / "visa")
    _btad(data / "btad")
    _folder(data / "folder")
    categories = {"mvtec_ad": "widget", "visa": "candle", "btad": "01", "folder": "bracket"}
    assert set(categories) | {"mvtec_loco", "loco"} == set(LAYOUT_MODULES)  # every layout but the demo's
    # Own dataset names: the shipped config's public datasets (mvtec_ad, ...) must not merge into these.
    datasets = {f"tiny_{layout}": {"layout": layout, "root": str(data / layout), "categories": [category]}
                for layout, category in categories.items()}
    workdir = copy_workflow(tmp_path / "run")
    (workdir / "layouts.yaml").write_text(yaml.safe_dump({"datasets": datasets}))
    records_dir = tmp_path / "job_modules"
    targets = [f"results/tiny_{layout}/{category}/samples.csv" for layout, category in categories.items()]
    snakemake(workdir, *targets, "--configfile", "layouts.yaml", job_modules=records_dir)
    records = {record["wildcards"]["dataset"].removeprefix("tiny_"): record
               for record in job_module_records(records_dir)}
    assert set(records) == set(categories)
    readers = {layout: "src/" + layout_module_name(layout).replace(".", "/") + ".py" for layout in categories}
    for layout, record in records.items():
        assert readers[layout] in record["modules"], record
        assert not _not_in_code(record), (layout, _not_in_code(record))
        # exactly: another layout's reader is not an input, so editing it leaves this table alone
        assert not set(record["code"]) & (set(readers.values()) - {readers[layout]}), (layout, record["code"])


def test_every_load_by_name_is_accounted_for():
    """A static tripwire beside the run-time records above, which see only the code paths the runs take."""
    package = REPO / "src" / "anomalyflow"
    found = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
                    "import_module", "__import__"):
                found.add(path.relative_to(package).as_posix())
    assert found == set(LOADERS_BY_NAME), "a new load by name: say in LOADERS_BY_NAME how its rules list it"
