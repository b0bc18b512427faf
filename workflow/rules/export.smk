# Exported models (README: "Exporting a model"): one ONNX file per category x method whose family exports
# (PatchCore, EfficientAD, PUAD), scored later by onnxruntime alone, and checked against its folder's scores and
# maps as it is written; exports.csv (and the report's exports.html) lists every method of the dataset with its
# file and that parity, or why it has none. Built when asked for (`make export`, `make demo`).


rule export_model:
    input:
        export_inputs,
        code=code("anomalyflow.export.writer", "anomalyflow.export.parity"),
    output:
        onnx="results/{dataset}/exports/{category}/{method}.onnx",
        parity="results/{dataset}/exports/{category}/{method}.parity.json",
    wildcard_constraints:
        method=exportable_regex(),
    params:
        folder=method_dir,
    log:
        "logs/{dataset}/{category}/{method}/export_model.log",
    benchmark:
        "benchmarks/{dataset}/{category}/{method}/export_model.tsv"
    threads: threads_of
    resources:
        **cpu_resources(8000, 30),
    conda:
        "../../envs/cpu.yaml"
    script:
        "../scripts/export_model.py"


rule export_table:
    input:
        export_files,
        code=code("anomalyflow.export.writer"),
    output:
        table="results/{dataset}/exports/exports.csv",
        html=report(
            "results/{dataset}/exports/exports.html",
            caption="../../report/exports.rst",
            category="exports",
            labels={"figure": "exported models"},
        ),
    params:
        entries=export_entries,
    log:
        "logs/{dataset}/export_table.log",
    localrule: True
    conda:
        "../../envs/cpu.yaml"
    script:
        "../scripts/export_table.py"
