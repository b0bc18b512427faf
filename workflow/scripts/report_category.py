from anomalyflow.jobs import rule_job
from anomalyflow.viz import write_category_figures

with rule_job(snakemake):
    methods, i, o = snakemake.params.methods, snakemake.input, snakemake.output
    scores, maps, points = (dict(zip(methods, files, strict=True)) for files in (i.scores, i.maps, i.points))
    write_category_figures(i.samples, scores, maps, i.metrics, table=o.table, roc=o.roc, grid=o.grid,
                           points=points, points_table=o.points)
