"""Are two finished workflow runs the same, number for number? For restructures that must change no result.

    python bench/compare_runs.py BEFORE AFTER [--dataset demo]

BEFORE and AFTER are working directories of finished runs (each with ``results/<dataset>/``). Compared:
``all.csv`` and every ``samples.csv``, ``scores.csv`` and ``metrics.csv`` byte for byte, and every
``maps.npz`` array for array, bit for bit (the ``.npz`` files themselves differ in their zip timestamps,
so their bytes can't be compared). Prints one line per difference and a summary; exits 1 when anything
differs or a file exists on one side only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

BYTE_EQUAL = ("all.csv", "samples.csv", "scores.csv", "metrics.csv")


def compare(before: Path, after: Path, dataset: str) -> list[str]:
    """Every difference between the two runs' results for ``dataset``, as printable lines."""
    roots = [run / "results" / dataset for run in (before, after)]
    files = [{p.relative_to(root) for p in root.rglob("*") if p.name in BYTE_EQUAL or p.suffix == ".npz"}
             for root in roots]
    problems = [f"only in {side}: {path}" for side, mine, other in (("before", *files), ("after", *files[::-1]))
                for path in sorted(mine - other)]
    for path in sorted(files[0] & files[1]):
        a, b = (root / path for root in roots)
        if path.suffix == ".npz":
            problems += [f"{path}: {line}" for line in _npz_differences(a, b)]
        elif a.read_bytes() != b.read_bytes():
            problems.append(f"{path}: bytes differ")
    return problems


def _npz_differences(a: Path, b: Path) -> list[str]:
    with np.load(a, allow_pickle=False) as left, np.load(b, allow_pickle=False) as right:
        if set(left.files) != set(right.files):
            return [f"arrays {sorted(left.files)} vs {sorted(right.files)}"]
        found = []
        for name in left.files:
            x, y = left[name], right[name]
            if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
                found.append(f"array {name!r} differs ({x.dtype}{x.shape} vs {y.dtype}{y.shape})")
        return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--dataset", default="demo")
    args = parser.parse_args(argv)
    problems = compare(args.before, args.after, args.dataset)
    for line in problems:
        print(line)
    count = sum(1 for _ in (args.after / "results" / args.dataset).rglob("*") if _.is_file())
    print(f"{len(problems)} difference(s); results/{args.dataset} of {args.after} has {count} files")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
