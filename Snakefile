# anomalyflow: the whole chain as one cached, file-based DAG.
#
#   snakemake --cores 2                                        # the built-in demo -> results/demo/all.csv
#   snakemake --cores 8 --configfile config/loco.yaml results/loco/all.csv
#   snakemake --profile workflow/profiles/slurm --configfile config/loco.yaml results/loco/all.csv
#
# Rules only wire files to library calls (src/anomalyflow); see README.md and config/config.yaml.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/weights.smk"
include: "workflow/rules/patchcore.smk"
include: "workflow/rules/efficientad.smk"
include: "workflow/rules/evaluate.smk"


rule all:
    input:
        f"results/{config['dataset']}/all.csv",
    default_target: True
