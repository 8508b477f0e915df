"""MACs and FLOPs of every module call: total by export, self by subtraction.

Each distinct call signature (module structure + argument shapes) is exported once
with `mx.export_function`; identical calls (32 transformer blocks) reuse the count.
Stock Linear and Embedding calls are counted from shapes instead (layer_rules.py), and
calls that only delegate to their children are not exported.
Arrays that do not depend on the model inputs are closed over as constants, so every
export counts exactly the work that depends on the inputs.
"""

from __future__ import annotations

import copy
import dataclasses
from contextlib import ExitStack, contextmanager
from typing import Any, Callable, Iterator

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_unflatten

from .costs import Cost, count_function
from .distinct import distinct_ops
from .standins import standins
from .layer_rules import leaf_cost
from .provenance import Provenance
from .signature import Signatures
from .tracer import uncompiled


def _describe_args(tree: Any, prov: Provenance) -> Any:
    """Hashable description of call arguments: shapes for arrays, reprs otherwise."""
    if isinstance(tree, mx.array):
        return ("act" if prov.get(tree) else "const", tuple(tree.shape), str(tree.dtype))
    if isinstance(tree, (list, tuple)):
        return tuple(_describe_args(t, prov) for t in tree)
    if isinstance(tree, dict):
        return tuple(sorted((str(k), _describe_args(v, prov)) for k, v in tree.items()))
    if isinstance(tree, nn.Module):
        return ("module", id(tree))
    if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        return (type(tree).__qualname__,
                tuple((f.name, _describe_args(getattr(tree, f.name, None), prov))
                      for f in dataclasses.fields(tree)))
    if isinstance(tree, (bool, int, float, str, type(None))):
        return tree
    return (type(tree).__name__, id(tree))


def _split_activations(tree: Any, prov: Provenance, found: list[mx.array]) -> Callable[[list], Any]:
    """Collect activation arrays of `tree` into `found`; return a rebuild function."""
    if isinstance(tree, mx.array) and prov.get(tree) is not None:
        index = len(found)
        found.append(tree)
        return lambda values: values[index]
    if isinstance(tree, (list, tuple)):
        parts = [_split_activations(t, prov, found) for t in tree]
        kind = type(tree)
        if kind in (list, tuple):
            return lambda values: kind(p(values) for p in parts)
        return lambda values: kind(*(p(values) for p in parts))  # namedtuple
    if isinstance(tree, dict):
        parts_d = {k: _split_activations(v, prov, found) for k, v in tree.items()}
        if type(tree) is dict:
            return lambda values: {k: p(values) for k, p in parts_d.items()}

        def rebuild_mapping(values):  # OrderedDict, ModelOutput: a copy with new items
            out = copy.copy(tree)
            for k, p in parts_d.items():
                out[k] = p(values)
            return out
        return rebuild_mapping
    if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        parts_f = {f.name: _split_activations(getattr(tree, f.name, None), prov, found)
                   for f in dataclasses.fields(tree) if f.init}
        return lambda values: dataclasses.replace(tree, **{k: p(values) for k, p in parts_f.items()})
    return lambda values: tree


def _call_total(module: nn.Module, args: tuple, kwargs: dict, prov: Provenance,
                method: str = "__call__") -> Cost:
    """Export `module.method(*args, **kwargs)` with activations as inputs and count it."""
    found: list[mx.array] = []
    rebuild = _split_activations((args, kwargs), prov, found)
    call = module if method == "__call__" else getattr(module, method)

    def fn(*values):
        a, k = rebuild(list(values))
        out = call(*a, **k)
        from .provenance import iter_arrays
        return list(iter_arrays(out))

    extra = Cost()                     # analytic costs of ops export cannot serialise
    with standins(extra):
        counted = count_function(fn, *found)
    return counted + extra


def _placeholder(a: mx.array, index: int) -> mx.array:
    """A lazy constant array shaped like `a`, distinct from every other placeholder.

    Export simplifies its graph (common subexpressions merge), so equal placeholders
    (all zeros) would merge two projections of the same shape into one. A float32 fill
    with the placeholder's index (exact up to 2**24) keeps each distinct, in two
    primitives, where random values would add a dozen to every export.
    """
    return mx.full(a.shape, float(index + 1), dtype=mx.float32).astype(a.dtype)


@contextmanager
def placeholder_weights(model: nn.Module) -> Iterator[None]:
    """Swap parameters for lazy zeros of the same shape and dtype while exporting.

    `mx.export_function` cannot export arrays still backed by a lazy file read (a
    checkpoint loaded with `mx.load`), and costs depend on shapes only. Tied arrays
    get one shared placeholder. The originals are always put back.
    """
    original = tree_flatten(model.parameters())
    swapped: dict[int, mx.array] = {}
    for _, a in original:
        if isinstance(a, mx.array) and id(a) not in swapped:
            swapped[id(a)] = _placeholder(a, len(swapped))
    model.update(tree_unflatten([(k, swapped.get(id(a), a)) for k, a in original]))
    try:
        yield
    finally:
        model.update(tree_unflatten(original))


def count_calls(model: nn.Module, call_sites: dict[str, tuple[nn.Module, tuple, dict]],
                children: dict[str, list[str]],
                prov: Provenance,
                signatures: Signatures,
                delegates: set[str] = frozenset(),
                methods: dict[str, str] | None = None,
                ) -> tuple[dict[str, Cost], dict[str, Cost], list[str]]:
    """Total and self cost of every call; also the calls whose export failed.

    A call in `delegates` ran no op on activations in its own code and returned only
    arrays its children made: its total is its children's, without exporting it
    (a model's root call would otherwise export the whole model once more).
    """
    totals: dict[str, Cost] = {}
    cache: dict[Any, Cost | None] = {}
    failed: list[str] = []
    is_activation = lambda a: prov.get(a) is not None  # noqa: E731
    swapped = False
    # Exporting re-runs forward code: BatchNorm in training mode would store traced
    # running statistics. placeholder_weights puts every parameter of the model back.
    # Entered on the first export only: a model of ruled leaves needs neither.
    with ExitStack() as exporting:
        # Children before parents, so a call that cannot be exported can fall back
        # to the sum of its children.
        for node_id in reversed(list(call_sites)):
            module, args, kwargs = call_sites[node_id]
            if node_id in delegates and all(c in totals for c in children[node_id]):
                inner = Cost()
                for child in children[node_id]:
                    inner = inner + totals[child]
                totals[node_id] = inner
                continue
            method = (methods or {}).get(node_id, "__call__")
            ruled = (None if children[node_id] or method != "__call__"
                     else leaf_cost(module, args, kwargs, is_activation))
            if ruled is not None:
                totals[node_id] = ruled
                continue
            key = (signatures.digest(module), method, _describe_args((args, kwargs), prov))
            if key not in cache:
                if not swapped:
                    exporting.enter_context(uncompiled())
                    exporting.enter_context(distinct_ops())   # count each eager call once
                    exporting.enter_context(placeholder_weights(model))
                    swapped = True
                try:
                    cache[key] = _call_total(module, args, kwargs, prov, method)
                except Exception:  # data-dependent code (.item(), mx.eval) cannot be exported
                    cache[key] = None
            if cache[key] is None:
                failed.append(node_id)
                inner = Cost(uncounted={f"<not exportable: {type(module).__name__}>": 1})
                for child in children[node_id]:
                    inner = inner + totals.get(child, Cost())
                totals[node_id] = inner
            else:
                totals[node_id] = cache[key]
    # Self = export total minus the children's totals, never below zero: export merges
    # identical computations (a module called twice on the same array), which eager
    # execution runs twice. Totals are then rebuilt bottom-up as self + children.
    selfs: dict[str, Cost] = {}
    for node_id in reversed(list(call_sites)):
        inner = Cost()
        for child in children[node_id]:
            inner = inner + totals.get(child, Cost())
        own = totals[node_id] - inner
        own.macs = max(own.macs, 0)
        own.elementwise_flops = max(own.elementwise_flops, 0)
        if node_id in failed:
            own.uncounted = {f"<not exportable: {type(call_sites[node_id][0]).__name__}>": 1}
        selfs[node_id] = own
        totals[node_id] = own + inner
    totals = {n: totals[n] for n in call_sites}
    return totals, selfs, failed
