"""Records, per Snakemake job, the anomalyflow modules the job's process imported (tests/test_job_modules.py).

A recorded workflow run (``workflow_helpers.snakemake(..., job_modules=folder)``) puts this folder on PYTHONPATH, so
Python imports this file at the start of every process, Snakemake's and each job's. In a process that
runs a rule's script (the script's namespace holds Snakemake's ``snakemake`` object) it writes, at exit,
``<folder>/<rule>-<pid>.json``: the rule, its wildcards, its ``code`` inputs and the source file of every
anomalyflow module in ``sys.modules``, all relative to the run folder. Other processes are left alone.
"""

import os

FOLDER = os.environ.get("ANOMALYFLOW_JOB_MODULES")

if FOLDER:
    import atexit
    import json
    import sys

    def _record() -> None:
        job = getattr(sys.modules.get("__main__"), "snakemake", None)
        if type(job).__name__ != "Snakemake":  # not a job's script: Snakemake itself, a worker, ...
            return
        modules = sorted({os.path.relpath(module.__file__) for name, module in list(sys.modules.items())
                          if name.split(".")[0] == "anomalyflow" and getattr(module, "__file__", None)})
        record = {"rule": job.rule, "wildcards": dict(job.wildcards.items()), "modules": modules,
                  "code": [os.path.normpath(p) for p in job.input.get("code", [])]}
        with open(os.path.join(FOLDER, f"{job.rule}-{os.getpid()}.json"), "w") as handle:
            json.dump(record, handle, indent=1)

    atexit.register(_record)
