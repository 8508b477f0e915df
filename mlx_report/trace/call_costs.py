"""MACs and FLOPs of every module call: total by export, self by subtraction.

Each distinct call signature (module structure + argument shapes) is exported once
with `mx.export_function`; identical calls (32 transformer blocks) reuse the count.
Arrays that do not depend on the model inputs are closed over as constants, so every
export counts exactly the work that depends on the inputs.
"""

from __future__ import annotations

from typing import Any, Callable

import mlx.core as mx
import mlx.nn as nn

from .costs import Cost, count_function
from .provenance import Provenance
from .signature import Signatures
from .tracer import compile_disabled


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
    if isinstance(tree, dict) and type(tree) is dict:
        parts_d = {k: _split_activations(v, prov, found) for k, v in tree.items()}
        return lambda values: {k: p(values) for k, p in parts_d.items()}
    return lambda values: tree


def _call_total(module: nn.Module, args: tuple, kwargs: dict, prov: Provenance) -> Cost:
    """Export `module(*args, **kwargs)` with activations as inputs and count it."""
    found: list[mx.array] = []
    rebuild = _split_activations((args, kwargs), prov, found)

    def fn(*values):
        a, k = rebuild(list(values))
        out = module(*a, **k)
        from .provenance import iter_arrays
        return list(iter_arrays(out))

    return count_function(fn, *found)


def count_calls(call_sites: dict[str, tuple[nn.Module, tuple, dict]],
                children: dict[str, list[str]],
                prov: Provenance,
                signatures: Signatures) -> tuple[dict[str, Cost], dict[str, Cost], list[str]]:
    """Total and self cost of every call; also the calls whose export failed."""
    totals: dict[str, Cost] = {}
    cache: dict[Any, Cost | None] = {}
    failed: list[str] = []
    with compile_disabled():
        # Children before parents, so a call that cannot be exported can fall back
        # to the sum of its children.
        for node_id in reversed(list(call_sites)):
            module, args, kwargs = call_sites[node_id]
            key = (signatures.digest(module), _describe_args((args, kwargs), prov))
            if key not in cache:
                try:
                    cache[key] = _call_total(module, args, kwargs, prov)
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
    totals = {n: totals[n] for n in call_sites}
    selfs = {}
    for node_id, total in totals.items():
        inner = Cost()
        for child in children[node_id]:
            inner = inner + totals.get(child, Cost())
        selfs[node_id] = total - inner
        if node_id in failed:
            selfs[node_id].uncounted = {f"<not exportable: {type(call_sites[node_id][0]).__name__}>": 1}
    return totals, selfs, failed
