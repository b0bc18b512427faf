from anomalyflow.jobs import job
from anomalyflow.results_table import results_table, write_results_table

with job(snakemake.log[0], name="results_table"):
    write_results_table(snakemake.output[0], results_table(snakemake.input.metrics, snakemake.params.provenance))
