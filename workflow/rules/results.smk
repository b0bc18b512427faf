# Metrics and operating points per category x method, then the dataset table results/{dataset}/all.csv.


rule results_metrics:
    input:
        code=code("anomalyflow.evaluate"),
        samples=samples_csv,
        scores="results/{dataset}/{category}/{method}/scores.csv",
        maps=maps_of,
        defects=defects_config,
    output:
        "results/{dataset}/{category}/{method}/metrics.csv",
    params:
        evaluation=lambda wc: evaluation_params(config, wc.dataset),
    log:
        "logs/{dataset}/{category}/{method}/results_metrics.log",
    resources:
        **cpu_resources(8000, 30),
    conda:
        "../../envs/cpu.yaml"
    script:
        "../scripts/results_metrics.py"


rule results_operating_points:
    input:
        code=code("anomalyflow.thresholds"),
        scores="results/{dataset}/{category}/{method}/scores.csv",
    output:
        "results/{dataset}/{category}/{method}/operating_points.csv",
    params:
        rates=lambda wc: false_alarm_rates(config, wc.dataset),
    log:
        "logs/{dataset}/{category}/{method}/results_operating_points.log",
    resources:
        **cpu_resources(1000, 10),
    conda:
        "../../envs/cpu.yaml"
    script:
        "../scripts/results_operating_points.py"


rule results_table:
    input:
        metrics=all_metrics,
        code=code("anomalyflow.results_table"),
        # Not read: the report's figures (report.smk) are built with every all.csv, so that
        # `snakemake --report` with the same target finds them; they include every method's operating points.
        figures=report_figures,
        # Not read either: the official-layout maps, when official_maps asks for them.
        official_maps=official_maps_wanted,
    output:
        "results/{dataset}/all.csv",
    params:
        provenance=provenance,
    log:
        "logs/{dataset}/results_table.log",
    localrule: True
    conda:
        "../../envs/cpu.yaml"
    script:
        "../scripts/results_table.py"
