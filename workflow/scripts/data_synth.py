import os
from pathlib import Path

from anomalyflow.data.synth import generate
from anomalyflow.jobs import rule_job

with rule_job(snakemake):
    # Every output lies under <root>/<category>/.
    root = Path(os.path.commonpath(snakemake.output)).parent
    generate(root, categories=[snakemake.params.category], **snakemake.params.spec)
