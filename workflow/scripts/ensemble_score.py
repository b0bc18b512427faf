from anomalyflow.ensemble import ensemble_category
from anomalyflow.jobs import rule_job

with rule_job(snakemake):
    params, i, o = snakemake.params.method, snakemake.input, snakemake.output
    members = list(zip(params["members"], i.scores, i.maps, strict=True))
    ensemble_category(i.samples, members, o.scores, o.maps, o.model, params)
