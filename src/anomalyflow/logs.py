"""Logging for the CLI and the workflow jobs: progress on stderr, everything in the job's log file."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

LOGGER_NAME = "anomalyflow"


def setup_logging(log_file: str | Path | None = None, *, verbose: bool = False) -> logging.Logger:
    """Send the ``anomalyflow`` logger to stderr and, if given, to ``log_file`` (appended)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(logging.Formatter("anomalyflow: %(message)s"))
    logger.addHandler(stream)
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_file)
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(file_handler)
    return logger


def get_logger(name: str) -> logging.Logger:
    """A child of the ``anomalyflow`` logger, e.g. ``get_logger(__name__)``."""
    if not name.startswith(LOGGER_NAME):
        name = f"{LOGGER_NAME}.{name}"
    return logging.getLogger(name)
