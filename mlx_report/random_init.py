"""Random initialisation spread over streams, so that weight statistics generate it in parallel.

MLX generates random values on one thread per stream, and a model's initial weights are
lazy: they are generated when the weight statistics first read them (about 0.1 G values/s
per CPU thread here, so a 7B model's initialisation alone takes a minute on one stream).
While a model is built inside `spread_random_init`, each `mx.random` draw runs on the next
of a few extra streams of the current device, round robin. The values do not change: they
depend on the keys, which are drawn from the global key as before, never on the stream.
`weight_stats` then evaluates the next tensor while it measures the current one.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from functools import wraps
from itertools import count
from typing import Any, Callable, Iterator

import mlx.core as mx

# The mx.random functions that draw arrays (`key`, `seed` and `split` only handle keys).
_DRAWS = ("bernoulli", "categorical", "gumbel", "laplace", "multivariate_normal", "normal",
          "permutation", "randint", "truncated_normal", "uniform")
STREAMS = 2  # this machine's cores; more streams than cores only add switching

_STREAMS: dict[str, list[mx.Stream]] = {}  # made once per device: each stream has a thread
_LOCK = threading.Lock()
_state: dict[str, Any] = {"depth": 0, "saved": {}}  # nested or concurrent uses patch once
_turn = count()


def _next_stream(n: int) -> mx.Stream:
    device = mx.default_device()
    made = _STREAMS.setdefault(str(device), [])
    while len(made) < n:
        made.append(mx.new_stream(device))
    return made[next(_turn) % n]


def _on_streams(fn: Callable[..., mx.array], n: int) -> Callable[..., mx.array]:
    @wraps(fn)
    def draw(*args: Any, **kwargs: Any) -> mx.array:
        with mx.stream(_next_stream(n)):  # a `stream=` the caller passes still wins
            return fn(*args, **kwargs)

    return draw


@contextmanager
def spread_random_init(n_streams: int = STREAMS) -> Iterator[None]:
    """Run each `mx.random` draw made inside the block on one of `n_streams` extra streams."""
    with _LOCK:
        if _state["depth"] == 0:
            _state["saved"] = {name: getattr(mx.random, name) for name in _DRAWS
                               if hasattr(mx.random, name)}
            for name, fn in _state["saved"].items():
                setattr(mx.random, name, _on_streams(fn, n_streams))
        _state["depth"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _state["depth"] -= 1
            if _state["depth"] == 0:
                for name, fn in _state["saved"].items():
                    setattr(mx.random, name, fn)
