"""The SLURM profile (workflow/profiles/slurm): what it asks the cluster for (a dry run of the whole demo DAG),
and demo jobs run through a real one-node SLURM cluster that the test starts on this machine
(tests/local_slurm.py), with results byte-equal to the local run's."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow_helpers import REPO, clone_run, copy_workflow

PROFILE = REPO / "workflow" / "profiles" / "slurm"
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (\S+?)\)\.?$")
# Rules without a GPU: they must not ask for one (a GPU partition is the scarce resource).
CPU_RULES = {"data_samples", "results_metrics", "results_operating_points", "ensemble_score", "report_category",
             "report_summary"}


def dry_run_jobs(workdir: Path, *args: str) -> list[tuple[str, bool, dict[str, str]]]:
    """(rule, is_local, resources) of every job a dry run lists, in the dry run's order.

    A dry run does not say which jobs are local rules, so the workflow runs from a wrapper that includes
    the Snakefile and prints the names Snakemake collected from ``localrule: True`` (a private attribute:
    if a Snakemake upgrade renames it, this helper fails loudly rather than guessing).
    """
    wrapper = workdir / ".list_localrules.smk"
    wrapper.write_text('include: "Snakefile"\n\nprint("LOCAL_RULES:", *sorted(workflow._localrules))\n')
    # The wrapper has no default target of its own (an include does not pass one on): name `all`.
    command = [sys.executable, "-m", "snakemake", "--snakefile", wrapper.name, "--dry-run", *args, "all"]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    local_rules = next(line.split()[1:] for line in result.stdout.splitlines() if line.startswith("LOCAL_RULES:"))
    jobs: list[tuple[str, bool, dict[str, str]]] = []
    for line in result.stdout.splitlines():
        header = re.match(r"^(?:local)?rule (\w+):$", line)
        if header:
            jobs.append((header.group(1), header.group(1) in local_rules, {}))
        elif line.strip().startswith("resources:") and jobs:
            pairs = line.strip()[len("resources:"):].split(",")
            jobs[-1][2].update(pair.strip().split("=", 1) for pair in pairs if "=" in pair)
    return [job for job in jobs if job[0] != "all"]


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    workdir = copy_workflow(tmp_path_factory.mktemp("slurm_plan"))
    return dry_run_jobs(workdir, "--profile", str(PROFILE))


def test_profile_requests_a_gpu_exactly_for_the_gpu_rules(planned):
    remote = [(rule, res) for rule, local, res in planned if not local]
    assert remote, "the profile's dry run lists no cluster jobs"
    gpu_rules = {rule for rule, res in remote if res.get("gpu") == "1"}
    assert {"efficientad_fit", "patchcore_fit", "teacher_distill"} <= gpu_rules
    for rule, res in remote:
        assert "mem_mb" in res and "runtime" in res, (rule, res)
        assert res.get("slurm_partition") and res.get("slurm_account"), (rule, res)
        if rule in CPU_RULES:
            assert "gpu" not in res, f"{rule} is CPU-only but asks for {res['gpu']} GPU(s)"
    local = {rule for rule, is_local, _ in planned if is_local}
    assert "results_table" in local and any(rule.startswith("data_synth_") for rule in local)


def test_the_plugin_turns_the_gpu_resource_into_sbatch_gpus(planned):
    """The sbatch line the installed plugin builds: --gpus=1 for a GPU rule, none for a CPU rule."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    class Resources(dict):
        __getattr__ = dict.__getitem__

    class Job:
        def __init__(self, resources: dict[str, str]):
            self.threads = 1
            self.resources = Resources({k: int(v) if v.isdigit() else v for k, v in resources.items()
                                        if k in ("mem_mb", "runtime", "gpu", "slurm_partition")})

    params = {"run_uuid": "uuid", "slurm_logfile": "log", "comment_str": "c", "account": "", "partition": "",
              "workdir": "."}
    for rule, local, res in planned:
        if local or rule not in ("efficientad_fit", "data_samples"):
            continue
        job = Job(res)
        call = get_submit_command(job, params) + set_gres_string(job)
        assert f"--mem {res['mem_mb']}" in call and f"-t {res['runtime']}" in call, call
        assert ("--gpus=1" in call) == (rule == "efficientad_fit"), (rule, call)


def test_profile_settings():
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert profile["retries"] >= 1 and profile["latency-wait"] >= 30
    assert {"slurm_account", "slurm_partition"} <= set(profile["default-resources"])


# --- the real cluster --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slurm_cluster():
    from local_slurm import ClusterUnavailableError, start, stop

    try:
        cluster = start()
    except ClusterUnavailableError as reason:
        pytest.skip(f"no SLURM cluster: {reason}")
    print(f"SLURM cluster up: {cluster.describe()}")
    yield cluster
    stop(cluster)


def cluster_test_profile(target: Path, planned, partition: str) -> Path:
    """The real profile with what this GPU-less, accounting-less test node needs changed, and nothing else."""
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    gpu_rules = sorted({rule for rule, local, res in planned if not local and res.get("gpu")})
    profile["default-resources"] = {"slurm_partition": partition}  # no accounting: no account to validate
    # No GPU here, and less memory than a GPU node: the GPU rules run on the CPU within the node's RAM.
    profile["set-resources"] = {rule: {"gpu": 0, "mem_mb": 2000} for rule in gpu_rules}
    profile["slurm-status-command"] = "squeue"  # sacct exists but has no database behind it
    # Status checks 8, 26, 54 s after a submission (the plugin adds 10 s after each check that finds nothing
    # finished), not 40, 90, 150 s: one check soon after a demo job's usual 15-25 s, Snakemake's start included.
    profile["slurm-init-seconds-before-status-checks"] = 8
    profile["jobs"] = 4
    profile["retries"] = 0  # a failure here is a bug to see at once, not a flaky node
    target.mkdir(parents=True, exist_ok=True)
    (target / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return target


def slurm_slice(demo_run: Path, target: Path) -> Path:
    """The finished demo run minus one category's PUAD scores and metrics: what the cluster redoes.

    The whole demo DAG through SLURM takes longer than this suite may (every job pays for a Snakemake start
    on the node, and the run is CPU-bound on two cores; it was checked by hand: 24 jobs, all.csv byte-equal),
    so the cluster redoes a slice with every kind of job: a GPU rule (puad_score: student features on the
    GPU), CPU rules (results_metrics, the report's figures) and a local rule (results_table), whose numbers reach
    all.csv. PUAD is no ensemble member, so the chain is short (a cluster job costs tens of seconds here). Snakemake's
    metadata is dropped, so missing files and modification times alone decide what runs, as on a first run.
    """
    run = clone_run(demo_run, target)
    shutil.rmtree(run / ".snakemake")
    for name in ("scores.csv", "metrics.csv"):
        (run / "results" / "demo" / "tray" / "puad_s" / name).unlink()
    (run / "results" / "demo" / "all.csv").unlink()
    return run


@pytest.mark.slow
@pytest.mark.slurm
def test_demo_dag_through_slurm_matches_the_local_run(slurm_cluster, planned, demo_run, tmp_path, capsys):
    workdir = slurm_slice(demo_run, tmp_path / "run")
    profile = cluster_test_profile(tmp_path / "profile", planned, slurm_cluster.partition)
    to_run = dry_run_jobs(workdir, "--profile", str(profile))
    remote = sorted(rule for rule, local, _ in to_run if not local)
    assert {"puad_score", "results_metrics", "report_category"} <= set(remote), to_run
    (workdir / ".list_localrules.smk").unlink()

    command = [sys.executable, "-m", "snakemake", "--profile", str(profile)]
    log_file = tmp_path / "snakemake.log"
    submitted: list[tuple[str, str, str]] = []
    run_id = None
    started = time.monotonic()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log_file, "w") as log, subprocess.Popen(command, cwd=workdir, stdout=subprocess.PIPE,
                                                      stderr=subprocess.STDOUT, text=True, env=env) as process:
        try:
            for line in process.stdout:
                log.write(line)
                if match := SUBMITTED.search(line.strip()):
                    submitted.append(match.groups())
                    print(line.strip())
                elif "SLURM run ID:" in line:
                    run_id = line.split("SLURM run ID:")[1].strip()
            returncode = process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.terminate()  # snakemake cancels its SLURM jobs on SIGTERM
                process.wait(timeout=60)
    elapsed = time.monotonic() - started
    tail = "".join(log_file.read_text().splitlines(keepends=True)[-60:])
    assert returncode == 0, f"snakemake --profile (SLURM) failed ({returncode}); log {log_file}:\n{tail}"

    # Every cluster job went through sbatch, and finished there; local rules did not.
    assert sorted(_rule_of_log(log) for _, _, log in submitted) == remote, tail
    states = _job_states(run_id)
    assert sorted(states) == sorted(slurm_id for _, slurm_id, _ in submitted)
    assert set(states.values()) == {"COMPLETED"}, states

    expected = (demo_run / "results" / "demo" / "all.csv").read_bytes()
    produced = (workdir / "results" / "demo" / "all.csv").read_bytes()
    if produced != expected:
        _explain_difference(demo_run / "results" / "demo" / "all.csv", workdir / "results" / "demo" / "all.csv")
    with capsys.disabled():
        ids = [slurm_id for _, slurm_id, _ in submitted]
        print(f"\n[slurm] {len(ids)} sbatch jobs ({', '.join(remote)}), SLURM job ids {' '.join(ids)}: all "
              f"COMPLETED in {elapsed:.0f} s; all.csv byte-equal to the local run")


def _rule_of_log(log: str) -> str:
    # .snakemake/slurm_logs/rule_<name>/[<wildcards>/]<slurm jobid>.log
    parts = Path(log).parts
    index = next(i for i, part in enumerate(parts) if part.startswith("rule_"))
    return parts[index].removeprefix("rule_")


def _job_states(run_id: str | None) -> dict[str, str]:
    assert run_id, "the executor printed no SLURM run ID"
    result = subprocess.run(["squeue", "--noheader", "--states=all", f"--name={run_id}", "--format=%i|%T"],
                            capture_output=True, text=True, timeout=30)
    return dict(line.split("|", 1) for line in result.stdout.split())


def _explain_difference(expected: Path, produced: Path) -> None:
    a, b = pd.read_csv(expected), pd.read_csv(produced)
    if a.shape == b.shape:
        detail = a.compare(b, result_names=("local", "slurm"))
    else:
        detail = a.merge(b, on=["category", "method"], how="outer", suffixes=("_local", "_slurm"))
    pytest.fail(f"all.csv differs between the local and the SLURM run:\n{detail}")
