"""vbg.imageio: awkward-but-valid files read right, broken files give one clear ImageError line."""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageFile, ImageOps

from vbg import imageio
from vbg.errors import ImageError, SinkError
from vbg.imageio import read_image, write_image

W, H = 64, 48
# Upright marker: red top-left, green top-right, blue bottom-left, white bottom-right (RGB).
QUADRANT_RGB = {"tl": (255, 0, 0), "tr": (0, 255, 0), "bl": (0, 0, 255), "br": (255, 255, 255)}
# Pillow transpose that stores an upright picture so that EXIF orientation o brings it back.
STORE_FOR_ORIENTATION = {
    1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270,
}


def quadrants_rgb(w: int = W, h: int = H) -> np.ndarray:
    img = np.empty((h, w, 3), np.uint8)
    img[: h // 2, : w // 2] = QUADRANT_RGB["tl"]
    img[: h // 2, w // 2:] = QUADRANT_RGB["tr"]
    img[h // 2:, : w // 2] = QUADRANT_RGB["bl"]
    img[h // 2:, w // 2:] = QUADRANT_RGB["br"]
    return img


def gradient(dtype=np.uint8, top: int = 255) -> np.ndarray:
    return np.linspace(0, top, W * H).reshape(H, W).round().astype(dtype)


def quadrant_means_rgb(bgr: np.ndarray) -> dict[str, np.ndarray]:
    """Mean RGB colour of each quadrant's inner part (away from JPEG-blurred borders)."""
    h, w = bgr.shape[:2]
    rgb = bgr[:, :, ::-1].astype(np.float64)
    qh, qw = h // 2, w // 2
    pick = lambda y, x: rgb[y + qh // 4: y + 3 * qh // 4, x + qw // 4: x + 3 * qw // 4]  # noqa: E731
    return {"tl": pick(0, 0).mean((0, 1)), "tr": pick(0, qw).mean((0, 1)),
            "bl": pick(qh, 0).mean((0, 1)), "br": pick(qh, qw).mean((0, 1))}


def assert_upright(bgr: np.ndarray, tol: float = 30) -> None:
    assert bgr.shape == (H, W, 3)
    for name, mean in quadrant_means_rgb(bgr).items():
        assert np.abs(mean - QUADRANT_RGB[name]).max() < tol, (name, mean)


@dataclass
class Expect:
    """What reading a generated file must give (reference BGR within tol, alpha or not)."""

    bgr: np.ndarray | None
    alpha: np.ndarray | bool | None  # array: exact; True: any alpha; None: no alpha
    tol: int = 0
    upright_marker: bool = False


def _save(pil: Image.Image, path: Path, **kw) -> None:
    pil.save(path, **kw)


def _cmyk_patches() -> tuple[np.ndarray, np.ndarray]:
    """CMYK test patches and their plain-conversion RGB reference: (255-c)(255-k)/255."""
    cmyk = np.array([[0, 255, 255, 0], [128, 0, 0, 128], [0, 0, 0, 128], [255, 0, 0, 0],
                     [0, 0, 255, 0], [60, 120, 200, 30]], np.uint8)
    patches = np.repeat(np.repeat(cmyk[None], 16, axis=0), 16, axis=1)  # 16 x 96 x 4
    cmy, k = patches[..., :3].astype(np.float64), patches[..., 3:].astype(np.float64)
    rgb = np.round((255 - cmy) * (255 - k) / 255).astype(np.uint8)
    return patches, rgb


def make_awkward(folder: Path) -> dict[str, Expect]:
    """Write valid files of awkward kinds into `folder`; return what reading each must give."""
    folder.mkdir(parents=True, exist_ok=True)
    quads = quadrants_rgb()
    quads_bgr = quads[:, :, ::-1].copy()
    grey = gradient()
    grey_bgr = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    alpha = gradient()[::-1].copy()
    out: dict[str, Expect] = {}

    _save(Image.fromarray(grey, "L"), folder / "grey.jpg", quality=95)
    out["grey.jpg"] = Expect(grey_bgr, None, tol=6)
    _save(Image.fromarray(grey, "L"), folder / "grey.png")
    out["grey.png"] = Expect(grey_bgr, None)
    _save(Image.fromarray(np.dstack([grey, alpha]), "LA"), folder / "grey_alpha.png")
    out["grey_alpha.png"] = Expect(grey_bgr, alpha)
    _save(Image.fromarray(np.dstack([quads, alpha]), "RGBA"), folder / "rgba.png")
    out["rgba.png"] = Expect(quads_bgr, alpha)
    _save(Image.fromarray(quads).quantize(4), folder / "palette.png")
    out["palette.png"] = Expect(quads_bgr, None)
    pal = Image.fromarray(quads).quantize(4)
    red_index = pal.getpixel((0, 0))
    _save(pal, folder / "palette_transparent.png", transparency=red_index)
    pal_alpha = np.full((H, W), 255, np.uint8)
    pal_alpha[: H // 2, : W // 2] = 0
    out["palette_transparent.png"] = Expect(quads_bgr, pal_alpha)
    _save(Image.fromarray(quads).convert("1"), folder / "bilevel.png")
    out["bilevel.png"] = Expect(None, None)

    g16 = gradient(np.uint16, 65535)
    g16_ref = cv2.cvtColor(((g16.astype(np.int64) * 255 + 32767) // 65535).astype(np.uint8),
                           cv2.COLOR_GRAY2BGR)
    cv2.imwrite(str(folder / "grey16.png"), g16)
    out["grey16.png"] = Expect(g16_ref, None)
    cv2.imwrite(str(folder / "grey16.tif"), g16)
    out["grey16.tif"] = Expect(g16_ref, None)
    rgb16 = np.dstack([g16, g16[::-1], 65535 - g16])  # stored as BGR by cv2
    rgb16_ref = np.round(rgb16 / 257.0).astype(np.uint8)
    cv2.imwrite(str(folder / "rgb16.png"), rgb16)
    out["rgb16.png"] = Expect(rgb16_ref, None, tol=1)
    cv2.imwrite(str(folder / "rgb16.tif"), rgb16)
    out["rgb16.tif"] = Expect(rgb16_ref, None, tol=1)

    cmyk, cmyk_rgb = _cmyk_patches()
    _save(Image.fromarray(cmyk, "CMYK"), folder / "cmyk.jpg", quality=100)  # Adobe, inverted
    out["cmyk.jpg"] = Expect(cmyk_rgb[:, :, ::-1].copy(), None, tol=8)
    _save(Image.fromarray(cmyk, "CMYK"), folder / "cmyk.tif")
    out["cmyk.tif"] = Expect(cmyk_rgb[:, :, ::-1].copy(), None, tol=1)

    _save(Image.fromarray(quads), folder / "lossy.webp", quality=90)
    out["lossy.webp"] = Expect(quads_bgr, None, tol=40, upright_marker=True)
    _save(Image.fromarray(np.dstack([quads, alpha]), "RGBA"), folder / "lossless.webp",
          lossless=True)
    out["lossless.webp"] = Expect(quads_bgr, alpha)
    _save(Image.fromarray(quads), folder / "rgb.bmp")
    out["rgb.bmp"] = Expect(quads_bgr, None)
    _save(Image.fromarray(quads), folder / "rgb.tif", compression="tiff_lzw")
    out["rgb.tif"] = Expect(quads_bgr, None)
    _save(Image.fromarray(quads), folder / "UPPER.JPG", quality=95)
    out["UPPER.JPG"] = Expect(quads_bgr, None, tol=40, upright_marker=True)

    upright = Image.fromarray(quads)
    for orientation, store in STORE_FOR_ORIENTATION.items():
        stored = upright if store is None else upright.transpose(store)
        exif = Image.Exif()
        exif[0x0112] = orientation
        _save(stored, folder / f"exif{orientation}.jpg", quality=95, exif=exif.tobytes())
        out[f"exif{orientation}.jpg"] = Expect(quads_bgr, None, tol=40, upright_marker=True)
    return out


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width x height RGB but carries almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + _png_chunk(b"IEND", b""))


def _noisy_rgb(seed: int = 1, w: int = 320, h: int = 240) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def make_broken(folder: Path) -> dict[str, str]:
    """Write broken files with image extensions; return name -> expected reason fragment."""
    folder.mkdir(parents=True, exist_ok=True)
    noisy = _noisy_rgb()
    noisy.save(folder / "_ok.jpg", quality=90)
    jpeg = (folder / "_ok.jpg").read_bytes()
    (folder / "_ok.jpg").unlink()
    noisy.save(folder / "_ok.png")
    png = (folder / "_ok.png").read_bytes()
    (folder / "_ok.png").unlink()

    (folder / "empty.jpg").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (folder / "truncated.png").write_bytes(png[: len(png) // 2])
    (folder / "text.jpg").write_text("this is a text file, not a picture\n")
    garbage = bytearray(jpeg)
    mid = len(garbage) // 2
    garbage[mid: mid + 300] = np.random.default_rng(7).integers(0, 256, 300, np.uint8).tobytes()
    (folder / "garbage.jpg").write_bytes(bytes(garbage))
    bad_crc = bytearray(png)
    idat = png.find(b"IDAT")
    length = struct.unpack(">I", png[idat - 4: idat])[0]
    bad_crc[idat + 4 + length] ^= 0xFF  # the CRC of the first IDAT chunk; its data is intact
    (folder / "badcrc.png").write_bytes(bytes(bad_crc))
    (folder / "bomb.png").write_bytes(png_header_only(60000, 60000))
    return {
        "empty.jpg": "empty file (0 bytes)",
        "truncated.jpg": "truncated JPEG file",
        "truncated.png": "truncated PNG file",
        "text.jpg": "not an image file (it contains text)",
        "garbage.jpg": "corrupt JPEG data",
        "badcrc.png": "bad CRC in IDAT chunk",
        "bomb.png": "image too large",
    }


def make_mixed(folder: Path) -> tuple[dict[str, Expect], dict[str, str]]:
    """Awkward valid files, broken files and files a folder scan must ignore, in one folder."""
    awkward, broken = make_awkward(folder), make_broken(folder)
    make_ignored(folder)
    return awkward, broken


def make_ignored(folder: Path) -> None:
    """Things a folder scan must skip: other extensions, sub-folders, hidden files."""
    (folder / "vector.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    (folder / "notes.txt").write_text("not a picture")
    Image.new("RGB", (8, 8)).save(folder / "anim.gif")
    (folder / "sub.jpg").mkdir()
    (folder / "._resource.jpg").write_bytes(b"\0\5\26\7 AppleDouble")


# --- reading valid files -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def awkward(tmp_path_factory) -> tuple[Path, dict[str, Expect]]:
    folder = tmp_path_factory.mktemp("awkward")
    return folder, make_awkward(folder)


AWKWARD_NAMES = [
    "grey.jpg", "grey.png", "grey_alpha.png", "rgba.png", "palette.png",
    "palette_transparent.png", "bilevel.png", "grey16.png", "grey16.tif", "rgb16.png",
    "rgb16.tif", "cmyk.jpg", "cmyk.tif", "lossy.webp", "lossless.webp", "rgb.bmp", "rgb.tif",
    "UPPER.JPG", *(f"exif{o}.jpg" for o in range(1, 9))]


def test_enough_kinds(awkward):
    assert sorted(awkward[1]) == sorted(AWKWARD_NAMES)


@pytest.mark.parametrize("name", AWKWARD_NAMES)
def test_reads_awkward_file(awkward, name):
    folder, expected = awkward
    exp = expected[name]
    bgr, alpha, info = read_image(folder / name)
    assert bgr.dtype == np.uint8 and bgr.ndim == 3 and bgr.shape[2] == 3
    assert bgr.flags.c_contiguous
    assert info.path == folder / name
    if exp.upright_marker:
        assert_upright(bgr, tol=exp.tol)
    elif exp.bgr is not None:
        assert bgr.shape == exp.bgr.shape
        diff = np.abs(bgr.astype(np.int16) - exp.bgr.astype(np.int16)).max()
        assert diff <= exp.tol, f"{name}: max difference {diff} > {exp.tol}"
    else:
        assert bgr.shape == (H, W, 3)
    if exp.alpha is None:
        assert alpha is None
    else:
        assert alpha is not None and alpha.dtype == np.uint8 and alpha.shape == bgr.shape[:2]
        if isinstance(exp.alpha, np.ndarray):
            np.testing.assert_array_equal(alpha, exp.alpha)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(awkward, orientation):
    folder, _ = awkward
    path = folder / f"exif{orientation}.jpg"
    bgr, _, info = read_image(path)
    with Image.open(path) as im:
        reference = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))[:, :, ::-1]
    np.testing.assert_array_equal(bgr, reference)
    assert info.orientation == orientation
    stored = (W, H) if orientation <= 4 else (H, W)
    assert info.size == stored  # size as stored, before rotation


def test_grey_16bit_is_scaled_not_clipped(awkward):
    bgr, _, info = read_image(awkward[0] / "grey16.png")
    assert info.mode.startswith("I;16")
    assert bgr[0, 0, 0] == 0 and bgr[-1, -1, 0] == 255
    assert 120 <= bgr[H // 2, W // 2, 0] <= 135  # clipping would give 255 almost everywhere


def test_info_reports_format_dpi_and_icc(tmp_path):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(quadrants_rgb()).save(tmp_path / "a.jpg", dpi=(300, 300), icc_profile=srgb)
    _, _, info = read_image(tmp_path / "a.jpg")
    assert info.format == "JPEG" and info.mode == "RGB" and info.size == (W, H)
    assert info.dpi == (300, 300)
    assert info.icc_profile == srgb
    Image.fromarray(quadrants_rgb()).save(tmp_path / "b.png")
    _, _, info = read_image(tmp_path / "b.png")
    assert info.dpi is None and info.icc_profile is None and info.orientation == 1


# --- reading broken files ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def broken(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("broken")
    return folder, make_broken(folder)


def _error_for(path: Path) -> str:
    with pytest.raises(ImageError) as info:
        read_image(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: "), message
    return message


@pytest.mark.parametrize("name", ["empty.jpg", "truncated.jpg", "truncated.png", "text.jpg",
                                  "garbage.jpg", "badcrc.png", "bomb.png"])
def test_broken_file_gives_one_line_reason(broken, name, capfd):
    folder, reasons = broken
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning may escape read_image
        message = _error_for(folder / name)
    assert reasons[name] in message
    assert capfd.readouterr().err == ""


def test_other_failures(tmp_path):
    (tmp_path / "x.jpg").mkdir()
    assert "is a directory" in _error_for(tmp_path / "x.jpg")
    assert "file not found" in _error_for(tmp_path / "missing.png")
    (tmp_path / "v.svg").write_text('<?xml version="1.0"?>\n<svg width="4" height="4"/>')
    assert "SVG is a vector format" in _error_for(tmp_path / "v.svg")
    Image.new("RGB", (4, 4)).save(tmp_path / "g.gif")
    assert "unsupported format GIF" in _error_for(tmp_path / "g.gif")
    (tmp_path / "r.bin").write_bytes(bytes(range(256)) * 4)
    assert "not an image file (unrecognised content)" in _error_for(tmp_path / "r.bin")
    good = _noisy_rgb(w=32, h=32)
    good.save(tmp_path / "h.png")
    data = bytearray((tmp_path / "h.png").read_bytes())
    data[29] ^= 0xFF  # IHDR CRC
    (tmp_path / "h.png").write_bytes(bytes(data))
    assert "bad CRC in IHDR chunk" in _error_for(tmp_path / "h.png")
    data[12:16] = b"IHDX"  # an unknown critical chunk instead of the header: Pillow gives up
    zlib_crc = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    data[29:33] = zlib_crc
    (tmp_path / "h.png").write_bytes(bytes(data))
    assert "damaged PNG file" in _error_for(tmp_path / "h.png")
    webp = tmp_path / "w.webp"
    good.save(webp)
    webp.write_bytes(webp.read_bytes()[:-100])
    assert "truncated WebP file" in _error_for(webp)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_permission_denied(tmp_path):
    path = tmp_path / "locked.png"
    Image.new("RGB", (4, 4)).save(path)
    path.chmod(0)
    try:
        assert "permission denied" in _error_for(path)
    finally:
        path.chmod(0o644)


def test_permission_denied_reason(tmp_path, monkeypatch):
    path = tmp_path / "locked.png"
    Image.new("RGB", (4, 4)).save(path)

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    assert "permission denied" in _error_for(path)


def test_bomb_limit_is_ours_and_configurable(tmp_path, monkeypatch, capfd):
    # 10001 x 10001 is above our 100 MP limit but below Pillow's own error threshold (it only
    # warns there): we must refuse it, and the Pillow warning must not reach stderr.
    (tmp_path / "big.png").write_bytes(png_header_only(10001, 10001))
    assert "10001x10001" in _error_for(tmp_path / "big.png")
    good = tmp_path / "small.png"
    Image.fromarray(quadrants_rgb()).save(good)
    monkeypatch.setattr(imageio, "MAX_PIXELS", W * H - 1)
    assert "image too large" in _error_for(good)
    assert capfd.readouterr().err == ""


def test_truncation_detection_cannot_be_switched_off(tmp_path, monkeypatch):
    Image.fromarray(quadrants_rgb()).save(tmp_path / "a.png")
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError):
        read_image(tmp_path / "a.png")


# --- writing -------------------------------------------------------------------------------------

def _bgra() -> np.ndarray:
    bgra = np.dstack([quadrants_rgb()[:, :, ::-1], gradient()])
    return np.ascontiguousarray(bgra)


@pytest.mark.parametrize("name", ["a.png", "a.webp", "a.tif"])
def test_write_keeps_alpha_losslessly(tmp_path, name):
    bgra = _bgra()
    write_image(tmp_path / name, bgra, quality=100 if name.endswith("webp") else None)
    bgr, alpha, _ = read_image(tmp_path / name)
    if name.endswith(".webp"):  # lossy colour (chroma subsampled); alpha kept exactly
        assert_upright(bgr, tol=40)
    else:
        np.testing.assert_array_equal(bgr, bgra[:, :, :3])
    np.testing.assert_array_equal(alpha, bgra[:, :, 3])


@pytest.mark.parametrize("name", ["a.png", "a.jpg", "a.jpeg", "a.webp", "a.tif", "a.bmp"])
def test_write_dpi_and_grey(tmp_path, name):
    grey = gradient()
    path = write_image(tmp_path / name, grey, dpi=300)
    assert path == tmp_path / name
    bgr, alpha, info = read_image(path)
    assert alpha is None and bgr.shape == (H, W, 3)
    assert np.abs(bgr[:, :, 0].astype(int) - grey).max() <= 3
    assert info.dpi is not None and np.allclose(info.dpi, (300, 300), atol=0.01)
    assert info.mode == ("RGB" if name.endswith(".webp") else "L")  # WebP has no grey mode


def test_write_permissions_follow_umask(tmp_path):
    path = write_image(tmp_path / "a.png", gradient())
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_jpeg_refuses_alpha_and_unknown_extension(tmp_path):
    with pytest.raises(SinkError, match="JPEG cannot store transparency"):
        write_image(tmp_path / "a.jpg", _bgra())
    with pytest.raises(SinkError, match="unknown output format"):
        write_image(tmp_path / "a.xyz", gradient())
    with pytest.raises(SinkError, match="does not exist"):
        write_image(tmp_path / "no" / "a.png", gradient())
    assert list(tmp_path.iterdir()) == []


def test_write_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "a.png"
    target.write_bytes(b"old")

    def failing_save(self, fp, *args, **kwargs):
        fp.write(b"half an image")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", failing_save)
    with pytest.raises(SinkError, match="No space left on device"):
        write_image(target, _bgra())
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]
