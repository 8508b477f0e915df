"""Tracing: one lazy forward pass of an `nn.Module` into a ModelGraph."""

from __future__ import annotations

import sys
from typing import Any

import mlx.nn as nn

from ..errors import TraceError
from ..graph import ModelGraph, Totals
from .call_costs import count_calls
from .memory import forward_peak_bytes
from .params import collect_tensors, counted_own_params, module_param_figures, not_called, own_params
from .tree import check_tree, completed_modules
from .tracer import TRACE_LOCK, DataDependentError, ForwardError, NestedTraceError, Tracer, run_trace

__all__ = ["trace", "TraceFailed"]


class TraceFailed(TraceError):
    """The forward pass raised; `graph` holds the calls recorded up to the failure."""

    def __init__(self, message: str, graph: ModelGraph, node_id: str | None, original: BaseException):
        super().__init__(message)
        self.graph = graph
        self.node_id = node_id
        self.original = original


def trace(model: nn.Module, *inputs: Any, name: str | None = None, **kw_inputs: Any) -> ModelGraph:
    """Trace one lazy forward pass of `model` on example inputs; evaluate nothing."""
    with TRACE_LOCK:  # one trace at a time: it patches process-wide state (tracer.py)
        return _locked_trace(model, inputs, name, kw_inputs)


def _locked_trace(model: nn.Module, inputs: tuple, name: str | None, kw_inputs: dict) -> ModelGraph:
    check_tree(model)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 3 * limit))  # each traced call adds frames of ours
    try:
        with completed_modules(model) as bare:
            graph = _trace(model, inputs, kw_inputs, name)
        if bare:
            graph.meta.setdefault("warnings", []).append(
                f"{', '.join(bare)} {'skips' if len(bare) == 1 else 'skip'} nn.Module.__init__(): "
                "traced with its defaults "
                "(training mode, nothing frozen), as MLX would have set them")
        return graph
    except RecursionError as e:
        raise TraceError(f"the model is nested too deeply to trace ({e}); mlx-report "
                         f"allows {3 * limit} frames") from None
    finally:
        sys.setrecursionlimit(limit)


def _trace(model: nn.Module, inputs: tuple, kw_inputs: dict, name: str | None) -> ModelGraph:
    try:
        tracer, _ = run_trace(model, inputs, kw_inputs)
    except NestedTraceError as e:
        raise TraceError(str(e)) from None
    except ForwardError as e:
        if isinstance(e.original, NestedTraceError):
            raise TraceError(str(e.original)) from None
        if isinstance(e.original, DataDependentError):
            raise TraceError(str(e.original)) from None
        if isinstance(e.original, RecursionError):
            raise TraceError(f"the forward pass recursed too deeply ({e.original}); mlx-report "
                             f"allows {sys.getrecursionlimit()} frames") from None
        tracer = e.tracer
        graph = _build_graph(tracer, model, name)
        message = _failure_message(graph, e.node_id, e.original) + _layout_hint(tracer, e.node_id, inputs)
        graph.meta["failed"] = {"node": e.node_id, "error": f"{type(e.original).__name__}: {e.original}",
                                "message": message}
        raise TraceFailed(message, graph, e.node_id, e.original) from e.original
    return _build_graph(tracer, model, name)


def _failure_message(graph: ModelGraph, node_id: str | None, error: BaseException) -> str:
    """One short paragraph: where it failed, with which shapes, and the original error."""
    text = f"{type(error).__name__}: {error}".strip().replace("\n", " ")
    if isinstance(error, SystemExit):
        text = f"SystemExit: the model called sys.exit({'' if error.code is None else repr(error.code)})"
    if node_id is None:
        return f"the forward pass raised outside any module call: {text}"
    node = graph.node(node_id)
    shapes = ", ".join(_fmt_shape(s, d) for s, d in zip(node["input_shapes"], node["input_dtypes"]))
    path = node["path"] or "(model)"
    return (f"forward pass failed in {path} ({node['type']}) with input shapes "
            f"[{shapes}]: {text}")


def _layout_hint(tracer: Tracer, node_id: str | None, inputs: tuple) -> str:
    """Suggest channels-last input when a convolution got channels-first data."""
    if node_id is None:
        return ""
    module, _, _ = tracer.call_sites[node_id]
    weight = module.get("weight") if isinstance(module, nn.Module) else None
    shapes = tracer.graph.nodes[node_id]["input_shapes"]
    if not type(module).__name__.startswith("Conv") or weight is None or not shapes:
        return ""
    shape, channels = shapes[0], weight.shape[-1] * getattr(module, "groups", 1)
    if len(shape) < 3 or shape[-1] == channels or shape[1] != channels:
        return ""
    nhwc = (shape[0], *shape[2:], shape[1])
    fix = ",".join(map(str, nhwc))
    at_stem = any(getattr(x, "shape", None) == tuple(shape) for x in inputs)
    where = f"pass --input {fix}" if at_stem else "transpose to channels-last before this layer"
    return (f" (MLX convolutions are channels-last (N, H, W, C): this input looks channels-first; "
            f"{where})")


def _fmt_shape(shape: tuple[int, ...], dtype: str) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")" + ("" if dtype == "float32" else f":{dtype}")


def _peak_activation_bytes(tracer: Tracer, model: nn.Module, input_bytes: int) -> int:
    """Inputs + the replayed peak of MLX's evaluation (memory.py); liveness of the traced
    arrays when the pass cannot be exported (data-dependent code) or did not complete."""
    root = tracer.call_sites.get("c0")
    if root is not None and tracer.graph.nodes["c0"]["complete"]:
        peak = forward_peak_bytes(model, root[1], root[2], tracer.prov)
        if peak is not None:
            return input_bytes + peak
    return tracer.prov.peak_bytes()


def _build_graph(tracer: Tracer, model: nn.Module, name: str | None) -> ModelGraph:
    g = tracer.graph
    tensors, by_id = collect_tensors(model)
    counted: set[int] = set()
    for node_id, (module, _, _) in tracer.call_sites.items():
        node = g.nodes[node_id]
        node.update(module_param_figures(module, by_id))
        node["params_own"] = own_params(module, by_id)
        node["params_own_counted"] = counted_own_params(module, by_id, counted)
    first_calls: dict[int, str] = {}
    for node_id, (module, _, _) in tracer.call_sites.items():
        first_calls.setdefault(id(module), node_id)
    # A failed pass never reached its later modules: "not called" only describes a full pass.
    finished = "c0" in g and g.nodes["c0"]["complete"]
    uncalled = not_called(model, first_calls, by_id, counted) if finished else []
    for entry in uncalled:  # their params are the nearest called ancestor's (row totals add up)
        g.nodes[entry["parent"]]["params_not_called"] = (
            g.nodes[entry["parent"]].get("params_not_called", 0) + entry["params"])
    for node_id in reversed(list(tracer.call_sites)):  # children before parents
        node = g.nodes[node_id]
        node["params_counted"] = node["params_own_counted"] + node.get("params_not_called", 0) + sum(
            g.nodes[c]["params_counted"] for c in node["children"])
    children = {n: g.nodes[n]["children"] for n in tracer.call_sites}
    uncounted: dict[str, int] = {}
    # Calls that never returned (a failed forward pass) have no cost to count.
    complete = {n: site for n, site in tracer.call_sites.items() if g.nodes[n]["complete"]}
    delegates = {n for n in complete if g.nodes[n].get("delegates")}
    totals, selfs, _ = count_calls(model, complete, children, tracer.prov, tracer.signatures, delegates,
                                   tracer.methods)
    for node_id in tracer.call_sites:
        node = g.nodes[node_id]
        total, own = totals.get(node_id), selfs.get(node_id)
        node["macs_total"] = total.macs if total else 0
        node["macs_self"] = own.macs if own else 0
        node["elementwise_flops_total"] = total.elementwise_flops if total else 0
        node["elementwise_flops_self"] = own.elementwise_flops if own else 0
        node["uncounted"] = dict(sorted(own.uncounted.items())) if own else {}
        for op, n in node["uncounted"].items():
            uncounted[op] = uncounted.get(op, 0) + n

    calls = list(tracer.call_sites)
    leaves = [n for n in calls if not g.nodes[n]["children"]]
    t = Totals()
    t.params = sum(x.params for x in tensors)
    t.trainable_params = sum(x.params for x in tensors if x.trainable)
    t.non_trainable_params = t.params - t.trainable_params
    t.running_stat_params = sum(x.params for x in tensors if x.kind == "running_stat")
    t.param_bytes = sum(x.nbytes for x in tensors)
    # A failed pass has no complete root: add up the outermost calls that returned.
    tops = [n for n in calls if g.nodes[n]["complete"]
            and (g.nodes[n]["parent"] is None or not g.nodes[g.nodes[n]["parent"]]["complete"])]
    t.macs = sum(g.nodes[n]["macs_total"] for n in tops)
    t.flops = 2 * t.macs
    t.elementwise_flops = sum(g.nodes[n]["elementwise_flops_total"] for n in tops)
    t.input_bytes = sum(d["nbytes"] for _, d in g.nodes(data=True) if d["kind"] == "input")
    t.activation_bytes = sum(g.nodes[n]["output_bytes"] for n in leaves)
    t.peak_activation_bytes = _peak_activation_bytes(tracer, model, t.input_bytes)
    t.calls = len(calls)
    t.max_depth = max((g.nodes[n]["depth"] for n in calls), default=0)
    meta: dict[str, Any] = {}
    if uncalled:
        meta["not_called"] = uncalled
    if uncounted:  # loud: a number with work left out must never look complete
        ops = ", ".join(f"{k} ×{v}" for k, v in sorted(uncounted.items()))
        meta["warnings"] = [f"uncounted work: {ops} (no cost rule, or the call could not be "
                            "exported): total MACs and FLOPs leave it out"]
    if tracer.value_reads:
        meta["value_reads"] = [f"{p or '(model)'}: {op}" for p, op in tracer.value_reads]
    return ModelGraph(
        graph=g,
        model_name=name or type(model).__name__,
        model_type=type(model).__name__,
        tensors=tensors,
        totals=t,
        uncounted_ops=dict(sorted(uncounted.items())),
        meta=meta,
    )
