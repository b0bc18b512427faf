"""Mixed precision for PNI's networks (the neighbourhood MLP, the refiner): autocast on CUDA, fp32 on the CPU.

The same three helpers exist in :mod:`anomalyflow.efficientad.sampling`; PNI keeps its own copy so that its
workflow jobs do not list EfficientAD's modules as inputs (:mod:`anomalyflow.provenance`): editing
EfficientAD must not rerun PNI.
"""

from __future__ import annotations

import contextlib

import torch


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 on CUDA where supported, else fp16; None (fp32) on the CPU, where autocast is slower."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """A loss scaler, active only for fp16 (bf16 has fp32's range)."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)


__all__ = ["amp_dtype", "autocast", "grad_scaler"]
