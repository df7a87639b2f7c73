"""cv2's BGR -> I420 conversion as the final passes do it, row slice by row slice."""

from __future__ import annotations

import numpy as np
from numba import njit

_F32 = np.float32
_U64 = np.uint64  # unsigned loop ranges vectorise (see vbg/matte/onepass.py)
# cv2's BGR -> I420 (BT.601 video range; chroma from the top-left pixel of each 2x2 block, as
# cv2 does): cv2's 20-bit fixed-point weights, computed in float32 (0.65 against 0.83 ms per
# 1080p frame in integers; within 1 level of cv2.cvtColor, the integers were exact).
_S = 1.0 / (1 << 20)
_YR, _YG, _YB = _F32(269484 * _S), _F32(528482 * _S), _F32(102760 * _S)
_UR, _UG, _UB = _F32(-155188 * _S), _F32(-305135 * _S), _F32(460324 * _S)
_VR, _VG, _VB = _F32(460324 * _S), _F32(-385875 * _S), _F32(-74448 * _S)
_Y0, _C0 = _F32(16.5), _F32(128.5)


@njit(cache=True, fastmath=True, inline="always")
def pixels_to_i420(px, xs, xe, even_row, luma, u, v):  # pragma: no cover - compiled
    """Pixels xs..xe of an image row (flat B,G,R, the whole row) into the Y row and, on even
    rows, their even pixels into the U and V rows (cv2's chroma siting)."""
    n = _U64(xe - xs)
    p, d = px[3 * xs:3 * xe], luma[xs:xe]
    for x in range(n):
        d[x] = np.uint8(np.int32(_YR * _F32(p[3 * x + 2]) + _YG * _F32(p[3 * x + 1])
                                 + _YB * _F32(p[3 * x]) + _Y0))
    if even_row:
        c0, c1 = (xs + 1) // 2, (xe + 1) // 2  # the even pixels 2c in [xs, xe)
        q, du, dv = px[6 * c0:6 * c1], u[c0:c1], v[c0:c1]
        for c in range(_U64(c1 - c0)):
            b, g, r = _F32(q[6 * c]), _F32(q[6 * c + 1]), _F32(q[6 * c + 2])
            du[c] = np.uint8(np.int32(_UR * r + _UG * g + _UB * b + _C0))
            dv[c] = np.uint8(np.int32(_VR * r + _VG * g + _VB * b + _C0))
