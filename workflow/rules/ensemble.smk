# Ensembles: any methods of one category, maps normalised on validation normals and averaged.


rule ensemble_score:
    input:
        code=code("anomalyflow.ensemble"),
        samples=samples_csv,
        scores=ensemble_inputs("scores"),
        maps=ensemble_inputs("maps"),
    output:
        scores="results/{dataset}/{category}/{method}/scores.csv",
        maps="results/{dataset}/{category}/{method}/maps.npz",
        # The ensemble's whole model folder: model.json (anomalyflow.model_folder.ENSEMBLE_FOLDER).
        model=model_files("ensemble", "score")[0],
    wildcard_constraints:
        method=family_regex("ensemble"),
    params:
        method=params_of,
    log:
        "logs/{dataset}/{category}/{method}/ensemble_score.log",
    resources:
        **cpu_resources(8000, 30),
    conda:
        "../../envs/cpu.yaml"
    script:
        "../scripts/ensemble_score.py"
