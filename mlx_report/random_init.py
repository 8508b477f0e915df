"""Random initialisation spread over streams, so that weight statistics generate it in parallel.

MLX generates random values on one thread per stream, and a model's initial weights are
lazy: they are generated when the weight statistics first read them (about 0.1 G values/s
per CPU thread here, so a 7B model's initialisation alone takes a minute on one stream).
While a model is built inside `spread_random_init`, each `mx.random` call that names no
stream of its own is put on the next of a few new streams, round robin. The values do not
change: they depend on the keys, which are drawn from the global key as before, never on
the stream. `weight_stats` then evaluates the next tensor while it measures the current one.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from functools import wraps
from itertools import cycle
from typing import Any, Callable, Iterator

import mlx.core as mx

# The mx.random functions that draw arrays (`key`, `seed` and `split` only handle keys).
_DRAWS = ("bernoulli", "categorical", "gumbel", "laplace", "multivariate_normal", "normal",
          "permutation", "randint", "truncated_normal", "uniform")
STREAMS = 2  # this machine's cores; more streams than cores only add switching


def _stream_position(fn: Callable[..., mx.array]) -> int:
    """Index of the `stream` parameter, read from the signature line of the docstring."""
    signature = (fn.__doc__ or "").split("\n", 1)[0]
    names = re.findall(r"(\w+):", signature[signature.find("(") + 1:])
    return names.index("stream") if "stream" in names else len(names)


def _on_streams(fn: Callable[..., mx.array], streams: Iterator[mx.Stream]) -> Callable[..., mx.array]:
    position = _stream_position(fn)

    @wraps(fn)
    def draw(*args: Any, **kwargs: Any) -> mx.array:
        if len(args) <= position and kwargs.get("stream") is None:
            kwargs["stream"] = next(streams)
        return fn(*args, **kwargs)

    return draw


_STREAMS: dict[str, list[mx.Stream]] = {}  # made once per device: each stream has a thread


def _streams(n: int) -> list[mx.Stream]:
    device = mx.default_device()
    made = _STREAMS.setdefault(str(device), [])
    while len(made) < n:
        made.append(mx.new_stream(device))
    return made[:n]


@contextmanager
def spread_random_init(n_streams: int = STREAMS) -> Iterator[None]:
    """Put each `mx.random` draw made inside the block on one of `n_streams` extra streams."""
    streams = cycle(_streams(n_streams))
    saved = {name: getattr(mx.random, name) for name in _DRAWS}
    for name, fn in saved.items():
        setattr(mx.random, name, _on_streams(fn, streams))
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(mx.random, name, fn)
