from pathlib import Path

from anomalyflow.jobs import rule_job
from anomalyflow.pni.refine import fit_pni_refined

with rule_job(snakemake) as run:
    fit_pni_refined(snakemake.input.samples, Path(snakemake.input.base[0]).parent, Path(snakemake.output[0]).parent,
                    snakemake.params.method, device=run.device, num_workers=run.num_workers)
