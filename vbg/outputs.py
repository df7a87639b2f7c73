"""Output files that would overwrite an input or each other: refused before anything opens."""

from __future__ import annotations

import os
from collections.abc import Mapping

from vbg.errors import ConfigError

# Said in --help next to the output flags.
RULE = ("an output may not be an input (--camera, --video, --background) nor the other "
        "output, also through a symlink or another path; an existing file is replaced only "
        "when the run stops cleanly (written under a temporary name, then renamed)")

Paths = Mapping[str, "str | os.PathLike[str] | None"]


def _is_path(value: str | os.PathLike[str] | None) -> bool:
    """A value that names a file (not a camera index, a device left unset or a URL)."""
    if value is None:
        return False
    text = os.fspath(value)
    return bool(text) and "://" not in text and not text.isdigit()


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when `a` and `b` are one file: the same inode when both exist, else the same
    path once made absolute with every symlink resolved."""
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(os.path.abspath(a)) == os.path.realpath(os.path.abspath(b))


def check_outputs(inputs: Paths, outputs: Paths) -> None:
    """Raise ConfigError (one line) if an output is one of the inputs or another output.
    Both maps go from what the user set (a flag such as "--output", or a config key) to the
    path given; unset entries (None or "") and non-file inputs (camera index, URL) are left
    out."""
    named_outputs = [(name, path) for name, path in outputs.items() if _is_path(path)]
    named_inputs = [(name, path) for name, path in inputs.items() if _is_path(path)]
    for i, (out_name, out_path) in enumerate(named_outputs):
        for in_name, in_path in named_inputs:
            if same_file(out_path, in_path):
                raise ConfigError(
                    f"{out_name} {os.fspath(out_path)!r} is the same file as {in_name} "
                    f"{os.fspath(in_path)!r}: vbg would overwrite its own input; write the "
                    "result to another file")
        for other_name, other_path in named_outputs[i + 1:]:
            if same_file(out_path, other_path):
                raise ConfigError(
                    f"{out_name} {os.fspath(out_path)!r} and {other_name} "
                    f"{os.fspath(other_path)!r} are the same file: one would overwrite the "
                    "other; give each its own file")
