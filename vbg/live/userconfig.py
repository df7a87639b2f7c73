"""Remember live choices in the user config (~/.config/vbg/config.toml): only the keys that
changed, every other line (comments included) kept, written atomically."""

from __future__ import annotations

import contextlib
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from vbg.live.settings import toml_value

_HEADER = re.compile(r"^\s*\[")


def _section_span(lines: list[str], section: str) -> tuple[int, int] | None:
    """[start, end) of the lines of table `section` ("" = the top, before any table)."""
    start = 0
    if section:
        head = re.compile(rf"^\s*\[\s*{re.escape(section)}\s*\]\s*(#.*)?$")
        found = next((i for i, line in enumerate(lines) if head.match(line)), None)
        if found is None:
            return None
        start = found + 1
    end = next((i for i in range(start, len(lines)) if _HEADER.match(lines[i])), len(lines))
    return start, end


def set_key(text: str, name: str, value: Any) -> str:
    """`text` with dotted setting `name` set to `value`: its line replaced, or a line added
    (to its table, made at the end if missing)."""
    section, _, key = name.rpartition(".")
    line = f"{key} = {toml_value(value)}"
    lines = text.splitlines()
    span = _section_span(lines, section)
    if span is None:
        while lines and not lines[-1].strip():
            lines.pop()
        lines += ([""] if lines else []) + [f"[{section}]", line]
        return "\n".join(lines) + "\n"
    start, end = span
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for i in range(start, end):
        if pattern.match(lines[i]):
            lines[i] = line
            return "\n".join(lines) + "\n"
    at = end
    while at > start and not lines[at - 1].strip():
        at -= 1  # after the table's last line, before its trailing blank lines
    lines.insert(at, line)
    return "\n".join(lines) + "\n"


def _holds(data: dict[str, Any], changes: Mapping[str, Any]) -> bool:
    for name, value in changes.items():
        section, _, key = name.rpartition(".")
        table = data.get(section, {}) if section else data
        if not isinstance(table, dict) or table.get(key) != value:
            return False
    return True


def _nested(flat: Mapping[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for name, value in flat.items():
        section, _, key = name.rpartition(".")
        table = out.setdefault(section, {}) if section else out
        table[key] = value
    return out


def _plain_toml(data: Mapping[str, Any]) -> str:
    top = [f"{k} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    tables = [f"\n[{k}]\n" + "\n".join(f"{n} = {toml_value(x)}" for n, x in v.items())
              for k, v in data.items() if isinstance(v, dict)]
    return "\n".join(["# vbg settings (choices made in live mode are kept here)", *top]) \
        + "".join(tables) + "\n"


def remember(changes: Mapping[str, Any], path: Path,
             log: Callable[[str], None] = print) -> bool:
    """Write dotted `changes` into the TOML file `path`; False (and one line) if it cannot."""
    if not changes:
        return True
    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        try:
            before = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            log(f"vbg: not remembering the change: {path} is not valid TOML ({e}); fix it")
            return False
        new = text
        for name, value in changes.items():
            new = set_key(new, name, value)
        try:
            ok = _holds(tomllib.loads(new), changes)
        except tomllib.TOMLDecodeError:
            ok = False
        if not ok:  # a layout the line edit cannot follow (dotted keys, inline tables)
            new = _plain_toml(_nested(changes, before))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(new, encoding="utf-8")
            if path.exists():
                os.chmod(tmp, path.stat().st_mode & 0o777)  # keep the file's permissions
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    except OSError as e:
        log(f"vbg: not remembering the change: cannot write {path} ({e.strerror or e})")
        return False
    return True
