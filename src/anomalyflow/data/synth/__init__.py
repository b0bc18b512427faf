"""The synthetic demo dataset: small MVTec-LOCO-style images, deterministic by seed, drawn with numpy.

It lets the whole workflow run offline on a laptop in minutes (random-init networks, 2 CPU cores), on
data with the structure that matters for PUAD: logical anomalies that look normal patch by patch but
break a rule about the whole image, next to structural anomalies that a local detector sees.

Layout (the real MVTec LOCO AD layout, so the ``mvtec_loco`` reader reads it unchanged)::

    <out>/<category>/README.md                      what this synthetic data is and the rules it follows
    <out>/<category>/defects_config.json
    <out>/<category>/train/good/000.png ...
    <out>/<category>/validation/good/000.png ...
    <out>/<category>/test/{good,logical_anomalies,structural_anomalies}/000.png ...
    <out>/<category>/ground_truth/{logical,structural}_anomalies/000/000.png ...   one mask per region

Categories share no file, so the workflow runs one job per category. Masks are 8-bit PNGs of the
image's size: 0 outside the region, the defect type's ``pixel_value`` inside (as in LOCO, where the
sPRO metric looks the value up in ``defects_config.json``).

Categories (each README spells out the rule a normal image obeys):

- ``tray``: a plastic tray with 2×3 compartments, one piece per compartment lying anywhere in it; the
  pieces' arrangement is fixed up to the tray being turned by 180 degrees, which swaps the two colours
  of each shape. Every spot of a compartment is sometimes bare and sometimes shows either colour.
- ``board``: a circuit board with an IC, capacitors, a connector and a strip of six pads; three LEDs
  (red, green, blue, in that order) sit on three neighbouring pads, which three varies.

Logical anomalies (one type per image): a missing piece, an extra piece (a copy of a normal one), a
wrong colour (one that is normal at that very spot in other images), two pieces swapped. Each is
plausible patch by patch and wrong for the image as a whole: a detector that pools features over the
image (PUAD's Gaussian) can see them, a purely local one mostly cannot. ``tests/test_synth.py`` checks
this with cheap proxies of both. Structural anomalies (1–2 regions): scratches, stains, holes.

Modules: :mod:`.plan` (which files exist, the defect types), :mod:`.drawing` (signed-distance
primitives, pieces), :mod:`.scenes` (the normal products), :mod:`.anomalies` (logical and structural
defects) and :mod:`.writer` (rendering a planned image, writing a category).

Generation is two-step so that the workflow can declare the outputs without drawing anything:
:func:`planned_files` computes a cheap *plan* (which anomaly each test image gets and how many
regions, hence which mask files exist) from the seed, and :func:`generate` renders that same plan.
Every category and every image has its own random stream (``numpy.random.default_rng`` seeded with
``[seed, category_index, ...]``), so generating one category alone gives the same bytes as
generating all of them, and changing one count does not change the other images.
"""

from anomalyflow.data.synth.plan import (
    CATEGORIES,
    LOGICAL_DEFECTS,
    STRUCTURAL_DEFECTS,
    DefectType,
    ImagePlan,
    defect_types,
    planned_files,
)
from anomalyflow.data.synth.writer import generate, render

__all__ = ["CATEGORIES", "LOGICAL_DEFECTS", "STRUCTURAL_DEFECTS", "DefectType", "ImagePlan", "defect_types",
           "generate", "planned_files", "render"]
