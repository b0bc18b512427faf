from pathlib import Path

from anomalyflow.jobs import rule_job
from anomalyflow.patchcore import fit_patchcore

with rule_job(snakemake) as run:
    fit_patchcore(snakemake.input.samples, Path(snakemake.output[0]).parent, snakemake.params.method,
                  device=run.device, num_workers=run.num_workers)
