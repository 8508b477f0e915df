"""Peak activation memory of one forward pass, as MLX's CPU backend would allocate it.

Replays the primitive graph (`mx.export_function`, nothing evaluated) the way
`mx.eval` runs it (mlx/transforms.cpp `eval_impl`, mlx/backend/cpu, MLX 0.32):

- eval order: MLX's tape (depth-first degree count, then breadth-first with a
  width limit of 20, `MLX_BFS_MAX_WIDTH`), evaluated from the back;
- run-ahead: the main thread allocates each primitive's outputs and temporaries
  and queues its work on the CPU stream; every primitive ends with a no-op task
  that holds its inputs' buffers (and temporaries) until the worker reaches it.
  The main thread waits only when more than 10 groups of 10 tasks are pending,
  so up to ~110 tasks (tens of primitives) can be in flight. The worker is
  assumed to be the bottleneck (compute-bound models), so buffers are released
  as late as that limit allows;
- buffers are reference counted: a view (reshape, transpose, broadcast, slice)
  shares its input's buffer; an elementwise op, softmax or copy takes over
  ("donates") an input buffer nobody else references;
- temporaries: a grouped-free convolution unfolds its input (im2col) into float32
  buffers (padded input, strided patches, float32 weights and output for float16),
  a matmul copies an input that is neither row- nor column-major in its last two
  axes, `mx.fast` ops run unfused on the CPU (their basic primitives are exported);
- fusion: inside an `mx.compile`d function (nn.gelu, nn.silu, ...) connected
  elementwise ops are one fused kernel: only the outputs used outside it get
  buffers, and each may take over a same-sized input nobody else uses;
- merged views undone: export simplifies its graph (equal scalars become one, then
  equal ops on equal inputs merge), so the three `Flatten(y)` of a q/k/v projection,
  or every layer's broadcast of the same constant, arrive as one view. `mx.eval`
  runs each one (a queued no-op task apiece, which sets how far the main thread
  runs ahead): `unmerged_views` gives every consumer its own copy of a view again.

The peak counts every buffer allocated while the pass runs (outputs included);
weights and inputs are resident and not counted here.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from math import prod
from typing import Any, Callable

MAX_ACTIVE_TASKS = 10        # mlx/transforms.cpp
DISPATCHES_PER_TASK = 10     # mlx/backend/cpu/encoder.h
BFS_MAX_WIDTH = 20           # MLX_BFS_MAX_WIDTH default
DONATION_EXTRA = 16384       # mlx/backend/common/utils.h is_donatable

_ITEMSIZE = {"bool": 1, "uint8": 1, "int8": 1, "uint16": 2, "int16": 2, "float16": 2, "bfloat16": 2,
             "uint32": 4, "int32": 4, "float32": 4, "uint64": 8, "int64": 8, "float64": 8,
             "complex64": 8}

# Outputs that share their (first) input's buffer with new strides.
_VIEWS = {"Broadcast", "BroadcastAxes", "Transpose", "ExpandDims", "Squeeze", "Slice", "AsStrided",
          "StopGradient", "Copy", "Split", "Depends", "Reshape", "Flatten", "Unflatten", "Contiguous",
          "View", "Real", "Imag"}
# Elementwise: may take over an input's buffer (same item size, nobody else using it).
_ELEMENTWISE = {"Add", "Subtract", "Multiply", "Divide", "Maximum", "Minimum", "Power", "Remainder",
                "LogAddExp", "ArcTan2", "FloorDivide", "Equal", "NotEqual", "Greater", "GreaterEqual",
                "Less", "LessEqual", "LogicalAnd", "LogicalOr", "BitwiseBinary", "Select",
                "Negative", "Abs", "Square", "Sqrt", "Rsqrt", "Exp", "Expm1", "Log", "Log1p", "Sin",
                "Cos", "Tan", "Tanh", "Sinh", "Cosh", "Sigmoid", "Erf", "ErfInv", "ArcSin", "ArcCos",
                "ArcTanh", "ArcSinh", "ArcCosh", "Conjugate", "Floor", "Ceil", "Round", "Sign",
                "LogicalNot", "BitwiseInvert", "AsType", "Softmax", "Full"}


@dataclass
class Op:
    """One exported primitive: name, input ids, outputs (id, shape, dtype), arguments."""

    name: str
    inputs: list[str]
    outputs: list[tuple[str, tuple[int, ...], str]]
    args: list = field(default_factory=list)


@dataclass
class OpGraph:
    """The primitives one forward pass evaluates, in export (topological) order."""

    ops: list[Op]
    outputs: list[str]
    resident: dict[str, tuple[tuple[int, ...], str]]   # inputs, weights, constants


def _dtype(d: Any) -> str:
    return str(d).removeprefix("mlx.core.")


def export_graph(fn: Callable, *inputs: Any) -> OpGraph:
    """Export `fn(*inputs)`: every primitive but those that make weights (placeholders)."""
    import mlx.core as mx

    ops: list[Op] = []
    outputs: list[str] = []
    resident: dict[str, tuple[tuple[int, ...], str]] = {}
    live: set[str] = set()
    placeholders: set[str] = set()

    def callback(event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "inputs":
            for i in event["inputs"]:
                live.add(i[0])
                resident[i[0]] = (tuple(i[1]), _dtype(i[2]))
        elif kind == "outputs":
            outputs.extend(o[0] for o in event["outputs"])
        elif kind == "constants":
            for c in event["constants"]:
                resident[c[0]] = (tuple(c[1].shape), _dtype(c[1].dtype))
        elif kind == "primitive":
            outs = [(o[0], tuple(o[1]), _dtype(o[2])) for o in event["outputs"]]
            ins = [i[0] for i in event["inputs"]]
            name = event["name"]
            if not any(i in live for i in ins) and (
                    name in ("Full", "RandomBits") or (name == "AsType" and ins[0] in placeholders)):
                # a weight (placeholder fill, lazy init): evaluated before the pass when measured
                placeholders.update(o[0] for o in outs)
                for o in outs:
                    resident[o[0]] = (o[1], o[2])
                return
            # work on weights alone (BatchNorm's rsqrt(var + eps)) runs in the pass too
            if any(i in live for i in ins):
                live.update(o[0] for o in outs)
            ops.append(Op(name, ins, outs, list(event.get("arguments") or [])))

    mx.export_function(callback, fn, *inputs)
    return OpGraph(ops, outputs, resident)


def eval_order(graph: OpGraph) -> list[int]:
    """Indices of `graph.ops` in the order `mx.eval` runs them (MLX's tape, back to front)."""
    producer = {o[0]: k for k, op in enumerate(graph.ops) for o in op.outputs}
    sync = len(graph.ops)  # the Synchronizer: its inputs are the outputs
    inputs = [[producer[i] for i in op.inputs if i in producer] for op in graph.ops]
    inputs.append([producer[o] for o in graph.outputs if o in producer])
    # Depth-first: how many times each op is referenced (siblings share one count).
    degree: dict[int, int] = {}
    stack, seen = [sync], {sync}
    while stack:
        k = stack.pop()
        for j in inputs[k]:
            degree[j] = degree.get(j, 0) + 1
            if j not in seen:
                seen.add(j)
                stack.append(j)
    # Breadth-first with a width limit (transforms.cpp, "Build the tape").
    tape: list[int] = [sync]
    dfs: list[tuple[int, int]] = []
    i = 0
    while degree and (i < len(tape) or dfs):
        if i >= len(tape):
            a, j = dfs.pop()
        else:
            a, j = tape[i], 0
            i += 1
        ins = inputs[a]
        while j < len(ins):
            k = ins[j]
            if len(tape) - i >= BFS_MAX_WIDTH:
                dfs.append((a, j))
                break
            degree[k] -= 1
            if degree[k] == 0:
                del degree[k]
                tape.append(k)
            j += 1
    return [k for k in reversed(tape) if k != sync]


@dataclass
class _Arr:
    shape: tuple[int, ...]
    itemsize: int
    strides: tuple[int, ...]
    data_size: int
    buf: int | None          # None: resident (weights, inputs): never freed, never donated

    @property
    def size(self) -> int:
        return prod(self.shape)

    @property
    def row_contiguous(self) -> bool:
        return self.strides == _row_strides(self.shape, self.strides)

    @property
    def col_contiguous(self) -> bool:
        return self.strides == _col_strides(self.shape, self.strides)

    @property
    def contiguous(self) -> bool:
        """MLX's `contiguous` flag: dense without holes in any axis order (a transpose keeps it).

        The vector paths of unary and scalar-binary ops need only this: they run over the
        buffer flat and give the output the input's strides.
        """
        if self.data_size != self.size:
            return False
        acc = 1
        for stride, dim in sorted((s, d) for s, d in zip(self.strides, self.shape) if d != 1):
            if stride != acc:
                return False
            acc *= dim
        return True


def _row_strides(shape: tuple[int, ...], like: tuple[int, ...] = ()) -> tuple[int, ...]:
    out, acc = [], 1
    for k in range(len(shape) - 1, -1, -1):
        # size-1 axes may carry any stride: compare them as given
        out.append(like[k] if shape[k] == 1 and like else acc)
        acc *= shape[k]
    return tuple(reversed(out))


def _col_strides(shape: tuple[int, ...], like: tuple[int, ...] = ()) -> tuple[int, ...]:
    out, acc = [], 1
    for k in range(len(shape)):
        out.append(like[k] if shape[k] == 1 and like else acc)
        acc *= shape[k]
    return tuple(out)


class _Simulator:
    """Buffers, references and the CPU stream's task queue while the tape runs."""

    def __init__(self, graph: OpGraph):
        self.graph = graph
        self.arrays: dict[str, _Arr] = {}
        for aid, (shape, dtype) in graph.resident.items():
            self.arrays[aid] = _Arr(shape, _ITEMSIZE.get(dtype, 4), _row_strides(shape), prod(shape), None)
        self.uses: dict[str, int] = {}
        for op in graph.ops:
            for i in op.inputs:
                self.uses[i] = self.uses.get(i, 0) + 1
        for o in graph.outputs:
            self.uses[o] = self.uses.get(o, 0) + 1_000_000   # held by Python: never freed
        self.desc_refs: dict[str, int] = {}
        self.buf_refs: dict[int, int] = {}
        self.buf_bytes: dict[int, int] = {}
        self.live = self.peak = 0
        self.queue: deque[tuple[list[int], bool]] = deque()   # (buffers released, ends a group)
        self.dispatches = 0
        self.active = 0

    # -- buffers ------------------------------------------------------------------
    def alloc(self, nbytes: int) -> int:
        buf = len(self.buf_bytes)
        self.buf_bytes[buf] = nbytes
        self.buf_refs[buf] = 1
        self.live += nbytes
        self.peak = max(self.peak, self.live)
        return buf

    def ref(self, buf: int | None) -> None:
        if buf is not None:
            self.buf_refs[buf] += 1

    def unref(self, buf: int | None) -> None:
        if buf is None:
            return
        self.buf_refs[buf] -= 1
        if self.buf_refs[buf] == 0:
            self.live -= self.buf_bytes[buf]

    def donatable(self, aid: str, out_nbytes: int, out_itemsize: int) -> bool:
        a = self.arrays.get(aid)
        return (a is not None and a.buf is not None and self.desc_refs.get(aid) == 1
                and self.buf_refs[a.buf] == 1 and a.itemsize == out_itemsize
                and self.buf_bytes[a.buf] <= out_nbytes + DONATION_EXTRA)

    # -- the task queue ---------------------------------------------------------------
    def dispatch(self, n: int, releases: list[int]) -> None:
        """Queue `n` tasks; the last (the no-op of cpu::eval) releases `releases`."""
        for k in range(n):
            self.dispatches += 1
            ends_group = self.dispatches % DISPATCHES_PER_TASK == 0
            self.active += ends_group
            self.queue.append((releases if k == n - 1 else [], ends_group))

    def wait_for_one(self) -> None:
        while self.queue:
            releases, ends_group = self.queue.popleft()
            for buf in releases:
                self.unref(buf)
            if ends_group:
                self.active -= 1
                return

    # -- one primitive ---------------------------------------------------------------
    def run(self, op: Op) -> None:
        ins = [self.arrays[i] for i in op.inputs]
        temps: list[int] = []
        n_tasks = _allocate(self, op, ins, temps)
        out_bufs = {self.arrays[o[0]].buf for o in op.outputs}
        held = {a.buf for a in ins if a.buf is not None} | {b for b in out_bufs if b is not None}
        if len(op.outputs) == 1:
            held.discard(self.arrays[op.outputs[0][0]].buf)   # donated to the output
        releases = sorted(held)
        for buf in releases:
            self.ref(buf)
        self.dispatch(n_tasks + 1, releases + temps)
        # detach: the op drops its inputs; its outputs live while referenced
        for i in op.inputs:
            self.release_desc(i)
        for o in op.outputs:
            self.desc_refs[o[0]] = self.uses.get(o[0], 0)
            if self.desc_refs[o[0]] == 0:
                self.desc_refs[o[0]] = 1
                self.release_desc(o[0])
        if self.active > MAX_ACTIVE_TASKS:
            self.wait_for_one()

    def release_desc(self, aid: str) -> None:
        if aid not in self.desc_refs:
            return
        self.desc_refs[aid] -= 1
        if self.desc_refs[aid] == 0:
            self.unref(self.arrays[aid].buf)

    def new(self, aid: str, shape: tuple[int, ...], dtype: str, like: _Arr | None = None,
            share: _Arr | None = None, strides: tuple[int, ...] | None = None) -> _Arr:
        """Output `aid`: sharing `share`'s buffer, or a new buffer laid out like `like`."""
        itemsize = _ITEMSIZE.get(dtype, 4)
        if share is not None:
            arr = _Arr(shape, itemsize, strides or share.strides, share.data_size, share.buf)
            self.ref(share.buf)
        elif like is not None and like.contiguous:
            arr = _Arr(shape, itemsize, like.strides, like.data_size,
                       self.alloc(like.data_size * itemsize))
        else:
            arr = _Arr(shape, itemsize, _row_strides(shape), prod(shape), self.alloc(prod(shape) * itemsize))
        self.arrays[aid] = arr
        return arr


def _allocate(sim: _Simulator, op: Op, ins: list[_Arr], temps: list[int]) -> int:
    """Allocate `op`'s outputs (and temporaries) as the CPU backend does; return its task count."""
    name = op.name
    oid, shape, dtype = op.outputs[0]
    itemsize = _ITEMSIZE.get(dtype, 4)
    nbytes = prod(shape) * itemsize
    if name in _VIEWS:
        return _view(sim, op, ins)
    if name == "Convolution":
        return _convolution(sim, op, ins, temps)
    if name in ("Matmul", "AddMM"):
        sim.new(oid, shape, dtype)
        copies = 0
        for a in ins[:2]:
            if not _transposable(a):
                temps.append(sim.alloc(a.size * a.itemsize))
                copies += 1
        return copies + 1 + (name == "AddMM")
    if name == "Compiled":
        return _compiled(sim, op, ins)
    if name in _ELEMENTWISE and len(ins) == 2 and name != "Full":
        return _binary(sim, op, ins)
    if name == "Softmax" and ins:
        a = ins[0]
        if a.contiguous and a.strides[-1:] in ((1,), ()):
            if sim.donatable(op.inputs[0], nbytes, itemsize):
                sim.new(oid, shape, dtype, share=a)
            else:
                sim.new(oid, shape, dtype, like=a)
            return 1
        temps.append(sim.alloc(nbytes))   # contiguous copy first, then it is taken over
        sim.new(oid, shape, dtype)
        return 2
    if name in _ELEMENTWISE:
        for aid, a in zip(op.inputs, ins):
            # vector paths need a contiguous input; general ones a row-contiguous full-size one
            if (a.contiguous or (a.row_contiguous and a.size == prod(shape))) and \
                    a.data_size * itemsize <= nbytes + DONATION_EXTRA and sim.donatable(aid, nbytes, itemsize):
                sim.new(oid, shape, dtype, share=a)
                return 1
        full = [a for a in ins if a.size == prod(shape) and a.contiguous]
        sim.new(oid, shape, dtype, like=full[0] if full else None)
        if name == "Softmax" and ins and not ins[0].contiguous:
            temps.append(sim.alloc(nbytes))   # contiguous copy first
        return 1
    for aid, sh, dt in op.outputs:   # reductions, gathers, concatenation, padding, ...: new buffers
        sim.new(aid, sh, dt)
    return 1


def _binary(sim: _Simulator, op: Op, ins: list[_Arr]) -> int:
    """A binary op's output as `set_binary_op_output_data` makes it (backend/common/binary.h)."""
    oid, shape, dtype = op.outputs[0]
    itemsize = _ITEMSIZE.get(dtype, 4)
    nbytes = prod(shape) * itemsize
    (ia, a), (ib, b) = zip(op.inputs, ins)
    a_don, b_don = sim.donatable(ia, nbytes, itemsize), sim.donatable(ib, nbytes, itemsize)
    if a.data_size == 1 and b.data_size == 1:
        sim.arrays[oid] = _Arr(shape, itemsize, a.strides, 1, sim.alloc(itemsize))
    elif a.data_size == 1 and b.contiguous:          # scalar-vector: runs over b flat
        sim.new(oid, shape, dtype, share=b) if b_don else sim.new(oid, shape, dtype, like=b)
    elif b.data_size == 1 and a.contiguous:
        sim.new(oid, shape, dtype, share=a) if a_don else sim.new(oid, shape, dtype, like=a)
    elif (a.row_contiguous and b.row_contiguous and a.data_size == a.size and b.data_size == b.size) \
            or (a.col_contiguous and b.col_contiguous and a.data_size == a.size and b.data_size == b.size):
        donor = a if a_don else b if b_don else None
        sim.new(oid, shape, dtype, share=donor) if donor else sim.new(oid, shape, dtype, like=a)
    else:                                            # general: a full-size row-contiguous donor
        size = prod(shape)
        donor = next((x for x, d in ((a, a_don), (b, b_don))
                      if d and x.row_contiguous and x.size == size), None)
        sim.new(oid, shape, dtype, share=donor) if donor else sim.new(oid, shape, dtype)
    return 1


def _compiled(sim: _Simulator, op: Op, ins: list[_Arr]) -> int:
    """A fused elementwise kernel: each output takes over a free same-sized input or allocates."""
    taken: set[str] = set()
    for aid, shape, dtype in op.outputs:
        itemsize, nbytes = _ITEMSIZE.get(dtype, 4), prod(shape) * _ITEMSIZE.get(dtype, 4)
        donor = next((i for i, a in zip(op.inputs, ins) if i not in taken and a.row_contiguous
                      and a.size == prod(shape) and sim.donatable(i, nbytes, itemsize)), None)
        if donor is not None:
            taken.add(donor)
            sim.new(aid, shape, dtype, share=sim.arrays[donor])
        else:
            sim.new(aid, shape, dtype)
    return 1


def _transposable(a: _Arr) -> bool:
    """Whether a matmul can read `a` as is (row- or column-major in its last two axes)."""
    if len(a.shape) < 2:
        return True
    sx, sy = a.strides[-2], a.strides[-1]
    return (sx == a.shape[-1] and sy == 1) or (sx == 1 and sy == a.shape[-2])


def _view(sim: _Simulator, op: Op, ins: list[_Arr]) -> int:
    a = ins[0]
    name = op.name
    for k, (aid, shape, dtype) in enumerate(op.outputs):
        if name in ("Reshape", "Flatten", "Unflatten", "Contiguous", "View"):
            strides = _reshape_strides(a, shape)
            if strides is None or (name == "Contiguous" and not a.row_contiguous):
                sim.new(aid, shape, dtype)
                return 1
            sim.new(aid, shape, dtype, share=a, strides=strides)
        elif name == "Transpose":
            perm = op.args[0] if op.args else list(reversed(range(len(a.shape))))
            sim.new(aid, shape, dtype, share=a, strides=tuple(a.strides[p] for p in perm))
        elif name in ("Broadcast", "BroadcastAxes"):
            pad = len(shape) - len(a.shape)
            st = [0] * pad + [s if d == n else 0 for s, d, n in zip(a.strides, a.shape, shape[pad:])]
            sim.new(aid, shape, dtype, share=a, strides=tuple(st))
        elif name == "Slice":
            steps = op.args[2] if len(op.args) > 2 else [1] * len(shape)
            sim.new(aid, shape, dtype, share=a, strides=tuple(s * st for s, st in zip(a.strides, steps)))
        elif name == "AsStrided":
            strides = tuple(op.args[1]) if len(op.args) > 1 else _row_strides(shape)
            sim.new(aid, shape, dtype, share=a, strides=strides)
        elif name in ("ExpandDims", "Squeeze"):
            sim.new(aid, shape, dtype, share=a, strides=_reshape_strides(a, shape) or _row_strides(shape))
        else:   # Split, Copy, StopGradient, Depends, Real, Imag: same layout, shared buffer
            sim.new(aid, shape, dtype, share=ins[min(k, len(ins) - 1)] if name == "Depends" else a,
                    strides=a.strides if len(shape) == len(a.shape) else _row_strides(shape))
    return 0


def _reshape_strides(a: _Arr, shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """Strides of `a` reshaped without a copy, or None when MLX must copy (prepare_reshape)."""
    if a.size == 0 or a.row_contiguous:
        return _row_strides(shape)
    dims = [(d, s) for d, s in zip(a.shape, a.strides) if d != 1]
    collapsed: list[list[int]] = []
    for d, s in dims:   # merge axes that are contiguous with the next one
        if collapsed and collapsed[-1][1] == s * d:
            collapsed[-1] = [collapsed[-1][0] * d, s]
        else:
            collapsed.append([d, s])
    out, j = [], 0
    for n in shape:
        if j < len(collapsed) and collapsed[j][0] % n == 0:
            collapsed[j][0] //= n
            out.append(collapsed[j][0] * collapsed[j][1])
            j += collapsed[j][0] == 1
        elif n == 1:
            out.append(out[-1] if out else 1)
        else:
            return None
    return tuple(out)


def _convolution(sim: _Simulator, op: Op, ins: list[_Arr], temps: list[int]) -> int:
    """Output plus, on the unfold (im2col + GEMM) path, its float32 temporaries."""
    oid, shape, dtype = op.outputs[0]
    sim.new(oid, shape, dtype)
    x, w = ins[0], ins[1]
    args = op.args
    lo = args[1] if len(args) > 1 else [0] * (len(x.shape) - 2)
    hi = args[2] if len(args) > 2 else lo
    kdil = args[3] if len(args) > 3 else [1]
    idil = args[4] if len(args) > 4 else [1]
    flip = bool(args[6]) if len(args) > 6 else False
    groups = x.shape[-1] // max(w.shape[-1], 1)
    plain = all(d == 1 for d in kdil) and all(d == 1 for d in idil)
    gemm = plain and (groups == 1 or (len(x.shape) == 3 and not flip))
    if not gemm:
        return 1   # direct loops, no temporaries
    n, c = x.shape[0], w.shape[-1] * (groups if len(x.shape) == 3 else 1)
    padded = n * c * prod(d + a + b for d, a, b in zip(x.shape[1:-1], lo, hi))
    patches = n * prod(shape[1:-1]) * prod(w.shape[1:-1]) * c
    temps += [sim.alloc(4 * padded), sim.alloc(4 * patches)]
    tasks = 4
    if w.itemsize != 4 or not w.row_contiguous or groups > 1:
        temps.append(sim.alloc(4 * w.size))
        tasks += 1
    if flip:
        temps.append(sim.alloc(4 * w.size))
        tasks += 2
    if _ITEMSIZE.get(dtype, 4) != 4:
        temps.append(sim.alloc(4 * prod(shape)))
        tasks += 1
    return tasks


def unmerged_views(graph: OpGraph) -> OpGraph:
    """`graph` with one copy of each single-output view per consumer (module docstring).

    Export's simplification merges views that the model computed once per use; the
    real graph MLX evaluates has each of them. Walking back to front, a view read by
    several ops is cloned for all but the first, so chains of views unmerge whole. A
    view read only by slices (`qkv[0], qkv[1], qkv[2]`) is the idiom of one shared
    view and stays one.
    """
    ops = [Op(op.name, list(op.inputs), op.outputs, op.args) for op in graph.ops]
    users: dict[str, list[Op]] = {}
    for op in ops:
        for i in dict.fromkeys(op.inputs):
            users.setdefault(i, []).append(op)
    outputs = set(graph.outputs)
    clones: dict[int, list[Op]] = {}
    for k in range(len(ops) - 1, -1, -1):
        op = ops[k]
        if op.name not in _VIEWS or op.name == "Depends" or len(op.outputs) != 1:
            continue   # (Depends: compile markers, read once per call)
        oid, shape, dtype = op.outputs[0]
        readers = users.get(oid, [])
        if len(readers) > 1 and all(r.name in ("Slice", "Split", "Gather") for r in readers):
            continue   # parts of one array (`qkv[0], qkv[1], qkv[2]`): one view, shared
        for n, reader in enumerate(readers if oid in outputs else readers[1:]):
            new_id = f"{oid}~{n}"
            reader.inputs = [new_id if i == oid else i for i in reader.inputs]
            clone = Op(op.name, list(op.inputs), [(new_id, shape, dtype)], op.args)
            clones.setdefault(k, []).append(clone)
            for i in dict.fromkeys(op.inputs):
                users.setdefault(i, []).append(clone)
    if not clones:
        return graph
    merged: list[Op] = []
    for k, op in enumerate(ops):
        merged.append(op)
        merged.extend(clones.get(k, []))
    return OpGraph(merged, list(graph.outputs), graph.resident)


def simulate_peak(graph: OpGraph) -> int:
    """Peak bytes allocated while `mx.eval` runs `graph` on the CPU (module docstring)."""
    sim = _Simulator(graph)
    for k in eval_order(graph):
        sim.run(graph.ops[k])
    return sim.peak


def forward_peak_bytes(model: Any, args: tuple, kwargs: dict, prov: Any) -> int | None:
    """Simulated peak of `model(*args, **kwargs)` beyond weights and inputs; None if not exportable.

    Weights are swapped for lazy placeholders (as for counting costs), so nothing is
    evaluated and checkpoint-backed arrays are never read.
    """
    from .call_costs import _split_activations, placeholder_weights
    from .provenance import iter_arrays

    found: list = []
    rebuild = _split_activations((args, kwargs), prov, found)

    def fn(*values):
        a, k = rebuild(list(values))
        return list(iter_arrays(model(*a, **k)))

    try:
        with placeholder_weights(model):
            graph = replay_graph(fn, *found)
    except Exception:  # data-dependent code (.item(), mx.eval) cannot be exported
        return None
    return simulate_peak(graph)


def replay_graph(fn: Callable, *inputs: Any) -> OpGraph:
    """The primitives `mx.eval` would run for `fn(*inputs)`: exported, views unmerged, kernels fused."""
    import mlx.core as mx

    from .tracer import uncompiled

    starts, ends = mx.zeros((2, 7, 1, 8), mx.uint8), mx.zeros((3, 1, 4, 1, 5), mx.uint8)

    def marked(compiled_fn: Callable, a: tuple, k: dict) -> Any:
        """Run a compiled function's Python body between Depends markers (fused_graph)."""
        a, k = _mark(a, starts), _mark(k, starts)
        return _mark(compiled_fn(*a, **k), ends)

    with uncompiled(marked):
        graph = export_graph(fn, *inputs)
    # unmerge first: a view merged across two compiled calls would join their kernels
    return fused_graph(unmerged_views(graph), starts.shape, ends.shape)


def _mark(tree: Any, marker: Any) -> Any:
    """`tree` with each array passed through `mx.depends(.., [marker])`."""
    import mlx.core as mx

    if isinstance(tree, mx.array):
        return mx.depends([tree], [marker])[0]
    if isinstance(tree, (list, tuple)) and not hasattr(tree, "_fields"):
        return type(tree)(_mark(t, marker) for t in tree)
    if type(tree) is dict:
        return {key: _mark(v, marker) for key, v in tree.items()}
    return tree


def fused_graph(graph: OpGraph, start_shape: tuple, end_shape: tuple) -> OpGraph:
    """Collapse the elementwise ops between compile markers into one op per fused kernel."""
    marker_of = {aid: shape for aid, (shape, dtype) in graph.resident.items()
                 if dtype == "uint8" and shape in (start_shape, end_shape)}
    producer = {o[0]: k for k, op in enumerate(graph.ops) for o in op.outputs}
    is_marker = [op.name == "Depends" and marker_of.get(op.inputs[-1]) is not None for op in graph.ops]
    region: set[int] = set()
    for k, op in enumerate(graph.ops):   # walk back from each end marker to the start markers
        if not (is_marker[k] and marker_of[op.inputs[-1]] == end_shape):
            continue
        stack = [producer[i] for i in op.inputs[:-1] if i in producer]
        while stack:
            j = stack.pop()
            if j in region or (is_marker[j] and marker_of[graph.ops[j].inputs[-1]] == start_shape):
                continue
            region.add(j)
            stack.extend(producer[i] for i in graph.ops[j].inputs if i in producer)
    fusable = {k for k in region if not is_marker[k] and graph.ops[k].name in _ELEMENTWISE | {"Broadcast"}}
    parent = {k: k for k in fusable}

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    used_by: dict[str, set[int]] = {}
    for k, op in enumerate(graph.ops):
        for i in op.inputs:
            used_by.setdefault(i, set()).add(k)
    outputs = set(graph.outputs)
    for k in fusable:   # a producer joins its consumers' kernel when only fusable ops read it
        for i in graph.ops[k].inputs:
            j = producer.get(i)
            if j in fusable and all(used_by.get(o[0], set()) <= fusable and o[0] not in outputs
                                    for o in graph.ops[j].outputs):
                parent[root(j)] = root(k)
    groups: dict[int, list[int]] = {}
    for k in sorted(fusable):
        groups.setdefault(root(k), []).append(k)
    ops: list[Op] = []
    placed: dict[int, Op] = {}
    for members in groups.values():
        if not any(graph.ops[k].name != "Broadcast" for k in members):
            continue   # broadcasts alone are views
        inside = set(members)
        made = {o[0] for k in members for o in graph.ops[k].outputs}
        ins = list(dict.fromkeys(i for k in members for i in graph.ops[k].inputs if i not in made))
        outs = [o for k in members for o in graph.ops[k].outputs
                if used_by.get(o[0], set()) - inside or o[0] in graph.outputs]
        placed[max(members)] = Op("Compiled", ins, outs)
        for k in members:
            placed.setdefault(k, None)
    for k, op in enumerate(graph.ops):
        if k in placed:
            if placed[k] is not None:
                ops.append(placed[k])
        elif not is_marker[k]:
            ops.append(op)
    # The markers themselves are not MLX's: each marked array is its input again.
    alias = {o[0]: op.inputs[j] for k, op in enumerate(graph.ops) if is_marker[k]
             for j, o in enumerate(op.outputs)}

    def real(aid: str) -> str:
        while aid in alias:
            aid = alias[aid]
        return aid

    def real_inputs(op: Op) -> list[str]:
        ins = [real(i) for i in op.inputs]
        # a kernel reads each array once (its markers made one input look like two)
        return list(dict.fromkeys(ins)) if op.name == "Compiled" else ins

    ops = [Op(op.name, real_inputs(op), op.outputs, op.args) for op in ops]
    fused = OpGraph(ops, [real(o) for o in graph.outputs], graph.resident)
    return fused if _acyclic(fused) else _unmarked(graph, real)   # a kernel never waits on itself


def _unmarked(graph: OpGraph, real: Callable[[str], str]) -> OpGraph:
    """`graph` without the compile markers (nothing fused)."""
    ops = [Op(op.name, [real(i) for i in op.inputs], op.outputs, op.args) for op in graph.ops
           if real(op.outputs[0][0]) == op.outputs[0][0]]
    return OpGraph(ops, [real(o) for o in graph.outputs], graph.resident)


def _acyclic(graph: OpGraph) -> bool:
    import networkx as nx

    producer = {o[0]: k for k, op in enumerate(graph.ops) for o in op.outputs}
    edges = [(producer[i], k) for k, op in enumerate(graph.ops) for i in op.inputs if i in producer]
    dag = nx.DiGraph(edges)
    dag.add_nodes_from(range(len(graph.ops)))
    return nx.is_directed_acyclic_graph(dag)
