import os
from pathlib import Path

from anomalyflow.data.clutter import generate_clutter
from anomalyflow.jobs import rule_job

with rule_job(snakemake):
    # Every output lies under <root>/images/.
    root = Path(os.path.commonpath(snakemake.output)).parent
    generate_clutter(root, **snakemake.params.spec)
