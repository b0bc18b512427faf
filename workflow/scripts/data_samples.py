from anomalyflow.data.check import verified_samples
from anomalyflow.data.table import write_samples
from anomalyflow.jobs import job

with job(snakemake.log[0], name="data_samples"):
    validation = snakemake.params.validation
    table = verified_samples(
        snakemake.params.layout,
        snakemake.params.root,
        snakemake.wildcards.category,
        workers=snakemake.threads,
        dataset=snakemake.wildcards.dataset,
        validation_fraction=validation.get("fraction", 0.15),
        validation_seed=validation.get("seed", 42),
        folder=snakemake.params.folder,
    )
    write_samples(table, snakemake.output[0])
