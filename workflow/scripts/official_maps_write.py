from anomalyflow.jobs import rule_job
from anomalyflow.official_maps import write_official_maps

with rule_job(snakemake):
    write_official_maps(snakemake.input.samples, snakemake.input.maps, snakemake.output[0])
