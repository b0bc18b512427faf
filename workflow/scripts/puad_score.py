from pathlib import Path

from anomalyflow.device import resolve_device
from anomalyflow.jobs import job
from anomalyflow.puad import PUAD
from anomalyflow.scoring import score_category

with job(snakemake.log[0], name="puad_score", threads=snakemake.threads):
    model = PUAD.load(Path(snakemake.output.scores).parent, resolve_device(snakemake.config["device"]))
    score_category(model, snakemake.input.samples, snakemake.output.scores, None,
                   num_workers=snakemake.config["num_workers"])
