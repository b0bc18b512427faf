from anomalyflow.data.synth import generate
from anomalyflow.jobs import job

with job(snakemake.log[0], name="synth"):
    generate(snakemake.params.root, categories=[snakemake.params.category], **snakemake.params.spec)
