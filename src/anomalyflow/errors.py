"""Errors a user can cause and fix, and the one place that turns them into a one-line message.

Everything raised as :class:`AnomalyflowError` names the file or config key at fault and says what
to do. Entry points (the CLI and the workflow's rule scripts) run inside :func:`user_errors`, which
prints that message and exits with status 1 instead of showing a traceback. Set the environment
variable ``ANOMALYFLOW_DEBUG=1`` (or pass ``--debug`` to the CLI) to see the traceback as well.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Iterator

log = logging.getLogger("anomalyflow")


class AnomalyflowError(Exception):
    """An error caused by input or configuration; the message names the culprit and the remedy."""


class ConfigError(AnomalyflowError):
    """A configuration key is unknown, misspelt, missing or has a bad value."""


class DataError(AnomalyflowError):
    """A dataset file or folder is missing, unreadable or does not follow the expected layout."""


class LeakageError(AnomalyflowError):
    """A statistic was asked to use test-split samples."""


class NumericalError(AnomalyflowError):
    """A model produced NaN or infinite values (e.g. a constant training set)."""


def debug_enabled() -> bool:
    return os.environ.get("ANOMALYFLOW_DEBUG", "").strip() not in ("", "0", "false", "no")


@contextlib.contextmanager
def user_errors(prog: str = "anomalyflow") -> Iterator[None]:
    """Run the body; turn any exception into one clear line on stderr and exit status 1.

    ``AnomalyflowError`` is printed as is. Any other exception is reported as an internal error with
    its type and message (a bug to report, not a user mistake). ``KeyboardInterrupt`` exits with 130.
    """
    try:
        yield
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except SystemExit:
        raise
    except AnomalyflowError as error:
        _report(prog, f"error: {error}")
        raise SystemExit(1) from None
    except MemoryError:
        _report(prog, "error: out of memory; lower the batch size or image size in the config")
        raise SystemExit(1) from None
    except Exception as error:  # the last line of defence before the user
        _report(prog, f"internal error: {type(error).__name__}: {error} "
                      "(set ANOMALYFLOW_DEBUG=1 to see the traceback, and please report it)")
        raise SystemExit(1) from None


def _report(prog: str, message: str) -> None:
    if debug_enabled():
        traceback.print_exc()
    if log.handlers:  # set up by anomalyflow.logs.setup_logging: stderr and the job's log file
        log.error(message)
    else:
        print(f"{prog}: {message}", file=sys.stderr)
    sys.stderr.flush()
