# The HTML report's figures (`snakemake --report report.html`): per category a metric table, the operating
# points, ROC curves and an anomaly-map grid; per dataset a bar chart of methods x categories. results_table
# waits for them, so every command that builds results/{dataset}/all.csv also builds what the report embeds.


report: "../../report/workflow.rst"


rule report_category:
    input:
        code=code("anomalyflow.viz"),
        samples=samples_csv,
        scores=category_method_files("scores.csv"),
        maps=category_method_files("maps.npz"),
        metrics=category_method_files("metrics.csv"),
        points=category_method_files("operating_points.csv"),
    output:
        table=report(
            "results/{dataset}/figures/{category}/metrics.html",
            caption="../../report/metrics_table.rst",
            category="{category}",
            labels={"figure": "metrics"},
        ),
        points=report(
            "results/{dataset}/figures/{category}/operating_points.html",
            caption="../../report/operating_points.rst",
            category="{category}",
            labels={"figure": "operating points"},
        ),
        roc=report(
            "results/{dataset}/figures/{category}/roc.svg",
            caption="../../report/roc.rst",
            category="{category}",
            labels={"figure": "ROC curves"},
        ),
        grid=report(
            "results/{dataset}/figures/{category}/maps.png",
            caption="../../report/maps.rst",
            category="{category}",
            labels={"figure": "anomaly maps"},
        ),
    params:
        methods=lambda wc: ds(wc)["methods"],
    log:
        "logs/{dataset}/{category}/report_category.log",
    resources:
        **cpu_resources(4000, 20),
    conda:
        "../../envs/cpu.yaml"
    script:
        "../scripts/report_category.py"


rule report_summary:
    input:
        metrics=all_metrics,
        code=code("anomalyflow.viz"),
    output:
        report(
            "results/{dataset}/figures/summary.svg",
            caption="../../report/summary.rst",
            category="Summary",
            labels={"figure": "methods by category"},
        ),
    log:
        "logs/{dataset}/report_summary.log",
    resources:
        **cpu_resources(2000, 10),
    conda:
        "../../envs/cpu.yaml"
    script:
        "../scripts/report_summary.py"
