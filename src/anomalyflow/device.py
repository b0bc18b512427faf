"""Choose the torch device once and pass it down."""

from __future__ import annotations

import torch

from anomalyflow.errors import ConfigError


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """``auto`` → ``cuda`` when available, else ``cpu``; ``cuda`` without a GPU is a config error."""
    if isinstance(name, torch.device):
        return name
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device: '{name}' was asked for but no CUDA GPU is visible; use 'auto' or 'cpu'")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device: '{name}' is not a torch device; use auto, cpu, cuda or cuda:N") from None


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, numpy and torch; return a torch generator seeded the same for explicit use."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % (2**32))  # noqa: NPY002 - third-party code draws from the global state
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def use_deterministic_cpu() -> None:
    """Make CPU results bit-identical across runs with the same inputs."""
    torch.use_deterministic_algorithms(True, warn_only=True)
