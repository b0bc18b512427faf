from anomalyflow.jobs import job
from anomalyflow.nets.backbones import save_imagenet_weights

with job(snakemake.log[0], name="weights_download"):
    save_imagenet_weights(snakemake.wildcards.backbone, snakemake.output[0])
