from anomalyflow.efficientad.distill import distill_teacher
from anomalyflow.jobs import job
from anomalyflow.nets.backbones import resolve_weights

with job(snakemake.log[0], name="teacher_distill", threads=snakemake.threads):
    t = snakemake.params.teacher
    distill_teacher(
        snakemake.params.images,
        snakemake.input.stats,
        snakemake.output[0],
        size=snakemake.wildcards.size,
        iterations=t["iterations"],
        batch_size=t["batch_size"],
        lr=t["lr"],
        weight_decay=t["weight_decay"],
        seed=t["seed"],
        variant=t["variant"],
        backbone=t["backbone"],
        weights=resolve_weights(t["weights"], t["backbone"]),
        image_size=t["image_size"],
        device=snakemake.config["device"],
        num_workers=snakemake.config["num_workers"],
        # From the config: the rule's params (its rerun trigger) leave it out, as it changes no result.
        checkpoint_every=snakemake.config["teachers"][snakemake.wildcards.teacher]["checkpoint_every"],
        cache_limit=t["cache_limit"],
    )
