from anomalyflow.aggregate import aggregate, write_all
from anomalyflow.jobs import job

with job(snakemake.log[0], name="aggregate"):
    write_all(snakemake.output[0], aggregate(snakemake.input.metrics, snakemake.params.provenance))
