from anomalyflow.fetch import fetch_file
from anomalyflow.jobs import rule_job

with rule_job(snakemake):
    source = snakemake.params.download
    fetch_file(source["url"], snakemake.output[0], source["sha256"])
