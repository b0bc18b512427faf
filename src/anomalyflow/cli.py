"""The ``anomalyflow`` command: dataset tools, synthetic data, prediction with a trained model.

Each subcommand is a thin wrapper over one library function; errors a user can fix come out as one
line (see :mod:`anomalyflow.errors`). ``--debug`` (or ``ANOMALYFLOW_DEBUG=1``) shows tracebacks.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from anomalyflow import __version__
from anomalyflow.errors import user_errors
from anomalyflow.logs import setup_logging

LAYOUT_NAMES = ("mvtec_ad", "mvtec_loco", "loco", "visa", "btad", "folder")


def _cmd_check_data(args: argparse.Namespace) -> None:
    from anomalyflow.data.check import check_data

    print(check_data(args.dataset, args.root, category=args.category, full=args.full))


def _cmd_synth(args: argparse.Namespace) -> None:
    from anomalyflow.data.synth import generate

    written = generate(args.out, seed=args.seed, categories=args.category or None)
    total = sum(len(files) for files in written.values())
    print(f"wrote {total} files for {len(written)} categories ({', '.join(written)}) under {args.out}")


def _cmd_info(args: argparse.Namespace) -> None:
    import torch

    print(f"anomalyflow {__version__}")
    print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")
    try:
        import faiss

        gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
        print(f"faiss {faiss.__version__}, GPUs visible to faiss: {gpus}")
    except ImportError:
        print("faiss: not installed (pip install 'anomalyflow[cpu]' or '[gpu]')")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="anomalyflow", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"anomalyflow {__version__}")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = sub.add_parser("check-data", help="read a dataset folder and print image counts per split and type")
    check.add_argument("--dataset", required=True, choices=LAYOUT_NAMES, help="the folder layout")
    check.add_argument("--root", required=True, help="the dataset's root folder")
    check.add_argument("--category", help="one category (default: all found under the root)")
    check.add_argument("--full", action="store_true", help="also decode every image and mask (slower)")
    check.set_defaults(func=_cmd_check_data)

    synth = sub.add_parser("synth", help="write the synthetic LOCO-style demo dataset")
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--category", action="append", help="only this category (repeatable)")
    synth.set_defaults(func=_cmd_synth)

    info = sub.add_parser("info", help="versions and devices")
    info.set_defaults(func=_cmd_info)

    _add_optional_commands(sub)
    return parser


def _add_optional_commands(sub) -> None:
    """Subcommands that live with the modules they wrap (e.g. ``predict``)."""
    try:
        from anomalyflow.predict import add_predict_command
    except ImportError:
        return
    add_predict_command(sub)
    from anomalyflow.export.writer import add_export_command

    add_export_command(sub)


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.debug:
        os.environ["ANOMALYFLOW_DEBUG"] = "1"
    setup_logging()
    with user_errors("anomalyflow"):
        args.func(args)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
