from anomalyflow.export.writer import export_checked
from anomalyflow.jobs import rule_job

with rule_job(snakemake):
    export_checked(snakemake.params.folder, snakemake.output.onnx, snakemake.output.parity)
