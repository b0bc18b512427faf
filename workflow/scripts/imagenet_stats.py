from anomalyflow.efficientad.imagenet_stats import compute_imagenet_stats
from anomalyflow.jobs import job

with job(snakemake.log[0], name="imagenet_stats", threads=snakemake.threads):
    t = snakemake.params.teacher
    compute_imagenet_stats(
        snakemake.params.images,
        snakemake.output[0],
        n_images=t["n_images"],
        seed=t["stats_seed"],
        variant=t["variant"],
        backbone=t["backbone"],
        weights=snakemake.input.weights[0] if snakemake.input.weights else "none",
        image_size=t["image_size"],
        device=snakemake.config["device"],
        num_workers=snakemake.config["num_workers"],
    )
