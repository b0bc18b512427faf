from anomalyflow.jobs import job
from anomalyflow.viz import write_summary_figure

with job(snakemake.log[0], name="report_summary"):
    write_summary_figure(snakemake.input.metrics, snakemake.output[0])
