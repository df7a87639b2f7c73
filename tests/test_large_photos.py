"""Large photos: the decompression-bomb guard stays, --max-pixels raises it, and reading a big
photo holds one image-sized copy beside Pillow's, not three."""

from __future__ import annotations

import struct
import tracemalloc
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from vbg.cli import main
from vbg.errors import ImageError
from vbg.imageio import parse_pixels, read_image

PORTRAIT = Path(__file__).resolve().parent.parent / "samples" / "astronaut.png"  # 512x512


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def _header_only_png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + _chunk(b"IEND", b""))


def test_max_pixels_lowers_and_raises_the_limit(tmp_path, capsys):
    out = tmp_path / "x.png"
    assert main(["still", str(PORTRAIT), "-o", str(out), "--max-pixels", "200000"]) == 1
    err = capsys.readouterr().err
    assert "image too large: 512x512" in err and "limit 0.2 megapixels" in err
    assert "--max-pixels" in err and not out.exists()
    assert main(["still", str(PORTRAIT), "-o", str(out), "--max-pixels", "0.3M"]) == 0
    assert out.is_file()


def test_a_bad_max_pixels_value_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["still", str(PORTRAIT), "-o", str(tmp_path / "x.png"), "--max-pixels", "lots"])
    assert stop.value.code == 2
    assert "--max-pixels" in capsys.readouterr().err


def test_raising_the_limit_also_raises_pillows_own_guard(tmp_path):
    """200 MP is beyond Pillow's own error threshold (2 x 89.5 MP): with --max-pixels 250M the
    file gets as far as decoding (and fails there: it holds no pixels), not refused unread."""
    bomb = tmp_path / "huge.png"
    bomb.write_bytes(_header_only_png(20000, 10000))
    with pytest.raises(ImageError, match="image too large"):
        read_image(bomb)
    with pytest.raises(ImageError) as err:
        read_image(bomb, max_pixels=250_000_000)
    assert "too large" not in str(err.value)


def test_parse_pixels():
    assert parse_pixels("150M") == 150_000_000
    assert parse_pixels("120e6") == 120_000_000
    assert parse_pixels("1.5g") == 1_500_000_000
    assert parse_pixels("5000") == 5000
    for bad in ("", "M", "abc", "-5M", "0", "nan"):
        with pytest.raises(ValueError):
            parse_pixels(bad)


def test_reading_a_big_photo_makes_one_image_sized_copy(tmp_path):
    """Peak Python/numpy memory while reading a 12-megapixel JPEG (Pillow's own buffer is not
    traced): the BGR result plus small bands. np.asarray(im) + cvtColor made three copies."""
    small = cv2.imread(str(PORTRAIT))
    big = cv2.resize(small, (4000, 3000), interpolation=cv2.INTER_LINEAR)
    path = tmp_path / "big.jpg"
    cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 90])
    bgr_bytes = big.nbytes
    tracemalloc.start()
    try:
        image, _, _ = read_image(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert image.shape == big.shape and image.flags.writeable
    assert np.abs(image.astype(np.int16) - big).mean() < 3  # the right pixels, in BGR order
    assert peak < 1.3 * bgr_bytes, f"peak {peak / 1e6:.0f} MB for a {bgr_bytes / 1e6:.0f} MB image"
