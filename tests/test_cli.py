"""End to end: `python -m mlx_report summary ...` in a subprocess, as a user runs it.

Every error case must exit with its documented code and print exactly one line on stderr
(`error: ...`), never a Python traceback.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESNET = "samples/resnet.py"
MLP = "samples/mlp.py"


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlx_report", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def error_line(result: subprocess.CompletedProcess, code: int) -> str:
    """The single stderr line of a failed command; asserts the exit code and no traceback."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def write_model(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text("import mlx.core as mx\nimport mlx.nn as nn\n" + textwrap.dedent(body))
    return path


# --- success paths ----------------------------------------------------------------------

def test_resnet_verbatim_text():
    result = run("summary", RESNET, "--input", "1,3,224,224")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert "Layer (type)" in out and "ResNet" in out
    assert "Total params: 25.61 M (25,610,152)" in out
    assert "Trainable params: 25,557,032" in out
    assert "BatchNorm running stats: 53,120" in out
    assert "Total MACs: 4.09 G (4,089,184,256)" in out
    assert "├─conv1 (Conv2d)" in out and "[1, 224, 224, 3]" in out   # transposed once at the stem


def summary_json(*extra: str) -> dict:
    result = run("summary", MLP, "--input", "2,784", "--format", "json", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_format_json():
    data = summary_json()
    assert data["schema_version"] == 1
    t = data["totals"]
    # samples/mlp.py: 784 -> 512 -> 512 -> 10, batch 2
    assert t["params"] == 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10 == 669_706
    assert t["macs"] == 2 * (784 * 512 + 512 * 512 + 512 * 10)
    assert t["param_bytes"] == 4 * 669_706
    assert data["meta"]["source"] == "mlp.py"
    assert data["meta"]["inputs"] == ["2,784"]
    assert data["layers"][0]["type"] == "MLP"


def test_format_markdown():
    result = run("summary", MLP, "--input", "2,784", "--format", "markdown")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.replace("\u00a0", " ").splitlines()   # tree indent kept with NBSPs
    assert lines[0].startswith("| Layer (type) | Input Shape | Output Shape | Param #")
    assert set(lines[1].replace("|", "").split()) <= {":--", "--:"}
    assert any("classifier (Linear)" in line and "5,130" in line for line in lines)
    assert "- Total params: 669.71 K (669,706)" in lines


def test_format_csv():
    result = run("summary", MLP, "--input", "2,784", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows[0]["path"] == "" and rows[0]["type"] == "MLP"
    classifier = next(r for r in rows if r["path"] == "classifier")
    assert classifier["params"] == "5130"
    assert classifier["macs"] == str(2 * 512 * 10)
    assert classifier["output_shapes"] == "2x10"


def test_output_file(tmp_path):
    target = tmp_path / "mlp.json"
    result = run("summary", MLP, "--input", "2,784", "--format", "json", "-o", str(target))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert str(target) in result.stderr
    assert target.read_text() == run("summary", MLP, "--input", "2,784", "--format", "json").stdout


def test_output_file_text(tmp_path):
    target = tmp_path / "mlp.txt"
    result = run("summary", MLP, "--input", "2,784", "--output", str(target))
    assert result.returncode == 0, result.stderr
    assert "Total params: 669.71 K (669,706)" in target.read_text()


def test_dtype_bfloat16_halves_param_bytes():
    f32, bf16 = summary_json(), summary_json("--dtype", "bfloat16")
    assert bf16["totals"]["params"] == f32["totals"]["params"]
    assert bf16["totals"]["param_bytes"] * 2 == f32["totals"]["param_bytes"]
    assert {t["dtype"] for t in bf16["tensors"]} == {"bfloat16"}
    assert bf16["meta"]["dtype"] == "bfloat16"


def test_columns_selection():
    result = run("summary", MLP, "--input", "2,784", "--columns", "output_shape,macs")
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[1]
    assert header.split() == ["Layer", "(type)", "Output", "Shape", "MACs"]


def test_kwarg_input_and_int_dtype(tmp_path):
    path = write_model(tmp_path, "kw.py", """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = nn.Embedding(10, 8)

            def __call__(self, tokens, mask=None):
                return self.embed(tokens) + mask
    """)
    result = run("summary", str(path), "--input", "1,4:int32", "--input", "mask=1,4,8", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [(i["id"], i["shapes"], i["dtypes"]) for i in data["inputs"]] == [
        ("in:0", [[1, 4]], ["int32"]), ("in:mask", [[1, 4, 8]], ["float32"])]


# --- error cases ------------------------------------------------------------------------

@pytest.mark.parametrize("spec", ["1,3,224,224x", "1,3;224", "a,b", "1,128:int33", "", "1,0,3"])
def test_malformed_input(spec):
    line = error_line(run("summary", RESNET, "--input", spec), 2)
    assert f"invalid --input {spec!r}" in line
    assert "accepted forms: 1,3,224,224 | 1,128:int32 | name=1,128:int32" in line


def test_missing_file():
    line = error_line(run("summary", "no_such_model.py", "--input", "1,3"), 3)
    assert line == "error: model file not found: no_such_model.py"


def test_no_model_found_lists_candidates(tmp_path):
    path = write_model(tmp_path, "two.py", """
        def helper(x):
            return x

        class Encoder(nn.Module):
            def __init__(self, dims):
                super().__init__()

        class Decoder(nn.Module):
            def __init__(self, dims, heads=2):
                super().__init__()
    """)
    line = error_line(run("summary", str(path), "--input", "1,3"), 3)
    assert "no model found in" in line
    assert "candidates:" in line
    for candidate in ("helper(x)", "Encoder(dims)", "Decoder(dims)"):
        assert candidate in line
    assert f"{path}:NAME" in line


def test_forward_pass_raising_names_path_and_shapes(tmp_path):
    path = write_model(tmp_path, "bad.py", """
        class Body(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(5, 4)

            def __call__(self, x):
                return self.fc(x)

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.pre = nn.Linear(8, 6)
                self.body = Body()

            def __call__(self, x):
                return self.body(self.pre(x))
    """)
    line = error_line(run("summary", f"{path}:Net", "--input", "2,3,8"), 4)
    assert "forward pass failed in body.fc (Linear)" in line
    assert "input shapes [(2, 3, 6)]" in line
    assert "ValueError" in line


def test_forward_error_outside_modules(tmp_path):
    path = write_model(tmp_path, "bad2.py", """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(4, 4)

            def __call__(self, x):
                return self.fc(x).reshape(3, 7)
    """)
    line = error_line(run("summary", str(path), "--input", "2,4"), 4)
    assert "forward pass failed in (model) (Net) with input shapes [(2, 4)]" in line


def test_channels_first_input_to_user_conv_model(tmp_path):
    path = write_model(tmp_path, "conv.py", """
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(3, 8, 3)

            def __call__(self, x):
                return self.conv(x)
    """)
    line = error_line(run("summary", str(path), "--input", "1,3,32,32"), 4)
    assert "forward pass failed in conv (Conv2d)" in line
    assert "channels-last" in line
    assert "--input 1,32,32,3" in line


def test_unknown_column():
    line = error_line(run("summary", MLP, "--input", "2,784", "--columns", "params,flopz"), 2)
    assert "unknown column 'flopz'" in line
    assert "input_shape, output_shape, params" in line


def test_non_float_dtype_rejected():
    line = error_line(run("summary", MLP, "--input", "2,784", "--dtype", "int8"), 2)
    assert "--dtype int8 is not a floating-point type" in line


def test_refuses_to_overwrite_model_file(tmp_path):
    path = write_model(tmp_path, "m.py", """
        model = nn.Linear(4, 4)
    """)
    before = path.read_text()
    line = error_line(run("summary", str(path), "--input", "1,4", "-o", str(path)), 7)
    assert "refusing to overwrite input file" in line
    assert path.read_text() == before


# --- summary -o: the format follows the extension ------------------------------------------

@pytest.mark.parametrize("suffix, check", [
    (".json", lambda text: json.loads(text)["totals"]["params"] == 669_706),
    (".csv", lambda text: text.startswith("path,type,") and "classifier" in text),
    (".md", lambda text: text.startswith("| Layer (type) |")),
    (".txt", lambda text: "Total params: 669.71 K (669,706)" in text and not text.startswith("|")),
])
def test_summary_output_format_follows_extension(tmp_path, suffix, check):
    target = tmp_path / f"s{suffix}"
    result = run("summary", MLP, "--input", "2,784", "-o", str(target))
    assert result.returncode == 0, result.stderr
    assert check(target.read_text())


def test_summary_output_unknown_extension_is_refused(tmp_path):
    line = error_line(run("summary", MLP, "--input", "2,784", "-o", str(tmp_path / "s.xlsx")), 7)
    assert line == "error: cannot tell the format from 's.xlsx': end the output name in .txt .json .md .csv"
    assert list(tmp_path.iterdir()) == []


def test_summary_format_contradicting_extension_is_refused(tmp_path):
    line = error_line(run("summary", MLP, "--input", "2,784", "-f", "csv", "-o", str(tmp_path / "s.json")), 2)
    assert line == "error: --format csv does not match s.json: drop --format or change the extension"
    assert list(tmp_path.iterdir()) == []


def test_dtype_float64_is_accepted():
    data = summary_json("--dtype", "float64")
    assert data["totals"]["param_bytes"] == 8 * data["totals"]["params"]
    assert {t["dtype"] for t in data["tensors"]} == {"float64"}


# --- usage errors and help, as the installed command prints them ---------------------------

def run_plain(*args: str) -> subprocess.CompletedProcess:
    """`mlx-report ARGS` with COLUMNS unset (80 columns), as in a fresh terminal or a pipe."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    return subprocess.run([sys.executable, "-m", "mlx_report", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, expected", [
    (["summary", MLP], "error: missing option '--input' / '-i'; see 'mlx-report summary --help'"),
    (["summary", MLP, "-i", "2,784", "--depth", "-1"], "error: invalid value for '--depth' / '-d'"),
    (["summary", MLP, "-i", "2,784", "--bogus"], "error: no such option: --bogus"),
    (["summary", MLP, "-i", "2,784", "-f", "xml"], "'xml' is not one of 'text', 'json', 'markdown', 'csv'"),
    (["summary"], "error: missing argument 'MODEL'"),
    (["sumary", MLP], "error: no such command 'sumary'. Did you mean 'summary'?"),
])
def test_usage_errors_are_one_line(args, expected):
    result = run_plain(*args)
    line = error_line(result, 2)
    assert expected in line
    assert result.stdout == ""
    assert "Usage:" not in result.stderr and "╭" not in result.stderr


def test_no_arguments_prints_help():
    result = run_plain()
    assert result.returncode == 2
    assert result.stdout.startswith("Usage: mlx-report [OPTIONS] COMMAND [ARGS]...")
    assert "summary" in result.stdout and "--version" in result.stdout


COMMANDS = ["summary", "graph", "export", "diff", "stats", "version", "build"]


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_is_readable_at_80_columns(command):
    result = run_plain(*([command] if command else []), "--help")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith(f"Usage: mlx-report {command + ' ' if command else ''}[OPTIONS]")
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text and "..." not in text.replace("COMMAND [ARGS]...", "")  # nothing cut
    assert "<bool>" not in text and "list[" not in text            # no placeholder on flags
    assert "{" not in text.splitlines()[0]                          # usage: MODEL, not {model}
    assert "╭" not in text


def test_help_shows_whole_choice_lists():
    text = run_plain("summary", "--help").stdout
    assert text.splitlines()[0] == "Usage: mlx-report summary [OPTIONS] MODEL"
    words = re.findall(r"[a-z_]+", text)
    for column in ("input_shape", "output_shape", "params", "params_percent", "macs", "trainable",
                   "config", "dtype"):
        assert column in words
    assert "<text|json|markdown|csv>" in text
    assert "float64" in text                                        # --dtype lists what it accepts
    flags = [line for line in text.splitlines() if line.strip().startswith(("--debug", "--fold", "--help"))]
    assert flags and all("<" not in line.split("  ")[1] for line in flags)


def test_version_option_matches_version_command():
    option, command = run_plain("--version"), run_plain("version")
    assert option.returncode == command.returncode == 0
    assert option.stdout == command.stdout
    assert option.stdout.startswith("mlx-report ") and ", mlx " in option.stdout


# --- build MODEL that is no model ------------------------------------------------------------

def test_build_of_a_file_that_is_no_model(tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("# not a model\n")
    line = error_line(run("build", str(notes), "-o", str(tmp_path / "r.pdf")), 3)
    assert "notes.md" in line and "--input" not in line
    assert not (tmp_path / "r.pdf").exists()
