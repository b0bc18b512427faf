from anomalyflow.jobs import rule_job
from anomalyflow.viz import write_summary_figure

with rule_job(snakemake):
    write_summary_figure(snakemake.input.metrics, snakemake.output[0])
