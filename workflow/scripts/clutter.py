from anomalyflow.data.clutter import generate_clutter
from anomalyflow.jobs import job

with job(snakemake.log[0], name="clutter"):
    generate_clutter(snakemake.params.root, **snakemake.params.spec)
