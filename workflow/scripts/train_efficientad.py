from pathlib import Path

from anomalyflow.efficientad.stages import fit_efficientad
from anomalyflow.jobs import job

with job(snakemake.log[0], name="train_efficientad", threads=snakemake.threads):
    fit_efficientad(
        snakemake.input.samples,
        Path(snakemake.output[0]).parent,
        snakemake.params.method,
        category=snakemake.wildcards.category,
        teacher_file=snakemake.input.teacher[0] if snakemake.input.teacher else None,
        penalty_images=snakemake.params.penalty,
        device=snakemake.config["device"],
        num_workers=snakemake.config["num_workers"],
    )
