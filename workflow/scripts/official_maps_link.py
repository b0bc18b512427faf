from anomalyflow.jobs import job
from anomalyflow.official_maps import link_official_maps

with job(snakemake.log[0], name="official_maps_link"):
    link_official_maps(snakemake.input.maps, snakemake.output[0])
