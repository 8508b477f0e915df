"""Checks of the module tree made before anything walks it.

MLX's `named_modules()` and `parameters()` recurse without a visited set, so a module
that contains itself or an ancestor (`self.me = self`) makes them loop forever or
overflow the stack. This walk keeps the path it is on and stops at a back-reference.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import mlx.nn as nn

from ..errors import ModelLoadError


def _child_modules(value: Any, key: str) -> Iterator[tuple[str, nn.Module]]:
    """(key, module) for the modules held in one item of a module, as MLX walks them."""
    if isinstance(value, nn.Module):
        yield key, value
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _child_modules(v, f"{key}.{i}")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _child_modules(v, f"{key}.{k}")


def find_cycle(model: nn.Module) -> tuple[str, str] | None:
    """(path of the back-reference, path of the module it points to), or None.

    Depth first with an explicit stack (no recursion limit); modules shared by two
    branches are no cycle and are walked once.
    """
    on_path: dict[int, str] = {}
    done: set[int] = set()
    stack: list[tuple[nn.Module, str, Iterator | None]] = [(model, "", None)]
    while stack:
        module, path, children = stack[-1]
        if children is None:
            on_path[id(module)] = path
            children = iter([c for k, v in module.items() for c in _child_modules(v, str(k))])
            stack[-1] = (module, path, children)
        nxt = next(children, None)
        if nxt is None:
            stack.pop()
            del on_path[id(module)]
            done.add(id(module))
            continue
        key, child = nxt
        child_path = f"{path}.{key}" if path else key
        if id(child) in on_path:
            return child_path, on_path[id(child)]
        if id(child) not in done:
            stack.append((child, child_path, None))
    return None


def check_tree(model: nn.Module) -> None:
    """Refuse a model whose module tree contains a cycle, naming the back-reference."""
    if not isinstance(model, nn.Module):
        return
    cycle = find_cycle(model)
    if cycle is not None:
        ref, target = cycle
        raise ModelLoadError(
            f"the module tree has a cycle: {ref} refers back to {target or 'the model itself'}, "
            "so MLX's parameters() and named_modules() would never end; keep the back-reference "
            f"out of the tree (object.__setattr__(self, {ref.rsplit('.', 1)[-1]!r}, ...))")


# What nn.Module.__init__ sets besides the dict itself: a module whose __init__ skips
# super().__init__() (mlx-lm's recurrent_gemma has one) lacks them, and MLX's own
# `training` and `trainable_parameters()` then raise AttributeError.
_MODULE_DEFAULTS = (("_no_grad", set), ("_training", lambda: True))


@contextmanager
def completed_modules(model: nn.Module) -> Iterator[list[str]]:
    """Give modules that skipped `nn.Module.__init__` its defaults while tracing.

    Yields their paths; the attributes are removed again afterwards, so the model is
    left as it was. Call after `check_tree` (named_modules() must terminate).
    """
    added: list[tuple[nn.Module, str]] = []
    paths: list[str] = []
    try:
        for path, module in model.named_modules():
            missing = [(k, make) for k, make in _MODULE_DEFAULTS if k not in vars(module)]
            for key, make in missing:
                object.__setattr__(module, key, make())
                added.append((module, key))
            if missing:
                paths.append(f"{path or '(model)'} ({type(module).__name__})")
        yield sorted(set(paths))
    finally:
        for module, key in added:
            if key in vars(module):
                object.__delattr__(module, key)
