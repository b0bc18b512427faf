# anomalyflow: the whole chain as one cached, file-based DAG.
#
#   snakemake --cores 2                                        # the built-in demo -> results/demo/all.csv
#   snakemake --cores 8 results/loco/all.csv                   # MVTec LOCO AD under data_root (resources/data)
#   snakemake --cores 8 results/mvtec_ad/all.csv --config data_root=/data
#   snakemake --profile workflow/profiles/slurm results/loco/all.csv
#
# Rules only wire files to library calls (src/anomalyflow); see README.md and config/config.yaml.

import os
import sys

from snakemake.utils import min_version

min_version("9.0")

# Jobs import the library from this checkout's src/ (also inside --sdm conda environments, which hold
# only the dependencies), so a job always runs the code beside the workflow.
# (Set here, not required from the user, hence no envvars: directive.) The rule files below import it too.
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [f"{workflow.basedir}/src", os.getenv("PYTHONPATH")])))
sys.path.insert(0, f"{workflow.basedir}/src")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/weights.smk"
include: "workflow/rules/patchcore.smk"
include: "workflow/rules/teacher.smk"
include: "workflow/rules/efficientad.smk"
include: "workflow/rules/puad.smk"
include: "workflow/rules/pni.smk"
include: "workflow/rules/ensemble.smk"
include: "workflow/rules/results.smk"
include: "workflow/rules/official_maps.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/export.smk"


rule all:
    input:
        f"results/{config['dataset']}/all.csv",
    default_target: True
