from pathlib import Path

from anomalyflow.device import resolve_device
from anomalyflow.efficientad.model import EfficientAD
from anomalyflow.jobs import job
from anomalyflow.scoring import score_category

with job(snakemake.log[0], name="efficientad_score", threads=snakemake.threads):
    model = EfficientAD.load(Path(snakemake.output.scores).parent, resolve_device(snakemake.config["device"]))
    score_category(model, snakemake.input.samples, snakemake.output.scores, snakemake.output.maps,
                   num_workers=snakemake.config["num_workers"])
