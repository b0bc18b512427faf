from anomalyflow.export.writer import write_export_table
from anomalyflow.jobs import rule_job

with rule_job(snakemake):
    write_export_table(snakemake.output.table, snakemake.params.entries, snakemake.output.html,
                       title=snakemake.wildcards.dataset)
