"""The array plumbing every metric module shares: numpy or torch inputs, checked and compared exactly.

Inputs may be numpy arrays, sequences of them, or torch tensors. CUDA tensors are computed on their
GPU with torch; everything else goes through numpy (CPU tensors are viewed, not copied). The torch
code path is the same algorithm written with the same operators; tests run it on CPU tensors by
patching :func:`use_torch`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import torch

from anomalyflow.errors import DataError, NumericalError

Array: TypeAlias = np.ndarray | torch.Tensor
ArrayLike: TypeAlias = np.ndarray | torch.Tensor | Sequence[Any]


def use_torch(x: Any) -> bool:
    """Compute with torch (on the tensor's device) only for CUDA tensors; numpy is faster on CPU."""
    return isinstance(x, torch.Tensor) and x.is_cuda


def as_array(x: ArrayLike) -> Array:
    """A numpy array, or a torch tensor where :func:`use_torch` says so (detached, same device)."""
    if isinstance(x, (list, tuple)) and x and all(isinstance(item, torch.Tensor) for item in x):
        x = torch.stack([item.detach() for item in x])
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if use_torch(x):
            return x
        return x.cpu().numpy()
    return np.asarray(x)


def to_numpy(x: Array) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def like(x: Array, reference: Array) -> Array:
    """``x`` in the same library (and on the same device) as ``reference``."""
    if isinstance(reference, torch.Tensor):
        if isinstance(x, torch.Tensor):
            return x.to(reference.device)
        return torch.from_numpy(np.ascontiguousarray(x)).to(reference.device)
    return to_numpy(x)


def check_finite(values: Array, what: str) -> None:
    finite = torch.isfinite(values) if isinstance(values, torch.Tensor) else np.isfinite(values)
    if not bool(finite.all()):
        bad, total = int((~finite).sum()), int(np.prod(tuple(values.shape)))
        raise NumericalError(f"{what} contain {bad} NaN or infinite value(s) out of {total}; fix the model "
                             "or its normalisation before evaluating")


def float_scores(values: Array, what: str) -> Array:
    """Real-valued scores as a float array (bool/int maps allowed), checked for NaN/inf."""
    if isinstance(values, torch.Tensor):
        if values.dtype in (torch.float16, torch.bfloat16):
            values = values.float()
        elif not values.is_floating_point():
            values = values.double()
    else:
        if values.dtype.kind not in "biuf":
            raise DataError(f"{what} must be numeric, got dtype {values.dtype}")
        if values.dtype == np.float16:
            values = values.astype(np.float32)
        elif values.dtype.kind != "f":
            values = values.astype(np.float64)
    check_finite(values, what)
    return values


def binary_masks(masks: Array, what: str = "ground-truth masks") -> Array:
    """Boolean masks; float masks must hold only 0 and 1 (threshold resized masks before evaluating)."""
    if isinstance(masks, torch.Tensor):
        if masks.dtype == torch.bool:
            return masks
        if masks.is_floating_point() and not bool(((masks == 0) | (masks == 1)).all()):
            raise DataError(f"{what} hold values other than 0 and 1; binarise them (e.g. mask > 0.5) first")
        return masks != 0
    if masks.dtype == np.bool_:
        return masks
    if masks.dtype.kind not in "biuf":
        raise DataError(f"{what} must be boolean or numeric, got dtype {masks.dtype}")
    if masks.dtype.kind == "f" and not bool(np.isin(masks, (0.0, 1.0)).all()):
        raise DataError(f"{what} hold values other than 0 and 1; binarise them (e.g. mask > 0.5) first")
    return masks != 0


def check_same_shape(masks: Array, maps: Array, *, what: str = "anomaly maps") -> None:
    if tuple(masks.shape) != tuple(maps.shape):
        raise DataError(f"ground-truth masks have shape {tuple(masks.shape)} but the {what} have shape "
                        f"{tuple(maps.shape)}; they must match pixel for pixel (resize one to the other)")


def order_keys(values: Array) -> Array:
    """int32 keys with the same order and the same ties as the (finite) scores.

    float32 bits reinterpreted as int32 order correctly for non-negative floats; flipping the 31 low
    bits of negative ones reverses their order, so the signed ints follow the float order. Adding
    +0.0 first turns -0.0 into +0.0 so the two zeros (equal as floats) get one key. float64 scores that
    float32 cannot hold exactly are replaced by their dense rank (slower, but ties stay exact: rounding
    to float32 would merge distinct scores into false ties).
    """
    if isinstance(values, torch.Tensor):
        if values.dtype != torch.float32:
            as32 = values.float()
            if not bool((as32.double() == values.double()).all()):
                return torch.unique(values, return_inverse=True)[1].to(torch.int32).reshape(values.shape)
            values = as32
        bits = (values + 0.0).view(torch.int32)
        return bits ^ ((bits >> 31) & 0x7FFFFFFF)
    if values.dtype != np.float32:
        as32 = values.astype(np.float32)
        if not np.array_equal(as32, values):
            return np.unique(values, return_inverse=True)[1].astype(np.int32).reshape(values.shape)
        values = as32
    bits = (values + np.float32(0.0)).view(np.int32)
    bits ^= (bits >> 31) & np.int32(0x7FFFFFFF)
    return bits
