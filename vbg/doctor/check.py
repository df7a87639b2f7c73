"""One doctor finding: status, what was found, and for a problem the exact fix."""

from __future__ import annotations

from dataclasses import dataclass

# ok: fine. fail: live mode cannot run. warn: a problem that does not stop live mode.
# info: optional or not applicable.
SYMBOLS = {"ok": "[ok]", "fail": "[!!]", "warn": "[!!]", "info": "[--]"}


@dataclass
class Check:
    name: str
    status: str
    found: str
    fix: str = ""

    def __post_init__(self) -> None:
        if self.status not in SYMBOLS:
            raise ValueError(f"unknown check status {self.status!r}")

    @property
    def problem(self) -> bool:
        return self.status in ("fail", "warn")

    def render(self) -> str:
        text = f"{SYMBOLS[self.status]} {self.name}: {self.found}"
        if self.fix:
            fix = self.fix.replace("\n", "\n     ")  # indent multi-line fixes under "fix:"
            text += f"\n     fix:{fix}" if fix.startswith("\n") else f"\n     fix: {fix}"
        return text
