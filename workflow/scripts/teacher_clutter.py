import os
from pathlib import Path

from anomalyflow.data.clutter import generate_clutter
from anomalyflow.jobs import job

with job(snakemake.log[0], name="teacher_clutter"):
    # Every output lies under <root>/images/.
    root = Path(os.path.commonpath(snakemake.output)).parent
    generate_clutter(root, **snakemake.params.spec)
