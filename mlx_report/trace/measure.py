"""Measure what MLX really allocates for one forward pass (`--measure`).

"Measured peak" is defined as: parameters and inputs evaluated first (resident,
not counted), the buffer cache cleared, `mx.reset_peak_memory()`, one forward
pass evaluated with `mx.eval`, then `mx.get_peak_memory()` minus the bytes that
were active before the pass. It counts every buffer MLX allocates while the pass
runs (intermediates, temporaries such as conv unfold buffers, and the outputs),
which is what the estimate (trace/memory.py) predicts.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from typing import Any

import mlx.core as mx
import mlx.nn as nn

from mlx.utils import tree_flatten, tree_unflatten

from ..errors import InputSpecError, TraceError
from .provenance import iter_arrays

# Evaluating costs real compute (~2 GMAC/s with MLX on a laptop-class CPU): 20 GMAC is
# ~10 s here. Above this, --measure refuses rather than running for minutes.
MAX_MEASURE_MACS = 20_000_000_000
# Weights + activations must fit comfortably in memory: a quarter of MLX's memory limit
# (0.8 x RAM by default), so measuring never pushes the machine into swap.
MEMORY_FRACTION = 0.25


class MeasureRefused(InputSpecError):
    """The model is too big to evaluate for --measure (exit 2: ask for a smaller input)."""


@dataclass
class Measured:
    """One real evaluation: peak bytes beyond what was resident, and the baseline."""

    peak_bytes: int        # mx.get_peak_memory() - active bytes before the pass
    resident_bytes: int    # parameters + inputs (+ anything else live) before the pass


def check_measurable(macs: int, param_bytes: int, peak_estimate: int,
                     max_macs: int = MAX_MEASURE_MACS) -> None:
    """Raise MeasureRefused when evaluating the forward would be too slow or too big."""
    if macs > max_macs:
        raise MeasureRefused(
            f"--measure evaluates the forward pass, and this one is {macs / 1e9:.1f} GMAC "
            f"(limit {max_macs / 1e9:.0f} GMAC, ~{max_macs / 2e9:.0f} s on a CPU): measure a "
            "smaller input (batch 1, shorter sequence) or drop --measure")
    budget = int(_memory_size() * MEMORY_FRACTION)
    need = param_bytes + peak_estimate
    if budget and need > budget:
        raise MeasureRefused(
            f"--measure would need ~{need / 1e9:.1f} GB (weights + estimated peak), more than "
            f"{MEMORY_FRACTION:.0%} of this machine's memory ({budget / 1e9:.1f} GB): measure a "
            "smaller configuration or drop --measure")


def _memory_size() -> int:
    """This machine's memory in bytes: MLX's figure (Metal), else the OS's (MLX CPU has none)."""
    try:
        size = int(mx.device_info().get("memory_size", 0))
    except Exception:  # a backend without the query
        size = 0
    if not size:
        try:
            size = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            size = 0
    return size


def measure_forward(model: nn.Module, args: tuple = (), kwargs: dict | None = None) -> Measured:
    """Evaluate `model(*args, **kwargs)` once and return the measured peak (see module doc)."""
    kwargs = kwargs or {}
    before_params = tree_flatten(model.parameters())
    try:
        return _measure(model, args, kwargs)
    finally:  # a forward in training mode may replace BatchNorm statistics: put them back
        after = dict(tree_flatten(model.parameters()))
        if any(after.get(k) is not v for k, v in before_params) or len(after) != len(before_params):
            model.update(tree_unflatten(before_params))


def _measure(model: nn.Module, args: tuple, kwargs: dict) -> Measured:
    mx.eval(model.parameters())
    mx.eval([a for a in iter_arrays((args, kwargs))])
    gc.collect()
    mx.synchronize()
    mx.clear_cache()
    before = mx.get_active_memory()
    mx.reset_peak_memory()
    out = model(*args, **kwargs)
    mx.eval([a for a in iter_arrays(out)])
    peak = max(mx.get_peak_memory() - before, 0)
    del out
    mx.clear_cache()
    return Measured(peak_bytes=peak, resident_bytes=before)


def measure_graph(graph: Any, model: nn.Module, args: tuple = (), kwargs: dict | None = None,
                  max_macs: int = MAX_MEASURE_MACS) -> int:
    """Check the budget, measure one pass and store it in `graph.totals.measured_peak_bytes`.

    The figure counts the inputs, as `peak_activation_bytes` does: measured peak + input bytes.
    """
    t = graph.totals
    check_measurable(t.macs, t.param_bytes, t.peak_activation_bytes, max_macs)
    try:
        measured = measure_forward(model, tuple(args), kwargs)
    except MemoryError:
        raise TraceError("--measure: out of memory while evaluating the forward pass") from None
    except Exception as e:  # the pass traced lazily but failed when evaluated
        raise TraceError(f"--measure: evaluating the forward pass failed: {type(e).__name__}: {e}") from None
    t.measured_peak_bytes = measured.peak_bytes + t.input_bytes
    graph.meta["measured"] = "mx.get_peak_memory() of one evaluated pass, weights and inputs resident first"
    return t.measured_peak_bytes


def measure_traced(traced: Any, input_texts: list[str]) -> int:
    """`--measure` for a traced CLI target: the same zero inputs as the trace, evaluated."""
    from ..inputs import make_inputs, parse_input_specs

    args, kwargs = make_inputs(parse_input_specs(input_texts))
    return measure_graph(traced.graph, traced.loaded.model, tuple(args), kwargs)
