"""Fuzzing (issue 6): the --input parser, the checkpoint reader and random model trees.

Bounded for the suite; `FUZZ_EXAMPLES=2000` (as `make fuzz` sets) scales every property up.
A result is never a crash, a hang or unbounded memory: only the tool's typed errors or a
valid result. Tests marked ``xfail(strict=True)`` pin tool bugs with an explicit example.
"""

from __future__ import annotations

import json
import keyword
import os
import resource
import signal
import struct
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import mlx.core as mx
import mlx.nn as nn
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mlx.utils import tree_flatten

from mlx_report import export
from mlx_report.checkpoint import read_checkpoint
from mlx_report.errors import CheckpointError, InputSpecError
from mlx_report.inputs import DTYPE_ALIASES, DTYPES, InputSpec, make_inputs, parse_input_spec
from mlx_report.summary import summary

_SCALE = int(os.environ.get("FUZZ_EXAMPLES", "0"))


def fuzz(default: int):
    """Hypothesis settings: `default` examples in the suite, FUZZ_EXAMPLES when set."""
    return settings(max_examples=_SCALE or default, deadline=None, derandomize=not _SCALE,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


def maxrss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


@contextmanager
def no_hang(seconds: float) -> Iterator[None]:
    """Fail (TimeoutError) instead of hanging: one example must finish within `seconds`."""
    def alarm(signum, frame):
        raise TimeoutError(f"no result within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- the --input parser ---------------------------------------------------------------------

_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
_DIM = st.one_of(st.integers(0, 4096).map(str), st.sampled_from(["-1", "0", "1.5", "", " ", "x", "1e3", "٣"]))
_DTYPE_WORDS = st.one_of(st.sampled_from(sorted(DTYPES) + sorted(DTYPE_ALIASES)),
                         st.sampled_from(["FP16", " int32 ", "mx.float16", "float", "int", "floaty", ""]))


@st.composite
def spec_like(draw) -> str:
    """Text close to the grammar `[name=]shape[:dtype]`, valid or nearly so."""
    dims = draw(st.lists(_DIM, max_size=5))
    sep = draw(st.sampled_from([",", ", ", "x", "X", " ", " x ", ",,"]))
    shape = sep.join(dims)
    if draw(st.booleans()):
        shape = draw(st.sampled_from(["({})", "[{}]", "({},)", "({}", "{})"])).format(shape)
    text = shape
    if draw(st.booleans()):
        text += draw(st.sampled_from([":", ": ", ":: "])) + draw(_DTYPE_WORDS)
    if draw(st.booleans()):
        text = draw(st.one_of(_NAMES, st.sampled_from(["class", "1a", "a b", "", "é"]))) + "=" + text
    return text


def _check_spec_text(text: str) -> None:
    try:
        spec = parse_input_spec(text)
    except InputSpecError as e:
        message = str(e)
        assert message and "\n" not in message
        assert message.startswith("invalid --input ")
        return
    assert isinstance(spec, InputSpec)
    assert spec.dtype in DTYPES
    assert all(isinstance(d, int) and d > 0 for d in spec.shape)
    assert spec.name is None or spec.name.isidentifier()
    again = parse_input_spec(str(spec))
    assert again == spec and str(again) == str(spec)


@fuzz(100)
@given(st.text(max_size=40))
def test_input_parser_arbitrary_text(text):
    _check_spec_text(text)


@fuzz(100)
@given(spec_like())
@example("name=(1, 3, 224, 224):fp16")
@example("()")
@example("(1,)")
@example("1x3X224 224")
def test_input_parser_grammar_like_text(text):
    _check_spec_text(text)


@fuzz(60)
@given(shape=st.lists(st.integers(1, 64), max_size=5), dtype=st.sampled_from(sorted(DTYPES)),
       name=st.one_of(st.none(), _NAMES))
def test_valid_specs_round_trip(shape, dtype, name):
    if name is not None and keyword.iskeyword(name):
        name = None
    spec = InputSpec(tuple(shape), dtype, name)
    assert parse_input_spec(str(spec)) == spec
    args, kwargs = make_inputs([spec])
    (x,) = args or kwargs.values()
    assert tuple(x.shape) == spec.shape and x.dtype == DTYPES[dtype]


@fuzz(30)
@given(st.lists(st.integers(1, 2 ** 70), min_size=1, max_size=3).map(lambda d: ",".join(map(str, d))))
@example("3000000000,8")
@example("99999999999999999999")
def test_every_parsed_spec_makes_an_input(text):
    try:
        specs = [parse_input_spec(text)]
        make_inputs(specs)   # lazy zeros: nothing allocated
    except InputSpecError:
        pass


# --- the checkpoint reader ------------------------------------------------------------------

@pytest.fixture(scope="module")
def ckdir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ckpt_fuzz")
    mx.save_safetensors(str(folder / "real.safetensors"), {
        "a.weight": mx.arange(24, dtype=mx.float32).reshape(4, 6),
        "a.bias": mx.ones((6,), dtype=mx.float16),
        "ids": mx.arange(5, dtype=mx.int32),
        "flag": mx.array([True, False]),
    })
    mx.savez(str(folder / "real.npz"), w=mx.ones((3, 3)), b=mx.zeros((3,)))
    return folder


def check_reader(path: Path, data: bytes) -> None:
    """read_checkpoint on `data`: a CheckpointError naming the file, or lazy arrays that load."""
    path.write_bytes(data)
    with no_hang(20):
        try:
            ckpt = read_checkpoint(path)
        except CheckpointError as e:
            message = str(e)
            assert message and "\n" not in message, message
            assert path.name in message, message
            return
        assert set(ckpt.shapes) == set(ckpt.arrays)
        if sum(a.nbytes for a in ckpt.arrays.values()) < 1_000_000:
            mx.eval(list(ckpt.arrays.values()))   # a header we accepted must really load


def safetensors_bytes(header: object, data: bytes = b"", declared: int | None = None) -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if declared is None else declared) + raw + data


_SAFETENSORS_DTYPES = ["BOOL", "U8", "I8", "F8_E4M3", "F8_E5M2", "U16", "I16", "F16", "BF16",
                       "U32", "I32", "F32", "U64", "I64", "F64", "C64", "F4", "Q4", "", "f32"]
_BIG = st.sampled_from([0, 1, 2 ** 31, 2 ** 32 + 1, 10 * 10 ** 9, 2 ** 63 - 1, 2 ** 64 - 1])
_OFFSET = st.one_of(st.integers(0, 300), _BIG, st.integers(-5, -1))


@st.composite
def lying_header(draw) -> bytes:
    """A well-formed safetensors JSON header whose claims may not match the file."""
    header: dict = {}
    if draw(st.booleans()):
        header["__metadata__"] = draw(st.sampled_from([{"format": "mlx"}, {}, {"k": 1}, "x", None]))
    for i in range(draw(st.integers(0, 4))):
        shape = draw(st.lists(st.one_of(st.integers(0, 8), _BIG), max_size=4))
        header[f"t{i}"] = {
            "dtype": draw(st.sampled_from(_SAFETENSORS_DTYPES)),
            "shape": shape,
            "data_offsets": [draw(_OFFSET), draw(_OFFSET)],
        }
    data = draw(st.binary(max_size=300))
    declared = draw(st.one_of(st.none(), _BIG, st.integers(0, 400)))
    return safetensors_bytes(header, data, declared)


_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=False),
              st.text(max_size=8)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=20,
)


@pytest.fixture
def rss_bound():
    """The whole test may grow peak memory by less than 200 MB."""
    before = maxrss_bytes()
    yield
    grown = maxrss_bytes() - before
    assert grown < 200e6, f"peak memory grew by {grown / 1e6:.0f} MB"


def test_reader_random_bytes(ckdir, rss_bound):
    @fuzz(80)
    @given(data=st.binary(max_size=2048), suffix=st.sampled_from([".safetensors", ".npz"]))
    @example(data=b"", suffix=".safetensors")
    @example(data=b"PK\x03\x04" + bytes(100), suffix=".npz")
    def run(data, suffix):
        check_reader(ckdir / f"random{suffix}", data)

    run()


def test_reader_truncated_and_mutated_real_files(ckdir, rss_bound):
    real = {s: (ckdir / f"real{s}").read_bytes() for s in (".safetensors", ".npz")}

    @fuzz(80)
    @given(suffix=st.sampled_from(sorted(real)), cut=st.integers(0, 10 ** 6),
           flips=st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 255)), max_size=4))
    def run(suffix, cut, flips):
        data = bytearray(real[suffix])
        for at, byte in flips:
            data[at % len(data)] = byte
        check_reader(ckdir / f"cut{suffix}", bytes(data[: cut % (len(data) + 1)]))

    run()


def test_reader_lying_headers_and_huge_sizes(ckdir, rss_bound):
    @fuzz(80)
    @given(lying_header())
    @example(safetensors_bytes({"w": {"dtype": "F32", "shape": [50000, 50000],
                                      "data_offsets": [0, 10 * 10 ** 9]}}))
    @example(safetensors_bytes({}, declared=10 * 10 ** 9))
    @example(safetensors_bytes({"w": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(8)))
    def run(data):
        check_reader(ckdir / "lying.safetensors", data)

    run()


def test_reader_random_json_headers(ckdir, rss_bound):
    @fuzz(80)
    @given(header=_JSON, data=st.binary(max_size=64))
    def run(header, data):
        check_reader(ckdir / "json.safetensors", safetensors_bytes(header, data))

    run()


def test_reader_claimed_10_gb_tensor_stays_lazy(ckdir, rss_bound):
    """A sparse file whose header honestly claims 10 GB: accepted, nothing read."""
    n = 50_000
    header = json.dumps({"w": {"dtype": "F32", "shape": [n, n], "data_offsets": [0, 4 * n * n]}}).encode()
    path = ckdir / "sparse.safetensors"
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        f.truncate(8 + len(header) + 4 * n * n)
    try:
        ckpt = read_checkpoint(path)
        assert ckpt.shapes == {"w": (n, n)}
    finally:
        path.unlink()


def test_reader_deeply_nested_header(ckdir):
    check_reader(ckdir / "nested.safetensors", safetensors_bytes(b"[" * 100_000 + b"]" * 100_000))


def test_reader_random_index_json(ckdir):
    @fuzz(60)
    @given(_JSON)
    @example({"weight_map": [1, 2]})
    @example({"weight_map": {"a": 1}})
    @example({"weight_map": {"a": ["x"]}})
    def run(document):
        check_reader(ckdir / "model.safetensors.index.json", json.dumps(document).encode())

    run()


# --- random model trees ---------------------------------------------------------------------

DIMS = (4, 6, 8)
BATCH, LENGTH = 2, 3


class Chain(nn.Module):
    """A plain Python list of modules, applied in turn."""

    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        self.layers = layers

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class Branches(nn.Module):
    """A dict of modules on the same input, summed."""

    def __init__(self, branches: dict[str, nn.Module]):
        super().__init__()
        self.branches = branches

    def __call__(self, x):
        outs = [self.branches[k](x) for k in sorted(self.branches)]
        total = outs[0]
        for y in outs[1:]:
            total = total + y
        return total


class Residual(nn.Module):
    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def __call__(self, x):
        return x + self.body(x)


class EmbedAdd(nn.Module):
    """Token ids derived from the input, embedded and added."""

    def __init__(self, vocab: int, dims: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, dims)

    def __call__(self, x):
        ids = (x[..., 0] * 0).astype(mx.int32)
        return x + self.embed(ids)


class Root(nn.Module):
    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def __call__(self, x):
        return self.body(x)


@st.composite
def random_models(draw) -> tuple[Root, int, int]:
    """(model, input dims, expected MACs) for a random tree on (BATCH, LENGTH, dims) inputs."""
    budget = [draw(st.integers(1, 10))]
    pool: list[tuple[nn.Module, int, int, int]] = []   # (module, din, dout, macs per call)
    rows = BATCH * LENGTH

    def leaf(din: int) -> tuple[nn.Module, int, int]:
        budget[0] -= 1
        kind = draw(st.sampled_from(["linear", "linear", "tied", "conv", "embed", "layernorm",
                                     "batchnorm", "relu"]))
        if kind == "tied":   # two Linear layers holding one weight array
            first, second = nn.Linear(din, din), nn.Linear(din, din, bias=draw(st.booleans()))
            second.weight = first.weight
            return Chain([first, nn.ReLU(), second]), din, 2 * rows * din * din
        if kind == "linear":
            dout = draw(st.sampled_from(DIMS))
            return nn.Linear(din, dout, bias=draw(st.booleans())), dout, rows * din * dout
        if kind == "conv":
            dout, k = draw(st.sampled_from(DIMS)), draw(st.sampled_from([1, 3]))
            return nn.Conv1d(din, dout, k, padding=k // 2), dout, rows * k * din * dout
        if kind == "embed":
            return EmbedAdd(draw(st.sampled_from(DIMS)), din), din, 0
        if kind == "layernorm":
            return nn.LayerNorm(din), din, 0
        if kind == "batchnorm":
            return nn.BatchNorm(din), din, 0
        return nn.ReLU(), din, 0

    def project(module, din, dout, macs, to):
        if dout == to:
            return module, macs
        return Chain([module, nn.Linear(dout, to)]), macs + rows * dout * to

    def build(din: int, depth: int) -> tuple[nn.Module, int, int]:
        reusable = [p for p in pool if p[1] == din]
        if reusable and draw(st.integers(0, 4)) == 0:        # the same instance in a second place
            module, _, dout, macs = draw(st.sampled_from(reusable))
            return module, dout, macs
        kinds = ["leaf"] + (["sequential", "list", "dict", "residual"] if depth < 4 and budget[0] > 0 else [])
        kind = draw(st.sampled_from(kinds))
        if kind == "leaf":
            module, dout, macs = leaf(din)
        elif kind in ("sequential", "list"):
            parts, d, macs = [], din, 0
            for _ in range(draw(st.integers(1, 3))):
                part, d, m = build(d, depth + 1)
                parts.append(part)
                macs += m
            module, dout = (nn.Sequential(*parts) if kind == "sequential" else Chain(parts)), d
        elif kind == "dict":
            dout, macs, branches = draw(st.sampled_from(DIMS)), 0, {}
            for i in range(draw(st.integers(1, 3))):
                part, d, m = build(din, depth + 1)
                part, m = project(part, din, d, m, dout)
                branches[f"b{i}"] = part
                macs += m
            module = Branches(branches)
        else:
            body, d, macs = build(din, depth + 1)
            body, macs = project(body, din, d, macs, din)
            module, dout = Residual(body), din
        pool.append((module, din, dout, macs))
        return module, dout, macs

    din = draw(st.sampled_from(DIMS))
    body, _, macs = build(din, 0)
    model = Root(body)

    # Tied weights: the same array assigned to two modules whose weights have one shape.
    holders: dict[int, nn.Module] = {}
    for _, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            holders.setdefault(id(m), m)
    by_shape: dict[tuple, list[nn.Module]] = {}
    for m in holders.values():
        by_shape.setdefault(tuple(m.weight.shape), []).append(m)
    for group in by_shape.values():
        if len(group) > 1 and draw(st.booleans()):
            group[1].weight = group[0].weight

    # Frozen parts, and a random train/eval mode.
    modules = [m for _, m in model.named_modules()]
    for index in draw(st.lists(st.integers(0, len(modules) - 1), max_size=3)):
        modules[index].freeze()
    model.train(draw(st.booleans()))
    return model, din, macs


def _unique(tree) -> dict[int, mx.array]:
    return {id(a): a for _, a in tree_flatten(tree) if isinstance(a, mx.array)}


@fuzz(50)
@given(random_models())
def test_random_models(case):
    model, din, expected_macs = case
    params_before = tree_flatten(model.parameters())
    modules_before = [(p, m, type(m), m.training) for p, m in model.named_modules()]
    calls_before = {type(m): vars(type(m)).get("__call__") for _, m in model.named_modules()}

    with no_hang(60):
        s = summary(model, (BATCH, LENGTH, din), verbose=0)

    # Parameters: unique arrays, each once (BatchNorm running stats included).
    unique = _unique(model.parameters())
    trainable = _unique(model.trainable_parameters())
    stats = {id(a): a for _, m in model.named_modules() if isinstance(m, nn.BatchNorm)
             for a in (m.running_mean, m.running_var)}
    assert s.total_params == sum(a.size for a in unique.values())
    assert s.trainable_params == sum(a.size for a in trainable.values())
    assert s.running_stat_params == sum(a.size for a in stats.values())
    assert s.param_bytes == sum(a.nbytes for a in unique.values())

    # MACs: self + children = total at every call; the model's total is the eager count.
    g = s.graph
    for node_id in g.calls():
        node = g.node(node_id)
        children = sum(g.node(c)["macs_total"] for c in node["children"])
        assert node["macs_total"] == node["macs_self"] + children, (node["path"], node["type"])
    assert g.node(g.root)["macs_total"] == s.total_macs == expected_macs
    assert g.node(g.root)["params_counted"] == s.total_params   # table rows add up to the total

    # The JSON round-trips; the text renders.
    text = s.to_json()
    assert export.to_json(export.graph_from_dict(json.loads(text))) == text
    rendered = str(s)
    line = next(x for x in rendered.splitlines() if x.startswith("Total params: "))
    assert f"{s.total_params:,}" in line and "Root" in rendered

    # The model is as it was.
    after = tree_flatten(model.parameters())
    assert [k for k, _ in after] == [k for k, _ in params_before]
    assert all(a is b for (_, a), (_, b) in zip(params_before, after))
    assert [(p, m, type(m), m.training) for p, m in model.named_modules()] == modules_before
    assert {c: vars(c).get("__call__") for c in calls_before} == calls_before
    assert model(mx.zeros((BATCH, LENGTH, din))).shape[:2] == (BATCH, LENGTH)
