from pathlib import Path

from anomalyflow.efficientad.stages import fit_efficientad_quantiles
from anomalyflow.jobs import job

with job(snakemake.log[0], name="efficientad_fit_quantiles", threads=snakemake.threads):
    fit_efficientad_quantiles(
        Path(snakemake.output[0]).parent,
        snakemake.input.samples,
        snakemake.params.method,
        category=snakemake.wildcards.category,
        device=snakemake.config["device"],
        num_workers=snakemake.config["num_workers"],
    )
