"""Face detection with MediaPipe BlazeFace short-range (bundled ONNX) through onnxruntime."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from vbg.models import verified_path
from vbg.models.session import new_session, provider_label

INPUT_SIZE = 128
KEYPOINT_NAMES = ("right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear")

# MediaPipe face_detection_short_range graph: SsdAnchorsCalculator options.
_ANCHOR_STRIDES = (8, 16, 16, 16)
_ANCHOR_OFFSET = 0.5
# TensorsToDetectionsCalculator and NonMaxSuppressionCalculator options of the same graph.
_SCORE_CLIP = 100.0
MIN_SCORE = 0.5
NMS_IOU = 0.3

# Fallback crops (x0, y0, x1, y1 as fractions of the image) tried when the full view finds no
# face: the full view misses faces narrower than ~1/9 of the image's long side
# (docs/decisions.md, "Face detection crops"). A 2x2 grid of overlapping 60 % crops plus the
# upper centre (where a standing person's head usually is); a face cut by a crop edge inside
# the image is left to other crops.
_FALLBACK_CROPS = (
    (0.0, 0.0, 0.6, 0.6), (0.4, 0.0, 1.0, 0.6), (0.0, 0.4, 0.6, 1.0), (0.4, 0.4, 1.0, 1.0),
    (0.2, 0.0, 0.8, 0.6),
)
# Column order that undoes a mirror: box x0 <-> x1, right <-> left eye, right <-> left ear.
_MIRROR_COLUMNS = [2, 1, 0, 3, 6, 7, 4, 5, 8, 9, 10, 11, 14, 15, 12, 13]
_MIN_FALLBACK_SIDE = 256  # below this a crop would only upsample: not worth trying


def _away_from_inner_edges(dets: np.ndarray, crop: tuple[int, int, int, int],
                           size: tuple[int, int]) -> np.ndarray:
    """Mask of crop detections not cut by a crop edge that lies inside the image."""
    x0, y0, x1, y1 = crop
    margin = 0.01 * max(x1 - x0, y1 - y0)
    ok = np.ones(len(dets), bool)
    if x0 > 0:
        ok &= dets[:, 0] > x0 + margin
    if y0 > 0:
        ok &= dets[:, 1] > y0 + margin
    if x1 < size[0]:
        ok &= dets[:, 2] < x1 - margin
    if y1 < size[1]:
        ok &= dets[:, 3] < y1 - margin
    return ok


@dataclass
class Face:
    """One detected face in original image pixels; keypoints are the person's right/left."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float
    keypoints: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2


def ssd_anchor_centers() -> np.ndarray:
    """(896, 2) anchor centres (x, y) in [0,1], in MediaPipe's SsdAnchorsCalculator order.

    Layers with the same stride share one feature map; each layer adds two anchors per cell
    (aspect ratio 1.0 and the interpolated scale, aspect 1.0); fixed_anchor_size makes every
    anchor 1x1, so only the centres matter.
    """
    centers: list[tuple[float, float]] = []
    layer = 0
    while layer < len(_ANCHOR_STRIDES):
        stride = _ANCHOR_STRIDES[layer]
        last = layer
        while last < len(_ANCHOR_STRIDES) and _ANCHOR_STRIDES[last] == stride:
            last += 1
        per_cell = 2 * (last - layer)
        cells = math.ceil(INPUT_SIZE / stride)
        for y in range(cells):
            for x in range(cells):
                c = ((x + _ANCHOR_OFFSET) / cells, (y + _ANCHOR_OFFSET) / cells)
                centers.extend([c] * per_cell)
        layer = last
    return np.asarray(centers, np.float32)


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (4,) x0,y0,x1,y1 box against (n, 4) boxes."""
    iw = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    ih = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = iw * ih
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(dets: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU) -> list[tuple]:
    """MediaPipe's weighted NMS: each kept detection is the score-weighted mean of its overlaps.

    dets: (n, 16) box x0,y0,x1,y1 then 6 keypoints x,y. Returns [(coords (16,), score)] with the
    score of the best member, best first.
    """
    order = np.argsort(-scores, kind="stable")
    dets, scores = dets[order], scores[order]
    out = []
    while len(dets):
        overlap = _iou(dets[0, :4], dets[:, :4]) > iou
        overlap[0] = True
        w = scores[overlap]
        merged = (dets[overlap] * w[:, None]).sum(0) / w.sum()
        out.append((merged, float(scores[0])))
        dets, scores = dets[~overlap], scores[~overlap]
    return out


class FaceDetector:
    """BlazeFace short-range: faces within ~2 m (selfies, portraits), any image size."""

    def __init__(self, provider: str = "cpu", threads: int | None = None,
                 min_score: float = MIN_SCORE, fallback_crops: bool = True,
                 mirror: bool = True) -> None:
        self._session = new_session(verified_path("face-short-range"), provider, threads)
        self.provider = provider_label(self._session)
        self.min_score = min_score
        self.fallback_crops = fallback_crops
        self.mirror = mirror
        self._in_name = self._session.get_inputs()[0].name
        outputs = self._session.get_outputs()
        # Tell the outputs apart by shape: regressors [1,896,16], classificators [1,896,1].
        by_width = sorted(outputs, key=lambda o: o.shape[-1], reverse=True)
        self._out_names = [by_width[0].name, by_width[1].name]
        self._anchors = ssd_anchor_centers()
        self._canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
        self._input = np.empty((1, INPUT_SIZE, INPUT_SIZE, 3), np.float32)

    def detect(self, bgr: np.ndarray) -> list[Face]:
        """Faces in a BGR uint8 image, best score first.

        Only when the full view finds nothing do overlapping crops run (merged by weighted
        NMS): on ../shared/data running them always found extra small faces but also false
        ones (a camera, a glass, a sleeve) next to a portrait's clear face.
        """
        if bgr.ndim == 2 or bgr.shape[2] == 1:
            bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
        elif bgr.shape[2] == 4:
            bgr = np.ascontiguousarray(bgr[..., :3])
        h, w = bgr.shape[:2]
        dets, scores = self._detect_region(bgr, 0, 0)
        if not len(dets) and self.fallback_crops and max(h, w) >= _MIN_FALLBACK_SIDE:
            parts = []
            for fx0, fy0, fx1, fy1 in _FALLBACK_CROPS:
                x0, y0, x1, y1 = round(fx0 * w), round(fy0 * h), round(fx1 * w), round(fy1 * h)
                d, sc = self._detect_region(bgr[y0:y1, x0:x1], x0, y0)
                inside = _away_from_inner_edges(d, (x0, y0, x1, y1), (w, h))
                parts.append((d[inside], sc[inside]))
            dets = np.concatenate([d for d, _ in parts])
            scores = np.concatenate([s for _, s in parts])
        faces = []
        for coords, score in weighted_nms(dets, scores):
            kps = {name: (float(coords[4 + 2 * i]), float(coords[5 + 2 * i]))
                   for i, name in enumerate(KEYPOINT_NAMES)}
            faces.append(Face(tuple(float(v) for v in coords[:4]), score, kps))
        return faces

    def _detect_region(self, bgr: np.ndarray, ox: int, oy: int) -> tuple[np.ndarray, np.ndarray]:
        """Raw detections (n,16) in image pixels (offset by ox, oy) and scores, before NMS."""
        h, w = bgr.shape[:2]
        scale = INPUT_SIZE / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        px, py = (INPUT_SIZE - nw) // 2, (INPUT_SIZE - nh) // 2
        # Letterbox: centred, black padding (MediaPipe pads with zeros before normalising).
        self._canvas.fill(0)
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(bgr, (nw, nh), interpolation=interp)
        cv2.cvtColor(small, cv2.COLOR_BGR2RGB, dst=self._canvas[py:py + nh, px:px + nw])
        np.multiply(self._canvas, np.float32(1 / 127.5), out=self._input[0])
        self._input -= np.float32(1.0)
        dets, scores = self._run()
        if self.mirror:
            # Mirrored pass, mapped back (x -> 128 - x, the person's left <-> right): blending
            # both in the NMS cancels the model's left/right bias. Eye-line angle error against
            # pupils read by eye on 9 frontal faces: RMS 3.6 degrees alone, 1.7 with it.
            self._input[0] = self._input[0, :, ::-1].copy()
            mirrored, mirrored_scores = self._run()
            mirrored[:, 0::2] = INPUT_SIZE - mirrored[:, 0::2]
            mirrored = mirrored[:, _MIRROR_COLUMNS]
            dets = np.concatenate([dets, mirrored])
            scores = np.concatenate([scores, mirrored_scores])
        # Undo the letterbox: input pixels -> region pixels -> image pixels.
        dets[:, 0::2] = (dets[:, 0::2] - px) * (w / nw) + ox
        dets[:, 1::2] = (dets[:, 1::2] - py) * (h / nh) + oy
        return dets, scores

    def _run(self) -> tuple[np.ndarray, np.ndarray]:
        """Decoded detections (n,16) in 128x128 input pixels and their scores, above min_score."""
        raw, logits = self._session.run(self._out_names, {self._in_name: self._input})
        raw, logits = raw[0], logits[0, :, 0]
        clipped = np.clip(logits.astype(np.float64), -_SCORE_CLIP, _SCORE_CLIP)
        scores = 1.0 / (1.0 + np.exp(-clipped))
        keep = scores >= self.min_score
        raw, scores, anchors = raw[keep], scores[keep], self._anchors[keep] * INPUT_SIZE
        keep = (raw[:, 2] > 0) & (raw[:, 3] > 0)
        raw, scores, anchors = raw[keep], scores[keep], anchors[keep]
        # Regressors are in input pixels relative to the anchor centre (anchor size 1x1).
        cx, cy = raw[:, 0] + anchors[:, 0], raw[:, 1] + anchors[:, 1]
        dets = np.empty((len(raw), 16), np.float64)
        dets[:, 0], dets[:, 1] = cx - raw[:, 2] / 2, cy - raw[:, 3] / 2
        dets[:, 2], dets[:, 3] = cx + raw[:, 2] / 2, cy + raw[:, 3] / 2
        dets[:, 4::2] = raw[:, 4::2] + anchors[:, :1]
        dets[:, 5::2] = raw[:, 5::2] + anchors[:, 1:]
        return dets, scores
