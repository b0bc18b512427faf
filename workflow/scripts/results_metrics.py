from anomalyflow.evaluate import evaluate_category, write_metrics
from anomalyflow.jobs import rule_job

with rule_job(snakemake):
    i = snakemake.input
    metrics = evaluate_category(i.samples, i.scores, i.maps or None, method=snakemake.wildcards.method,
                                defects_config=next(iter(i.defects), None), **snakemake.params.evaluation)
    write_metrics(snakemake.output[0], metrics)
