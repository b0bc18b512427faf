from pathlib import Path

from anomalyflow.jobs import rule_job
from anomalyflow.puad import PUAD
from anomalyflow.scoring import score_category

with rule_job(snakemake) as run:
    o = snakemake.output
    model = PUAD.load(Path(o.scores).parent, run.device)
    score_category(model, snakemake.input.samples, o.scores, o.maps, num_workers=run.num_workers)
