from pathlib import Path

from anomalyflow.jobs import job
from anomalyflow.nets.backbones import resolve_weights
from anomalyflow.patchcore import fit_patchcore

with job(snakemake.log[0], name="patchcore_fit", threads=snakemake.threads):
    params = snakemake.params.method
    fit_patchcore(
        snakemake.input.samples,
        Path(snakemake.output[0]).parent,
        {**params, "weights": resolve_weights(params["weights"], params["backbone"])},
        device=snakemake.config["device"],
        num_workers=snakemake.config["num_workers"],
    )
