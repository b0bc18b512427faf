from anomalyflow.export.writer import export_model
from anomalyflow.jobs import rule_job

with rule_job(snakemake):
    export_model(snakemake.params.folder, snakemake.output[0])
