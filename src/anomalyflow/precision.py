"""Mixed precision for every network: autocast on CUDA, fp32 on the CPU; and the convolution memory layout.

A module of its own (not part of one method's package) so that EfficientAD and PNI share it without
either depending on the other: the workflow's code trigger (:mod:`anomalyflow.provenance`) reruns a
method's jobs only when a module it imports changes.
"""

from __future__ import annotations

import contextlib

import torch


def amp_dtype(device: torch.device, *, half: bool = False) -> torch.dtype | None:
    """The autocast dtype on CUDA (bf16 where supported, else fp16; ``half`` forces fp16); None on the CPU.

    CPU runs stay fp32: CPU autocast is slower than fp32 for these convolutions and changes numbers.
    """
    if device.type != "cuda":
        return None
    if half or not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def memory_format(device: torch.device) -> torch.memory_format:
    """The convolution layout: channels_last (NHWC) on the CPU, where oneDNN runs EfficientAD's networks
    ~1.8x faster than in NCHW (bench/efficientad_*), the default NCHW on CUDA (not measured there yet)."""
    return torch.channels_last if torch.device(device).type == "cpu" else torch.contiguous_format


def place(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``module`` on ``device`` in the device's :func:`memory_format` (in place, as ``Module.to``)."""
    return module.to(device, memory_format=memory_format(device))


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """A loss scaler, active only for fp16 (bf16 has fp32's range)."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)


def scaled_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
    """One optimiser step on ``loss``: gradients cleared, back-propagated through the loss scaler
    (:func:`grad_scaler`, a pass-through unless fp16), the step taken and the scale updated."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


__all__ = ["amp_dtype", "autocast", "grad_scaler", "memory_format", "place", "scaled_step"]
