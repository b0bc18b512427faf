from pathlib import Path

from anomalyflow.jobs import rule_job
from anomalyflow.pni.stages import fit_pni_memory

with rule_job(snakemake) as run:
    fit_pni_memory(snakemake.input.samples, Path(snakemake.output[0]).parent, snakemake.params.method,
                   device=run.device, num_workers=run.num_workers, features_path=snakemake.output.features)
