from pathlib import Path

from anomalyflow.jobs import job
from anomalyflow.scoring import score_category

with job(snakemake.log[0], name="score", threads=snakemake.threads):
    score_category(
        Path(snakemake.input.model).parent,
        snakemake.input.samples,
        snakemake.output.scores,
        snakemake.output.get("maps"),
        device=snakemake.config["device"],
        num_workers=snakemake.config["num_workers"],
    )
