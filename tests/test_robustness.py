"""The robustness matrix of issue 6: every failure is one readable line, the documented
exit code, no traceback and no file written; the model is left exactly as it was.

Most CLI cases run in-process (typer's CliRunner, in a scratch directory) to keep the suite
fast; the Ctrl-C and memory cases run in a real subprocess. Exit codes (README "Exit
codes"): 2 input spec, 3 model load, 4 trace, 5 checkpoint, 6 render, 7 output,
8 `diff --fail-on` found a difference, 130 interrupted.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from mlx.utils import tree_flatten
from typer.testing import CliRunner

from tests.conftest import compile_enabled

import mlx_report
import mlx_report.cli
import mlx_report.output
from mlx_report.cli import app
from mlx_report.errors import MlxReportError, OutputError, TraceError
from mlx_report.output import write_atomic
from mlx_report.summary import ModelSummary

ROOT = Path(__file__).resolve().parent.parent
HEADER = "import mlx.core as mx\nimport mlx.nn as nn\n"
ACCEPTED = "accepted forms: 1,3,224,224 | 1,128:int32 | name=1,128:int32"
INTERRUPTED = "interrupted: nothing was written"

NET = HEADER + textwrap.dedent(
    """
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(8, 16)
            self.fc2 = nn.Linear(16, 4)

        def __call__(self, x):
            return self.fc2(nn.relu(self.fc1(x)))
    """
)


# --- helpers ---------------------------------------------------------------------------------

@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    exception: BaseException | None


def cli(*args: str) -> Run:
    """Run `mlx-report ARGS` in-process, in the current directory."""
    result = CliRunner().invoke(app, list(args), catch_exceptions=True)
    return Run(result.exit_code, result.stdout, result.stderr, result.exception)


def error_of(run: Run, code: int) -> str:
    """The one-line message of a failed run; asserts exit code, one line, no traceback."""
    assert run.code == code, (run.code, run.stderr, repr(run.exception))
    assert run.exception is None or isinstance(run.exception, SystemExit), repr(run.exception)
    assert "Traceback" not in run.stderr + run.stdout
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0].removeprefix("error: ")


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` (hidden ones too) with the sha256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def write_model(folder: Path, name: str, body: str, header: bool = True) -> Path:
    path = folder / name
    path.write_text((HEADER if header else "") + textwrap.dedent(body))
    return path


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch directory (the cwd) holding net.py and an empty out/ directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.py").write_text(NET)
    (tmp_path / "out").mkdir()
    return tmp_path


def fails_untouched(ws: Path, code: int, *args: str) -> str:
    """Run; assert `code`, one error line, and that no file under `ws` changed or appeared."""
    before = snapshot(ws)
    message = error_of(cli(*args), code)
    assert snapshot(ws) == before, "a failed run wrote or changed files"
    return message


def net_weights(**changes) -> dict[str, mx.array]:
    w = {"fc1.weight": mx.ones((16, 8)), "fc1.bias": mx.zeros((16,)),
         "fc2.weight": mx.ones((4, 16)), "fc2.bias": mx.zeros((4,))}
    w.update(changes)
    return {k: v for k, v in w.items() if v is not None}


def _all_module_classes() -> list[type]:
    seen, todo = [], [nn.Module]
    while todo:
        cls = todo.pop()
        if cls not in seen:
            seen.append(cls)
            todo.extend(cls.__subclasses__())
    return seen


class ModelState:
    """Everything a trace must leave as it found: parameters (by identity and value), classes,
    `__call__` of every nn.Module class, MLX's functions and array methods, modes, compile."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.params = tree_flatten(model.parameters())          # holds references: ids stay unique
        self.values = {k: np.array(v) for k, v in self.params}  # tiny models only
        self.trainable = [k for k, _ in tree_flatten(model.trainable_parameters())]
        self.modules = [(p, m, type(m), m.training, set(vars(m))) for p, m in model.named_modules()]
        self.class_calls = {c: vars(c).get("__call__") for c in _all_module_classes()}
        self.mlx_attrs = self._mlx_attrs()
        self.recursion_limit = sys.getrecursionlimit()
        self.compile = compile_enabled()

    @staticmethod
    def _mlx_attrs() -> dict[tuple[str, str], object]:
        spaces = {"mx": mx, "mx.fast": mx.fast, "mx.array": mx.array, "compiled": type(nn.gelu)}
        spaces.update({n: m for n, m in list(sys.modules.items()) if n.startswith("mlx.nn")})
        return {(s, k): v for s, ns in spaces.items() for k, v in list(vars(ns).items())}

    def assert_unchanged(self) -> None:
        after = tree_flatten(self.model.parameters())
        assert [k for k, _ in after] == [k for k, _ in self.params]
        for (k, a), (_, b) in zip(self.params, after):
            assert a is b, f"parameter {k} was replaced"
            assert np.array_equal(self.values[k], np.array(b), equal_nan=True), f"{k} changed value"
        assert [k for k, _ in tree_flatten(self.model.trainable_parameters())] == self.trainable
        now = [(p, m, type(m), m.training, set(vars(m))) for p, m in self.model.named_modules()]
        assert now == self.modules, "modules, classes, attributes or train/eval mode changed"
        for cls, call in self.class_calls.items():
            assert vars(cls).get("__call__") is call, f"{cls.__name__}.__call__ left patched"
        current = self._mlx_attrs()
        changed = [k for k, v in self.mlx_attrs.items() if current.get(k) is not v]
        assert not changed, f"MLX attributes left replaced: {changed[:5]}"
        assert sys.getrecursionlimit() == self.recursion_limit
        assert compile_enabled() == self.compile


class BNNet(nn.Module):
    """Linear -> BatchNorm -> Linear, in training mode (BatchNorm replaces its running stats)."""

    def __init__(self, fail: BaseException | None = None):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.bn = nn.BatchNorm(8)
        self.head = nn.Linear(8, 2)
        self.head.freeze()
        self.fail = fail

    def __call__(self, x):
        h = self.bn(self.fc(x))
        if self.fail is not None:
            raise self.fail
        return self.head(h)


# --- malformed --input (exit 2) -------------------------------------------------------------

@pytest.mark.parametrize("spec, reason", [
    ("1,,8", "empty dimension"),
    ("1,8:foo", "unknown dtype 'foo'"),
    ("", "empty spec"),
    ("1,0", "not a positive integer"),
    ("-1,8", "not a positive integer"),
    ("1.5,8", "not a positive integer"),
    ("1,8:int32:x", "more than one ':'"),
    ("(1,8", "unbalanced brackets"),
    ("class=1,8", "not a Python identifier"),
    ("1,8:", "missing dtype"),
])
def test_malformed_input_shows_accepted_forms(ws, spec, reason):
    message = fails_untouched(ws, 2, "summary", "net.py", "--input", spec, "-o", "out/r.txt")
    assert f"invalid --input {spec!r}" in message
    assert reason in message
    assert ACCEPTED in message


def test_duplicate_keyword_input(ws):
    message = fails_untouched(ws, 2, "summary", "net.py", "-i", "x=1,8", "-i", "x=1,8")
    assert "duplicate --input name 'x'" in message


@pytest.mark.parametrize("spec", ["3000000000,8", "99999999999999999999,8"])
def test_input_dimension_beyond_int32_is_an_input_error(ws, spec):
    message = fails_untouched(ws, 2, "summary", "net.py", "--input", spec)
    assert spec in message and "2147483647" in message


@pytest.mark.parametrize("option, value, expected", [
    ("--dtype", "int8", "not a floating-point type"),
    ("--dtype", "float99", "unknown dtype"),
    ("--columns", "params,bogus", "unknown column 'bogus'"),
])
def test_malformed_option_values(ws, option, value, expected):
    assert expected in fails_untouched(ws, 2, "summary", "net.py", "-i", "1,8", option, value)


@pytest.mark.parametrize("option, value, expected", [
    ("--edge-labels", "all", "--edge-labels must be 'shape' or 'none', got 'all'"),
    ("--rankdir", "XY", "--rankdir must be TB or LR, got 'XY'"),
    ("--heat", "flops", "--heat: unknown heat 'flops'"),
    ("--fields", "type,size", "--fields: unknown field(s) size"),
    ("--style", "neon", "--style: unknown style 'neon'"),
])
def test_graph_option_errors_name_the_flag(ws, option, value, expected):
    message = fails_untouched(ws, 2, "graph", "net.py", "-i", "1,8", "-o", "out/g.svg", option, value)
    assert message.startswith(expected)
    assert "edge_labels" not in message and "rankdir must" not in message.replace("--rankdir", "")


# --- usage errors found by click (exit 2): one line too -----------------------------------

@pytest.mark.parametrize("args, expected", [
    (["summary", "net.py"], "missing option '--input' / '-i'; see 'mlx-report summary --help'"),
    (["summary", "net.py", "-i", "1,8", "--depth", "-1"], "invalid value for '--depth' / '-d': "),
    (["graph", "net.py", "-i", "1,8"], "missing option '--output' / '-o'"),
    (["summary", "net.py", "-i", "1,8", "--nope"], "no such option: --nope"),
    (["summary", "net.py", "-i", "1,8", "--format", "xml"], "invalid value for '--format' / '-f': 'xml'"),
    (["diff", "net.py"], "missing argument 'B'"),
    (["stats"], "missing argument 'CHECKPOINT'"),
    (["summary", "net.py", "extra", "-i", "1,8"], "got unexpected extra argument"),
    (["summarise"], "no such command 'summarise'"),
])
def test_usage_errors_are_one_line(ws, args, expected):
    run = cli(*args)
    message = error_of(run, 2)
    assert expected in message
    assert "Usage:" not in run.stderr and "╭" not in run.stderr and run.stdout == ""


def test_help_still_works_in_process():
    run = cli("summary", "--help")
    assert run.code == 0 and run.stdout.startswith("Usage: mlx-report summary [OPTIONS] MODEL")
    assert cli("--version").stdout == cli("version").stdout != ""


# --- model loading (exit 3) -----------------------------------------------------------------

def test_model_file_missing(ws):
    assert fails_untouched(ws, 3, "summary", "nope.py", "-i", "1,8", "-o", "out/r.txt") \
        == "model file not found: nope.py"


def test_model_file_unreadable(ws):
    path = ws / "net.py"
    path.chmod(0)
    try:
        try:
            path.read_bytes()
        except PermissionError:
            pass
        else:  # root, or CAP_DAC_OVERRIDE: permission bits do not stop reads
            pytest.skip("running as root (or with CAP_DAC_OVERRIDE): chmod 000 does not block reads; "
                        "see test_model_file_unreadable_simulated")
        message = fails_untouched(ws, 3, "summary", "net.py", "-i", "1,8")
        assert "net.py" in message
    finally:
        path.chmod(0o644)


def test_model_file_unreadable_simulated(ws, monkeypatch):
    """An unreadable model file, simulated because the suite may run as root."""
    real = Path.read_bytes

    def read_bytes(self):
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if self.name == "net.py" and caller.startswith("mlx_report"):  # not the test's snapshot
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    message = fails_untouched(ws, 3, "summary", "net.py", "-i", "1,8")
    assert "net.py" in message and "ermission denied" in message


def test_syntax_error_names_file_and_line(ws):
    write_model(ws, "bad.py", "\nclass Net(nn.Module:\n    pass\n")
    message = fails_untouched(ws, 3, "summary", "bad.py", "-i", "1,8")
    assert message.startswith("error importing bad.py (line 4): SyntaxError:")


def test_import_error_names_file_and_line(ws):
    write_model(ws, "imp.py", "import os\nimport no_such_module_for_mlx_report\n")
    message = fails_untouched(ws, 3, "summary", "imp.py", "-i", "1,8")
    assert "imp.py (line 4)" in message
    assert "ModuleNotFoundError: No module named 'no_such_module_for_mlx_report'" in message


def test_error_raised_at_import_names_line(ws):
    write_model(ws, "boom.py", "x = 1\nraise RuntimeError('no GPU here')\n")
    message = fails_untouched(ws, 3, "summary", "boom.py", "-i", "1,8")
    assert message == "error importing boom.py (line 4): RuntimeError: no GPU here"


def test_sys_exit_at_import_is_a_load_error(ws):
    write_model(ws, "quits.py", "import sys\nsys.exit(3)\n")
    assert "SystemExit" in fails_untouched(ws, 3, "summary", "quits.py", "-i", "1,8")


def test_syntax_error_in_imported_helper_names_helper(ws):
    (ws / "helper.py").write_text("x = 1\ndef f(:\n    pass\n")
    write_model(ws, "uses_helper.py", "import helper\nmodel = nn.Linear(8, 4)\n")
    message = fails_untouched(ws, 3, "summary", "uses_helper.py", "-i", "1,8")
    assert "helper.py" in message and "line 2" in message


def test_several_models_list_candidates(ws):
    write_model(ws, "two.py", """
        class A(nn.Module):
            def __call__(self, x):
                return x

        class B(nn.Module):
            def __init__(self, width=4):
                super().__init__()
        """)
    message = fails_untouched(ws, 3, "summary", "two.py", "-i", "1,8")
    assert message.startswith("several models in two.py")
    assert "two.py:NAME" in message and "A()" in message and "B()" in message


def test_no_model_lists_candidates(ws):
    write_model(ws, "none.py", "X = 1\n\ndef helper(a, b):\n    return a\n", header=False)
    message = fails_untouched(ws, 3, "summary", "none.py", "-i", "1,8")
    assert message.startswith("no model found in none.py")
    assert "helper(a, b)" in message


def test_unknown_name_lists_available(ws):
    message = fails_untouched(ws, 3, "summary", "net.py:Nope", "-i", "1,8")
    assert message.startswith("no 'Nope' in net.py") and "Net()" in message


FACTORY = """
    def build_model(dims, layers, act="relu"):
        return nn.Linear(dims, dims)
    """
CLASS_WITH_ARGS = """
    class Net(nn.Module):
        def __init__(self, dims, heads):
            super().__init__()
            self.fc = nn.Linear(dims, dims)

        def __call__(self, x):
            return self.fc(x)
    """


def test_factory_needing_arguments_lists_them(ws):
    write_model(ws, "fac.py", FACTORY)
    message = fails_untouched(ws, 3, "summary", "fac.py", "-i", "1,8")
    assert "build_model()" in message and "fac.py" in message
    assert "dims" in message and "layers" in message


def test_class_needing_arguments_lists_them(ws):
    write_model(ws, "cls.py", CLASS_WITH_ARGS)
    message = fails_untouched(ws, 3, "summary", "cls.py", "-i", "1,8")
    assert "Net(dims, heads)" in message


@pytest.mark.parametrize("body, target", [(FACTORY, "fac.py"), (CLASS_WITH_ARGS, "cls.py"),
                                          (CLASS_WITH_ARGS, "cls.py:Net")])
def test_missing_arguments_show_arg_syntax(ws, body, target):
    write_model(ws, target.split(":")[0], body)
    message = fails_untouched(ws, 3, "summary", target, "-i", "1,8")
    assert "--arg" in message and "=" in message.split("--arg", 1)[1]


def test_factory_given_arguments_then_works(ws):
    write_model(ws, "fac.py", FACTORY)
    run = cli("summary", "fac.py", "-i", "1,8", "--arg", "dims=8", "--arg", "layers=2")
    assert run.code == 0, run.stderr
    assert "Total params: 72" in run.stdout


# --- the forward pass raises (exit 4, partial trace) ----------------------------------------

CONV = HEADER + textwrap.dedent(
    """
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)

        def __call__(self, x):
            return self.conv(x)

    class Stem(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Block()

        def __call__(self, x):
            return self.block(x)

    class Mid(nn.Module):
        '''Channels-last at the stem, then a transpose to NCHW before the second conv.'''
        def __init__(self):
            super().__init__()
            self.first = nn.Conv2d(3, 3, 1)
            self.block = Block()

        def __call__(self, x):
            return self.block(self.first(x).transpose(0, 3, 1, 2))
    """
)


def test_shape_mismatch_prints_partial_trace(ws):
    before = snapshot(ws)
    run = cli("summary", "net.py", "-i", "1,9")
    message = error_of(run, 4)
    assert snapshot(ws) == before
    assert message.startswith("forward pass failed in fc1 (Linear) with input shapes [(1, 9)]: ValueError:")
    assert "(1,9)" in message  # the original MLX error text
    table = run.stdout.splitlines()
    failed = [line for line in table if "FAILED" in line]
    assert len(failed) == 1 and "fc1 (Linear)" in failed[0] and "✗" in failed[0]
    assert any(line.startswith("PARTIAL TRACE") and "fc1" in line for line in table)
    assert "fc2" not in run.stdout          # never reached
    assert "Total params: 212" in run.stdout


def test_failure_deep_in_the_model_names_the_module_path(ws):
    write_model(ws, "deep_fail.py", """
        class Block(nn.Module):
            def __init__(self, dims):
                super().__init__()
                self.proj = nn.Linear(dims, dims)

            def __call__(self, x):
                return self.proj(x)

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.layers = [Block(8), Block(8), Block(6)]

            def __call__(self, x):
                for layer in self.layers:
                    x = layer(x)
                return x
        """)
    run = cli("summary", "deep_fail.py", "-i", "2,8", "--no-fold")
    message = error_of(run, 4)
    assert message.startswith("forward pass failed in layers.2.proj (Linear) with input shapes [(2, 8)]")
    assert "layers.0 (Block)" in run.stdout and "layers.1 (Block)" in run.stdout   # completed calls
    assert "Total MACs: 256" in run.stdout


@pytest.mark.parametrize("fmt, out", [("json", "out/r.json"), ("text", "out/r.txt"), ("csv", None)])
def test_failed_forward_writes_nothing(ws, fmt, out):
    args = ["summary", "net.py", "-i", "1,9", "-f", fmt] + (["-o", out] if out else [])
    run = cli(*args)
    before = snapshot(ws)
    assert error_of(run, 4).startswith("forward pass failed in fc1 (Linear)")
    assert snapshot(ws) == before and not list((ws / "out").iterdir())
    if fmt != "text":
        assert run.stdout == ""           # no half document on stdout either


def test_export_of_failed_forward_writes_nothing(ws):
    message = fails_untouched(ws, 4, "export", "net.py", "-i", "1,9", "-o", "out/g.json")
    assert "fc1 (Linear)" in message


def test_wrong_input_dtype(ws):
    write_model(ws, "emb.py", """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.emb = nn.Embedding(10, 8)
                self.fc = nn.Linear(8, 4)

            def __call__(self, tokens):
                return self.fc(self.emb(tokens))
        """)
    run = cli("summary", "emb.py", "-i", "1,4:complex64")
    message = error_of(run, 4)
    assert message.startswith("forward pass failed in emb (Embedding) with input shapes [(1, 4):complex64]")
    assert "ValueError" in message
    assert "emb (Embedding)  ✗ FAILED" in run.stdout
    assert cli("summary", "emb.py", "-i", "1,4:int32").code == 0


def test_nchw_into_nhwc_conv_at_the_stem(ws):
    (ws / "conv.py").write_text(CONV)
    run = cli("summary", "conv.py:Stem", "-i", "1,3,32,32")
    message = error_of(run, 4)
    assert message.startswith("forward pass failed in block.conv (Conv2d) with input shapes [(1, 3, 32, 32)]")
    assert "channels-last (N, H, W, C)" in message
    assert "pass --input 1,32,32,3" in message
    assert "└─conv (Conv2d)  ✗ FAILED" in run.stdout
    assert cli("summary", "conv.py:Stem", "-i", "1,32,32,3").code == 0


def test_nchw_inside_the_model_hints_transpose(ws):
    (ws / "conv.py").write_text(CONV)
    message = error_of(cli("summary", "conv.py:Mid", "-i", "1,32,32,3"), 4)
    assert message.startswith("forward pass failed in block.conv (Conv2d) with input shapes [(1, 3, 32, 32)]")
    assert "transpose to channels-last before this layer" in message


def test_debug_shows_the_traceback(ws):
    run = cli("summary", "net.py", "-i", "1,9", "--debug")
    assert run.code == 4
    assert "Traceback" in run.stderr
    assert run.stderr.rstrip().splitlines()[-1].startswith("error: forward pass failed in fc1")


# --- checkpoints (exit 5) ----------------------------------------------------------------

@pytest.fixture
def ckpts(ws: Path) -> Path:
    mx.save_safetensors(str(ws / "good.safetensors"), net_weights())
    data = (ws / "good.safetensors").read_bytes()
    (ws / "trunc.safetensors").write_bytes(data[:-20])
    (ws / "stub.safetensors").write_bytes(data[:5])
    n = int.from_bytes(data[:8], "little")
    (ws / "corrupt.safetensors").write_bytes(data[:8] + b"{" + b"x" * (n - 1) + data[8 + n:])
    mx.save_safetensors(str(ws / "keys.safetensors"),
                        net_weights(**{"fc2.weight": None, "fc9.weight": mx.ones((4, 16))}))
    mx.save_safetensors(str(ws / "shapes.safetensors"), net_weights(**{"fc1.weight": mx.ones((16, 9))}))
    mx.save_safetensors(str(ws / "f16.safetensors"),
                        {k: v.astype(mx.float16) for k, v in net_weights().items()})
    mx.save_safetensors(str(ws / "i32.safetensors"),
                        {k: v.astype(mx.int32) for k, v in net_weights().items()})
    return ws


@pytest.mark.parametrize("file, expected", [
    ("missing.safetensors", "checkpoint not found: missing.safetensors"),
    ("trunc.safetensors", "trunc.safetensors: tensor 'fc1.weight' lies outside the file"),
    ("stub.safetensors", "stub.safetensors: not a safetensors file (only 5 bytes)"),
    ("corrupt.safetensors", "corrupt.safetensors: corrupt safetensors header"),
    ("keys.safetensors", "keys.safetensors does not fit the model (missing 1: fc2.weight [4, 16]; "
                         "unexpected 1: fc9.weight [4, 16]); use --no-strict"),
    ("shapes.safetensors", "shapes.safetensors does not fit the model (shape mismatch 1: fc1.weight "
                           "model [16, 8] vs checkpoint [16, 9])"),
])
def test_bad_checkpoint_names_file_and_problem(ckpts, file, expected):
    message = fails_untouched(ckpts, 5, "summary", "net.py", "-i", "1,8", "-w", file, "-o", "out/r.txt")
    assert expected in message


def test_float16_checkpoint_into_float32_model_is_accepted_and_reported(ckpts):
    """Legal in MLX (weights keep their dtype; activations promote): accepted, and the tensors,
    storage and JSON say float16."""
    run = cli("summary", "net.py", "-i", "1,8", "-w", "f16.safetensors", "-f", "json")
    assert run.code == 0, run.stderr
    data = json.loads(run.stdout)
    assert {t["dtype"] for t in data["tensors"]} == {"float16"}
    assert data["totals"]["params"] == 212 and data["totals"]["param_bytes"] == 212 * 2
    assert data["meta"]["weights"] == "f16.safetensors"
    text = cli("summary", "net.py", "-i", "1,8", "-w", "f16.safetensors")
    assert text.code == 0 and "Params size: 424 B" in text.stdout


def test_integer_checkpoint_into_float_model_is_refused(ckpts):
    message = fails_untouched(ckpts, 5, "summary", "net.py", "-i", "1,8", "-w", "i32.safetensors")
    assert "i32.safetensors" in message and "int32" in message


# --- outputs (exit 7) ----------------------------------------------------------------------

def test_output_directory_missing(ws):
    message = fails_untouched(ws, 7, "summary", "net.py", "-i", "1,8", "-o", "nodir/r.txt")
    assert message == "output directory nodir does not exist"
    assert not (ws / "nodir").exists()


@pytest.mark.parametrize("command, target", [("summary", "out"), ("export", "out.json")])
def test_output_is_a_directory(ws, command, target):
    (ws / "out.json").mkdir()
    message = fails_untouched(ws, 7, command, "net.py", "-i", "1,8", "-o", target)
    assert message == f"output path {target} is a directory: give a file name"


@pytest.mark.parametrize("command, spelling, code", [
    ("summary", "net.py", 7), ("summary", "./net.py", 7), ("summary", "ABS", 7),
    ("summary", "link.py", 7), ("export", "net.py", 7), ("graph", "net.py", 6),
])
def test_output_path_equal_to_model_file_is_refused(ws, command, spelling, code):
    (ws / "link.py").symlink_to(ws / "net.py")
    target = str(ws / "net.py") if spelling == "ABS" else spelling
    original = (ws / "net.py").read_bytes()
    message = fails_untouched(ws, code, command, "net.py", "-i", "1,8", "-o", target)
    assert (ws / "net.py").read_bytes() == original
    if command == "summary":
        assert message == f"refusing to overwrite input file {Path(target)}: choose another -o path"


def test_output_path_equal_to_checkpoint_is_refused(ckpts):
    message = fails_untouched(ckpts, 7, "summary", "net.py", "-i", "1,8", "-w", "good.safetensors",
                              "-o", "good.safetensors")
    assert "refusing to overwrite input file good.safetensors" in message


@pytest.fixture
def two_ckpts(ws: Path) -> Path:
    mx.save_safetensors(str(ws / "a.safetensors"), net_weights())
    mx.save_safetensors(str(ws / "b.safetensors"), net_weights(**{"fc2.bias": mx.ones((4,))}))
    return ws


@pytest.mark.parametrize("target", ["out/d.csv", "out/d.svg", "out/d"])
def test_diff_output_unknown_extension_is_refused(two_ckpts, target):
    message = fails_untouched(two_ckpts, 7, "diff", "a.safetensors", "b.safetensors", "-o", target)
    assert message == (f"cannot tell the format from {Path(target).name!r}: end the output name in "
                       f".txt .json .md .html .pdf")


def test_diff_format_contradicting_extension_is_refused(two_ckpts):
    message = fails_untouched(two_ckpts, 2, "diff", "a.safetensors", "b.safetensors",
                              "-f", "markdown", "-o", "out/d.json")
    assert message == "--format markdown does not match d.json: drop --format or change the extension"


@pytest.mark.parametrize("name, fmt", [("d.txt", "text"), ("d.json", "json"), ("d.md", "markdown")])
def test_diff_output_format_follows_extension(two_ckpts, name, fmt):
    run = cli("diff", "a.safetensors", "b.safetensors", "-o", f"out/{name}")
    assert run.code == 0, run.stderr
    expected = cli("diff", "a.safetensors", "b.safetensors", "-f", fmt).stdout
    assert (two_ckpts / "out" / name).read_text() == expected


def test_diff_fail_on_values(two_ckpts):
    """Every kind diff.FAIL_ON knows is a --fail-on choice: b.safetensors changes fc2.bias's values."""
    from mlx_report.diff import FAIL_ON

    assert cli("diff", "a.safetensors", "b.safetensors", "--fail-on", "values").code == 8
    assert cli("diff", "a.safetensors", "a.safetensors", "--fail-on", "values").code == 0
    assert [c.value for c in mlx_report.cli.FailOn] == list(FAIL_ON)


def test_diff_output_equal_to_model_file_is_refused(ws):
    message = fails_untouched(ws, 7, "diff", "net.py:Net", "net.py:Net", "-i", "1,8", "-o", "net.py")
    assert "refusing to overwrite input file net.py" in message


def test_unwritable_output_directory_simulated(ws, monkeypatch):
    def mkstemp(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(ws / "out" / ".r.txt.tmp"))

    monkeypatch.setattr(mlx_report.output.tempfile, "mkstemp", mkstemp)
    message = fails_untouched(ws, 7, "summary", "net.py", "-i", "1,8", "-o", "out/r.txt")
    assert "out/r.txt" in message and "ermission denied" in message


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux sysfs")
def test_unwritable_output_directory_sysfs(ws):
    message = fails_untouched(ws, 7, "summary", "net.py", "-i", "1,8", "-o", "/sys/report.txt")
    assert "/sys/report.txt" in message


# --- disk full, interrupted writes (atomic output) ---------------------------------------------

class _FailingFile:
    """Wraps the temp file: writes half of the data, then raises `error`."""

    def __init__(self, f, error: BaseException):
        self.f, self.error = f, error

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def write(self, data):
        self.f.write(data[: len(data) // 2])
        self.f.flush()
        raise self.error


def _fail_writes(monkeypatch, error: BaseException) -> None:
    real = os.fdopen
    monkeypatch.setattr(mlx_report.output.os, "fdopen", lambda fd, *a, **k: _FailingFile(real(fd, *a, **k), error))


def test_disk_full_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "report.txt"
    target.write_text("the previous report\n")
    _fail_writes(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(OutputError, match=r"cannot write .*report.txt: No space left on device"):
        write_atomic(target, "x" * 100_000)
    assert target.read_text() == "the previous report\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.txt"]


def test_disk_full_via_cli(ws, monkeypatch):
    (ws / "out" / "r.json").write_text("{}\n")
    _fail_writes(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    message = fails_untouched(ws, 7, "summary", "net.py", "-i", "1,8", "-f", "json", "-o", "out/r.json")
    assert message == "cannot write out/r.json: No space left on device"


def test_interrupted_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "report.txt"
    target.write_text("the previous report\n")
    _fail_writes(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, "x" * 100_000)
    assert target.read_text() == "the previous report\n"
    assert [p.name for p in tmp_path.iterdir()] == ["report.txt"]


# --- Ctrl-C at any stage ------------------------------------------------------------------

def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("stage", ["import", "factory", "checkpoint", "forward", "cost", "render", "write"])
def test_ctrl_c_at_any_stage_exits_130_and_writes_nothing(ws, monkeypatch, stage):
    mx.save_safetensors(str(ws / "good.safetensors"), net_weights())
    (ws / "out" / "r.json").write_text("the previous report\n")
    write_model(ws, "stages.py", f"""
        STAGE = {stage!r}
        if STAGE == "import":
            raise KeyboardInterrupt

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = nn.Linear(8, 16)
                self.fc2 = nn.Linear(16, 4)

            def __call__(self, x):
                if STAGE == "forward":
                    raise KeyboardInterrupt
                return self.fc2(nn.relu(self.fc1(x)))

        def build_model():
            if STAGE == "factory":
                raise KeyboardInterrupt
            return Net()
        """)
    if stage == "checkpoint":
        monkeypatch.setattr("mlx_report.pipeline.read_checkpoint", _interrupt)
    elif stage == "cost":
        monkeypatch.setattr(sys.modules["mlx_report.trace.call_costs"], "count_function", _interrupt)
    elif stage == "render":
        monkeypatch.setattr(ModelSummary, "to_json", _interrupt)
    elif stage == "write":
        _fail_writes(monkeypatch, KeyboardInterrupt())
    path_before, modules_before = list(sys.path), set(sys.modules)
    before = snapshot(ws)
    run = cli("summary", "stages.py", "-i", "1,8", "-w", "good.safetensors", "-f", "json",
              "-o", "out/r.json")
    assert run.code == 130, (run.code, run.stderr, repr(run.exception))
    assert run.stderr.strip() == INTERRUPTED
    assert snapshot(ws) == before
    assert sys.path == path_before
    assert not {m for m in set(sys.modules) - modules_before if m.startswith("mlx_report_user_")}


@pytest.mark.parametrize("command", [
    ["summary", "-o", "out/r.txt"], ["export", "-o", "out/r.json"], ["graph", "-o", "out/r.svg"],
    ["diff", "net.py", "-o", "out/r.txt"],
])
def test_ctrl_c_in_every_command(ws, command):
    write_model(ws, "stops.py", """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(8, 4)

            def __call__(self, x):
                raise KeyboardInterrupt
        """)
    before = snapshot(ws)
    run = cli(command[0], "stops.py", *command[1:], "-i", "1,8")
    assert run.code == 130, (run.code, run.stderr, repr(run.exception))
    assert run.stderr.strip() == INTERRUPTED
    assert snapshot(ws) == before


SIGINT_MODEL = """
    import os
    import signal

    WHEN = {when!r}
    if WHEN == "import":
        os.kill(os.getpid(), signal.SIGINT)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 4)

        def __call__(self, x):
            if WHEN == "forward":
                os.kill(os.getpid(), signal.SIGINT)
            return self.fc(x)
    """


@pytest.mark.parametrize("when", ["forward", "import"])
def test_real_sigint_exits_130(tmp_path, when):
    write_model(tmp_path, "sig.py", SIGINT_MODEL.format(when=when))
    (tmp_path / "old.json").write_text("the previous report\n")
    before = snapshot(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "mlx_report", "summary", "sig.py", "-i", "1,8", "-f", "json", "-o", "old.json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 130, result.stderr
    assert result.stderr.strip() == INTERRUPTED
    assert "Traceback" not in result.stderr
    assert snapshot(tmp_path) == before


# --- the model is left as it was (Python API) ---------------------------------------------

def _bn_model(fail=None, train=True) -> BNNet:
    model = BNNet(fail)
    model.train(train)
    mx.eval(model.parameters())
    return model


@pytest.mark.parametrize("train", [True, False])
def test_model_unchanged_after_success(train):
    model = _bn_model(train=train)
    compiled = mx.compile(lambda a: a * 2 + 1)
    assert compiled(mx.ones((2,))).tolist() == [3.0, 3.0]
    state = ModelState(model)
    s = mlx_report.summary(model, (4, 8), verbose=0)
    assert s.total_params == 8 * 8 + 8 + 4 * 8 + 2 * 8 + 2
    state.assert_unchanged()
    assert compiled(mx.ones((3,))).tolist() == [3.0, 3.0, 3.0]   # recompiles for a new shape
    assert model(mx.ones((4, 8))).shape == (4, 2)                  # still runs as a model


@pytest.mark.parametrize("train", [True, False])
def test_model_unchanged_after_exception_in_forward(train):
    model = _bn_model(fail=ValueError("broken after the BatchNorm"), train=train)
    state = ModelState(model)
    with pytest.raises(TraceError, match=r"forward pass failed in \(model\) \(BNNet\) .*broken after"):
        mlx_report.trace(model, mx.zeros((4, 8)))
    state.assert_unchanged()


def test_model_unchanged_after_keyboard_interrupt_in_forward():
    model = _bn_model(fail=KeyboardInterrupt())
    state = ModelState(model)
    with pytest.raises(KeyboardInterrupt):
        mlx_report.summary(model, (4, 8), verbose=0)
    state.assert_unchanged()


def test_model_unchanged_after_keyboard_interrupt_while_counting(monkeypatch):
    model = _bn_model()
    state = ModelState(model)
    monkeypatch.setattr(sys.modules["mlx_report.trace.call_costs"], "count_function", _interrupt)
    with pytest.raises(KeyboardInterrupt):
        mlx_report.trace(model, mx.zeros((4, 8)))
    monkeypatch.undo()
    state.assert_unchanged()


def test_compiled_methods_are_put_back():
    class Compiled(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.act = mx.compile(lambda a: nn.relu(a) * 2)

        def __call__(self, x):
            return self.act(self.fc(x))

    model = Compiled()
    act = model.act
    state = ModelState(model)
    mlx_report.trace(model, mx.zeros((1, 4)))
    state.assert_unchanged()
    assert model.act is act


def test_compile_left_disabled_when_it_was_disabled():
    mx.disable_compile()
    try:
        mlx_report.trace(nn.Linear(4, 4), mx.zeros((1, 4)))
        assert not compile_enabled()
    finally:
        mx.enable_compile()


# --- data-dependent models ----------------------------------------------------------------

class ReadsValues(nn.Module):
    def __init__(self, how: str, dims: int = 8):
        super().__init__()
        self.fc = nn.Linear(dims, dims)
        self.how = how

    def __call__(self, x):
        h = self.fc(x)
        if self.how == "item":
            return h * h.max().item()
        if self.how == "eval":
            mx.eval(h)
            return h + 1
        if self.how == "branch":
            return h * 2 if h[0, 0] > 0 else h
        if self.how == "weights":
            return h * 2 if self.fc.weight.abs().max().item() > 10 else h
        raise AssertionError(self.how)


@pytest.mark.parametrize("how, op", [("item", "item"), ("eval", "eval"), ("branch", "__bool__")])
def test_data_dependent_model_is_detected_and_reported(how, op):
    model = ReadsValues(how)
    state = ModelState(model)
    s = mlx_report.summary(model, (1, 8), verbose=0)
    state.assert_unchanged()
    assert f"(model): {op}" in s.graph.meta["value_reads"]
    lines = [line for line in str(s).splitlines() if line.startswith("Data-dependent model")]
    assert len(lines) == 1 and op in lines[0]
    assert s.total_params == 72
    assert json.loads(s.to_json())["meta"]["value_reads"]


def test_reading_weight_values_is_detected():
    s = mlx_report.summary(ReadsValues("weights"), (1, 8), verbose=0)
    assert s.graph.meta.get("value_reads")


def test_reading_weight_values_of_a_big_model_is_refused(monkeypatch):
    monkeypatch.setattr(sys.modules["mlx_report.trace.tracer"], "MAX_EVAL_BYTES", 100)  # "big": > 100 B
    with pytest.raises(TraceError, match="reads array values"):
        mlx_report.trace(ReadsValues("weights"), mx.zeros((1, 8)))


BIG_READER = """
    class Big(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16000, 16000)      # 1.02 GB of float32, never materialised

        def __call__(self, x):
            h = self.fc(x)
            return h * h.max().item()
    """


def test_big_data_dependent_model_is_refused_not_evaluated(ws):
    import resource

    write_model(ws, "big.py", BIG_READER)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    message = fails_untouched(ws, 4, "summary", "big.py", "-i", "1,16000", "-o", "out/r.txt")
    assert time.perf_counter() - t0 < 20
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) * 1024 < 200e6
    assert message == ("the model reads array values during its forward pass (item() in the model), "
                       "which would evaluate it: 1.0 GB of weights. Trace a smaller configuration, "
                       "or move value-dependent code out of __call__")


# --- limits: deep nesting, enormous inputs ----------------------------------------------------

class Wrap(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def __call__(self, x):
        return self.inner(x) + 1


def chain(depth: int) -> nn.Module:
    model: nn.Module = nn.Linear(4, 4)
    for _ in range(depth):
        model = Wrap(model)
    return model


def test_300_nested_modules_trace():
    model = chain(300)
    state = ModelState(model)
    s = mlx_report.summary(model, (1, 4), depth=400, verbose=0)
    state.assert_unchanged()
    assert s.graph.totals.calls == 301 and s.graph.totals.max_depth == 300
    assert s.total_params == 20 and s.total_macs == 16
    assert "Total params: 20" in str(s)
    assert json.loads(s.to_json())["totals"]["calls"] == 301


def test_too_deep_nesting_fails_with_a_clear_message():
    model = chain(600)
    try:
        graph = mlx_report.trace(model, mx.zeros((1, 4)))
    except TraceError as e:
        assert "deep" in str(e) or "recurs" in str(e)
    else:
        assert graph.totals.calls == 601


def test_too_deep_nesting_via_cli(ws):
    write_model(ws, "deep.py", """
        class Wrap(nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def __call__(self, x):
                return self.inner(x) + 1

        def build_model(depth=600):
            m = nn.Linear(4, 4)
            for _ in range(depth):
                m = Wrap(m)
            return m
        """)
    run = cli("summary", "deep.py", "-i", "1,4", "-f", "json")
    if run.code != 0:
        message = error_of(run, 4)
        assert "deep" in message or "recurs" in message


HUGE_INPUT = """
import resource, sys
from typer.testing import CliRunner
from mlx_report.cli import app
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
r = CliRunner().invoke(app, ["summary", sys.argv[1], "--input", "1000000,1000000"])
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
sys.stdout.write(r.stdout + "\\nEXIT %d GROWN_KB %d\\n" % (r.exit_code, grown))
"""


def test_enormous_input_stays_lazy(tmp_path):
    """A 10^12-element (4 TB) input into a Linear: traced lazily, in a few MB."""
    write_model(tmp_path, "huge.py", """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(1000000, 8)

            def __call__(self, x):
                return self.fc(x)
        """)
    result = subprocess.run([sys.executable, "-c", HUGE_INPUT, str(tmp_path / "huge.py")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    tail = result.stdout.rsplit("EXIT", 1)[1].split()
    assert tail[0] == "0", result.stdout
    assert int(tail[2]) * 1024 < 100e6, f"peak memory grew by {tail[2]} KB"
    assert "Total MACs: 8.00 T (8,000,000,000,000)" in result.stdout
    assert "Input size: 4.00 TB" in result.stdout


# --- NaN / Inf weights ----------------------------------------------------------------------

NAN_MODEL = """
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)
            self.bn = nn.BatchNorm(8)
            self.out = nn.Linear(8, 2)

        def __call__(self, x):
            return self.out(self.bn(self.fc(x)))
    """


@pytest.fixture
def nan_ws(ws: Path) -> Path:
    write_model(ws, "nanm.py", NAN_MODEL)
    mx.save_safetensors(str(ws / "nan.safetensors"), {
        "fc.weight": mx.full((8, 8), float("nan")), "fc.bias": mx.array([float("inf")] * 8),
        "bn.weight": mx.ones((8,)), "bn.bias": mx.zeros((8,)),
        "bn.running_mean": mx.full((8,), float("nan")), "bn.running_var": mx.full((8,), -float("inf")),
        "out.weight": mx.full((2, 8), float("inf")), "out.bias": mx.zeros((2,)),
    })
    return ws


@pytest.mark.parametrize("args", [
    ["summary", "-f", "text"], ["summary", "-f", "json"], ["summary", "-f", "markdown"],
    ["summary", "-f", "csv"], *[["export", "-o", f"out/x.{ext}"] for ext in
                                ("json", "graphml", "gexf", "md", "tex", "csv")],
])
def test_nan_and_inf_weights_never_crash(nan_ws, args):
    run = cli(args[0], "nanm.py", "-i", "2,8", "-w", "nan.safetensors", *args[1:])
    assert run.code == 0, (run.stderr, repr(run.exception))
    if args[0] == "export":
        assert (nan_ws / args[2]).stat().st_size > 0
    if args[-1] == "json":
        assert json.loads(run.stdout)["totals"]["params"] == 122


def test_nan_weights_via_the_api():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    model.layers[0].weight = mx.full((4, 4), float("nan"))
    model.layers[1].bias = mx.array([float("inf"), -float("inf")])
    s = mlx_report.summary(model, (1, 4), verbose=0)
    assert s.total_params == 30 and "Total params: 30" in str(s)
    assert json.loads(s.to_json())["totals"]["macs"] == 24


# --- diff --fail-on ---------------------------------------------------------------------------

def test_diff_fail_on_exits_8(ws):
    write_model(ws, "wider.py", NET.replace("16", "32").removeprefix(HEADER))
    run = cli("diff", "net.py", "wider.py", "-i", "1,8", "--fail-on", "params")
    assert run.code == 8, run.stderr
    assert "error" not in run.stderr
    assert cli("diff", "net.py", "net.py", "-i", "1,8", "--fail-on", "any").code == 0


def test_every_error_class_maps_to_its_documented_exit_code():
    from mlx_report import errors

    codes = {name: getattr(errors, name).exit_code for name in dir(errors)
             if isinstance(getattr(errors, name), type) and issubclass(getattr(errors, name), MlxReportError)}
    assert codes == {"MlxReportError": 1, "InputSpecError": 2, "ModelLoadError": 3, "TraceError": 4,
                     "CheckpointError": 5, "RenderError": 6, "OutputError": 7}
