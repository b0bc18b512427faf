"""Shared test fixtures. Nothing here touches the network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """The project's shared folder beside the checkout (absent in a user's clone)."""
    return Path(os.environ.get("ANOMALYFLOW_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def mvtec_mini() -> Path:
    """The real MVTec AD mini subset (screw); read in place, never copied into the repository."""
    root = shared_dir() / "data" / "mvtec_ad_mini"
    if not (root / "screw" / "train" / "good").is_dir():
        pytest.skip(f"real MVTec AD mini subset not found at {root} (set ANOMALYFLOW_SHARED to its parent folder)")
    return root
