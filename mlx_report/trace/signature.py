"""Structural signatures: two modules with equal signatures compute the same thing.

A signature covers the class, plain configuration attributes, parameter shapes and
dtypes, frozen keys and the signatures of submodules. It keys the MAC cache and
lets tables and diagrams fold identical repeated blocks.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import mlx.core as mx
import mlx.nn as nn

_PLAIN = (bool, int, float, str, type(None))
# A model file loaded by path gets a module name numbered per load (loading.py); the
# number must not reach the signature, or loading the same file twice changes it.
_LOAD_NUMBER = re.compile(r"^(mlx_report_user_.*)_\d+$")


class Signatures:
    """Memoised structural descriptions and digests of modules within one trace."""

    def __init__(self) -> None:
        self._structures: dict[int, tuple] = {}
        self._digests: dict[int, str] = {}
        self._opaque: dict[int, str] = {}
        self._keep: list[Any] = []   # hold opaque objects so their ids stay unique

    def digest(self, module: nn.Module) -> str:
        """A short hex digest of the module's structure."""
        key = id(module)
        if key not in self._digests:
            text = repr(self.structure(module))
            self._digests[key] = hashlib.sha1(text.encode()).hexdigest()[:16]
        return self._digests[key]

    def structure(self, module: nn.Module) -> tuple:
        """The nested description a digest is the hash of."""
        key = id(module)
        if key not in self._structures:
            attrs = tuple(
                (k, self._describe(v)) for k, v in sorted(vars(module).items()) if k != "_no_grad"
            )
            items = tuple((str(k), self._describe(v)) for k, v in sorted(module.items()))
            frozen = tuple(sorted(getattr(module, "_no_grad", ())))
            self._structures[key] = (
                _LOAD_NUMBER.sub(r"\1", type(module).__module__), type(module).__qualname__,
                attrs, items, frozen,
            )
        return self._structures[key]

    def _describe(self, value: Any) -> Any:
        """A hashable, deterministic description of one attribute value."""
        if isinstance(value, _PLAIN):
            return value
        if isinstance(value, mx.array):
            return ("array", tuple(value.shape), str(value.dtype))
        if isinstance(value, nn.Module):
            return ("module", self.structure(value))
        if isinstance(value, (list, tuple)):
            return tuple(self._describe(v) for v in value)
        if isinstance(value, dict):
            return tuple(sorted((str(k), self._describe(v)) for k, v in value.items()))
        if isinstance(value, mx.Dtype):
            return str(value)
        if callable(value) and hasattr(value, "__qualname__"):
            owner = _LOAD_NUMBER.sub(r"\1", getattr(value, "__module__", "") or "")
            return f"{owner}.{value.__qualname__}"
        # Unknown objects never equal another object (no false folding); they are
        # numbered by first appearance so the output stays deterministic.
        if id(value) not in self._opaque:
            self._keep.append(value)
            self._opaque[id(value)] = f"<{type(value).__name__}#{len(self._opaque)}>"
        return self._opaque[id(value)]
