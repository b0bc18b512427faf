from pathlib import Path

from anomalyflow.jobs import job
from anomalyflow.patchcore import fit_patchcore

with job(snakemake.log[0], name="patchcore_fit", threads=snakemake.threads):
    weights = snakemake.input.weights[0] if snakemake.input.weights else "none"
    fit_patchcore(
        snakemake.input.samples,
        Path(snakemake.output.model).parent,
        {**snakemake.params.method, "weights": weights},
        device=snakemake.config["device"],
        num_workers=snakemake.config["num_workers"],
    )
