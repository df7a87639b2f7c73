"""Live mode on the command line (`vbg` with no subcommand): flags, settings, run, signals."""

from __future__ import annotations

import argparse
import signal
import time
from pathlib import Path
from typing import Any

from vbg import outputs
from vbg.backgrounds import check_blur_flag
from vbg.errors import ConfigError, VbgError
from vbg.live import config
from vbg.live.session import build_live, stderr_log
from vbg.live.settings import LiveSettings, fields, flag_of


def add_arguments(p: argparse.ArgumentParser) -> None:
    """One flag per setting of the schema (vbg/live/settings.py), then the run's own flags."""
    g = p.add_argument_group("live mode (defaults: vbg/live/default.toml; every key has a flag)")
    g.add_argument("--config", type=Path, metavar="FILE",
                   help="settings file (TOML) over the defaults")
    for name, default, spec in fields():
        flag = flag_of(name, default, spec)
        if isinstance(default, bool):
            g.add_argument(flag, dest=name, action="store_false" if default else "store_true",
                           default=None, help=spec.help)
            if spec.both:
                key = name.rpartition(".")[2].replace("_", "-")
                g.add_argument(f"--{key}" if default else f"--no-{key}", dest=name,
                               action="store_true" if default else "store_false",
                               default=None, help=f"the opposite of {flag} (the default)")
            continue
        g.add_argument(flag, dest=name, type=type(default), metavar=spec.metavar,
                       choices=spec.choices or None, help=spec.help)
    a = g.add_argument
    a("--vcam-backend", dest="vcam_backend", metavar="NAME",
      help="pyvirtualcam backend (v4l2loopback, obs, unitycapture; default: the platform's)")
    a("--loop", action="store_true", help="file sources: start again at the end")
    a("--frames", type=int, metavar="N", help="stop after N output frames")
    a("--no-realtime", dest="no_realtime", action="store_true",
      help="file sources: process every frame in order, as fast as possible")
    a("-v", "--verbose", action="store_true", help="say more about what runs")


# Every setting's dotted name; each is the `dest` of its flag.
LIVE_KEYS = tuple(name for name, _, _ in fields())


def settings_from(args: argparse.Namespace) -> LiveSettings:
    """Defaults < --config FILE (else ~/.config/vbg/config.toml if it exists) < flags."""
    check_blur_flag(args.blur)
    cfg = args.config
    if cfg is None and config.USER_CONFIG.is_file():
        cfg = config.USER_CONFIG
    sources: dict[str, str] = {}
    settings = config.load(cfg, sources)
    flags = {k: getattr(args, k, None) for k in LIVE_KEYS}
    sources.update({name: f"flag {flag_of(name, default, spec)}"
                    for name, default, spec in fields() if flags[name] is not None})
    settings = config.apply_flags(settings, flags)
    config.check_ranges(settings, sources)
    if args.frames is not None and args.frames < 1:
        raise ConfigError(f"--frames {args.frames} (flag --frames) is out of range: allowed "
                          "1 or more (leave it out to run until stopped)")
    return settings


def check_files(s: LiveSettings, args: argparse.Namespace) -> None:
    """Outputs that are an input or each other: ConfigError before anything is opened."""
    def name(key: str) -> str:
        given = getattr(args, key, None) is not None
        return f"--{key.replace('_', '-')}" if given else f"{key} (config file)"

    outputs.check_outputs({name(k): s.get(k) or None for k in ("camera", "video", "background")},
                          {name(k): s.get(k) or None for k in ("output", "matte_output")})


def run(args: argparse.Namespace) -> int:
    s = settings_from(args)
    check_files(s, args)
    log = stderr_log
    holder: dict[str, Any] = {"live": None}
    _install_signals(holder, args, log)  # first: a stop during start-up is clean too
    if s.web:  # the web stack is imported only when asked for, before the camera opens
        from vbg.web.livemode import start_live_web
    live = build_live(s, realtime=not args.no_realtime, loop=args.loop,
                      max_frames=args.frames, vcam_backend=args.vcam_backend,
                      verbose=args.verbose, log=log)
    holder["live"] = live
    web = None
    if s.web:
        web = start_live_web(live, s.web_port, log, remember_in=config.USER_CONFIG)
    cpu0, wall0 = time.process_time(), time.monotonic()
    try:
        stats = live.run()
    finally:
        if web is not None:
            web.close()
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    n = max(1, stats.frames_out)
    log(live.pipeline.summary(cpu, n, wall))
    log(f"vbg: {stats.frames_out} frames in {wall:.1f} s ({stats.frames_out / wall:.1f} fps)")
    return 0


def _install_signals(holder: dict, args: argparse.Namespace, log) -> None:
    def on_stop(signum, _frame) -> None:
        live = holder["live"]
        if live is None:
            raise SystemExit(0)  # still starting: nothing to flush, leave at once
        live.stop()

    def on_hup(signum, _frame) -> None:
        live = holder["live"]
        if live is not None:  # files re-read on the pipeline thread, not in the handler
            live.pipeline.request_reload(reread)

    def reread(_p) -> None:  # on the pipeline thread: the new settings apply to this frame
        try:
            new = settings_from(args)
        except VbgError as e:
            log(f"vbg: reload failed, keeping the current settings: {e}")
            return
        holder["live"].apply_here(new)

    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGTERM, on_stop)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, on_hup)


