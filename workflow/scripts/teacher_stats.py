from anomalyflow.efficientad.imagenet_stats import compute_imagenet_stats
from anomalyflow.jobs import job
from anomalyflow.nets.backbones import resolve_weights

with job(snakemake.log[0], name="teacher_stats", threads=snakemake.threads):
    t = snakemake.params.teacher
    compute_imagenet_stats(
        snakemake.params.images,
        snakemake.output[0],
        n_images=t["n_images"],
        seed=t["stats_seed"],
        variant=t["variant"],
        backbone=t["backbone"],
        weights=resolve_weights(t["weights"], t["backbone"]),
        image_size=t["image_size"],
        device=snakemake.config["device"],
        num_workers=snakemake.config["num_workers"],
    )
