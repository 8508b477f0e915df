"""What evaluating a lazy array would allocate, read from its graph without evaluating it.

A data-dependent model (`.item()`, `if x.sum() > 0`, `mx.eval`) forces MLX to evaluate
part of its graph mid-trace. Before letting it, the tracer bounds the memory that takes:
`mx.export_function` lists every primitive between the array and what is already
materialised, in topological order, with output shapes; a liveness sweep over that order
(each array freed after its last consumer, views free) gives the peak MLX would need.
"""

from __future__ import annotations

from math import prod
from typing import Any

import mlx.core as mx

# Primitives whose output aliases an input's buffer (no allocation of their own).
_VIEWS = {"Broadcast", "BroadcastAxes", "Reshape", "Transpose", "Squeeze", "ExpandDims",
          "Slice", "AsStrided", "StopGradient", "Flatten", "Unflatten", "View", "Depends",
          "Split"}


def _nbytes(shape: Any, dtype: Any) -> int:
    return prod(int(d) for d in shape) * getattr(dtype, "size", 4)


def eval_peak_bytes(arrays: list[mx.array]) -> int | None:
    """Peak bytes of newly allocated arrays while evaluating `arrays`; None if not exportable.

    Arrays already evaluated appear as constants and allocate nothing new.
    """
    events: list[dict] = []
    try:
        mx.export_function(events.append, lambda: list(arrays))
    except Exception:  # e.g. arrays backed by a lazy file read cannot be exported
        return None
    prims = [e for e in events if e["type"] == "primitive"]
    outputs = {o[0] for e in events if e["type"] == "outputs" for o in e["outputs"]}
    base: dict[str, str] = {}        # view output -> the array holding its buffer
    size: dict[str, int] = {}
    last: dict[str, int] = {}
    for i, e in enumerate(prims):
        for name, *_ in e["inputs"]:
            last[base.get(name, name)] = i
        view = e["name"] in _VIEWS and e["inputs"]
        for name, shape, dtype in e["outputs"]:
            if view:
                base[name] = base.get(e["inputs"][0][0], e["inputs"][0][0])
            else:
                size[name] = _nbytes(shape, dtype)
                last.setdefault(name, i)
    end = len(prims)
    for name in outputs:
        last[base.get(name, name)] = end
    live = peak = 0
    frees: dict[int, int] = {}
    for i, e in enumerate(prims):
        for name, *_ in e["outputs"]:
            if name in size:
                live += size[name]
                frees[last[name]] = frees.get(last[name], 0) + size[name]
        peak = max(peak, live)
        live -= frees.pop(i, 0)
    return peak
