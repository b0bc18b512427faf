from anomalyflow.ensemble import ensemble_category
from anomalyflow.jobs import job

with job(snakemake.log[0], name="ensemble_score"):
    params = snakemake.params.method
    ensemble_category(
        snakemake.input.samples,
        list(zip(params["members"], snakemake.input.scores, snakemake.input.maps, strict=True)),
        snakemake.output.scores,
        snakemake.output.maps,
        snakemake.output.model,
        normalization=params["normalization"],
        image_score=params["image_score"],
        top_fraction=params["top_fraction"],
    )
