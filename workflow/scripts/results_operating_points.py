from anomalyflow.jobs import rule_job
from anomalyflow.thresholds import write_operating_points

with rule_job(snakemake):
    write_operating_points(snakemake.input.scores, snakemake.output[0], snakemake.params.rates)
