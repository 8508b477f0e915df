"""Every failure is one `error:` line with a documented exit code, never a traceback.

Run as a user runs the command: `python -m mlx_report ...` in a subprocess. Faults that no
input can cause (a bug in mlx-report) are injected with `python -c` before the app starts.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MLP = "samples/mlp.py"
INTERNAL = 70


def run(*args: str, cwd: Path = ROOT, env: dict | None = None, inject: str = "",
        **kw) -> subprocess.CompletedProcess:
    """`mlx-report ARGS`; `inject` is Python run before the app (to simulate a bug)."""
    code = f"{inject}\nfrom mlx_report.cli import main\nmain()"
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=full_env,
                          capture_output=True, timeout=120, **kw)


def error_line(result: subprocess.CompletedProcess, code: int) -> str:
    """The single stderr line of a failed command; asserts the exit code and no traceback."""
    err = result.stderr.decode() if isinstance(result.stderr, bytes) else result.stderr
    out = result.stdout.decode() if isinstance(result.stdout, bytes) else result.stdout
    assert result.returncode == code, (result.returncode, err)
    assert "Traceback" not in err + out, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def write_model(folder: Path, body: str, name: str = "model.py") -> Path:
    path = folder / name
    path.write_text("import mlx.core as mx\nimport mlx.nn as nn\n" + textwrap.dedent(body))
    return path


# --- case 1: public typer API; every command maps an unexpected error to one line ----------

def _fault(target: str) -> str:
    """Python that makes `module:attr` raise a RuntimeError, as a bug there would."""
    module, attr = target.split(":")
    return textwrap.dedent(f"""
        import importlib
        def _boom(*a, **k):
            raise RuntimeError("injected fault\\nsecond line")
        _m = importlib.import_module({module!r})
        setattr(_m, {attr!r}, _boom)
    """)


COMMAND_FAULTS = [
    (["summary", MLP, "-i", "2,784"], "mlx_report.pipeline:trace_target"),
    (["graph", MLP, "-i", "2,784", "-o", "{tmp}/g.svg"], "mlx_report.pipeline:trace_target"),
    (["export", MLP, "-i", "2,784", "-o", "{tmp}/g.json"], "mlx_report.pipeline:trace_target"),
    (["diff", MLP, MLP, "-i", "2,784"], "mlx_report.compare:load_side"),
    (["stats", "{tmp}/w.npz"], "mlx_report.analysis.checkpoint_stats:checkpoint_stats"),
    (["build", MLP, "-i", "2,784", "-o", "{tmp}/r.html"], "mlx_report.build:build"),
    (["version"], "platform:python_version"),
]


@pytest.mark.parametrize("argv, target", COMMAND_FAULTS, ids=[a[0] for a, _ in COMMAND_FAULTS])
def test_unexpected_exception_is_one_internal_error_line(tmp_path, argv, target):
    argv = [a.format(tmp=tmp_path) for a in argv]
    result = run(*argv, inject=_fault(target))
    line = error_line(result, INTERNAL)
    assert line == ("error: internal error: RuntimeError: injected fault second line "
                    "(please report; rerun with --debug for the traceback)")
    assert not list(tmp_path.iterdir())  # nothing written


def test_debug_shows_the_traceback_of_an_internal_error():
    result = run("summary", MLP, "-i", "2,784", "--debug",
                 inject=_fault("mlx_report.pipeline:trace_target"))
    assert result.returncode == INTERNAL
    err = result.stderr.decode()
    assert "Traceback" in err and "injected fault" in err
    assert err.rstrip().splitlines()[-1].startswith("error: internal error: RuntimeError")


def test_abort_and_usage_errors_use_public_typer_classes():
    abort = "import typer, mlx_report.pipeline as p\ndef _a(*a, **k): raise typer.Abort()\np.trace_target = _a"
    assert error_line(run("summary", MLP, "-i", "2,784", inject=abort), 1) == "error: aborted"
    line = error_line(run("summary", MLP, "--bogus"), 2)
    assert line.startswith("error: no such option: --bogus")
    source = (ROOT / "mlx_report" / "cli_app.py").read_text()
    assert "_click" not in source  # typer's private vendored click is not API


def test_system_exit_in_forward_is_one_line(tmp_path):
    model = write_model(tmp_path, """
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.l = nn.Linear(4, 4)
            def __call__(self, x):
                raise SystemExit("bye")
    """)
    # Inside the forward pass the tracer turns it into a TraceError naming the call (exit 4).
    line = error_line(run("summary", str(model), "-i", "1,4"), 4)
    assert line == ("error: forward pass failed in (model) (M) with input shapes [(1, 4)]: "
                    "SystemExit: the model called sys.exit('bye')")


def test_system_exit_while_loading_is_one_line(tmp_path):
    model = write_model(tmp_path, """
        raise SystemExit("bye")
    """)
    line = error_line(run("summary", str(model), "-i", "1,4"), 3)  # ModelLoadError
    assert line.startswith("error: error importing ") and line.endswith("(line 4): SystemExit: bye")


def test_key_error_from_a_hand_edited_archive(tmp_path):
    archive = tmp_path / "model.json"
    result = run("export", MLP, "-i", "2,784", "-o", str(archive))
    assert result.returncode == 0, result.stderr
    data = json.loads(archive.read_text())
    del data["layers"][1]["params"]  # read by build and diff alike
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(data))
    for argv in (["build", str(edited), "-o", str(tmp_path / "r.html")],
                 ["diff", str(archive), str(edited)]):
        result = run(*argv)
        assert result.returncode in (1, INTERNAL), result.stderr
        error_line(result, result.returncode)
    assert not (tmp_path / "r.html").exists()


# --- case 2: a closed stdout is a quiet exit ------------------------------------------------

def test_broken_pipe_is_quiet():
    code = "from mlx_report.cli import main\nmain()"
    proc = subprocess.Popen([sys.executable, "-c", code, "summary", "samples/resnet.py",
                             "-i", "1,3,224,224", "-d", "9", "-f", "json"], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before anything is written (`| head -0`)
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert err == ""
    assert proc.returncode == 141


# --- case 3: tensors past MLX's 32-bit shapes and 64-bit sizes -------------------------------

@pytest.mark.parametrize("argv", [
    ["summary", MLP], ["summary", "samples/resnet.py", "-f", "json"],
    ["export", MLP, "-o", "{tmp}/m.json"], ["build", MLP, "-o", "{tmp}/r.html"],
], ids=["summary", "summary-resnet", "export", "build"])
def test_more_than_2_31_elements_is_one_trace_error(tmp_path, argv):
    """MLX raises OverflowError at the first reshape/flatten past int32: exit 4, one line."""
    argv = [a.format(tmp=tmp_path) for a in argv]
    result = run(*argv, "-i", "1,3,100000,100000")
    err = result.stderr.decode()
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("wrote ")]
    assert result.returncode == 4, err
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("error: forward pass failed in ")
    assert "OverflowError: [" in lines[0] and "32-bit integers for shape dimensions" in lines[0]
    assert not (tmp_path / "m.json").exists()


def test_input_whose_size_overflows_64_bits_is_refused():
    """MLX would wrap the element count silently (8e27 elements reported as 7.2e18)."""
    line = error_line(run("summary", MLP, "-i", "2000000000,2000000000,2000000000"), 2)
    assert line.startswith("error: invalid --input '2000000000,2000000000,2000000000': 8e+27 "
                           "elements of float32 are 3.2e+28 bytes, beyond the 2^63 bytes")
    from mlx_report.errors import InputSpecError
    from mlx_report.inputs import InputSpec, make_inputs

    with pytest.raises(InputSpecError, match="beyond the 2"):
        make_inputs([InputSpec((2**31 - 1,) * 3, "float32")])
    make_inputs([InputSpec((2**31 - 1, 2**31 - 1), "int8")])  # 4.6e18 bytes: MLX counts it


# --- cases 4 and 5: names stdout cannot encode; names that are markup or escape sequences ---

EVIL = "a\x1b[31mred\n<b>&\"'"
NAMES_MODEL = '''
NAMES = ["ünï✓", "a\\udce9b", "a\\x1b[31mred\\n<b>&\\"'", "[bold]x{}</text>", "c`|d\\\\n"]


class Named(nn.Module):
    def __init__(self):
        super().__init__()
        for name in NAMES:  # any string can name a child: setattr keys a dict
            setattr(self, name, nn.Linear(4, 4))

    def __call__(self, x):
        for name in NAMES:
            x = getattr(self, name)(x)
        return x
'''


@pytest.fixture
def named_model(tmp_path) -> Path:
    return write_model(tmp_path, NAMES_MODEL)


def _ok(result: subprocess.CompletedProcess) -> tuple[str, str]:
    err = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 0, err
    assert "Traceback" not in err and "Error" not in err, err
    return result.stdout.decode("utf-8", "replace"), err


@pytest.mark.parametrize("env", [{"PYTHONIOENCODING": "ascii"},
                                 {"LANG": "C", "LC_ALL": "C", "PYTHONIOENCODING": ""}],
                         ids=["ascii", "LANG=C"])
def test_unencodable_names_on_stdout(named_model, env):
    out, _ = _ok(run("summary", str(named_model), "-i", "1,4", env=env))
    assert "a\\udce9b (Linear)" in out  # a lone surrogate cannot be encoded at all
    if env["PYTHONIOENCODING"] == "ascii":  # (under LANG=C Python itself switches to UTF-8)
        assert "|-\\xfcn\\xef\\u2713 (Linear)" in out
        assert "----" in out and "─" not in out  # ASCII rules where glyphs cannot be written
    result = run("summary", str(named_model), "-i", "1,4", "-f", "json", env=env)
    paths = [layer["path"] for layer in json.loads(_ok(result)[0])["layers"]]
    assert paths[1:3] == ["ünï✓", "a\udce9b"]  # lossless: JSON escapes, not replacement marks


def test_unencodable_names_in_files(named_model, tmp_path):
    import networkx as nx

    outs = {s: tmp_path / f"o{s}" for s in (".json", ".graphml", ".gexf", ".md", ".tex", ".csv")}
    for path in outs.values():
        _ok(run("export", str(named_model), "-i", "1,4", "-o", str(path)))
    for suffix in (".txt", ".json"):
        _ok(run("summary", str(named_model), "-i", "1,4", "-o", str(tmp_path / f"s{suffix}")))
    layers = json.loads(outs[".json"].read_text())["layers"]
    assert [layer["path"] for layer in layers][1:4] == ["ünï✓", "a\udce9b", EVIL]
    graphml = nx.read_graphml(outs[".graphml"])  # control characters made it invalid XML
    gexf = nx.read_gexf(outs[".gexf"])
    for g in (graphml, gexf):
        paths = {d.get("path") for _, d in g.nodes(data=True)}
        assert {"ünï✓", "a\\udce9b", "a\\x1b[31mred\n<b>&\"'"} <= paths


def test_names_are_escaped_in_the_terminal_table(named_model):
    out, _ = _ok(run("summary", str(named_model), "-i", "1,4"))
    assert "\x1b" not in out
    assert "a\\x1b[31mred\\n<b>&\"' (Linear)" in out  # one row, shown as written
    assert "[bold]x{}</text> (Linear)" in out  # no markup is interpreted
    rows = [line for line in out.splitlines() if "(Linear)" in line]
    assert len(rows) == 5 and len({len(r) for r in rows}) == 1  # columns stay aligned


def test_names_are_escaped_in_markdown_latex_csv(named_model, tmp_path):
    md = _ok(run("summary", str(named_model), "-i", "1,4", "-f", "markdown"))[0]
    rows = [line for line in md.splitlines() if "Linear" in line]
    assert len(rows) == 5 and all(len(re.findall(r"(?<!\\)\|", r)) == 8 for r in rows)  # no split
    assert "`├─a\\x1b[31mred\\n<b>&\"' (Linear)`" in md  # a code span shows markup as text
    assert "``└─c`\\|d\\n (Linear)``" in md
    tex = tmp_path / "t.tex"
    _ok(run("export", str(named_model), "-i", "1,4", "-o", str(tex)))
    text = tex.read_text()
    assert "\x1b" not in text and r"a\textbackslash{}x1b[31mred\textbackslash{}n<b>\&" + "\"'" in text
    csv_text = _ok(run("summary", str(named_model), "-i", "1,4", "-f", "csv"))[0]
    assert "\x1b" not in csv_text and "a\\x1b[31mred\\n<b>&" in csv_text


def test_names_are_escaped_in_dot_svg_and_html(named_model, tmp_path):
    import xml.dom.minidom

    dot, svg, html = tmp_path / "g.dot", tmp_path / "g.svg", tmp_path / "r.html"
    for path in (dot, svg):
        _ok(run("graph", str(named_model), "-i", "1,4", "-o", str(path)))
    _ok(run("build", str(named_model), "-i", "1,4", "-o", str(html), "--no-weights"))
    source = dot.read_text()
    assert "a\\x1b[31mred\\n&lt;b&gt;&amp;&quot;&#x27;" in source and "<b>&" not in source
    xml.dom.minidom.parse(str(svg))  # well-formed: no raw <, & or control characters
    assert "[bold]x{}&lt;/text&gt;" in svg.read_text()
    page = html.read_text()
    assert "\x1b" not in page and "<b>&" not in page and "</text> (" not in page
    assert "a\\x1b[31mred\\n&lt;b&gt;&amp;" in page


def test_checkpoint_names_are_escaped_for_rich_tables(tmp_path):
    import mlx.core as mx

    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    mx.save_safetensors(str(a), {"[bold]x[/bold]": mx.ones((3,)), EVIL: mx.zeros((2,))})
    mx.save_safetensors(str(b), {"[bold]x[/bold]": mx.ones((4,)), EVIL: mx.zeros((2,))})
    for argv in (["stats", str(a)], ["diff", str(a), str(b)]):
        out, _ = _ok(run(*argv))
        assert "[bold]x[/bold]" in out  # rich markup is not interpreted
        assert "\x1b" not in out and "a\\x1b[31mred\\n<b>&" in out


def test_error_messages_escape_names(tmp_path):
    model = write_model(tmp_path, '''
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                setattr(self, "a\\x1b[2Jb", nn.Linear(4, 4))
            def __call__(self, x):
                return getattr(self, "a\\x1b[2Jb")(x[:, :3])
    ''')
    line = error_line(run("summary", str(model), "-i", "1,4", "-f", "json"), 4)
    assert "forward pass failed in a\\x1b[2Jb (Linear)" in line


# --- case 6: a model's print() never corrupts stdout ----------------------------------------

def test_model_prints_go_to_stderr(tmp_path):
    model = write_model(tmp_path, '''
        print("building the model")
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                print("in __init__")
                self.l = nn.Linear(4, 4)
            def __call__(self, x):
                print("in forward", x.shape)
                return self.l(x)
    ''')
    for fmt in ("json", "csv", "markdown", "text"):
        result = run("summary", str(model), "-i", "1,4", "-f", fmt)
        out, err = _ok(result)
        assert "building the model" in err and "in __init__" in err and "in forward" in err
        assert "in forward" not in out and "in __init__" not in out
        if fmt == "json":
            assert json.loads(out)["totals"]["params"] == 20


# --- case 7: dependencies with tested lower bounds; too old an MLX is refused ---------------

def test_too_old_mlx_is_one_error_line():
    fake = ("import importlib.metadata as m\n_v = m.version\n"
            "m.version = lambda n: '0.29.4' if n.startswith('mlx') else _v(n)")
    line = error_line(run("summary", MLP, "-i", "2,784", inject=fake), 1)
    assert line == ("error: mlx 0.29.4 is installed but mlx-report needs mlx >= 0.32.4 (older "
                    "releases give wrong totals): pip install -U 'mlx>=0.32.4'")


def test_mlx_version_comparison():
    from mlx_report.errors import MlxReportError
    from mlx_report.versions import check_mlx

    for ok in ("0.32.4", "0.32.10", "0.33.0.dev20260101", "1.0.0rc1"):
        check_mlx(ok)
    for old in ("0.26.5", "0.29.4", "0.30.6", "0.32.3", "0.9.99"):
        with pytest.raises(MlxReportError, match=f"mlx {re.escape(old)} is installed"):
            check_mlx(old)


def _declared() -> dict[str, str]:
    """pyproject's dependencies: name -> lower bound, as `make test-oldest` pins them."""
    out = subprocess.run([sys.executable, str(ROOT / ".ci" / "lower_bounds.py"),
                          str(ROOT / "pyproject.toml")], capture_output=True, text=True, check=True)
    return dict(line.split("==") for line in out.stdout.split())


def test_every_dependency_is_bounded_and_used():
    from mlx_report.versions import MIN_MLX

    declared = _declared()
    assert declared["mlx"] == ".".join(map(str, MIN_MLX))
    assert int(declared["weasyprint"]) >= 64  # PDF/A-3b attachments
    source = "\n".join(p.read_text() for p in (ROOT / "mlx_report").rglob("*.py"))
    used_as = {"graphviz-pure": '"graphviz-pure"', "jinja2": "import jinja2"}
    for name in declared:
        needle = used_as.get(name, f"import {name.replace('-', '_')}")
        assert re.search(rf"^\s*(import|from) {name.replace('-', '_')}\b", source, re.M) \
            or needle in source, f"{name} is declared but never used"
    text = (ROOT / "pyproject.toml").read_text()
    deps = text[text.index("dependencies = ["):text.index("]\n", text.index("dependencies = ["))]
    assert all(">=" in line for line in deps.splitlines()[1:] if line.strip().startswith('"'))


# --- case 8: the sdist carries samples, tests, docs and templates --------------------------

def test_sdist_contains_samples_tests_docs_templates(tmp_path):
    import shutil
    import tarfile

    src = tmp_path / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".venv*", "build", "__pycache__", "*.egg-info", ".pytest_cache", ".hypothesis", ".git"))
    code = "import sys; from setuptools import build_meta; print(build_meta.build_sdist(sys.argv[1]))"
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "dist")], cwd=src,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    name = result.stdout.split()[-1]
    with tarfile.open(tmp_path / "dist" / name) as tar:
        members = {m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name}
    for path in ("samples/resnet.py", "samples/llama.py", "tests/test_errors.py", "tests/conftest.py",
                 "tests/models/edge_cases.py", "tests/golden", "docs/errors.md", "docs/schema.md",
                 "templates/base.html", "mlx_report/templates/base.html", "README.md", "Makefile",
                 ".ci/lower_bounds.py", "mlx_report/cli.py"):
        assert path in members or any(m.startswith(path + "/") for m in members), path
    assert not any("__pycache__" in m or m.endswith(".pyc") for m in members)
