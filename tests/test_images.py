"""Image and mask loading: every mode to RGB with the right values, every failure as a DataError."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anomalyflow.data.images import image_size, is_image_name, load_image, load_mask, load_mask_channels
from anomalyflow.errors import DataError


def _save(img: Image.Image, path: Path, **kwargs) -> Path:
    img.save(path, **kwargs)
    return path


def _rgb(path: Path) -> np.ndarray:
    img = load_image(path)
    assert img.mode == "RGB"
    return np.asarray(img)


# --- modes ---------------------------------------------------------------------------------------


def test_grayscale_rgb_and_alpha_modes(tmp_path):
    gray = np.array([[0, 128, 255]], dtype=np.uint8)
    assert (_rgb(_save(Image.fromarray(gray), tmp_path / "l.png")) == gray[..., None]).all()
    la = Image.fromarray(np.dstack([gray, np.zeros_like(gray)]), "LA")  # fully transparent: alpha dropped
    assert (_rgb(_save(la, tmp_path / "la.png")) == gray[..., None]).all()
    colour = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]]], dtype=np.uint8)
    assert (_rgb(_save(Image.fromarray(colour), tmp_path / "rgb.png")) == colour).all()
    rgba = np.dstack([colour, np.array([[0, 10, 255]], dtype=np.uint8)])
    assert (_rgb(_save(Image.fromarray(rgba, "RGBA"), tmp_path / "rgba.png")) == colour).all()
    bits = Image.fromarray(np.array([[0, 1, 1]], dtype=bool))
    assert bits.mode == "1"
    assert (_rgb(_save(bits, tmp_path / "bits.png"))[..., 0] == [[0, 255, 255]]).all()


@pytest.mark.parametrize("transparency", [None, 0, bytes([0, 128, 255])])
def test_palette_colours(tmp_path, transparency):
    img = Image.new("P", (3, 1))
    img.putpalette([10, 20, 30, 200, 0, 0, 0, 0, 250] + [0] * (256 * 3 - 9))
    for x in range(3):
        img.putpixel((x, 0), x)
    kwargs = {} if transparency is None else {"transparency": transparency}
    path = _save(img, tmp_path / "p.png", **kwargs)
    assert Image.open(path).mode == "P"
    assert _rgb(path).tolist() == [[[10, 20, 30], [200, 0, 0], [0, 0, 250]]]


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    png = _save(Image.fromarray(values), tmp_path / "i16.png")
    assert Image.open(png).mode.startswith("I;16")
    assert _rgb(png)[..., 0].tolist() == [[0, 1, 128, 255]]
    big_endian = Image.frombytes("I;16B", (4, 1), values.astype(">u2").tobytes())
    tif = _save(big_endian, tmp_path / "i16b.tif")
    assert Image.open(tif).mode == "I;16B"
    assert _rgb(tif)[..., 0].tolist() == [[0, 1, 128, 255]]


def test_32_bit_integer_is_scaled_by_its_bit_depth(tmp_path):
    values = np.array([[0, 2**31 - 1]], dtype=np.int32)
    tif = _save(Image.fromarray(values), tmp_path / "i32.tif")
    assert Image.open(tif).mode == "I"
    assert _rgb(tif)[..., 0].tolist() == [[0, 127]]


def test_float_images(tmp_path):
    unit = _save(Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32)), tmp_path / "unit.tif")
    assert Image.open(unit).mode == "F"
    assert _rgb(unit)[..., 0].tolist() == [[0, 128, 255]]
    wide = _save(Image.fromarray(np.array([[-5.0, 100.0, 300.0]], dtype=np.float32)), tmp_path / "wide.tif")
    assert _rgb(wide)[..., 0].tolist() == [[0, 100, 255]]


def test_cmyk_jpeg_is_roughly_right(tmp_path):
    path = _save(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(path).mode == "CMYK"
    red = _rgb(path)[4, 4].astype(int)
    assert red[0] > 230 and red[1] < 25 and red[2] < 25


@pytest.mark.parametrize("name", ["a.png", "a.jpg", "a.JPEG", "a.bmp", "a.tif", "a.TIFF"])
def test_formats(tmp_path, name):
    values = np.full((4, 5, 3), (200, 100, 50), dtype=np.uint8)
    path = _save(Image.fromarray(values), tmp_path / name)
    assert image_size(path) == (5, 4)
    got = _rgb(path).astype(int)
    assert got.shape == (4, 5, 3)
    assert np.abs(got - values).max() <= 3  # JPEG is lossy


@pytest.mark.parametrize("size", [(1, 1), (1, 2000), (2000, 1)])
def test_extreme_shapes(tmp_path, size):
    path = _save(Image.new("L", size, 77), tmp_path / "thin.png")
    img = load_image(path)
    assert img.size == size and img.mode == "RGB" and img.getpixel((0, 0)) == (77, 77, 77)


def test_image_extensions():
    assert is_image_name("x/000.PNG") and is_image_name("a.tiff")
    assert not is_image_name(".hidden.png") and not is_image_name("notes.txt")


# --- errors --------------------------------------------------------------------------------------


def _png(path: Path) -> Path:
    return _save(Image.fromarray(np.arange(64 * 64, dtype=np.uint32).reshape(64, 64).astype(np.uint8)), path)


def _broken(tmp_path: Path) -> dict[str, Path]:
    cases = {}
    cases["empty"] = tmp_path / "empty.png"
    cases["empty"].write_bytes(b"")
    cases["not an image"] = tmp_path / "notes.png"
    cases["not an image"].write_text("this is not a PNG\n")
    full = _png(tmp_path / "full.png").read_bytes()
    cases["truncated png"] = tmp_path / "truncated.png"
    cases["truncated png"].write_bytes(full[: len(full) // 2])
    jpeg = tmp_path / "full.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(jpeg)
    cases["truncated jpeg"] = tmp_path / "truncated.jpg"
    cases["truncated jpeg"].write_bytes(jpeg.read_bytes()[: len(jpeg.read_bytes()) // 2])
    cases["missing"] = tmp_path / "missing.png"
    cases["loop"] = tmp_path / "loop.png"
    os.symlink(cases["loop"], cases["loop"])
    cases["dangling"] = tmp_path / "dangling.png"
    os.symlink(tmp_path / "nowhere.png", cases["dangling"])
    cases["folder"] = tmp_path / "folder.png"
    cases["folder"].mkdir()
    return cases


HEADER_ERRORS = ["empty", "not an image", "missing", "loop", "dangling", "folder"]
DECODE_ERRORS = ["truncated png", "truncated jpeg"]


@pytest.mark.parametrize("case", HEADER_ERRORS + DECODE_ERRORS)
def test_broken_files_raise_data_error_naming_the_file(tmp_path, case):
    path = _broken(tmp_path)[case]
    for load in (load_image, load_mask, load_mask_channels):
        with pytest.raises(DataError) as error:
            load(path)
        message = str(error.value)
        assert str(path) in message and "\n" not in message
    if case in HEADER_ERRORS:
        with pytest.raises(DataError, match=str(path)):
            image_size(path)
    else:  # a header read is cheap and does not see truncation; a full decode does
        assert image_size(path) == (64, 64)


def test_error_messages_say_what_is_wrong(tmp_path):
    cases = _broken(tmp_path)
    expected = {"empty": "empty file", "not an image": "not an image", "missing": "not found",
                "loop": "symbolic link loop", "dangling": "broken symbolic link", "folder": "folder",
                "truncated png": "truncated", "truncated jpeg": "truncated"}
    for case, words in expected.items():
        with pytest.raises(DataError, match=words):
            load_image(cases[case])


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read a chmod-000 file")
def test_unreadable_file(tmp_path):
    path = _png(tmp_path / "secret.png")
    path.chmod(0)
    try:
        with pytest.raises(DataError, match="permission denied") as error:
            load_image(path)
        assert str(path) in str(error.value)
    finally:
        path.chmod(0o644)


# --- masks ---------------------------------------------------------------------------------------


def _mask(path: Path, values, mode: str | None = None) -> Path:
    return _save(Image.fromarray(np.asarray(values, dtype=np.uint8), mode), path)


def test_mask_values_and_union(tmp_path):
    a = _mask(tmp_path / "a.png", [[0, 255, 0, 0]])
    b = _mask(tmp_path / "b.png", [[0, 0, 1, 0]])  # stored as 0/1
    c = _mask(tmp_path / "c.png", [[0, 0, 0, 253]])  # a LOCO pixel value
    assert load_mask(a).tolist() == [[False, True, False, False]]
    assert load_mask(b).dtype == bool
    assert load_mask([a, b, c]).tolist() == [[False, True, True, True]]


def test_mask_resize_is_nearest_and_empty_list_needs_size(tmp_path):
    path = _mask(tmp_path / "m.png", [[0, 255], [255, 0]])
    resized = load_mask(path, size=(4, 2))
    assert resized.tolist() == [[False, False, True, True], [True, True, False, False]]
    assert load_mask([], size=(3, 2)).tolist() == [[False] * 3] * 2
    with pytest.raises(ValueError):
        load_mask([])


def test_palette_rgba_16bit_and_jpeg_masks(tmp_path):
    palette = Image.new("P", (3, 1))
    palette.putpalette([255, 255, 255, 0, 0, 0] + [0] * (254 * 3))  # index 0 is white: judged by colour
    palette.putpixel((1, 0), 1)
    assert load_mask(_save(palette, tmp_path / "p.png")).tolist() == [[True, False, True]]
    rgba = np.array([[[255, 255, 255, 0], [255, 0, 0, 255], [0, 0, 0, 255]]], dtype=np.uint8)
    assert load_mask(_mask(tmp_path / "rgba.png", rgba, "RGBA")).tolist() == [[False, True, False]]
    sixteen = _save(Image.fromarray(np.array([[0, 1, 65535]], dtype=np.uint16)), tmp_path / "m16.png")
    assert load_mask(sixteen).tolist() == [[False, True, True]]
    block = np.zeros((16, 16), dtype=np.uint8)
    block[4:12, 4:12] = 255
    jpeg = _save(Image.fromarray(block), tmp_path / "m.jpg", quality=50)
    assert np.array_equal(load_mask(jpeg), block > 0)  # ringing around the edges is not defect


def test_masks_of_different_sizes_are_refused(tmp_path):
    a = _mask(tmp_path / "a.png", [[0, 255]])
    b = _mask(tmp_path / "b.png", [[0, 255, 0]])
    with pytest.raises(DataError, match=str(b)):
        load_mask([a, b])
    with pytest.raises(DataError, match=str(b)):
        load_mask_channels([a, b])


def test_mask_channels_keep_files_apart_with_their_pixel_values(tmp_path):
    first = _mask(tmp_path / "000.png", [[0, 255, 255, 0]])
    second = _mask(tmp_path / "001.png", [[0, 0, 254, 254]])
    empty = _mask(tmp_path / "002.png", [[0, 0, 0, 0]])
    channels, values = load_mask_channels([first, second, empty])
    assert channels.dtype == bool and channels.shape == (3, 1, 4)
    assert values == [255, 254, 0]
    assert channels[0].tolist() == [[False, True, True, False]]
    assert channels[1].tolist() == [[False, False, True, True]]
    single, value = load_mask_channels(first)
    assert single.shape == (1, 1, 4) and value == [255]


def test_mask_channel_with_two_values_is_refused(tmp_path):
    path = _mask(tmp_path / "000.png", [[0, 255, 254]])
    with pytest.raises(DataError, match="several defect pixel values"):
        load_mask_channels(path)
    jpeg = _save(Image.new("L", (4, 4), 255), tmp_path / "000.jpg")
    with pytest.raises(DataError, match="JPEG"):
        load_mask_channels(jpeg)


# --- the real MVTec AD mini subset ---------------------------------------------------------------


def test_real_images_and_masks(mvtec_mini):
    image = mvtec_mini / "screw" / "test" / "thread_top" / "000.png"
    mask = mvtec_mini / "screw" / "ground_truth" / "thread_top" / "000_mask.png"
    with Image.open(image) as raw:
        assert raw.mode == "L"
        gray = np.asarray(raw)
    rgb = load_image(image)
    assert rgb.mode == "RGB" and rgb.size == (1024, 1024) == image_size(image)
    assert (np.asarray(rgb) == gray[..., None]).all()
    defect = load_mask(mask)
    assert defect.dtype == bool and defect.shape == (1024, 1024)
    assert 0 < defect.sum() < defect.size
    assert load_mask(mask, size=(256, 256)).shape == (256, 256)
