from anomalyflow.jobs import rule_job
from anomalyflow.official_maps import link_official_maps

with rule_job(snakemake):
    link_official_maps(snakemake.input.maps, snakemake.output[0])
