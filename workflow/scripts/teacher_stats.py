from anomalyflow.efficientad.imagenet_stats import teacher_stats
from anomalyflow.jobs import rule_job

with rule_job(snakemake) as run:
    teacher_stats(snakemake.params.images, snakemake.output[0], snakemake.params.teacher, device=run.device,
                  num_workers=run.num_workers)
