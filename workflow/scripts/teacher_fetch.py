from anomalyflow.fetch import fetch_file
from anomalyflow.jobs import job

with job(snakemake.log[0], name="teacher_fetch"):
    source = snakemake.params.download
    fetch_file(source["url"], snakemake.output[0], source["sha256"])
