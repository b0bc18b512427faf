from pathlib import Path

from anomalyflow.jobs import job
from anomalyflow.nets.backbones import resolve_weights
from anomalyflow.pni.refine import fit_pni_refined

with job(snakemake.log[0], name="pni_refined_fit", threads=snakemake.threads):
    params = snakemake.params.method
    fit_pni_refined(
        snakemake.input.samples,
        Path(snakemake.input.base[0]).parent,
        Path(snakemake.output[0]).parent,
        {**params, "weights": resolve_weights(params["weights"], "densenet161")},
        device=snakemake.config["device"],
        num_workers=snakemake.config["num_workers"],
    )
