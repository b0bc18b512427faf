"""Reading images and ground-truth masks: every file through one place, every failure as one line.

- :func:`load_image` returns an RGB ``PIL.Image`` whatever the file stores (grey, palette, 16-bit,
  float, CMYK, with or without alpha). It decodes the whole file, because PIL is lazy: without
  ``load()`` a truncated file opens fine and only fails later, deep inside a training loop.
- :func:`image_size` reads the header only (cheap), for the layout readers' size checks.
- :func:`load_mask` is the union of one or more mask files as a bool array (nonzero = defect).
- :func:`load_mask_channels` keeps MVTec LOCO's files apart, one channel per defect region, with the
  pixel value that names the defect in ``defects_config.json``.

Every problem a user can cause (missing, empty, truncated, not an image, unreadable, a symbolic link
loop) is raised as :class:`~anomalyflow.errors.DataError` with the file's path and what is wrong.

EXIF orientation is deliberately **not** applied: ground-truth masks carry no EXIF, so rotating the
image but not its mask would misalign them; the datasets store pixels upright.
"""

from __future__ import annotations

import errno
import os
import stat
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from anomalyflow.errors import DataError

PathLike = str | os.PathLike

#: File name endings read as images (compared case-insensitively).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_LOSSY_FORMATS = ("JPEG", "MPO")


def is_image_name(name: str | os.PathLike) -> bool:
    """True for a file name with one of :data:`IMAGE_EXTENSIONS` that is not hidden (``.`` first)."""
    base = os.path.basename(os.fspath(name))
    return not base.startswith(".") and base.lower().endswith(IMAGE_EXTENSIONS)


def image_size(path: PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image, from its header only (no pixel decoding)."""
    with _open(path) as img:
        return img.size


def check_complete(path: PathLike) -> tuple[int, int]:
    """:func:`image_size`, plus a cheap check that a PNG, JPEG or BMP file is not cut short.

    A truncated file's header reads fine; only its end tells. PNG must end with its ``IEND`` chunk and
    JPEG with the end-of-image marker ``FF D9`` (both within the last :data:`TAIL_BYTES`, as some
    writers append padding), and a BMP must be as long as its header says. Other formats (TIFF) are
    judged by their header alone; :func:`decode_image` decodes everything. Raises :class:`DataError`.
    """
    with _open(path) as img:
        size, image_format = img.size, img.format
    marker = _END_MARKERS.get(image_format)
    if marker is None and image_format != "BMP":
        return size
    with open(path, "rb") as handle:
        length = handle.seek(0, os.SEEK_END)
        if image_format == "BMP":
            handle.seek(2)
            declared = int.from_bytes(handle.read(4), "little")
            if declared and length < declared:
                raise DataError(f"{path}: truncated BMP file ({length} of {declared} bytes); replace the file")
            return size
        handle.seek(max(0, length - TAIL_BYTES))
        if marker not in handle.read():
            raise DataError(f"{path}: truncated {image_format} file (no end marker in its last bytes); "
                            "replace the file")
    return size


#: How far from a file's end :func:`check_complete` looks for the end marker.
TAIL_BYTES = 256
_END_MARKERS = {"PNG": b"IEND", "JPEG": b"\xff\xd9", "MPO": b"\xff\xd9"}


def decode_image(path: PathLike) -> tuple[int, int]:
    """Decode every pixel of an image (no conversion) and return its ``(width, height)``; a truncated or
    corrupt file raises :class:`DataError` naming it."""
    with _open(path) as img:
        _decode(img, path)
        return img.size


def load_image(path: PathLike) -> Image.Image:
    """Decode an image fully and return it in RGB mode (see the module notes for the conversions)."""
    with _open(path) as img:
        _decode(img, path)
        try:
            return _to_rgb(img)
        except (ValueError, OSError) as error:  # an exotic mode PIL cannot convert
            raise DataError(f"{path}: cannot convert image mode {img.mode!r} to RGB ({error}); "
                            "re-save it as 8-bit RGB or grayscale PNG") from None


def load_mask(paths: PathLike | Sequence[PathLike], size: tuple[int, int] | None = None) -> np.ndarray:
    """The union of one or more mask files as ``bool [H, W]``; nonzero pixels are defect.

    Masks stored as 0/255, 0/1, LOCO pixel values, palette indices (judged by their colour) or 16-bit
    all work. Pixels whose alpha is 0 count as background. JPEG masks are thresholded at half range
    instead of "nonzero", because JPEG ringing leaves small nonzero values around every edge.
    ``size=(width, height)`` resizes with nearest neighbour. With no files, ``size`` is required and the
    result is all False (a good image).
    """
    files = _as_list(paths)
    if not files:
        if size is None:
            raise ValueError("load_mask: no mask files and no size given")
        return np.zeros((size[1], size[0]), dtype=bool)
    union: np.ndarray | None = None
    for path in files:
        values, lossy = _read_mask_values(path)
        if values.ndim == 3:
            values = values.max(axis=2)
        defect = values > _half_range(values) if lossy else values != 0
        union = _union(union, defect, path, files[0])
    assert union is not None
    return _resize_bool(union, size) if size is not None else union


def load_mask_channels(paths: PathLike | Sequence[PathLike]) -> tuple[np.ndarray, list[int]]:
    """MVTec LOCO ground truth: one channel per file, ``(bool [K, H, W], pixel values)``.

    Each LOCO file marks one defect region with a single gray value, which identifies the defect type
    in ``defects_config.json`` (as the official evaluation reads it). A file with several different
    nonzero values is an error; an all-zero file gets pixel value 0.
    """
    files = _as_list(paths)
    if not files:
        raise ValueError("load_mask_channels: no mask files given")
    channels: list[np.ndarray] = []
    pixel_values: list[int] = []
    for path in files:
        values, lossy = _read_mask_values(path)
        if lossy:
            raise DataError(f"{path}: a JPEG mask cannot hold exact defect pixel values; "
                            "save the mask as PNG")
        if values.ndim == 3:
            if not (values == values[:, :, :1]).all():
                raise DataError(f"{path}: colour mask; a LOCO mask must be grayscale with one pixel value "
                                "per defect (see defects_config.json)")
            values = values[:, :, 0]
        nonzero = np.unique(values[values != 0])
        if len(nonzero) > 1:
            shown = ", ".join(str(v) for v in nonzero[:5].tolist())
            raise DataError(f"{path}: mask holds several defect pixel values ({shown}); a LOCO mask file "
                            "must mark one defect region with one value")
        if channels and values.shape != channels[0].shape:
            raise DataError(_size_mismatch(path, values.shape, files[0], channels[0].shape))
        channels.append(values != 0)
        pixel_values.append(int(nonzero[0]) if len(nonzero) else 0)
    return np.stack(channels), pixel_values


# --- opening and decoding ------------------------------------------------------------------------


def require_readable(path: PathLike) -> os.stat_result:
    """``os.stat`` (following links) plus a read-permission check: a missing file, broken link, link loop or
    file this user may not read is a one-line DataError naming the path. Opens nothing."""
    name = os.fspath(path)
    try:
        info = os.stat(name)
    except FileNotFoundError:
        if os.path.islink(name):
            raise DataError(f"{path}: broken symbolic link (its target {os.readlink(name)} does not exist); fix or "
                            "remove the link") from None
        raise DataError(f"{path}: file not found") from None
    except OSError as error:
        raise DataError(f"{path}: {_os_reason(error)}") from None
    if not os.access(name, os.R_OK):
        raise DataError(f"{path}: {_os_reason(PermissionError(errno.EACCES, 'Permission denied'))}")
    return info


def _open(path: PathLike) -> Image.Image:
    """``Image.open`` with every failure turned into a one-line DataError naming the file."""
    name = os.fspath(path)
    info = require_readable(path)
    if stat.S_ISDIR(info.st_mode):
        raise DataError(f"{path}: is a folder, not an image file")
    if info.st_size == 0:
        raise DataError(f"{path}: empty file (0 bytes); replace it with the real image or delete it")
    try:
        with warnings.catch_warnings():
            # Large images are common in inspection; PIL's bomb *error* (2x the warning limit) still applies.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(name)
    except UnidentifiedImageError:
        raise DataError(f"{path}: not an image that can be read (unknown or corrupt format); "
                        "replace the file or remove it from the dataset") from None
    except Image.DecompressionBombError as error:
        raise DataError(f"{path}: image too large to read safely ({error})") from None
    except OSError as error:
        raise DataError(f"{path}: {_os_reason(error)}") from None
    except (SyntaxError, ValueError, EOFError) as error:  # raised by some plugins on corrupt headers
        raise DataError(f"{path}: corrupt image header ({error})") from None


def _os_reason(error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return "symbolic link loop (the link points back to itself); fix or remove the link"
    if isinstance(error, PermissionError) or error.errno == errno.EACCES:
        return "permission denied; make the file readable (chmod a+r) or run as its owner"
    if error.errno == errno.ENOENT:
        return "file not found"
    reason = error.strerror or str(error) or type(error).__name__
    return f"cannot read the file ({reason})"


def _decode(img: Image.Image, path: PathLike) -> None:
    """Force the full decode so truncated or corrupt pixel data fails here, with the file's name."""
    try:
        img.load()
    except MemoryError:
        raise
    except Exception as error:  # PIL plugins raise OSError, SyntaxError, struct.error, zlib.error, ...
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"{path}: truncated or corrupt image data ({reason}); replace the file") from None


# --- conversion to RGB ---------------------------------------------------------------------------


def _to_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode == "RGB":
        return img.copy()
    if mode.startswith("I;16") or mode == "I":
        bits = _bit_depth(img)
        values = np.asarray(img).astype(np.float64)
        # Scale the full range of the stored bit depth onto 0..255 (65535 -> 255). PIL's own
        # convert("L") clips instead, which turns most 16-bit images white.
        scaled = np.clip(np.rint(values * (255.0 / (2.0**bits - 1.0))), 0, 255).astype(np.uint8)
        return Image.fromarray(scaled).convert("RGB")
    if mode == "F":
        values = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=255.0, neginf=0.0)
        # Float images are either 0..1 (the usual convention) or already 0..255; the maximum tells.
        if values.size and values.max() <= 1.0:
            values = values * 255.0
        return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8)).convert("RGB")
    if mode in ("P", "PA"):
        # Via RGBA: colours come from the palette, and transparency (byte- or index-valued) is dropped
        # without PIL's warning about palette transparency.
        return img.convert("RGBA").convert("RGB")
    if mode == "La":  # premultiplied alpha: PIL converts it only to LA
        return img.convert("LA").convert("RGB")
    return img.convert("RGB")  # L, 1, RGBA (alpha dropped), RGBX, RGBa, CMYK, YCbCr, LAB, HSV


def _bit_depth(img: Image.Image) -> int:
    """Bits per sample of an integer image as stored in the file (16 for I;16*, header for mode I)."""
    if img.mode.startswith("I;16"):
        return 16
    tags = getattr(img, "tag_v2", None)
    if tags is not None and 258 in tags:  # TIFF BitsPerSample
        value = tags[258]
        bits = int(value[0] if isinstance(value, tuple) else value)
        if 1 <= bits <= 32:
            return bits
    if img.format == "PNG":  # PIL opens only 16-bit grayscale PNGs as mode I
        return 16
    values = np.asarray(img)
    return 16 if values.size == 0 or (values.min() >= 0 and values.max() <= 65535) else 32


# --- masks ---------------------------------------------------------------------------------------


def _read_mask_values(path: PathLike) -> tuple[np.ndarray, bool]:
    """Decode a mask into its stored values: ``[H, W]`` or ``[H, W, C]``, alpha-0 pixels zeroed."""
    with _open(path) as img:
        _decode(img, path)
        lossy = img.format in _LOSSY_FORMATS
        mode = img.mode
        try:
            if mode == "1":
                return np.asarray(img).astype(np.uint8) * np.uint8(255), lossy
            if mode in ("L", "F", "I") or mode.startswith("I;16"):
                return np.asarray(img).astype(_native(np.asarray(img).dtype)), lossy
            if mode in ("LA", "La"):
                values = np.asarray(img.convert("LA"))
                return np.where(values[:, :, 1] > 0, values[:, :, 0], 0).astype(np.uint8), lossy
            if mode in ("RGBA", "RGBa", "P", "PA"):
                values = np.asarray(img.convert("RGBA"))
                return np.where(values[:, :, 3:] > 0, values[:, :, :3], 0).astype(np.uint8), lossy
            return np.asarray(img.convert("RGB")), lossy
        except (ValueError, OSError) as error:
            raise DataError(f"{path}: cannot read mask of mode {mode!r} ({error}); save masks as 8-bit "
                            "grayscale PNG") from None


def _native(dtype: np.dtype) -> np.dtype:
    return dtype.newbyteorder("=") if dtype.byteorder not in ("=", "|") else dtype


def _half_range(values: np.ndarray) -> float:
    if np.issubdtype(values.dtype, np.integer):
        return float(np.iinfo(values.dtype).max // 2)
    return 0.5


def _union(union: np.ndarray | None, defect: np.ndarray, path: PathLike, first: PathLike) -> np.ndarray:
    if union is None:
        return defect
    if defect.shape != union.shape:
        raise DataError(_size_mismatch(path, defect.shape, first, union.shape))
    return union | defect


def _size_mismatch(path: PathLike, shape: tuple[int, ...], first: PathLike,
                   first_shape: tuple[int, ...]) -> str:
    return (f"{path}: mask is {shape[1]}x{shape[0]} but {first} (another mask of the same image) is "
            f"{first_shape[1]}x{first_shape[0]}; all masks of an image must have its size")


def _resize_bool(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    width, height = (int(v) for v in size)
    if (width, height) == (mask.shape[1], mask.shape[0]):
        return mask
    if width < 1 or height < 1:
        raise ValueError(f"load_mask: bad size {size}")
    as_image = Image.fromarray(mask.astype(np.uint8) * np.uint8(255))
    resized = as_image.resize((width, height), Image.Resampling.NEAREST)
    return np.asarray(resized) > 0


def _as_list(paths: PathLike | Iterable[PathLike]) -> list[PathLike]:
    if isinstance(paths, str | os.PathLike):
        return [paths]
    return list(paths)


__all__ = [
    "IMAGE_EXTENSIONS",
    "image_size",
    "is_image_name",
    "load_image",
    "load_mask",
    "load_mask_channels",
    "require_readable",
]
