"""PNI's input and map geometry (algorithms.md C1, C2, C6).

Input (C1): the shorter side is resized to ``resize`` (512, bilinear, PIL's antialiased resize as
torchvision's ``Resize(int)`` does it), then the centre ``crop`` (480) is cut out and ImageNet-normalised.
Maps therefore cover only the crop: :func:`crop_frame` gives that part of the original image as fractions.
It depends on the image's aspect ratio (the crop is square, the shorter side is resized), so it is
computed per image (:meth:`anomalyflow.pni.model.PNI.map_frame`) and ``maps.npz`` records one per map,
so that evaluation cuts each mask the way its image was cut (:mod:`anomalyflow.frames`).

Grid (C2): layer2 has stride 8, so a 480 crop gives a 60×60 grid. The **edge** is the outer
``patch_size // 2`` rows and columns, where the 5×5 aggregation window reaches into zero padding; the
**interior** is the rest (56×56). Coresets C_emb/C_dist, the neighbourhood MLP's samples and the
no-edge position histogram use interior positions only.

Maps (C6): the patch map's edge is cut off and replaced by edge replication, the map is resized
bilinearly to the crop size and blurred with σ (8). The image score is the maximum of the interior
patch map, before resizing and blurring.
"""

from __future__ import annotations

import torch
from PIL import Image

from anomalyflow.data.transforms import CenterCrop, Compose, Normalize, to_tensor
from anomalyflow.errors import ConfigError
from anomalyflow.frames import Frame
from anomalyflow.maps import gaussian_blur, pad_replicate, resize


def shorter_side_size(height: int, width: int, size: int) -> tuple[int, int]:
    """``(new_height, new_width)`` with the shorter side = ``size`` (torchvision's rounding: int())."""
    if width <= height:
        return int(size * height / width), size
    return size, int(size * width / height)


class ResizeShorter:
    """Resize a PIL image so its shorter side is ``size`` (aspect ratio kept), bilinear.

    Equal to ``torchvision.transforms.Resize(size)`` on a PIL image, including its early return when
    the image already has that size.
    """

    def __init__(self, size: int):
        self.size = int(size)

    def __call__(self, image: Image.Image) -> Image.Image:
        width, height = image.size
        new_height, new_width = shorter_side_size(height, width, self.size)
        if (new_height, new_width) == (height, width):
            return image
        return image.resize((new_width, new_height), Image.BILINEAR)


def check_sizes(resize_to: int, crop: int) -> None:
    if crop > resize_to:
        raise ConfigError(f"pni: crop ({crop}) must not exceed resize ({resize_to}); the crop is cut from the "
                          "resized image")
    if crop < 32:
        raise ConfigError(f"pni: crop ({crop}) is too small for a stride-16 backbone layer; use 32 or more")


def pni_transform(resize_to: int, crop: int, *, normalize: bool = True) -> Compose:
    """PIL image → ``[3, crop, crop]`` float tensor: shorter side → ``resize_to``, centre crop (C1)."""
    check_sizes(resize_to, crop)
    steps = [ResizeShorter(resize_to), CenterCrop(crop), to_tensor]
    if normalize:
        steps.append(Normalize())
    return Compose(steps)


def crop_frame(height: int, width: int, resize_to: int, crop: int) -> Frame:
    """(top, left, height, width) of the centre crop as fractions of an original ``height × width`` image."""
    check_sizes(resize_to, crop)
    new_height, new_width = shorter_side_size(height, width, resize_to)
    top = round((new_height - crop) / 2.0)
    left = round((new_width - crop) / 2.0)
    return (top / new_height, left / new_width, crop / new_height, crop / new_width)


def border(patch_size: int) -> int:
    """Width of the grid's edge: where the p×p aggregation window touches the zero padding (C2)."""
    return patch_size // 2


def interior_mask(height: int, width: int, edge: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Bool ``[height, width]``: True on interior positions, False on the ``edge``-wide border."""
    if height <= 2 * edge or width <= 2 * edge:
        raise ConfigError(f"pni: the feature grid {height}x{width} has no interior inside its {edge}-wide edge; "
                          "use a larger crop or a smaller patch_size")
    mask = torch.zeros(height, width, dtype=torch.bool, device=device)
    mask[edge:height - edge, edge:width - edge] = True
    return mask


def crop_edge(maps: torch.Tensor, edge: int) -> torch.Tensor:
    """The interior of ``[..., h, w]`` maps."""
    if edge <= 0:
        return maps
    return maps[..., edge:maps.shape[-2] - edge, edge:maps.shape[-1] - edge]


def patch_map_to_pixels(patch: torch.Tensor, edge: int, size: int | tuple[int, int], sigma: float) -> torch.Tensor:
    """C6 map geometry for ``[B, h, w]`` patch maps: crop the edge → replicate pad → bilinear resize → blur.

    ``edge=0`` keeps the full grid (the official "coor" map, which uses the with-edge statistics).
    """
    grid = pad_replicate(crop_edge(patch, edge), edge)
    return gaussian_blur(resize(grid, size), sigma)


def interior_max(patch: torch.Tensor, edge: int) -> torch.Tensor:
    """Image scores ``[B]``: the maximum of the interior patch map (C6; before resize and blur)."""
    inner = crop_edge(patch, edge)
    return inner.reshape(inner.shape[0], -1).amax(dim=1)


__all__ = ["Frame", "ResizeShorter", "border", "check_sizes", "crop_edge", "crop_frame", "interior_mask",
           "interior_max", "patch_map_to_pixels", "pni_transform", "shorter_side_size"]
