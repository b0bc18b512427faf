from anomalyflow.data.check import write_verified_samples
from anomalyflow.jobs import rule_job

with rule_job(snakemake):
    p, w = snakemake.params, snakemake.wildcards
    write_verified_samples(p.layout, p.root, w.category, snakemake.output[0], dataset=w.dataset,
                           validation=p.validation, folder=p.folder, workers=snakemake.threads)
