"""Pause: the camera is released (its light goes off) and the outputs get a still card at the
frame rate, with no gap, until resume opens the camera again."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

PAUSED_STATE = "paused"
REOPEN_WAIT_S = 10.0  # cards go on while a slow camera opens; after this the pipeline takes over


def paused_card(width: int, height: int) -> np.ndarray:
    """The still card: dark slate with a pause sign and 'Camera paused' (never the room)."""
    card = np.empty((height, width, 3), np.uint8)
    card[:] = (48, 36, 30)  # BGR: dark slate blue
    scale = max(0.5, width / 1280)
    bar_w, bar_h = max(4, int(22 * scale)), max(12, int(90 * scale))
    cx, cy = width // 2, height // 2 - int(40 * scale)
    for x in (cx - 2 * bar_w, cx + bar_w):
        cv2.rectangle(card, (x, cy - bar_h // 2), (x + bar_w, cy + bar_h // 2),
                      (200, 200, 200), -1)
    text = "Camera paused"
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    org = ((width - tw) // 2, cy + bar_h // 2 + th + int(30 * scale))
    cv2.putText(card, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (200, 200, 200), 2,
                cv2.LINE_AA)
    return card


class Pauser:
    """pause()/resume() from any thread; hold(pipeline) runs the paused stretch on the
    pipeline's own thread (the pipeline calls it while `wanted`)."""

    def __init__(self, reopen: Callable[[], Any], log: Callable[[str], None] = print) -> None:
        self.reopen = reopen  # makes and starts a new capture thread (the camera again)
        self.log = log
        self._wanted = threading.Event()
        self._wake = threading.Event()
        self.cards = 0  # cards sent, over every pause (for tests and status)

    @property
    def wanted(self) -> bool:
        return self._wanted.is_set()

    def pause(self) -> None:
        self._wanted.set()
        self._wake.set()

    def resume(self) -> None:
        self._wanted.clear()
        self._wake.set()

    def hold(self, p: Any) -> None:
        """Release the camera, send the card every frame period while paused (changes still
        apply), then reopen the camera on a helper thread while cards go on."""
        p.capture.stop()  # the camera is released (its light goes off)
        previous, p.state = p.state, PAUSED_STATE
        self.log("vbg: paused: camera released")
        card = alpha = None
        if p._last_output is not None:
            h, w = p._last_output.shape[:2]
            card, alpha = paused_card(w, h), np.zeros((h, w), np.uint8)
        period = 1.0 / p.fps
        next_due = time.monotonic()
        while self._wanted.is_set() and not p._done():
            next_due = self._card_until(p, card, alpha, next_due, period)
        if p.stopping:
            return
        opened: dict[str, Any] = {}
        opener = threading.Thread(target=self._reopen_into, args=(opened,),
                                  name="vbg-resume", daemon=True)
        opener.start()
        deadline = time.monotonic() + REOPEN_WAIT_S
        while opener.is_alive() and not p._done() and time.monotonic() < deadline:
            next_due = self._card_until(p, card, alpha, next_due, period, opener)
        opener.join(REOPEN_WAIT_S)
        if "capture" not in opened:
            self.log(f"vbg: resume: the camera could not be opened: {opened.get('error')}")
            return  # the old (stopped) capture stays: the pipeline ends as for a lost file
        p.capture = opened["capture"]
        for stage in (p.stages.segmenter, p.stages.smoother):
            getattr(stage, "reset", lambda: None)()  # the scene may have changed meanwhile
        p._last_matte = None
        p.state = "running" if previous == PAUSED_STATE else previous
        self.log("vbg: resumed: camera open again")

    def _card_until(self, p: Any, card: np.ndarray | None, alpha: np.ndarray | None,
                    next_due: float, period: float, opener: threading.Thread | None = None
                    ) -> float:
        """Send one card (when the outputs are open), apply pending changes, wait for the
        next frame period (or a resume); returns the next due time."""
        p._maybe_reload()
        now = time.monotonic()
        if card is not None and now >= next_due:
            for sink in p.sinks:
                sink.write(card, alpha, now)
            if p.tap is not None:
                p.tap.offer(card)
            p.stats.frames_out += 1
            self.cards += 1
            next_due = max(next_due + period, now - period)
        wait = max(0.0, next_due - time.monotonic())
        if opener is not None:
            opener.join(wait)
        elif self._wake.wait(wait):
            self._wake.clear()
        return next_due

    def _reopen_into(self, opened: dict[str, Any]) -> None:
        try:
            opened["capture"] = self.reopen()
        except Exception as e:  # reported by hold(), on the pipeline thread
            opened["error"] = e
