"""Score one zoom-pass variant on DAVIS: TrackedSegmenter keyword arguments as JSON, then
`vbg eval` (live mode) and optionally `vbg bench` on the clip, in this process.

    .venv/bin/python tools/zoom_tries.py '{"mirror": false, "stretch": 1.0}' [eval|bench|both]
"""

from __future__ import annotations

import contextlib
import io
import json
import sys

import vbg.segment.zoom as zoom
from vbg.cli import main as vbg_main

DATA = "../shared/data/davis_parkour"


def _patch(params: dict) -> None:
    original = zoom.TrackedSegmenter.__init__

    def init(self, *args, **kwargs) -> None:
        kwargs.update(params)
        original(self, *args, **kwargs)

    zoom.TrackedSegmenter.__init__ = init  # type: ignore[method-assign]


def _last_json(argv: list[str]) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        vbg_main(argv)
    return json.loads(out.getvalue().strip().splitlines()[-1])


def main() -> None:
    params = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    what = sys.argv[2] if len(sys.argv) > 2 else "eval"
    _patch(params)
    if what in ("eval", "both"):
        r = _last_json(["eval", "--data", DATA, "--config", "live", "--json"])["results"][0]
        print(f"{json.dumps(params)} IoU {r['iou']:.4f} dtSSD {r['dtssd']:.3f} "
              f"{r['ms_per_frame']:.2f} ms/frame")
    if what in ("bench", "both"):
        b = _last_json(["bench", "--source", f"{DATA}/clip.mp4", "--baseline", "--json"])
        print(f"{json.dumps(params)} bench {b['cpu_ms_per_frame']:.2f} ms CPU/frame, typical "
              f"tool {b['baseline_cpu_ms_per_frame']:.2f}, runs {b['network_runs_per_frame']}")


if __name__ == "__main__":
    main()
