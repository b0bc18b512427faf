# Exported models (README: "Exporting a model"): one ONNX file per category x method whose family exports
# (PatchCore, EfficientAD, PUAD), scored later by onnxruntime alone; exports.csv lists every method of the
# dataset with its file or why it has none. Built when asked for (`make export`, `make demo`).


rule export_model:
    input:
        export_inputs,
        code=code("anomalyflow.export.writer"),
    output:
        "results/{dataset}/exports/{category}/{method}.onnx",
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
        "results/{dataset}/exports/exports.csv",
    params:
        entries=export_entries,
    log:
        "logs/{dataset}/export_table.log",
    localrule: True
    conda:
        "../../envs/cpu.yaml"
    script:
        "../scripts/export_table.py"
