from anomalyflow.evaluate import evaluate_category, write_metrics
from anomalyflow.jobs import job

with job(snakemake.log[0], name="results_metrics"):
    metrics = evaluate_category(
        snakemake.input.samples,
        snakemake.input.scores,
        snakemake.input.maps or None,
        method=snakemake.wildcards.method,
        defects_config=snakemake.input.defects[0] if snakemake.input.defects else None,
        **snakemake.params.evaluation,
    )
    write_metrics(snakemake.output[0], metrics)
