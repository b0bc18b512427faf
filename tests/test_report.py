"""`snakemake --report` on the finished demo run: the figures exist, are embedded, and the page renders in a
real (headless) browser without JavaScript errors."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time

import numpy as np
import pytest
from PIL import Image
from system_packages import ensure_apt_packages
from workflow_helpers import clone_run, snakemake

pytestmark = pytest.mark.slow

CATEGORIES = ["board", "tray"]
FIGURES = ["metrics.html", "operating_points.html", "roc.svg", "maps.png"]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                  "--enable-logging=stderr", "--v=0", "--window-size=1280,900",
                  # Let the report's React app render before the snapshot is taken.
                  "--virtual-time-budget=10000"]


@pytest.fixture(scope="module")
def report(demo_exports, tmp_path_factory):
    """The demo's report.html as `make report` renders it (all.csv and the exports: every figure and table),
    in a copy of the finished run with its exports."""
    run = clone_run(demo_exports, tmp_path_factory.mktemp("report") / "run")
    started = time.monotonic()
    snakemake(run, "--report", "report.html", "results/demo/all.csv", "results/demo/exports/exports.csv")
    print(f"snakemake --report: {time.monotonic() - started:.1f} s")
    return run, (run / "report.html").read_text()


def _embedded(page: str, block: str) -> dict:
    """One of the report's data blocks, e.g. <script id="results">var results = {...};</script>."""
    match = re.search(rf'<script id="{block}">\s*(.*?)\s*</script>', page, re.S)
    assert match, f"no {block} block in report.html"
    text = match.group(1)
    return json.loads(text[text.index("{"):text.rindex("}") + 1])


def test_figures_are_built_with_all_csv(report):
    run, _ = report
    figures = run / "results" / "demo" / "figures"
    assert (figures / "summary.svg").stat().st_size > 0
    for category in CATEGORIES:
        for name in FIGURES:
            assert (figures / category / name).stat().st_size > 0, (category, name)


def test_every_figure_is_embedded_with_its_caption(report):
    run, page = report
    results = _embedded(page, "results")
    expected = (["results/demo/figures/summary.svg", "results/demo/exports/exports.html"]
                + [f"results/demo/figures/{c}/{n}" for c in CATEGORIES for n in FIGURES])
    assert sorted(results) == sorted(expected)
    for path in expected:
        header, payload = results[path]["data_uri"].split(",", 1)
        assert header.endswith(";base64"), header
        assert base64.b64decode(payload) == (run / path).read_bytes(), f"{path}: embedded bytes differ"
        assert results[path]["caption"].strip(), f"{path}: no caption"
    # Captions are rendered per category (Jinja in report/*.rst), figures grouped by category.
    assert "Image-level ROC curves on category <strong>tray</strong>" in results["results/demo/figures/tray/roc.svg"][
        "caption"]
    categories = _embedded(page, "categories")
    assert sorted(categories) == sorted(["Summary", "exports", *CATEGORIES])
    assert sorted(path for group in categories["tray"].values() for path in group) == [
        f"results/demo/figures/tray/{n}" for n in sorted(FIGURES)]
    assert "synthetic images" in page  # the workflow description (report/workflow.rst)
    # The grid's caption explains PUAD's fused map and its logical column (issue 16.1).
    assert "logical map alone" in results["results/demo/figures/tray/maps.png"]["caption"]
    # Self-contained: nothing is fetched from elsewhere when the file is opened.
    assert not re.search(r'(src|href)="https?://', page)


def test_the_exports_table_gives_every_methods_file_and_its_measured_parity(report):
    """Issue 16.2 in the report: each exportable demo model has its ONNX file, checked by its export job
    against the folder on every validation and test image and found within the tolerances; the others say
    why they have none."""
    import pandas as pd

    run, _ = report
    table = pd.read_csv(run / "results" / "demo" / "exports" / "exports.csv")
    exported = table.loc[table["export"].notna()]
    assert sorted(exported["family"].unique()) == ["efficientad", "patchcore", "puad"]
    assert len(exported) == 3 * len(CATEGORIES) and exported["within_tolerance"].all(), exported
    for row in exported.itertuples():
        assert (run / row.export).stat().st_size > 0
        scores = pd.read_csv(run / "results" / "demo" / row.category / row.method / "scores.csv")
        assert row.images == len(scores) and row.max_map_difference < 1e-3
    assert table.loc[table["export"].isna(), "note"].str.contains("not exportable").all()
    page = (run / "results" / "demo" / "exports" / "exports.html").read_text()
    assert page.count("<tr>") == len(table) + 1 and "none: " in page


@pytest.fixture(scope="module")
def chromium():
    reason = ensure_apt_packages(["chromium"], ["chromium", "fonts-dejavu-core"])
    if reason:
        pytest.skip(f"no headless browser: {reason}")
    return shutil.which("chromium")


def test_report_renders_in_a_headless_browser_without_javascript_errors(report, chromium, tmp_path):
    run, _ = report
    shot = tmp_path / "report.png"
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
               (run / "report.html").as_uri()]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    log = result.stdout + result.stderr
    assert result.returncode == 0 and shot.exists(), log[-3000:]
    errors = [line for line in log.splitlines() if "Uncaught" in line]
    assert not errors, "JavaScript errors in the report:\n" + "\n".join(errors)
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("L"), dtype=float)
    # A report whose scripts failed is a blank white page; a rendered one has text, menus and a logo.
    assert pixels.std() > 15 and (pixels < 128).mean() > 0.005, (pixels.std(), (pixels < 128).mean())

    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile2'}", "--dump-dom",
                          (run / "report.html").as_uri()], capture_output=True, text=True, timeout=180).stdout
    # The page after the app ran, without the embedded data: the menu it built names the result categories.
    rendered = re.sub(r"<script.*?</script>", "", dom, flags=re.S)
    assert all(name in rendered for name in ("tray", "board", "Summary", "exports")), rendered[-2000:]
    print(f"screenshot {shot}: {pixels.shape[1]}x{pixels.shape[0]}, grey std {pixels.std():.1f}")
