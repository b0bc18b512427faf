from anomalyflow.jobs import rule_job
from anomalyflow.nets.backbones import save_imagenet_weights

with rule_job(snakemake):
    save_imagenet_weights(snakemake.wildcards.backbone, snakemake.output[0])
