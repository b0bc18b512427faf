from pathlib import Path

from anomalyflow.efficientad.stages import fit_efficientad
from anomalyflow.jobs import rule_job

with rule_job(snakemake) as run:
    fit_efficientad(snakemake.input.samples, Path(snakemake.output[0]).parent, snakemake.params.method,
                    category=snakemake.wildcards.category, teacher_file=next(iter(snakemake.input.teacher), None),
                    penalty_images=snakemake.params.penalty, teacher_label=snakemake.params.teacher,
                    device=run.device, num_workers=run.num_workers, checkpoint_every=run.checkpoint_every)
