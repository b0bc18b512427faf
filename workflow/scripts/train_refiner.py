from pathlib import Path

from anomalyflow.jobs import job
from anomalyflow.nets.backbones import resolve_weights
from anomalyflow.pni.refine import train_refiner

with job(snakemake.log[0], name="train_refiner", threads=snakemake.threads):
    params = snakemake.params.method
    train_refiner(
        snakemake.input.samples,
        Path(snakemake.input.base[0]).parent,
        Path(snakemake.output[0]).parent,
        {**params, "weights": resolve_weights(params["weights"], "densenet161")},
        device=snakemake.config["device"],
        num_workers=snakemake.config["num_workers"],
    )
