from anomalyflow.efficientad.distill import fit_teacher
from anomalyflow.jobs import rule_job

with rule_job(snakemake) as run:
    fit_teacher(snakemake.params.images, snakemake.input.stats, snakemake.output[0], snakemake.wildcards.size,
                snakemake.params.teacher, device=run.device, num_workers=run.num_workers,
                checkpoint_every=run.checkpoint_every)
