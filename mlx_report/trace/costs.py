"""Per-primitive cost rules, applied to the op graph `mx.export_function` reports.

A MAC is one multiply-accumulate. Matmul-like primitives and convolutions have MAC
rules; elementwise, reduction and normalisation primitives count elementwise FLOPs;
data movement is free. Any primitive with no rule is reported as uncounted, never
silently zero. Only primitives that depend on the exported function's inputs are
counted, so lazy weight initialisation (RandomBits, ...) is left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import gcd, prod
from typing import Any, Callable

Shape = tuple[int, ...]

# Free: these move, view or convert data.
FREE = {
    "Reshape", "Transpose", "Broadcast", "BroadcastAxes", "Slice", "SliceUpdate",
    "DynamicSlice", "DynamicSliceUpdate", "Concatenate", "AsType", "Copy", "Gather",
    "GatherAxis", "Scatter", "ScatterAxis", "Pad", "Split", "Squeeze", "ExpandDims",
    "Flatten", "Unflatten", "StopGradient", "AsStrided", "Full", "Arange", "Contiguous",
    "Depends", "NumberOfElements", "Identity", "Load", "RandomBits", "View", "Select",
    "Equal", "NotEqual", "Greater", "GreaterEqual", "Less", "LessEqual", "LogicalNot",
    "LogicalAnd", "LogicalOr", "Sort", "ArgSort", "ArgPartition", "Partition", "Real",
    "Imag", "BitwiseBinary", "BitwiseInvert", "Floor", "Ceil", "Round", "Sign",
    "MaskedScatter", "SearchSorted",
    # Distributed communication: data movement between processes, not arithmetic here.
    "AllGather", "AllReduce", "ReduceScatter", "Send", "Recv",
}
# Arithmetic with no closed-form count (iterative decompositions, user kernels, backward
# fused ops, compiled groups): always reported as uncounted, with a warning, never 0.
NO_RULE = {
    "SVD", "Eig", "Eigh", "CustomKernel", "CustomTransforms", "Compiled", "CrossEntropy",
    "CrossEntropyVJP", "GatedDeltaUpdate", "GatedDeltaUpdateVJP", "RMSNormVJP", "LayerNormVJP",
    "ScaledDotProductAttentionVJP", "FFT", "Hadamard",
}
# Abstract base classes of MLX's primitives: never a node of a graph.
ABSTRACT = {"Primitive", "UnaryPrimitive", "Custom", "DistPrimitive"}
# One FLOP per output element.
ELEMENTWISE = {
    "Add", "Subtract", "Multiply", "Divide", "Maximum", "Minimum", "Negative", "Abs",
    "Square", "Sqrt", "Rsqrt", "Exp", "Expm1", "Log", "Log1p", "Sin", "Cos", "Tan",
    "Tanh", "Sinh", "Cosh", "Sigmoid", "Erf", "ErfInv", "Power", "Remainder",
    "DivMod", "LogAddExp", "ArcTan", "ArcTan2", "ArcSin", "ArcCos", "ArcTanh",
    "ArcSinh", "ArcCosh", "Conjugate", "FloorDivide", "Dequantize", "Quantize", "ConvertFP8",
}
# One FLOP per input element.
REDUCTIONS = {"Reduce", "ArgReduce", "Scan", "LogSumExp", "CumSum", "Cummax", "Cummin"}
# FLOPs per input element of fused normalisation-like primitives (stated conventions).
FUSED_FLOPS_PER_ELEMENT = {"Softmax": 3, "RMSNorm": 4, "LayerNorm": 7, "RoPE": 3}


def _matmul(ins: list[Shape], out: Shape) -> int:
    return prod(out) * ins[0][-1]


def _taps_on_input(out: int, kernel: int, stride: int, pad_lo: int, kernel_dilation: int,
                   input_dilation: int, length: int) -> int:
    """(output position, kernel tap) pairs of one spatial axis that read a real input element.

    Position o, tap k reads p = o*stride + k*kernel_dilation - pad_lo of the input dilated
    by `input_dilation` (length (length-1)*input_dilation + 1): a real element when
    0 <= p < that length and p is a multiple of `input_dilation`; others are inserted zeros.
    """
    span = (length - 1) * input_dilation + 1
    count = 0
    for k in range(kernel):
        c = k * kernel_dilation - pad_lo
        lo = max(0, -(c // stride))              # first o with o*stride + c >= 0
        hi = min(out - 1, (span - 1 - c) // stride)
        if hi < lo:
            continue
        if input_dilation == 1:
            count += hi - lo + 1
            continue
        period = input_dilation // gcd(stride, input_dilation)   # residues repeat in o
        hits = [o for o in range(lo, min(lo + period, hi + 1)) if (o * stride + c) % input_dilation == 0]
        for o in hits:
            count += (hi - o) // period + 1
    return count


def _convolution(ins: list[Shape], out: Shape, args: list | None = None) -> int:
    # MLX weights are (C_out, *kernel, C_in / groups): MACs per output element are the
    # kernel volume times the input channels of its group (padding counted, as
    # PyTorch and fvcore count it). An input-dilated convolution (how a transposed
    # convolution runs; arguments: stride, padding lo, padding hi, kernel dilation,
    # input dilation, groups, flip) multiplies inserted zeros, which is no work: count
    # the products that read a real input element, exactly, axis by axis. Flipping the
    # kernel changes no count. With stride 1 and no padding cut this is every input
    # element times the whole kernel (PyTorch's ConvTranspose count).
    input_dilation = args[4] if args and len(args) > 4 else None
    if not input_dilation or all(d == 1 for d in input_dilation):
        return prod(out) * prod(ins[1][1:])
    stride, pad_lo, kernel_dilation = args[0], args[1], args[3]
    x, w = ins[0], ins[1]
    pairs = prod(_taps_on_input(out[1 + i], w[1 + i], stride[i], pad_lo[i], kernel_dilation[i],
                                input_dilation[i], x[1 + i]) for i in range(len(x) - 2))
    return out[0] * pairs * w[0] * w[-1]


def _attention(ins: list[Shape], out: Shape) -> int:
    # q (B, H, L, D), k (B, Hkv, S, D), v (B, Hkv, S, Dv): scores then values.
    q, k = ins[0], ins[1]
    b, h, l, d = q
    s = k[-2]
    return b * h * l * s * d + prod(out) * s


def _block_masked_mm(ins: list[Shape], out: Shape) -> int:
    return prod(out) * ins[0][-1]


def segmented_mm_macs(a: Shape, b: Shape) -> int:
    """SegmentedMM: a (..., M, K) times b (..., K, N) in segments of K.

    The segments' bounds are data; counted as segments that partition K once (how
    MoE gradients use it), i.e. one (M, K) x (K, N) matmul per batch element.
    """
    return prod(a[:-2]) * a[-2] * a[-1] * b[-1]


def lu_macs(a: Shape) -> int:
    """LU factorisation (LUF) of (..., M, N) by Gaussian elimination: the trailing update
    of step k is (M-k-1) x (N-k-1) multiply-adds (about N^3/3 for a square matrix)."""
    m, n = a[-2], a[-1]
    return prod(a[:-2]) * sum((m - k - 1) * (n - k - 1) for k in range(min(m, n)))


def _square(a: Shape) -> tuple[int, int]:
    return prod(a[:-2]), a[-1]


def _cholesky(ins: list[Shape], out: Shape) -> int:
    batch, n = _square(ins[0])          # n^3/6 multiply-adds (Golub & Van Loan)
    return batch * n ** 3 // 6


def _inverse(ins: list[Shape], out: Shape) -> int:
    batch, n = _square(ins[0])          # LU plus n solves: n^3 multiply-adds
    return batch * n ** 3


def _qr(ins: list[Shape], out: Shape) -> int:
    m, n = ins[0][-2], ins[0][-1]       # Householder: m n^2 - n^3/3 multiply-adds (m >= n)
    k = min(m, n)
    return prod(ins[0][:-2]) * (max(m, n) * k * k - k ** 3 // 3)


MAC_RULES: dict[str, Callable[[list[Shape], Shape], int]] = {
    "Matmul": _matmul,
    "AddMM": _matmul,
    "BlockMaskedMM": _block_masked_mm,
    "GatherMM": _matmul,
    "QuantizedMatmul": _matmul,     # K comes from the unpacked activation, not the packed weight
    "GatherQMM": _matmul,
    "GatherQQMM": _matmul,
    "QQMatmul": _matmul,
    "Cholesky": _cholesky,
    "Inverse": _inverse,
    "QRF": _qr,
    "ScaledDotProductAttention": _attention,
}


@dataclass
class Cost:
    """MACs, elementwise FLOPs and uncounted primitives of one function."""

    macs: int = 0
    elementwise_flops: int = 0
    uncounted: dict[str, int] = field(default_factory=dict)

    def __sub__(self, other: "Cost") -> "Cost":
        uncounted = dict(self.uncounted)
        for name, n in other.uncounted.items():
            uncounted[name] = uncounted.get(name, 0) - n
        return Cost(
            self.macs - other.macs,
            self.elementwise_flops - other.elementwise_flops,
            {k: v for k, v in uncounted.items() if v > 0},
        )

    def __add__(self, other: "Cost") -> "Cost":
        uncounted = dict(self.uncounted)
        for name, n in other.uncounted.items():
            uncounted[name] = uncounted.get(name, 0) + n
        return Cost(self.macs + other.macs, self.elementwise_flops + other.elementwise_flops, uncounted)


def primitive_cost(name: str, ins: list[Shape], outs: list[Shape], cost: Cost,
                   args: list | None = None) -> None:
    """Add one primitive's cost to `cost`."""
    if name == "Convolution":
        cost.macs += _convolution(ins, outs[0], args)
    elif name in MAC_RULES:
        macs = MAC_RULES[name](ins, outs[0])
        cost.macs += macs
        if name == "AddMM":
            cost.elementwise_flops += prod(outs[0])
    elif name in ELEMENTWISE:
        cost.elementwise_flops += sum(prod(o) for o in outs)
    elif name in REDUCTIONS:
        cost.elementwise_flops += prod(ins[0]) if ins else 0
    elif name in FUSED_FLOPS_PER_ELEMENT:
        cost.elementwise_flops += FUSED_FLOPS_PER_ELEMENT[name] * prod(ins[0])
    elif name not in FREE:
        cost.uncounted[name] = cost.uncounted.get(name, 0) + 1


class _Collector:
    """Export callback: keeps primitives that depend on the inputs and costs them."""

    def __init__(self) -> None:
        self.cost = Cost()
        self.live: set[str] = set()

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "inputs":  # keyword inputs are listed here too
            self.live.update(item[0] for item in event["inputs"])
        elif kind == "primitive":
            if not any(i[0] in self.live for i in event["inputs"]):
                return
            for o in event["outputs"]:
                self.live.add(o[0])
            primitive_cost(
                event["name"],
                [tuple(i[1]) for i in event["inputs"]],
                [tuple(o[1]) for o in event["outputs"]],
                self.cost,
                event.get("arguments"),
            )


def count_function(fn: Callable, *inputs: Any) -> Cost:
    """Cost of `fn(*inputs)`, counted on its exported op graph without evaluating it."""
    import mlx.core as mx

    collector = _Collector()
    mx.export_function(collector, fn, *inputs)
    return collector.cost
