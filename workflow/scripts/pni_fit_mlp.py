from pathlib import Path

from anomalyflow.jobs import job
from anomalyflow.nets.backbones import resolve_weights
from anomalyflow.pni.stages import fit_pni_mlp

with job(snakemake.log[0], name="pni_fit_mlp", threads=snakemake.threads):
    params = snakemake.params.method
    fit_pni_mlp(
        snakemake.input.samples,
        Path(snakemake.output[0]).parent,
        {**params, "weights": resolve_weights(params["weights"], params["backbone"])},
        device=snakemake.config["device"],
        num_workers=snakemake.config["num_workers"],
        features_path=snakemake.input.features,
    )
