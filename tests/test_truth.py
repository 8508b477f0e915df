"""Issue 11, "truth" cases: no hang, no silent wrong number, the model left as it was.

Each test names the case of the issue it covers. Nothing big is evaluated.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import pytest

from mlx_report.errors import ModelLoadError, TraceError
from mlx_report.trace import trace
from mlx_report.trace.tree import find_cycle
from tests.models import edge_cases as ec

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlx_report", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def write_model(folder: Path, body: str, name: str = "model.py") -> str:
    path = folder / name
    path.write_text("import mlx.core as mx\nimport mlx.nn as nn\n" + textwrap.dedent(body))
    return str(path)


def one_error(result: subprocess.CompletedProcess, code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# --- 1. a module that contains itself ------------------------------------------------------

def test_cycle_found_without_walking_forever():
    assert find_cycle(ec.SelfContaining()) == ("me", "")
    assert find_cycle(ec.AncestorCycle()) == ("blocks.0.back.0", "")
    assert find_cycle(ec.ReusedModule()) is None   # a shared module is no cycle


def test_cycle_refused_by_trace():
    with pytest.raises(ModelLoadError, match="cycle: me refers back to the model itself"):
        trace(ec.SelfContaining(), mx.zeros((1, 4)))


def test_cycle_refused_by_cli_without_hanging(tmp_path):
    path = write_model(tmp_path, """
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)
                self.inner = nn.Sequential(nn.ReLU())
                self.inner.owner = self
            def __call__(self, x):
                return self.inner(self.fc(x))
        def model():
            return M()
        """)
    line = one_error(run_cli("summary", path, "--input", "1,4", timeout=30), 3)
    assert "inner.owner refers back to the model itself" in line


# --- 2. data-dependent model with a huge input ----------------------------------------------

def _limit_memory() -> None:  # a regression must fail the test, not take the machine down
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))


DATA_DEPENDENT = """
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
        def __call__(self, x):
            y = self.conv(x)
            if y.sum() > 0:          # reads a value: MLX evaluates the convolution
                return y * 2
            mx.eval(y)
            return y
    def model():
        return M()
    """


def test_eval_peak_bytes_is_a_liveness_sweep():
    from mlx_report.trace.eval_bound import eval_peak_bytes
    x = mx.zeros((1000, 1000))                       # Full: 4 MB; exp: 4 MB; *2: 4 MB
    assert eval_peak_bytes([(mx.exp(x) * 2).sum()]) == 8_000_000   # two live at once
    done = mx.zeros((10,))
    mx.eval(done)
    assert eval_peak_bytes([done]) == 0              # already evaluated: nothing new


@pytest.mark.parametrize("shape", ["1,20000,20000,3", "1,100000,100000,3"])
def test_huge_input_to_data_dependent_model_is_refused(tmp_path, shape):
    path = write_model(tmp_path, DATA_DEPENDENT)
    result = subprocess.run([sys.executable, "-m", "mlx_report", "summary", path, "--input", shape],
                            cwd=ROOT, capture_output=True, text=True, timeout=60,
                            preexec_fn=_limit_memory)
    line = one_error(result, 4)
    assert "reads array values during its forward pass (__bool__() in the model)" in line
    assert "GB of arrays at once; mlx-report evaluates at most 1.0 GB" in line


def test_small_input_to_data_dependent_model_still_traces(tmp_path):
    path = write_model(tmp_path, DATA_DEPENDENT)
    result = run_cli("summary", path, "--input", "1,16,16,3")
    assert result.returncode == 0, result.stderr
    assert "Data-dependent model" in result.stdout


def test_mx_eval_of_big_activation_is_refused():
    class EvalsBig(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)

        def __call__(self, x):
            h = mx.broadcast_to(self.fc(x)[:, None, :], (x.shape[0], 40_000_000, 8)) + 1.0
            mx.eval(h)               # 1.28 GB at batch 1
            return h

    with pytest.raises(TraceError, match=r"\(eval\(\) in the model\).*1\.3 GB of arrays"):
        trace(EvalsBig(), mx.zeros((1, 8)))


# --- 3. mx.grad / vmap / value_and_grad / checkpoint inside a forward -----------------------

def test_grad_inside_forward_is_the_gradient():
    from mlx_report.trace.tracer import run_trace
    model, x = ec.GradInForward(), mx.random.normal((2, 4), key=mx.random.key(0))
    _, out = run_trace(model, (x,), {})
    h = x @ model.fc.weight.T + model.fc.bias
    assert mx.allclose(out, h + 2 * h @ model.fc.weight).item()   # not fc(x) + fc(x)


def test_vmap_value_and_grad_checkpoint_run_for_real():
    from mlx_report.trace.tracer import run_trace
    model, x = ec.TransformsInForward(), mx.random.normal((3, 4), key=mx.random.key(1))
    _, out = run_trace(model, (x,), {})
    inner = x * mx.arange(4) + 3 * x ** 2 + 2 * x + (x ** 3).sum()
    assert mx.allclose(out, model.fc(inner), atol=1e-5).item()


def test_module_calls_inside_a_transform_are_the_callers_work():
    g = trace(ec.TransformsInForward(), mx.zeros((3, 4)))
    assert [g.node(n)["path"] for n in g.calls()] == ["", "fc"]
    assert g.node("c1")["macs_total"] == 3 * 4 * 4


# --- 4. iterating over an activation ---------------------------------------------------------

def test_iterating_over_rows_keeps_provenance_and_macs():
    rows, dims, hidden, experts = 6, 8, 16, 2
    g = trace(ec.RowLoop(dims, hidden, experts), mx.zeros((rows, dims)))
    router = rows * dims * experts
    mix = rows * experts * dims                   # h @ zeros: a real matmul
    per_row = dims * hidden
    assert g.totals.macs == router + mix + rows * per_row
    calls = [g.node(n) for n in g.calls() if g.node(n)["path"].startswith("experts.")]
    assert len(calls) == rows and all(c["macs_total"] == per_row for c in calls)
    # each expert call is fed by the model's own code (the row), not cut off from the input
    assert all(g.graph.in_degree(n) > 0 for n in g.calls() if g.node(n)["path"].startswith("experts."))


# --- 5. a module whose __init__ skips super().__init__() ------------------------------------

def test_module_without_super_init_traces_correctly_and_is_left_as_it_was():
    model = ec.HoldsBare(4)
    g = trace(model, mx.zeros((2, 4)))
    assert g.totals.params == g.totals.trainable_params == 4 * 4 + 4 + 4
    assert g.totals.macs == 2 * 4 * 4
    assert [g.node(n)["path"] for n in g.calls()] == ["", "fc", "scale"]
    assert any("scale (BareScale) skips nn.Module.__init__()" in w for w in g.meta["warnings"])
    assert "_training" not in vars(model.scale) and "_no_grad" not in vars(model.scale)


def test_module_without_super_init_from_the_cli_warns_once(tmp_path):
    path = write_model(tmp_path, """
        class Bare(nn.Module):
            def __init__(self):
                self.weight = mx.ones((4,))
            def __call__(self, x):
                return x * self.weight
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)
                self.s = Bare()
            def __call__(self, x):
                return self.s(self.fc(x))
        def model():
            return M()
        """)
    result = run_cli("summary", path + ":model", "--input", "1,4")
    assert result.returncode == 0, result.stderr
    assert "Total params: 24" in result.stdout
    assert result.stderr.splitlines() == [
        "warning: s (Bare) skips nn.Module.__init__(): traced with its defaults "
        "(training mode, nothing frozen), as MLX would have set them"]


# --- 6. dataclass and NamedTuple outputs ----------------------------------------------------

def test_dataclass_outputs_and_arguments_are_walked():
    from mlx_report.trace.provenance import named_arrays
    g = trace(ec.DataclassOut(8, 16), mx.zeros((2, 8)))
    outs = sorted((g.node(n)["name"], tuple(g.node(n)["shapes"][0])) for n in g.outputs())
    assert outs == [("hidden", (2, 8)), ("logits", (2, 16))]
    head = next(g.node(n) for n in g.calls() if g.node(n)["path"] == "head")
    assert head["input_shapes"] == [(2, 8), (2, 8)] and head["output_shapes"] == [(2, 16), (2, 8)]
    assert head["macs_total"] == 2 * 8 * 16      # activations inside a dataclass argument
    assert g.totals.macs == 2 * 8 * 8 + 2 * 8 * 16
    assert g.graph.has_edge("c0", "out:0") and g.graph.has_edge("c0", "out:1")
    assert [k for k, _ in named_arrays(ec.Pair(mx.zeros(1), mx.zeros(1)))] == ["first", "second"]


# --- 7. two threads tracing at once ---------------------------------------------------------

def _summary_of(g) -> tuple:
    return (g.totals.macs, g.totals.params, len(list(g.calls())), sorted(g.graph.edges()),
            g.totals.peak_activation_bytes)


def test_two_threads_tracing_at_once_get_what_one_gets_alone():
    import threading
    small, big = ec.Slow(8, 3), ec.Slow(16, 5)
    alone = [_summary_of(trace(small, mx.zeros((2, 8)))), _summary_of(trace(big, mx.zeros((4, 16))))]
    results: dict[int, tuple] = {}
    errors: list[BaseException] = []

    def run(i, model, x):
        try:
            results[i] = _summary_of(trace(model, x))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(0, small, mx.zeros((2, 8)))),
               threading.Thread(target=run, args=(1, big, mx.zeros((4, 16))))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and [results[0], results[1]] == alone
    assert nn.Linear.__call__.__name__ == "__call__" and not hasattr(nn.Linear.__call__, "__wrapped__")


def test_trace_inside_a_traced_forward_is_refused_clearly():
    class TracesItself(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def __call__(self, x):
            trace(self.fc, x)
            return self.fc(x)

    with pytest.raises(TraceError, match="a trace was started inside a forward pass being traced"):
        trace(TracesItself(), mx.zeros((1, 4)))
    assert not hasattr(nn.Linear.__call__, "__wrapped__")


# --- 8. flipped and input-dilated convolutions with stride ----------------------------------

def _brute_force_conv_macs(x_shape, w_shape, stride, pad_lo, kernel_dilation, input_dilation,
                           groups, out_shape) -> int:
    """Nonzero products of an explicit convolution over the dilated, padded input."""
    import itertools
    import numpy as np
    spatial = x_shape[1:-1]
    real = np.ones(spatial, dtype=bool)
    dilated = np.zeros([(n - 1) * d + 1 for n, d in zip(spatial, input_dilation)], dtype=bool)
    dilated[tuple(slice(None, None, d) for d in input_dilation)] = real
    products = 0
    for o in itertools.product(*(range(n) for n in out_shape[1:-1])):
        for k in itertools.product(*(range(n) for n in w_shape[1:-1])):
            p = [oi * s + ki * kd - lo for oi, ki, s, kd, lo in zip(o, k, stride, kernel_dilation, pad_lo)]
            if all(0 <= pi < n for pi, n in zip(p, dilated.shape)) and dilated[tuple(p)]:
                products += 1
    return x_shape[0] * products * w_shape[0] * w_shape[-1]


CONVS = [  # (input, weight, stride, padding (lo, hi), kernel dilation, input dilation, groups, flip)
    ((1, 9, 7, 3), (4, 3, 2, 3), (2, 1), ([1, 0], [2, 1]), (1, 2), (2, 3), 1, True),
    ((2, 8, 8, 4), (6, 3, 3, 2), (2, 2), ([1, 1], [1, 1]), (1, 1), (2, 2), 2, False),
    ((1, 10, 5), (3, 4, 5), (3,), ([2], [0]), (2,), (3,), 1, True),
    ((1, 6, 6, 2), (2, 3, 3, 2), (2, 2), ([1, 1], [1, 1]), (1, 1), (1, 1), 1, True),   # flip only
]


@pytest.mark.parametrize("case", CONVS)
def test_convolution_macs_match_brute_force(case):
    from mlx_report.trace.costs import count_function
    x_shape, w_shape, stride, padding, kd, idil, groups, flip = case
    w = mx.zeros(w_shape)
    fn = lambda x: mx.conv_general(x, w, stride=stride, padding=padding, kernel_dilation=kd,  # noqa: E731
                                   input_dilation=idil, groups=groups, flip=flip)
    out_shape = fn(mx.zeros(x_shape)).shape
    expected = (_brute_force_conv_macs(x_shape, w_shape, stride, padding[0], kd, idil, groups, out_shape)
                if any(d > 1 for d in idil) else
                # plain convolution: every output element times the kernel (padding counted)
                mx.zeros(out_shape).size * int(mx.zeros(w_shape[1:]).size))
    assert count_function(fn, mx.zeros(x_shape)).macs == expected


def test_transposed_convolution_is_input_times_kernel():
    from mlx_report.trace.costs import count_function
    w = mx.zeros((4, 3, 3, 2))                       # conv_transpose: (C_out, kH, kW, C_in)
    macs = count_function(lambda x: mx.conv_transpose2d(x, w, stride=2), mx.zeros((1, 5, 5, 2))).macs
    assert macs == 5 * 5 * 2 * 4 * 3 * 3


# --- 9. identical work merged by export, computed twice by eager MLX ------------------------

class TwiceTheSame(nn.Module):
    def __init__(self, dims: int = 8):
        super().__init__()
        self.w = mx.zeros((dims, dims))
        self.fc = nn.Linear(dims, dims)

    def __call__(self, x):
        return (x @ self.w) + (x @ self.w) + self.fc(x) + self.fc(x) + (self.fc.weight @ self.fc.weight)[:2]


def test_duplicate_identical_work_is_counted_as_eager_mlx_runs_it():
    g = trace(TwiceTheSame(8), mx.zeros((2, 8)))
    root = g.node("c0")
    # eager MLX computes each of the two x @ w (export alone would merge them into one);
    # w @ w does not depend on the input: not counted
    assert root["macs_self"] == 2 * (2 * 8 * 8)
    assert [g.node(n)["macs_total"] for n in g.children("c0")] == [2 * 8 * 8, 2 * 8 * 8]
    assert g.totals.macs == 4 * (2 * 8 * 8)


def test_grad_inside_forward_counts_forward_and_backward():
    g = trace(ec.GradInForward(4), mx.zeros((2, 4)))
    fc = 2 * 4 * 4
    assert g.node("c1")["macs_total"] == fc          # the fc call outside the transform
    assert g.node("c0")["macs_self"] == 2 * fc       # grad: its forward fc, and dL/dx = dh @ W
    assert g.totals.macs == 3 * fc


# --- 10. SegmentedMM / LUF and every primitive MLX has -------------------------------------

class Unexportable(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = mx.zeros((6, 5))

    def __call__(self, x):
        y = mx.segmented_mm(x, self.w, mx.array([[0, 2], [2, 6]]))      # (2, 4, 5)
        _, _, u = mx.linalg.lu(x[:, :4] @ mx.zeros((4, 4)), stream=mx.cpu)
        lu, _ = mx.linalg.lu_factor(x[:, :3].T @ x[:, :3], stream=mx.cpu)  # (3, 3)
        return y.sum(0) + u.sum() + lu.sum()


def test_segmented_mm_and_lu_have_analytic_macs():
    g = trace(Unexportable(), mx.zeros((4, 6)))
    seg = 4 * 6 * 5                                   # segments partition K = 6
    lu4 = sum((4 - k - 1) ** 2 for k in range(4))     # 14: about n^3/3
    lu3 = sum((3 - k - 1) ** 2 for k in range(3))
    assert g.uncounted_ops == {} and "warnings" not in g.meta
    assert g.totals.macs == seg + 4 * 4 * 4 + lu4 + 3 * 4 * 3 + lu3


def _mlx_primitive_classes() -> set[str]:
    """Every concrete primitive class of the installed MLX, from its headers."""
    import re
    include = Path(mx.__file__).parent.parent / "include" / "mlx"
    if not include.is_dir():
        include = Path(mx.__file__).parent / "include" / "mlx"
    text = "".join((include / f).read_text() for f in
                   ("primitives.h", "fast_primitives.h", "distributed/primitives.h"))
    return set(re.findall(r"^class (?:MLX_API )?(\w+) : public \w+", text, flags=re.M))


def test_every_mlx_primitive_has_a_rule_or_a_documented_zero_or_is_loudly_uncounted():
    from mlx_report.trace import costs
    names = _mlx_primitive_classes()
    assert len(names) > 100 and {"Matmul", "SegmentedMM", "LUF", "Convolution"} <= names
    categories = {
        "mac rule": set(costs.MAC_RULES) | {"Convolution"},
        "analytic, unexportable (standins.py)": {"SegmentedMM", "LUF"},
        "elementwise": costs.ELEMENTWISE | costs.REDUCTIONS | set(costs.FUSED_FLOPS_PER_ELEMENT),
        "free (documented 0)": costs.FREE,
        "no rule: uncounted, with a warning": costs.NO_RULE,
        "abstract": costs.ABSTRACT,
    }
    missing = sorted(n for n in names if not any(n in c for c in categories.values()))
    assert not missing, f"primitives with no rule and no documented 0: {missing}"


def test_uncounted_primitive_is_a_loud_warning(tmp_path):
    path = write_model(tmp_path, """
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)
            def __call__(self, x):
                return self.fc(mx.linalg.svd(x, compute_uv=False, stream=mx.cpu)[None])
        def model():
            return M()
        """)
    result = run_cli("summary", path + ":model", "--input", "4,4")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert warnings == ["warning: uncounted work: SVD ×1 (no cost rule, or the call could not be "
                        "exported): total MACs and FLOPs leave it out"]


# --- 11. never-called modules ----------------------------------------------------------------

class IdleParts(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)                                   # 20 params, called
        self.head = nn.Linear(4, 10)                                # 50 params, never called
        self.aux = nn.Sequential(nn.Linear(4, 4), nn.ReLU())         # 20 params, never called

    def __call__(self, x):
        return self.fc(x)


def test_never_called_modules_are_shown_as_not_called_and_counted():
    from mlx_report.analysis.table import build_table
    from mlx_report.render.text import render_text
    g = trace(IdleParts(), mx.zeros((1, 4)))
    assert g.totals.params == 90
    assert [(e["path"], e["params"]) for e in g.meta["not_called"]] == [("aux", 20), ("head", 50)]
    expanded = build_table(g, depth=1)
    rows = {r.name: r for r in expanded.rows}
    assert rows["head"].type == "Linear, not called" and rows["head"].params == 50
    assert rows["aux"].params == 20 and rows["aux"].macs is None and rows["aux"].output_shapes == []
    assert sum(r.params or 0 for r in expanded.rows) == 90           # rows add up to the total
    assert not any(r.shared_params for r in expanded.rows)
    collapsed = build_table(g, depth=0).rows[0]
    assert collapsed.params == 90 and collapsed.shared_params == 0   # was "20 (+70 shared)"
    for table in (expanded, build_table(g, depth=0)):
        text = render_text(g, table)
        assert "shared" not in text
    assert "├─aux (Sequential, not called)" in render_text(g, expanded)


# --- 12. SystemExit and other BaseExceptions raised in a forward pass -----------------------

class Halts(nn.Module):
    """Changes its state (params, mode), then raises `error` mid-forward."""

    def __init__(self, error: BaseException):
        super().__init__()
        self.bn = nn.BatchNorm(4)
        self.fc = nn.Linear(4, 4)
        self.error = error

    def __call__(self, x):
        x = self.bn(x)                    # training mode: replaces running stats
        self.fc.weight = mx.zeros((4, 4))
        self.eval()
        raise self.error


class Custom(BaseException):
    pass


def _state(model):
    from mlx.utils import tree_flatten
    return ([(k, id(v)) for k, v in tree_flatten(model.parameters())],
            [m.training for _, m in model.named_modules()])


def _patches_undone() -> bool:
    return (not hasattr(nn.Linear.__call__, "__wrapped__") and not hasattr(nn.Module.__call__, "__wrapped__")
            and not hasattr(mx.matmul, "__wrapped__") and not hasattr(mx.array.__add__, "__wrapped__"))


@pytest.mark.parametrize("error, text", [
    (SystemExit(3), "SystemExit: the model called sys.exit(3)"),
    (SystemExit(), "SystemExit: the model called sys.exit()"),
    (Custom("stop"), "Custom: stop"),
])
def test_base_exception_in_forward_is_a_trace_error_and_state_is_restored(error, text):
    model = Halts(error)
    before = _state(model)
    with pytest.raises(TraceError, match=re_escape(f"forward pass failed in (model) (Halts) "
                                                   f"with input shapes [(2, 4)]: {text}")):
        trace(model, mx.zeros((2, 4)))
    assert _state(model) == before and _patches_undone()


def test_keyboard_interrupt_in_forward_propagates_with_state_restored():
    model = Halts(KeyboardInterrupt())
    before = _state(model)
    with pytest.raises(KeyboardInterrupt):
        trace(model, mx.zeros((2, 4)))
    assert _state(model) == before and _patches_undone()


def test_sys_exit_in_forward_from_the_cli_is_one_error_line(tmp_path):
    path = write_model(tmp_path, """
        import sys
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)
            def __call__(self, x):
                sys.exit(3)
        def model():
            return M()
        """)
    line = one_error(run_cli("summary", path + ":model", "--input", "1,4", "-o", str(tmp_path / "s.txt")), 4)
    assert line == ("error: forward pass failed in (model) (M) with input shapes [(1, 4)]: "
                    "SystemExit: the model called sys.exit(3)")
    assert not (tmp_path / "s.txt").exists()


def re_escape(text: str) -> str:
    import re
    return re.escape(text)
