from anomalyflow.jobs import job
from anomalyflow.viz import write_category_figures

with job(snakemake.log[0], name="report_category"):
    methods = snakemake.params.methods
    write_category_figures(
        snakemake.input.samples,
        dict(zip(methods, snakemake.input.scores, strict=True)),
        dict(zip(methods, snakemake.input.maps, strict=True)),
        snakemake.input.metrics,
        table=snakemake.output.table,
        roc=snakemake.output.roc,
        grid=snakemake.output.grid,
    )
