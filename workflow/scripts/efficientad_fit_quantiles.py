from pathlib import Path

from anomalyflow.efficientad.stages import fit_efficientad_quantiles
from anomalyflow.jobs import rule_job

with rule_job(snakemake) as run:
    fit_efficientad_quantiles(Path(snakemake.output[0]).parent, snakemake.input.samples, snakemake.params.method,
                              category=snakemake.wildcards.category, device=run.device, num_workers=run.num_workers)
