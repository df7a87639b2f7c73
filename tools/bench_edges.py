"""Cost of live foreground colour (blur fusion): `vbg bench`'s pipeline with refine.foreground off
and on, alternated in one process on the same in-memory clip; medians of CPU ms per frame.
`--render`: instead, Compositor.render alone, off and on, on the same frames and fields.

    .venv/bin/python tools/bench_edges.py --size 1920x1080 --frames 150 --rounds 3 --color "#438edb"
    .venv/bin/python tools/bench_edges.py --size 1920x1080 --frames 60 --render
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from vbg import backgrounds
from vbg.compose.composite import Compositor
from vbg.live import config
from vbg.live.build import build_stages
from vbg.live.frame import FrameMatter
from vbg.live.settings import LiveSettings
from vbg.measure import bench
from vbg.measure.benchclip import RingSource, TimedSource, make_clip


def render_times(clip: list, frames: int) -> dict[str, float]:
    """Median ms of Compositor.render on a colour, foreground off and on, same fields."""
    stages = build_stages(LiveSettings().merged({"color": "#438edb", "blur": 0}, source="bench"))
    matter = FrameMatter(stages)
    colour = backgrounds.ColorBackground((219, 142, 67))
    compositors = {False: Compositor(colour), True: Compositor(colour, foreground=True)}
    times: dict[bool, list[float]] = {False: [], True: []}
    for k in range(frames):
        image = np.ascontiguousarray(clip[k % len(clip)])
        thumb, small = matter.prepare(image)
        fields = matter.matte(image, thumb, small, k / 30)
        for on, compositor in compositors.items():
            t = time.perf_counter()
            compositor.render(image, fields)
            times[on].append((time.perf_counter() - t) * 1e3)
    skip = min(10, frames // 2)  # the first frames: caches, threads
    return {"render_off_ms": statistics.median(times[False][skip:]),
            "render_on_ms": statistics.median(times[True][skip:])}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="1920x1080")
    p.add_argument("--frames", type=int, default=150)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--color", default="", help="a colour background (default: live's blur)")
    p.add_argument("--render", action="store_true", help="time Compositor.render alone")
    args = p.parse_args()
    size = config.parse_size(args.size)
    clip = make_clip(size)
    if args.render:
        print(json.dumps({"size": args.size, **render_times(clip, args.frames)}))
        return 0
    figures: dict[bool, list[dict]] = {False: [], True: []}
    for _ in range(args.rounds):
        for on in (False, True):
            changes: dict[str, object] = {"refine.foreground": on}
            if args.color:
                changes.update(color=args.color, blur=0)
            stages = build_stages(LiveSettings().merged(changes, source="bench_edges"))

            def ring(decode_ms, clip=clip):
                return TimedSource(RingSource(clip, 0.0), decode_ms)

            figures[on].append(bench.run_vbg(stages, ring, None, args.warmup, args.frames))
    out = {}
    for on, runs in figures.items():
        out["on" if on else "off"] = {
            "cpu_ms_per_frame": statistics.median(r["cpu_ms_per_frame"] for r in runs),
            "composite_ms": statistics.median(r["stage_ms"]["composite"] for r in runs),
            "runs_cpu_ms": [round(r["cpu_ms_per_frame"], 2) for r in runs],
        }
    out["cpu_ratio_on_off"] = out["on"]["cpu_ms_per_frame"] / out["off"]["cpu_ms_per_frame"]
    out["size"], out["background"] = args.size, args.color or "blur"
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
