from pathlib import Path

from anomalyflow.config import method_params
from anomalyflow.efficientad.stages import fit_efficientad
from anomalyflow.jobs import job

with job(snakemake.log[0], name="efficientad_fit", threads=snakemake.threads):
    w = snakemake.wildcards
    fit_efficientad(
        snakemake.input.samples,
        Path(snakemake.output[0]).parent,
        # From the config, checkpoint_every included (the rule's params, its rerun trigger, leave it out).
        method_params(snakemake.config, w.dataset, w.category, w.method),
        category=snakemake.wildcards.category,
        teacher_file=snakemake.input.teacher[0] if snakemake.input.teacher else None,
        penalty_images=snakemake.params.penalty,
        device=snakemake.config["device"],
        num_workers=snakemake.config["num_workers"],
        teacher_label=snakemake.params.teacher,
    )
