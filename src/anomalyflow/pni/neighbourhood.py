"""The neighbourhood model q(c | N(u)) (docs/methods.md C4): an MLP that predicts, from the features around
a position, which C_dist entry the centre feature should look like.

Samples are every interior position of every train image. The input is the (2r+1)² window around the
position (r = ``dist_padding`` 4, zero outside the grid) without its centre, concatenated row-major:
80·E values. The target is the index of the C_dist entry nearest to the centre feature.

The official code's MLP dataset holds a zero-padded float32 feature map of every training image in host
memory (3.5–6.6 GB per category). Here the feature maps are padded once by r and kept on the device; a
batch of sample indices becomes flat row indices into the padded maps by index arithmetic
(:class:`NeighbourhoodGather`), so a batch's inputs exist only while the batch is processed. At test time
the same gather runs on every position of the test images (edges too).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from anomalyflow.errors import ConfigError, NumericalError
from anomalyflow.logs import get_logger
from anomalyflow.patches.nearest import nearest
from anomalyflow.precision import amp_dtype, autocast, grad_scaler, scaled_step

log = get_logger(__name__)


def window_offsets(radius: int) -> list[tuple[int, int]]:
    """The (dy, dx) offsets of the window without its centre, row-major: (2r+1)² − 1 of them."""
    span = range(-radius, radius + 1)
    return [(dy, dx) for dy in span for dx in span if (dy, dx) != (0, 0)]


class NeighbourhoodGather:
    """Neighbourhood vectors of positions of ``[N, h, w, E]`` feature maps, gathered on demand.

    The maps are zero-padded by ``radius`` once (in ``dtype``, e.g. float16 on a GPU to halve the memory);
    :meth:`vectors` returns float32 ``[B, 80·E]`` for positions given as (image, row, column) tensors.
    """

    def __init__(self, maps: torch.Tensor, radius: int, *, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None):
        n, h, w, e = maps.shape
        self.n, self.h, self.w, self.dim, self.radius = n, h, w, e, radius
        self.padded_h, self.padded_w = h + 2 * radius, w + 2 * radius
        device = maps.device if device is None else torch.device(device)
        maps = maps.to(device=device, dtype=dtype or maps.dtype)
        # F.pad's pairs run from the last dim: E (none), then w, then h.
        self.rows = F.pad(maps, (0, 0, radius, radius, radius, radius)).reshape(-1, e)
        offsets = [dy * self.padded_w + dx for dy, dx in window_offsets(radius)]
        self.offsets = torch.tensor(offsets, dtype=torch.long, device=device)
        self.device = device

    @property
    def input_dim(self) -> int:
        return len(self.offsets) * self.dim

    def centre_rows(self, image: torch.Tensor, row: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
        """Flat indices of the positions themselves in the padded maps, ``[B]``."""
        return (image * self.padded_h + row + self.radius) * self.padded_w + col + self.radius

    def vectors(self, image: torch.Tensor, row: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
        index = self.centre_rows(image, row, col).unsqueeze(1) + self.offsets.unsqueeze(0)  # [B, 80]
        return self.rows[index.reshape(-1)].reshape(index.shape[0], -1).float()

    def all_positions(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(image, row, column) of flat positions ``start:stop`` over all ``n·h·w`` positions, row-major."""
        flat = torch.arange(start, stop, device=self.device)
        return flat // (self.h * self.w), (flat // self.w) % self.h, flat % self.w


def interior_positions(flat: torch.Tensor, h: int, w: int, edge: int) -> tuple[torch.Tensor, torch.Tensor,
                                                                               torch.Tensor]:
    """(image, row, column) of flat sample indices over the interior positions, (image, row, col) order."""
    inner_h, inner_w = h - 2 * edge, w - 2 * edge
    image = flat // (inner_h * inner_w)
    rest = flat % (inner_h * inner_w)
    return image, rest // inner_w + edge, rest % inner_w + edge


class NeighbourhoodMLP(nn.Sequential):
    """C4's net: Linear+BN+ReLU+Dropout, (num_layers−2)× the same at ``hidden``, then Linear → logits."""

    def __init__(self, input_dim: int, hidden: int, num_layers: int, n_classes: int, dropout: float = 0.5):
        if num_layers < 2:
            raise ConfigError(f"pni: mlp_layers must be at least 2 (input and output layers), not {num_layers}")
        layers: list[nn.Module] = []
        width = input_dim
        for _ in range(num_layers - 1):
            layers += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, n_classes))
        super().__init__(*layers)
        self.input_dim, self.hidden, self.num_layers, self.n_classes = input_dim, hidden, num_layers, n_classes


@torch.no_grad()
def centre_targets(gather: NeighbourhoodGather, dist_bank: torch.Tensor, edge: int, *,
                   block_positions: int = 1 << 16) -> torch.Tensor:
    """Targets ``[S]``: the nearest C_dist entry of each interior sample's centre feature (C4)."""
    total = gather.n * (gather.h - 2 * edge) * (gather.w - 2 * edge)
    out = torch.empty(total, dtype=torch.long, device=gather.device)
    bank = dist_bank.to(gather.device).float()
    for begin in range(0, total, block_positions):
        flat = torch.arange(begin, min(total, begin + block_positions), device=gather.device)
        centre = gather.rows[gather.centre_rows(*interior_positions(flat, gather.h, gather.w, edge))]
        out[begin:begin + len(flat)] = nearest(centre, bank)[1]
    return out


def split_samples(total: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random split of ``range(total)`` into train and validation indices (C4: 90/10)."""
    n_train = round((1 - val_fraction) * total)
    if n_train < 2 or total - n_train < 1:
        raise ConfigError(f"pni: {total} MLP samples cannot be split into train and validation with "
                          f"mlp_val_fraction {val_fraction}; add train images or change the fraction")
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    return order[:n_train], order[n_train:]


def train_mlp(maps: torch.Tensor, dist_bank: torch.Tensor, *, edge: int, radius: int = 4, hidden: int = 2048,
              num_layers: int = 10, dropout: float = 0.5, epochs: int = 15, batch_size: int = 2048, lr: float = 1e-3,
              lr_step: int = 5, lr_gamma: float = 0.1, val_fraction: float = 0.1, seed: int = 0,
              device: torch.device | str = "cpu", amp: bool = True) -> tuple[NeighbourhoodMLP, list[dict]]:
    """Train q(c | N(u)) on train feature maps ``[N, h, w, E]``; return the best-validation-loss net and history.

    Cross-entropy, Adam (no weight decay), StepLR every ``lr_step`` epochs by ``lr_gamma``, one seeded
    90/10 split of the samples, a fresh seeded shuffle per epoch. On CUDA the maps are held in float16 and
    the net runs under autocast.
    """
    device = torch.device(device)
    dtype = amp_dtype(device) if amp else None
    gather = NeighbourhoodGather(maps, radius, device=device,
                                 dtype=torch.float16 if device.type == "cuda" else torch.float32)
    targets = centre_targets(gather, dist_bank, edge)
    train_idx, val_idx = split_samples(len(targets), val_fraction, seed)
    torch.manual_seed(seed)  # the net's initialisation and its dropout masks
    net = NeighbourhoodMLP(gather.input_dim, hidden, num_layers, dist_bank.shape[0], dropout).to(device)
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.StepLR(optimiser, step_size=lr_step, gamma=lr_gamma)
    scaler = grad_scaler(device, dtype)
    shuffle = torch.Generator().manual_seed(seed + 1)
    best_loss, best_state, history = math.inf, None, []
    for epoch in tqdm(range(epochs), desc="neighbourhood MLP", unit="epoch", leave=False):
        net.train()
        order = train_idx[torch.randperm(len(train_idx), generator=shuffle)].to(device)
        total = torch.zeros((), device=device)  # summed on the device: no host sync per step
        count = 0
        for begin in range(0, len(order), batch_size):
            batch = order[begin:begin + batch_size]
            if len(batch) < 2:  # batch norm needs two samples in training mode
                continue
            inputs = gather.vectors(*interior_positions(batch, gather.h, gather.w, edge))
            with autocast(device, dtype):
                loss = F.cross_entropy(net(inputs).float(), targets[batch])
            scaled_step(loss, optimiser, scaler)
            total += loss.detach() * len(batch)
            count += len(batch)
        schedule.step()
        val_loss = evaluate_mlp(net, gather, targets, val_idx.to(device), edge, batch_size, device, dtype)
        if not math.isfinite(val_loss):
            raise NumericalError("pni: the neighbourhood MLP's validation loss is not finite; lower mlp_lr")
        history.append({"epoch": epoch + 1, "train_loss": float(total) / max(count, 1), "val_loss": val_loss,
                        "lr": optimiser.param_groups[0]["lr"]})
        log.info("MLP epoch %d: train loss %.4f, val loss %.4f", epoch + 1, history[-1]["train_loss"], val_loss)
        if val_loss < best_loss:
            best_loss = val_loss
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in net.state_dict().items()})
    if best_state is not None:
        net.load_state_dict(best_state)
    return net.eval(), history


@torch.no_grad()
def evaluate_mlp(net: nn.Module, gather: NeighbourhoodGather, targets: torch.Tensor, indices: torch.Tensor, edge: int,
                 batch_size: int, device: torch.device, dtype: torch.dtype | None) -> float:
    """Mean cross-entropy over ``indices`` with the net in eval mode."""
    net.eval()
    total = 0.0
    for begin in range(0, len(indices), batch_size):
        batch = indices[begin:begin + batch_size]
        inputs = gather.vectors(*interior_positions(batch, gather.h, gather.w, edge))
        with autocast(device, dtype):
            logits = net(inputs).float()
        total += float(F.cross_entropy(logits, targets[batch], reduction="sum"))
    return total / len(indices)


@torch.no_grad()
def neighbour_probabilities(net: nn.Module, maps: torch.Tensor, radius: int, temperature: float, *,
                            batch_rows: int = 2048, amp: bool = True) -> torch.Tensor:
    """q_nb = softmax(logits / α) for every position of ``[B, h, w, E]`` maps: ``[B·h·w, |C_dist|]`` (C4 test)."""
    device = maps.device
    dtype = amp_dtype(device) if amp else None
    gather = NeighbourhoodGather(maps, radius)
    total = gather.n * gather.h * gather.w
    out = torch.empty(total, net.n_classes, dtype=torch.float32, device=device)
    for begin in range(0, total, batch_rows):
        stop = min(total, begin + batch_rows)
        with autocast(device, dtype):
            logits = net(gather.vectors(*gather.all_positions(begin, stop))).float()
        out[begin:stop] = torch.softmax(logits / temperature, dim=1)
    return out


__all__ = ["NeighbourhoodGather", "NeighbourhoodMLP", "centre_targets", "evaluate_mlp", "interior_positions",
           "neighbour_probabilities", "split_samples", "train_mlp", "window_offsets"]
