"""numba.cuda kernels of the GPU path, one output pixel per thread, typed (compiled for the
device at import, cached on disk). Import only after `cuda_status()` says CUDA works."""

from __future__ import annotations

import math

from numba import cuda, float32

FRAME = "uint8[:, :, ::1]"  # BGR (or BGRA out), C-contiguous
MAP = "float32[:, ::1]"  # a matte or grey picture, 0..1
PLANES = "float32[:, :, ::1]"  # (h, w, 4) weighted colour + weight (the blur)
TENSOR = "float32[:, :, :, ::1]"  # a network tensor
A_CUBIC = -0.75  # OpenCV's INTER_CUBIC
W_FLOOR = 1.0 / 16320.0  # the blur's weight floor, as the CPU blur: inside the person it
# falls back to the plain blurred frame


def launch(width: int, height: int, block: tuple[int, int] = (32, 8)) -> tuple:
    """(grid, block) covering width x height threads."""
    return (math.ceil(width / block[0]), math.ceil(height / block[1])), block


@cuda.jit("void(float32[::1], float32)", cache=True)
def fill(values, value):  # pragma: no cover - device code
    i = cuda.grid(1)
    if i < values.shape[0]:
        values[i] = value


@cuda.jit(device=True, inline=True)
def _taps(fx, fy, h, w):  # pragma: no cover - device code
    """Bilinear taps of float pixel (fx, fy) in an h x w picture, edges clamped:
    (x0, x1, y0, y1, tx, ty)."""
    fx = min(max(fx, 0.0), w - 1.0)
    fy = min(max(fy, 0.0), h - 1.0)
    x0, y0 = int(fx), int(fy)
    return x0, min(x0 + 1, w - 1), y0, min(y0 + 1, h - 1), fx - x0, fy - y0


@cuda.jit(device=True, inline=True)
def _bilinear(img, fx, fy):  # pragma: no cover - device code
    """img (h, w) sampled at float pixel (fx, fy), edges clamped."""
    x0, x1, y0, y1, tx, ty = _taps(fx, fy, img.shape[0], img.shape[1])
    top = img[y0, x0] + (img[y0, x1] - img[y0, x0]) * tx
    bottom = img[y1, x0] + (img[y1, x1] - img[y1, x0]) * tx
    return top + (bottom - top) * ty


@cuda.jit(device=True, inline=True)
def _alpha_at(alpha, x, y, width, height, threshold, contrast):  # pragma: no cover
    """The low-res matte at output pixel (x, y), bilinear, through the contrast curve."""
    h, w = alpha.shape
    a = _bilinear(alpha, (x + 0.5) * w / width - 0.5, (y + 0.5) * h / height - 0.5)
    a = (a - threshold) * contrast + 0.5
    return min(max(a, 0.0), 1.0)


@cuda.jit(device=True, inline=True)
def _cubic_weight(d):  # pragma: no cover - device code
    d = abs(d)
    if d <= 1.0:
        return ((A_CUBIC + 2.0) * d - (A_CUBIC + 3.0)) * d * d + 1.0
    if d < 2.0:
        return ((A_CUBIC * d - 5.0 * A_CUBIC) * d + 8.0 * A_CUBIC) * d - 4.0 * A_CUBIC
    return 0.0


@cuda.jit(f"void({FRAME}, {TENSOR})", cache=True)
def to_nchw(frame, out):  # pragma: no cover - device code
    """RVM's input: RGB planes 0..1, bilinear when the sizes differ."""
    x, y = cuda.grid(2)
    h, w = out.shape[2], out.shape[3]
    if x >= w or y >= h:
        return
    fh, fw = frame.shape[0], frame.shape[1]
    if fh == h and fw == w:
        for c in range(3):
            out[0, c, y, x] = frame[y, x, 2 - c] * (1.0 / 255.0)
        return
    x0, x1, y0, y1, tx, ty = _taps((x + 0.5) * fw / w - 0.5, (y + 0.5) * fh / h - 0.5, fh, fw)
    for c in range(3):
        top = frame[y0, x0, 2 - c] * (1.0 - tx) + frame[y0, x1, 2 - c] * tx
        bottom = frame[y1, x0, 2 - c] * (1.0 - tx) + frame[y1, x1, 2 - c] * tx
        out[0, c, y, x] = (top * (1.0 - ty) + bottom * ty) * (1.0 / 255.0)


@cuda.jit(f"void({FRAME}, {TENSOR})", cache=True)
def to_nhwc_cubic(frame, out):  # pragma: no cover - device code
    """The selfie models' input: RGB 0..1 (1, h, w, 3), bicubic as the CPU path's resize."""
    x, y = cuda.grid(2)
    h, w = out.shape[1], out.shape[2]
    if x >= w or y >= h:
        return
    fh, fw = frame.shape[0], frame.shape[1]
    fx = (x + 0.5) * fw / w - 0.5
    fy = (y + 0.5) * fh / h - 0.5
    ix, iy = math.floor(fx), math.floor(fy)
    b = 0.0
    g = 0.0
    r = 0.0
    for j in range(-1, 3):
        wy = _cubic_weight(fy - (iy + j))
        sy = min(max(iy + j, 0), fh - 1)
        for i in range(-1, 3):
            wgt = wy * _cubic_weight(fx - (ix + i))
            sx = min(max(ix + i, 0), fw - 1)
            b += wgt * frame[sy, sx, 0]
            g += wgt * frame[sy, sx, 1]
            r += wgt * frame[sy, sx, 2]
    # Clipped to 0..255 as the uint8 resize of the CPU path does.
    out[0, y, x, 0] = min(max(r, 0.0), 255.0) * (1.0 / 255.0)
    out[0, y, x, 1] = min(max(g, 0.0), 255.0) * (1.0 / 255.0)
    out[0, y, x, 2] = min(max(b, 0.0), 255.0) * (1.0 / 255.0)


@cuda.jit(f"void({FRAME}, {MAP})", cache=True)
def grey_at(frame, grey):  # pragma: no cover - device code
    """BT.601 luma 0..1 of the frame at the matte's size (nearest sample of the centre)."""
    x, y = cuda.grid(2)
    h, w = grey.shape
    if x >= w or y >= h:
        return
    sx = min(int((x + 0.5) * frame.shape[1] / w), frame.shape[1] - 1)
    sy = min(int((y + 0.5) * frame.shape[0] / h), frame.shape[0] - 1)
    grey[y, x] = (0.114 * frame[sy, sx, 0] + 0.587 * frame[sy, sx, 1]
                  + 0.299 * frame[sy, sx, 2]) * (1.0 / 255.0)


@cuda.jit(f"void({MAP}, {MAP}, {MAP}, {MAP}, float32, float32, {MAP})", cache=True)
def smooth(alpha, prev, grey, prev_grey, keep, motion_gain, out):  # pragma: no cover
    """The CPU smoother's rule: out = w*prev + (1-w)*alpha, w = keep*uncertainty*stillness."""
    x, y = cuda.grid(2)
    h, w = alpha.shape
    if x >= w or y >= h:
        return
    a = alpha[y, x]
    conf = abs(2.0 * a - 1.0)
    motion = abs(grey[y, x] - prev_grey[y, x]) * motion_gain
    still = 1.0 - motion if motion < 1.0 else 0.0
    wgt = keep * (1.0 - conf * conf) * still
    out[y, x] = wgt * prev[y, x] + (1.0 - wgt) * a


@cuda.jit(f"void({FRAME}, {MAP}, float32, float32, int32, {PLANES})", cache=True)
def shrink_weighted(frame, alpha, threshold, contrast, scale, out):  # pragma: no cover
    """Blur level 0: block means of (B*w, G*w, R*w, w), w = 1 - alpha + floor (the person
    masked out of the room, as the CPU blur's normalised convolution)."""
    x, y = cuda.grid(2)
    h, w = out.shape[0], out.shape[1]
    if x >= w or y >= h:
        return
    fh, fw = frame.shape[0], frame.shape[1]
    cx, cy = min(x * scale + scale // 2, fw - 1), min(y * scale + scale // 2, fh - 1)
    wgt = 1.0 - _alpha_at(alpha, cx, cy, fw, fh, threshold, contrast) + W_FLOOR
    b = 0.0
    g = 0.0
    r = 0.0
    n = 0
    for sy in range(y * scale, min((y + 1) * scale, fh)):
        for sx in range(x * scale, min((x + 1) * scale, fw)):
            b += frame[sy, sx, 0]
            g += frame[sy, sx, 1]
            r += frame[sy, sx, 2]
            n += 1
    k = wgt / max(n, 1)
    out[y, x, 0] = b * k
    out[y, x, 1] = g * k
    out[y, x, 2] = r * k
    out[y, x, 3] = wgt


@cuda.jit(f"void({PLANES}, float32[::1], int32, {PLANES})", cache=True)
def gauss_pass(src, taps, along_y, out):  # pragma: no cover - device code
    """One Gaussian pass, along x (along_y = 0) or y, borders reflected."""
    x, y = cuda.grid(2)
    h, w = src.shape[0], src.shape[1]
    if x >= w or y >= h:
        return
    radius = taps.shape[0] // 2
    n, i = (h, y) if along_y else (w, x)
    for c in range(4):
        total = 0.0
        for k in range(taps.shape[0]):
            j = i + k - radius
            j = -j - 1 if j < 0 else (2 * n - j - 1 if j >= n else j)
            j = min(max(j, 0), n - 1)
            total += taps[k] * (src[j, x, c] if along_y else src[y, j, c])
        out[y, x, c] = total


@cuda.jit(device=True, inline=True)
def _mix(fg, bg, a):  # pragma: no cover - device code
    """a*fg + (1-a)*bg rounded; in float32 (uint8 arithmetic would wrap)."""
    b = float32(bg)
    return int(b + a * (float32(fg) - b) + float32(0.5))


@cuda.jit(f"void({FRAME}, {MAP}, float32, float32, {FRAME}, {FRAME})", cache=True)
def blend(frame, alpha, threshold, contrast, bg, out):  # pragma: no cover - device code
    """out = a*frame + (1-a)*bg; bg at frame size (an image, a video frame) or 1x1 (a colour:
    its one pixel everywhere)."""
    x, y = cuda.grid(2)
    height, width = frame.shape[0], frame.shape[1]
    if x >= width or y >= height:
        return
    a = _alpha_at(alpha, x, y, width, height, threshold, contrast)
    bx, by = (x, y) if bg.shape[0] > 1 else (0, 0)
    for c in range(3):
        out[y, x, c] = _mix(frame[y, x, c], bg[by, bx, c], a)


@cuda.jit(f"void({FRAME}, {MAP}, float32, float32, {PLANES}, {FRAME})", cache=True)
def blend_blur(frame, alpha, threshold, contrast, blurred, out):  # pragma: no cover
    """out = a*frame + (1-a)*room, room = the small blurred planes enlarged (bilinear) and
    divided by their weight."""
    x, y = cuda.grid(2)
    height, width = frame.shape[0], frame.shape[1]
    if x >= width or y >= height:
        return
    a = _alpha_at(alpha, x, y, width, height, threshold, contrast)
    h, w = blurred.shape[0], blurred.shape[1]
    x0, x1, y0, y1, tx, ty = _taps((x + 0.5) * w / width - 0.5, (y + 0.5) * h / height - 0.5,
                                   h, w)
    w00, w01 = (1.0 - tx) * (1.0 - ty), tx * (1.0 - ty)
    w10, w11 = (1.0 - tx) * ty, tx * ty
    weight = (w00 * blurred[y0, x0, 3] + w01 * blurred[y0, x1, 3]
              + w10 * blurred[y1, x0, 3] + w11 * blurred[y1, x1, 3])
    for c in range(3):
        room = (w00 * blurred[y0, x0, c] + w01 * blurred[y0, x1, c]
                + w10 * blurred[y1, x0, c] + w11 * blurred[y1, x1, c]) / weight
        out[y, x, c] = _mix(frame[y, x, c], min(room, 255.0), a)


@cuda.jit(f"void({FRAME}, {MAP}, float32, float32, {FRAME})", cache=True)
def to_bgra(frame, alpha, threshold, contrast, out):  # pragma: no cover - device code
    """A cut-out: BGR of the frame, the matte as alpha (transparent background)."""
    x, y = cuda.grid(2)
    height, width = frame.shape[0], frame.shape[1]
    if x >= width or y >= height:
        return
    for c in range(3):
        out[y, x, c] = frame[y, x, c]
    out[y, x, 3] = int(_alpha_at(alpha, x, y, width, height, threshold, contrast) * 255.0
                       + 0.5)


@cuda.jit(f"void({MAP}, float32, float32, uint8[:, ::1])", cache=True)
def matte(alpha, threshold, contrast, out):  # pragma: no cover - device code
    """The full-size matte (uint8, 255 = person) for sinks that record it."""
    x, y = cuda.grid(2)
    height, width = out.shape
    if x >= width or y >= height:
        return
    out[y, x] = int(_alpha_at(alpha, x, y, width, height, threshold, contrast) * 255.0 + 0.5)
