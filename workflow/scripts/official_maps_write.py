from anomalyflow.jobs import job
from anomalyflow.official_maps import write_official_maps

with job(snakemake.log[0], name="official_maps_write", threads=snakemake.threads):
    write_official_maps(snakemake.input.samples, snakemake.input.maps, snakemake.output[0])
