"""Parameter accounting: unique arrays, logical counts, storage bytes, trainability.

Arrays reachable along several paths (tied weights, shared modules) count once.
Quantized weights count as their logical (unpacked) elements; their scales and
biases are storage only. BatchNorm running statistics are non-trainable state.
"""

from __future__ import annotations

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten

from ..graph import TensorInfo, path_sort_key, split_param_key

RUNNING_STATS = ("running_mean", "running_var")


def _is_quantized(module: nn.Module) -> bool:
    return "scales" in module and hasattr(module, "bits")


def collect_tensors(model: nn.Module) -> tuple[list[TensorInfo], dict[int, TensorInfo]]:
    """One TensorInfo per unique array, in path order; also a map id(array) -> info."""
    modules = dict(model.named_modules())
    trainable = {id(a) for _, a in tree_flatten(model.trainable_parameters())}
    flat = sorted(tree_flatten(model.parameters()), key=lambda kv: path_sort_key(kv[0]))
    by_id: dict[int, TensorInfo] = {}
    tensors: list[TensorInfo] = []
    for key, arr in flat:
        if not isinstance(arr, mx.array):
            continue
        if id(arr) in by_id:
            by_id[id(arr)].aliases.append(key)
            continue
        owner_path, local = split_param_key(key, modules)
        owner = modules.get(owner_path, model)
        params, kind = arr.size, "weight"
        if _is_quantized(owner) and local == "weight":
            params = arr.size * 32 // owner.bits
        elif _is_quantized(owner) and local in ("scales", "biases"):
            params, kind = 0, "quant_aux"
        elif isinstance(owner, nn.BatchNorm) and local in RUNNING_STATS:
            kind = "running_stat"
        info = TensorInfo(
            name=key, aliases=[], shape=tuple(int(d) for d in arr.shape),
            dtype=str(arr.dtype).removeprefix("mlx.core."), params=params,
            nbytes=arr.nbytes, trainable=id(arr) in trainable, kind=kind,
        )
        by_id[id(arr)] = info
        tensors.append(info)
    return tensors, by_id


def module_param_figures(module: nn.Module, by_id: dict[int, TensorInfo]) -> dict[str, int]:
    """Params, trainable params, running stats and bytes of a module's subtree."""
    seen: set[int] = set()
    figures = {"params": 0, "trainable_params": 0, "running_stat_params": 0, "param_bytes": 0}
    for _, arr in tree_flatten(module.parameters()):
        if not isinstance(arr, mx.array) or id(arr) in seen or id(arr) not in by_id:
            continue
        seen.add(id(arr))
        info = by_id[id(arr)]
        figures["params"] += info.params
        figures["param_bytes"] += info.nbytes
        figures["trainable_params"] += info.params if info.trainable else 0
        figures["running_stat_params"] += info.params if info.kind == "running_stat" else 0
    return figures


def _own_arrays(value) -> list[mx.array]:
    """Arrays held in `value` without descending into submodules."""
    if isinstance(value, mx.array):
        return [value]
    if isinstance(value, nn.Module):
        return []
    if isinstance(value, (list, tuple)):
        return [a for v in value for a in _own_arrays(v)]
    if isinstance(value, dict):
        return [a for v in value.values() for a in _own_arrays(v)]
    return []


def own_params(module: nn.Module, by_id: dict[int, TensorInfo]) -> int:
    """Params held directly by the module, not by its submodules."""
    arrays = {id(a): a for v in module.values() for a in _own_arrays(v)}
    return sum(by_id[i].params for i in arrays if i in by_id)


def counted_own_params(module: nn.Module, by_id: dict[int, TensorInfo], counted: set[int]) -> int:
    """Own params not counted at an earlier call; marks them counted.

    Called in call order, this credits each unique array (a tied weight, a shared
    module) to the first call that holds it, so table rows add up to the total.
    """
    total = 0
    for a in {id(a): a for v in module.values() for a in _own_arrays(v)}.values():
        if id(a) in by_id and id(a) not in counted:
            counted.add(id(a))
            total += by_id[id(a)].params
    return total


def not_called(model: nn.Module, first_calls: dict[int, str], by_id: dict[int, TensorInfo],
               counted: set[int]) -> list[dict]:
    """Modules the forward pass never called, outermost only, under their nearest called
    ancestor's first call (`first_calls`: id(module) -> node id). Their params count (they
    are the model's), credited here if no call holds them; marks them counted."""
    modules = dict(model.named_modules())
    out: list[dict] = []
    listed: list[str] = []
    for path in sorted(modules, key=path_sort_key):   # parents before children
        module = modules[path]
        if not path or id(module) in first_calls or any(path.startswith(p + ".") for p in listed):
            continue
        parent = path.rsplit(".", 1)[0] if "." in path else ""
        while parent not in modules and "." in parent:   # list items: "layers.0" under "layers"?
            parent = parent.rsplit(".", 1)[0]
        if parent not in modules or id(modules[parent]) not in first_calls:
            parent = ""
        if id(modules[parent]) not in first_calls:
            continue
        owner = parent
        listed.append(path)
        params = trainable = 0
        for _, arr in tree_flatten(module.parameters()):
            if isinstance(arr, mx.array) and id(arr) in by_id and id(arr) not in counted:
                counted.add(id(arr))
                params += by_id[id(arr)].params
                trainable += by_id[id(arr)].params if by_id[id(arr)].trainable else 0
        out.append({"path": path, "type": type(module).__name__, "parent": first_calls[id(modules[owner])],
                    "params": params, "trainable_params": trainable})
    return out
