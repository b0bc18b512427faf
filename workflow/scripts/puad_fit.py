from pathlib import Path

from anomalyflow.jobs import job
from anomalyflow.puad import fit_puad

with job(snakemake.log[0], name="puad_fit", threads=snakemake.threads):
    fit_puad(
        snakemake.input.samples,
        Path(snakemake.input.base[0]).parent,
        Path(snakemake.output[0]).parent,
        snakemake.params.method,
        device=snakemake.config["device"],
        num_workers=snakemake.config["num_workers"],
    )
