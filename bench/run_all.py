"""Run every benchmark in turn (``make bench``): each prints its table and appends to bench/records/.

    python bench/run_all.py [--only coreset metrics ...] [--skip demo_dag] [--no-anomalib] [--tiny]
                            [--quiet-load 0.8] [--max-wait 900]

Before starting (and before each benchmark) it waits, up to ``--max-wait`` seconds, for the 1-minute load
average to fall below ``--quiet-load``, so that another job on the machine does not skew the clocks; the
load at the start of each benchmark is stored in its record either way.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl

BENCHMARKS = ["metrics_speed", "coreset", "coreset_quality", "efficientad_inference", "efficientad_training",
              "scoring", "demo_dag"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=None)
    parser.add_argument("--skip", nargs="+", choices=BENCHMARKS, default=[])
    parser.add_argument("--quiet-load", type=float, default=0.8)
    parser.add_argument("--max-wait", type=float, default=900.0)
    parser.add_argument("--no-wait", action="store_true")
    args, rest = parser.parse_known_args(argv)
    names = [n for n in (args.only or BENCHMARKS) if n not in args.skip]
    failed = []
    for name in names:
        if not args.no_wait and "--tiny" not in rest:
            bl.wait_for_quiet(args.quiet_load, args.max_wait)
        print(f"\n=== {name} ===", flush=True)
        start = time.perf_counter()
        try:
            importlib.import_module(name).main(rest)
        except Exception as error:  # one broken benchmark must not hide the others' numbers
            print(f"{name} FAILED: {type(error).__name__}: {error}", flush=True)
            failed.append(name)
        print(f"=== {name}: {time.perf_counter() - start:.0f} s ===", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
