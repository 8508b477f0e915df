"""Number, size and shape formatting shared by every renderer (SI units, stated)."""

from __future__ import annotations

from typing import Sequence

_SI = ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K"))
_BYTES = ((10**12, "TB"), (10**9, "GB"), (10**6, "MB"), (10**3, "KB"))


def fmt_int(n: int | None) -> str:
    """12,345,678 or "--"."""
    return "--" if n is None else f"{n:,}"


def fmt_si(n: int | float | None, digits: int = 2) -> str:
    """4.09 G; values under 1,000 are printed as integers."""
    if n is None:
        return "--"
    for scale, unit in _SI:
        if abs(n) >= scale:
            return f"{n / scale:.{digits}f} {unit}"
    return f"{n:,.0f}" if isinstance(n, float) else f"{n:,}"


def fmt_bytes(n: int | None, digits: int = 2) -> str:
    """97.73 MB (1 MB = 10^6 bytes)."""
    if n is None:
        return "--"
    for scale, unit in _BYTES:
        if abs(n) >= scale:
            return f"{n / scale:.{digits}f} {unit}"
    return f"{n} B"


def fmt_shape(shape: Sequence[int]) -> str:
    """[1, 3, 224, 224]"""
    return "[" + ", ".join(str(d) for d in shape) + "]"


def fmt_shapes(shapes: Sequence[Sequence[int]], limit: int = 3) -> str:
    """One shape, or several separated by spaces; at most `limit`, then '…'."""
    if not shapes:
        return "--"
    text = " ".join(fmt_shape(s) for s in shapes[:limit])
    return text + (f" …+{len(shapes) - limit}" if len(shapes) > limit else "")


def fmt_percent(p: float | None) -> str:
    if p is None:
        return "--"
    return f"{p:.2f}%" if p >= 0.01 else "<0.01%"
