"""Which attribute a module was called through, read from the caller's bytecode positions.

A module registered under two names (`self.b = self.a`) has two paths; when the forward
code calls `self.b(x)`, the call should be listed as `b`. The calling frame's current
CALL instruction starts where its callee expression starts, and the callee `self.b` is
an attribute load with the same start: its name is the attribute (Python 3.11+,
`co_positions`). Anything else (a loop variable, `getattr`) gives None.
"""

from __future__ import annotations

import dis
import sys
from functools import lru_cache
from types import CodeType, FrameType

_LOADS = {"LOAD_ATTR", "LOAD_METHOD"}


@lru_cache(maxsize=256)
def _instructions(code: CodeType) -> dict[int, tuple[str, object, tuple]]:
    """offset → (opname, argval, (line, col)) of each instruction of `code`."""
    out = {}
    for ins in dis.get_instructions(code):
        pos = ins.positions
        out[ins.offset] = (ins.opname, ins.argval, (pos.lineno, pos.col_offset, pos.end_col_offset))
    return out


def called_attribute(frame: FrameType, names: set[str]) -> str | None:
    """The attribute of `names` that `frame`'s current call was made through, or None."""
    code = frame.f_code
    if sys.version_info < (3, 11):  # no instruction positions
        return None
    table = _instructions(code)
    current = table.get(frame.f_lasti)
    if current is None or current[2][0] is None:
        return None
    start = current[2][:2]
    best: tuple[int, str] | None = None
    for offset, (opname, argval, pos) in table.items():
        if offset >= frame.f_lasti:
            break
        if opname in _LOADS and argval in names and pos[:2] == start:
            end = pos[2] or 0
            if best is None or end > best[0]:  # `self.x.b`: the outermost load is the callee
                best = (end, str(argval))
    return best[1] if best else None


def user_frame(skip_file: str) -> FrameType | None:
    """The innermost frame whose code is not in `skip_file` (the tracer's own frames)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == skip_file:
        frame = frame.f_back
    return frame
