# Test-image maps in the layout of MVTec's own evaluation scripts (README: "Checking the numbers with MVTec's
# evaluation scripts"): results/{dataset}/official_maps/{method}/{category}/test/{defect_type}/{image}.tiff.
# Built when asked for, and by all.csv when the config's official_maps is true (they are large).


rule official_maps_write:
    input:
        code=code("anomalyflow.official_maps"),
        samples=samples_csv,
        maps="results/{dataset}/{category}/{method}/maps.npz",
    output:
        directory("results/{dataset}/official_maps/{method}/{category}"),
    log:
        "logs/{dataset}/{category}/{method}/official_maps_write.log",
    benchmark:
        "benchmarks/{dataset}/{category}/{method}/official_maps_write.tsv"
    resources:
        **cpu_resources(4000, 60),
    conda:
        "../../envs/cpu.yaml"
    script:
        "../scripts/official_maps_write.py"

