"""The tracer: one lazy forward pass, every module call recorded into a ModelGraph.

`nn.Module` has no forward hooks, so for the duration of the trace the tracer
patches `__call__` on every class (in the MRO) that defines it, and restores the
classes, the compile state, the parameters and the train/eval mode afterwards,
even when the forward pass raises. Nothing is evaluated.
"""

from __future__ import annotations

import functools
import gc
import inspect
import sys
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import mlx.core as mx
import mlx.nn as nn
import networkx as nx
from mlx.utils import tree_flatten, tree_unflatten

from ..graph import path_sort_key
from .call_site import called_attribute, user_frame
from .eval_bound import eval_peak_bytes
from .provenance import Provenance, _wrap, iter_arrays, named_arrays, tracking
from .signature import Signatures


MAX_EVAL_BYTES = 1_000_000_000   # data-dependent models above this are refused, not evaluated
# Methods besides __call__ recorded as calls: `Embedding.as_linear` is the tied output head
# of most language models (GPT-2, Llama 3.2, Gemma); untraced, its matmul would be
# unattributed work of the caller.
TRACED_METHODS = ("as_linear",)


class DataDependentError(Exception):
    """The model reads array values during its forward pass and is too big to evaluate."""

    def __init__(self, where: str, op: str, param_bytes: int, activation_bytes: int | None = None,
                 limit: int = MAX_EVAL_BYTES):
        what = (f"{param_bytes / 1e9:.1f} GB of weights" if activation_bytes is None else
                f"about {activation_bytes / 1e9:.1f} GB of arrays at once; mlx-report "
                f"evaluates at most {limit / 1e9:.1f} GB")
        advice = "configuration" if activation_bytes is None else "input or configuration"
        super().__init__(
            f"the model reads array values during its forward pass ({op}() in {where or 'the model'}), "
            f"which would evaluate it: {what}. Trace a smaller {advice}, "
            "or move value-dependent code out of __call__")
        self.where, self.op = where, op


class ForwardError(Exception):
    """The model's forward pass raised; `node_id` names the innermost failing call."""

    def __init__(self, original: BaseException, tracer: "Tracer", node_id: str | None):
        super().__init__(str(original))
        self.original = original
        self.tracer = tracer
        self.node_id = node_id


def _shape(a: mx.array) -> tuple[int, ...]:
    return tuple(int(d) for d in a.shape)


def _dtype(a: mx.array) -> str:
    return str(a.dtype).removeprefix("mlx.core.")


def _config(module: nn.Module) -> str:
    try:
        return module._extra_repr()
    except Exception:  # a user's _extra_repr may assume state we don't have
        return ""


_COMPILED_TYPE = type(nn.gelu)  # what mx.compile returns (mlx.core._gc_func)


def _has_int(tree: Any) -> bool:
    if isinstance(tree, int):
        return True
    if isinstance(tree, (list, tuple)):
        return any(_has_int(t) for t in tree)
    if isinstance(tree, dict):
        return any(_has_int(t) for t in tree.values())
    return False


def _python_function(wrapper: Any) -> Callable | None:
    """The Python function an `mx.compile` wrapper holds; None for any other wrapper.

    `mx.compile`, `grad`, `value_and_grad`, `vmap` and `checkpoint` all return the same
    type, told apart only by what they hold (gc referents, measured on mlx 0.32): a
    compiled function holds (inputs, outputs, fun), a vmapped one (in_axes, out_axes,
    fun) with at least one integer axis, the gradient transforms (fun) alone. Only
    compile is bypassed: the transforms change what is computed and must run.
    """
    held = [r for r in gc.get_referents(wrapper) if not isinstance(r, type)]
    if len(held) != 3 or _has_int(held[0]) or _has_int(held[1]):
        return None
    fn = held[2]
    return fn if inspect.isfunction(fn) or inspect.ismethod(fn) else None


_IN_TRANSFORM = [0]   # depth of mx.grad/vmap/value_and_grad/checkpoint calls running


@contextmanager
def uncompiled(call: Callable | None = None) -> Iterator[None]:
    """Make every `mx.compile`d function call its Python function directly (only those).

    They compute the same thing, but a compiled wrapper traces once and returns new
    array objects, which would hide module calls and cut provenance (dataflow edges,
    liveness). Bypassing the wrapper, rather than `mx.disable_compile()`, leaves the
    user's compile state untouched (MLX has no getter for it).
    Patching the wrapper type reaches functions held anywhere: module globals,
    dicts, closures (nn.ReLU's lambda), partials. Restored afterwards.

    Transforms (grad, value_and_grad, vmap, checkpoint) run for real: their results are
    activations of the calling module, and module calls inside them are not recorded
    (they see MLX's tracer arrays, vmapped shapes): their forward and backward work is
    the calling module's own, counted when its call is exported.
    `call(fn, args, kwargs)`, when given, runs each bypassed function (memory.py marks
    the work MLX would fuse).
    """
    original = _COMPILED_TYPE.__call__
    functions: dict[int, Callable | None] = {}

    def __call__(compiled, *args, **kwargs):
        key = id(compiled)
        if key not in functions:
            functions[key] = _python_function(compiled)
        fn = functions[key]
        if fn is not None:
            return fn(*args, **kwargs) if call is None else call(fn, args, kwargs)
        _IN_TRANSFORM[0] += 1
        try:
            return _wrap(functools.partial(original, compiled), "transform", always=True)(*args, **kwargs)
        finally:
            _IN_TRANSFORM[0] -= 1

    _COMPILED_TYPE.__call__ = __call__
    try:
        yield
    finally:
        _COMPILED_TYPE.__call__ = original


class Tracer:
    """Records module calls of one forward pass of `model`."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.paths: dict[int, list[str]] = {}
        self.module_index: dict[int, int] = {}
        for path, module in model.named_modules():
            self.paths.setdefault(id(module), []).append(path)
            self.module_index.setdefault(id(module), len(self.module_index))
        for paths in self.paths.values():
            paths.sort(key=path_sort_key)
        self.graph = nx.DiGraph()
        self.prov = Provenance()
        self.signatures = Signatures()
        self.stack: list[tuple[str, nn.Module]] = []
        self.call_counts: dict[int, int] = {}
        self.call_sites: dict[str, tuple[nn.Module, tuple, dict]] = {}
        self.methods: dict[str, str] = {}   # node id -> method, for calls not through __call__
        self.failed_node: str | None = None
        self.value_reads: list[tuple[str, str]] = []
        self.max_eval_bytes = MAX_EVAL_BYTES
        self.param_bytes = sum(a.nbytes for _, a in tree_flatten(model.parameters())
                               if isinstance(a, mx.array))
        self.prov.on_value_read = self._on_value_read

    def _on_value_read(self, op: str, arrays: list[mx.array]) -> None:
        """The model reads values (data-dependent code): allowed while evaluating is small.

        Refused when the weights, or the activations MLX would compute at once to get the
        values (a liveness sweep over their lazy graph), exceed `max_eval_bytes`.
        """
        where = self.graph.nodes[self.stack[-1][0]]["path"] if self.stack else ""
        self.value_reads.append((where, op))
        if self.param_bytes > self.max_eval_bytes:
            raise DataDependentError(where, op, self.param_bytes)
        needed = eval_peak_bytes(arrays)
        if needed is None:  # not exportable: bound by every activation recorded so far
            needed = sum(r.nbytes for r in self.prov.records.values())
        if needed > self.max_eval_bytes:
            raise DataDependentError(where, op, self.param_bytes, needed, self.max_eval_bytes)

    # -- patching -----------------------------------------------------------------

    def module_classes(self) -> list[tuple[type, str]]:
        """(class, method) for every class in the MROs of the model's modules that defines
        `__call__` or a traced method (`as_linear`: a tied output head)."""
        seen: dict[tuple[type, str], None] = {}
        for _, module in self.model.named_modules():
            for cls in type(module).__mro__:
                if issubclass(cls, nn.Module):
                    for method in ("__call__", *TRACED_METHODS):
                        if method in vars(cls):
                            seen.setdefault((cls, method))
        return list(seen)

    @contextmanager
    def patched(self) -> Iterator[None]:
        """Patch `__call__` (and traced methods) of the model's classes; always restore them."""
        saved = []
        try:
            for cls, method in self.module_classes():
                original = vars(cls)[method]
                saved.append((cls, method, original))
                setattr(cls, method, self._make_wrapper(original, method))
            yield
        finally:
            for cls, method, original in reversed(saved):
                setattr(cls, method, original)

    def _make_wrapper(self, original: Callable, method: str = "__call__") -> Callable:
        tracer = self

        def __call__(module, *args, **kwargs):
            if tracer.stack and tracer.stack[-1][1] is module:  # super().__call__ re-entry
                return original(module, *args, **kwargs)
            if _IN_TRANSFORM[0]:  # inside mx.grad/vmap: the caller's own work (see uncompiled)
                return original(module, *args, **kwargs)
            return tracer.record_call(module, original, args, kwargs, method)

        __call__.__wrapped__ = original
        return __call__

    # -- recording -----------------------------------------------------------------

    def _path_for(self, module: nn.Module, parent: str | None) -> tuple[str, list[str]]:
        paths = self.paths.get(id(module))
        parent_path = self.graph.nodes[parent]["path"] if parent else None
        if paths is None:  # a module created on the fly, not in the tree
            name = f"<{type(module).__name__}>"
            return (f"{parent_path}.{name}" if parent_path else name), []
        if parent_path is not None:
            prefix = parent_path + "." if parent_path else ""
            under = [p for p in paths if p.startswith(prefix) and p != parent_path]
            if len(under) > 1:  # registered twice under this parent: which name was called?
                by_name: dict[str, str | None] = {}  # last attribute → path (None: ambiguous)
                for p in under:
                    last = p.rsplit(".", 1)[-1]
                    by_name[last] = None if last in by_name else p
                frame = user_frame(__file__)
                names = {k for k, v in by_name.items() if v is not None}
                name = called_attribute(frame, names) if frame is not None else None
                if name is not None:
                    return by_name[name], paths
            if under:
                return under[0], paths
        return paths[0], paths

    def add_inputs(self, args: tuple, kwargs: dict) -> None:
        """Create input nodes and tag the example inputs with them."""
        named = [(str(i), a) for i, a in enumerate(args)] + list(kwargs.items())
        for name, value in named:
            arrays = list(iter_arrays(value))
            node_id = f"in:{name}"
            self.graph.add_node(
                node_id, kind="input", name=name,
                shapes=[_shape(a) for a in arrays], dtypes=[_dtype(a) for a in arrays],
                nbytes=sum(a.nbytes for a in arrays),
            )
            for a in arrays:
                self.prov.tag(a, frozenset([node_id]))

    def record_call(self, module: nn.Module, original: Callable, args: tuple, kwargs: dict,
                    method: str = "__call__") -> Any:
        parent = self.stack[-1][0] if self.stack else None
        node_id = f"c{len(self.call_sites)}"
        path, paths = self._path_for(module, parent)
        if method != "__call__":  # wte.as_linear: a call of the module through that method
            path = f"{path}.{method}" if path else method
            self.methods[node_id] = method
        call_index = self.call_counts.get(id(module), 0)
        self.call_counts[id(module)] = call_index + 1
        inputs = list(iter_arrays((args, kwargs)))

        clock = self.prov.tick()
        self.graph.add_node(
            node_id,
            kind="call",
            path=path,
            paths=paths,
            type=type(module).__name__,
            module_index=self.module_index.get(id(module), -1),
            call_index=call_index,
            depth=len(self.stack),
            parent=parent,
            children=[],
            config=_config(module),
            signature=self.signatures.digest(module),
            input_shapes=[_shape(a) for a in inputs],
            input_dtypes=[_dtype(a) for a in inputs],
            output_shapes=[],
            output_dtypes=[],
            output_bytes=0,
            returns_from=[],
            start=clock,
            end=clock,
            error=None,
            complete=False,
        )
        if parent is not None:
            self.graph.nodes[parent]["children"].append(node_id)
        self.call_sites[node_id] = (module, args, kwargs)
        for a in inputs:
            rec = self.prov.get(a)
            if rec is None:
                continue
            self.prov.use(rec)
            for tag in sorted(rec.tags):
                self._add_edge(tag, node_id, a)

        self.stack.append((node_id, module))
        self.prov.current = node_id
        try:
            out = original(module, *args, **kwargs)
        except BaseException as e:
            if self.failed_node is None:
                self.failed_node = node_id
                self.graph.nodes[node_id]["error"] = f"{type(e).__name__}: {e}"
            raise
        finally:
            self.stack.pop()
            self.prov.current = parent

        node = self.graph.nodes[node_id]
        node["end"] = self.prov.tick()
        node["complete"] = True
        returns_from: set[str] = set()
        seen: set[int] = set()
        # Whether every returned array came from tracked ops or calls: with no op of its
        # own besides, the call's cost is exactly its children's (no export needed).
        node["delegates"] = self.prov.own_ops.get(node_id, 0) == 0
        for a in iter_arrays(out):
            node["output_shapes"].append(_shape(a))
            node["output_dtypes"].append(_dtype(a))
            if id(a) not in seen:
                seen.add(id(a))
                node["output_bytes"] += a.nbytes
            rec = self.prov.get(a)
            if rec is None:
                node["delegates"] = False
            if rec is not None:
                if rec.born < node["start"]:  # passed through unchanged: keep its producer
                    returns_from |= rec.tags
                else:  # made inside: credit the inner calls that produced it
                    returns_from |= {t for t in rec.tags if self._is_inside(t, node_id)}
                self.prov.use(rec)
            self.prov.tag(a, frozenset([node_id]))
        node["returns_from"] = sorted(returns_from - {node_id}, key=_node_sort_key)
        return out

    def _is_inside(self, node: str, ancestor: str) -> bool:
        """Whether call `node` ran inside call `ancestor`."""
        parent = self.graph.nodes[node].get("parent") if node in self.graph else None
        while parent is not None:
            if parent == ancestor:
                return True
            parent = self.graph.nodes[parent]["parent"]
        return False

    def _add_edge(self, src: str, dst: str, a: mx.array) -> None:
        if src == dst:
            return
        if self.graph.has_edge(src, dst):
            data = self.graph.edges[src, dst]
        else:
            self.graph.add_edge(src, dst, shapes=[], dtypes=[])
            data = self.graph.edges[src, dst]
        data["shapes"].append(_shape(a))
        data["dtypes"].append(_dtype(a))

    def add_outputs(self, out: Any) -> None:
        """Create output nodes fed by whatever produced each returned array."""
        for i, (name, a) in enumerate(named_arrays(out)):
            node_id = f"out:{i}"
            self.graph.add_node(node_id, kind="output", name=name or str(i), shapes=[_shape(a)],
                                dtypes=[_dtype(a)], nbytes=a.nbytes)
            rec = self.prov.get(a)
            if rec is not None:
                rec.last_use = self.prov.clock + 1
                for tag in sorted(rec.tags):
                    self._add_edge(tag, node_id, a)


def _node_sort_key(node_id: str) -> tuple:
    return (0, int(node_id[1:])) if node_id.startswith("c") and node_id[1:].isdigit() else (1, node_id)


def _training_modes(model: nn.Module) -> list[tuple[nn.Module, bool]]:
    return [(m, m.training) for _, m in model.named_modules()]


# Tracing patches process-wide state (module classes, MLX's functions, the active
# provenance): one trace at a time. A second thread waits for the first to finish.
TRACE_LOCK = threading.RLock()


class NestedTraceError(Exception):
    """A trace was started from inside a forward pass being traced (same thread)."""


def run_trace(model: nn.Module, args: tuple, kwargs: dict) -> tuple[Tracer, Any]:
    """Run one lazy forward pass under the tracer, restoring the model afterwards.

    Raises ForwardError (holding the partial graph) when the forward pass raises.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an mlx.nn.Module, got {type(model).__name__}")
    with TRACE_LOCK:
        if _TRACING[0]:
            raise NestedTraceError("a trace was started inside a forward pass being traced; "
                                   "trace the inner model separately")
        _TRACING[0] = True
        try:
            return _run_trace(model, args, kwargs)
        finally:
            _TRACING[0] = False


_TRACING = [False]


def _run_trace(model: nn.Module, args: tuple, kwargs: dict) -> tuple[Tracer, Any]:
    tracer = Tracer(model)
    params_before = tree_flatten(model.parameters())
    modes = _training_modes(model)
    out = None
    try:
        with tracing_state(tracer):
            tracer.add_inputs(args, kwargs)
            try:
                out = model(*args, **kwargs)
            except KeyboardInterrupt:  # Ctrl-C keeps its own exit path; state is restored below
                raise
            except BaseException as e:  # also SystemExit (sys.exit() in a forward) and the like
                raise ForwardError(e, tracer, tracer.failed_node) from e
            tracer.add_outputs(out)
    finally:
        _restore(model, params_before, modes)
    return tracer, out


@contextmanager
def tracing_state(tracer: Tracer) -> Iterator[None]:
    with uncompiled(), tracer.patched(), tracking(tracer.prov):
        yield


def _restore(model: nn.Module, params_before: list[tuple[str, mx.array]], modes) -> None:
    """Put back parameters the forward pass replaced (BatchNorm stats) and modes."""
    after = dict(tree_flatten(model.parameters()))
    if any(after.get(k) is not v for k, v in params_before) or len(after) != len(params_before):
        model.update(tree_unflatten(params_before))
    for module, training in modes:
        if module.training != training:
            object.__setattr__(module, "_training", training)  # train() would recurse
