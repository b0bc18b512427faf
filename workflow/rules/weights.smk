# Pretrained weights are fetched once, on the machine that runs Snakemake (it has internet; cluster
# nodes may not), and every rule reads the cached file.


rule weights_download:
    input:
        code=code("anomalyflow.nets.backbones"),
    output:
        "resources/weights/{backbone}.pth",
    wildcard_constraints:
        backbone=r"[a-z0-9_]+",
    log:
        "logs/weights/{backbone}/weights_download.log",
    localrule: True
    conda:
        "../../envs/cpu.yaml"
    script:
        "../scripts/weights_download.py"
