from anomalyflow.jobs import rule_job
from anomalyflow.results_table import results_table, write_results_table

with rule_job(snakemake):
    write_results_table(snakemake.output[0], results_table(snakemake.input.metrics, snakemake.params.provenance))
