"""Issue 11, loading and writing: special files, sibling imports, safetensors headers,
shard confinement, transactional archives, hand-edited archives, awkward file names.

Every CLI case runs in-process (CliRunner) from a scratch directory and checks the
one-line error contract: the exit code of the error class, one `error: ` line, no
traceback, nothing written.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from typer.testing import CliRunner

from mlx_report.cli import app

HEADER = "import mlx.core as mx\nimport mlx.nn as nn\n"
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
TIMEOUT = 20  # seconds: a command blocked on a FIFO never returns


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    exception: BaseException | None


class Hung(Exception):
    """Raised by the alarm: the command did not return in time."""


def cli(*args: str, timeout: float = TIMEOUT) -> Run:
    """Run `mlx-report ARGS` in-process; fail (not hang) when it does not return in time.

    An alarm signal interrupts a blocking open() of a FIFO (MLX streams are per thread, so
    the command must run in this thread, not a watchdog's).
    """
    def alarm(signum, frame):
        raise Hung

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=True)
    except Hung:
        result = None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if result is None or isinstance(result.exception, Hung):
        pytest.fail(f"mlx-report {' '.join(map(str, args))} hung for {timeout} s")
    return Run(result.exit_code, result.stdout, result.stderr, result.exception)


def make_fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def error_of(run: Run, code: int) -> str:
    """The one-line message of a failed run; asserts exit code, one line, no traceback."""
    assert run.code == code, (run.code, run.stderr, repr(run.exception), repr(getattr(run.exception, "__context__", None)))
    assert run.exception is None or isinstance(run.exception, SystemExit), repr(run.exception)
    assert "Traceback" not in run.stderr + run.stdout
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0].removeprefix("error: ")


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch directory (the cwd) holding net.py."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.py").write_text(NET)
    return tmp_path


@pytest.fixture(scope="module")
def archive_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real archived JSON (and its weights-stats.json) of net.py, made once."""
    folder = tmp_path_factory.mktemp("archive")
    (folder / "net.py").write_text(NET)
    run = cli("build", folder / "net.py", "--input", "2,8", "--archive", folder / "rel",
              "--no-diagram", timeout=300)
    assert run.code == 0, run.stderr
    return folder / "rel" / "model.json"


# --- 1. FIFOs and other non-regular files ------------------------------------------------------

def test_fifo_as_model_file_is_refused(ws: Path) -> None:
    make_fifo(ws / "pipe.py")
    message = error_of(cli("summary", "pipe.py", "--input", "2,8"), 3)
    assert message == "model file pipe.py is a FIFO (named pipe), not a regular file"


def test_device_as_model_file_is_refused(ws: Path) -> None:
    (ws / "zero.py").symlink_to("/dev/zero")  # after resolving symlinks
    message = error_of(cli("summary", "zero.py", "--input", "2,8"), 3)
    assert message == "model file zero.py is a character device, not a regular file"


@pytest.mark.parametrize("name", ["w.safetensors", "w.npz", "w.gguf"])
def test_fifo_as_weights_is_refused(ws: Path, name: str) -> None:
    make_fifo(ws / name)
    message = error_of(cli("summary", "net.py", "--input", "2,8", "--weights", name), 5)
    assert message == f"checkpoint {name} is a FIFO (named pipe), not a regular file"


def test_fifo_shard_in_a_weights_folder_is_refused(ws: Path) -> None:
    (ws / "shards").mkdir()
    make_fifo(ws / "shards" / "a.safetensors")
    message = error_of(cli("stats", "shards"), 5)
    assert message == "checkpoint shards/a.safetensors is a FIFO (named pipe), not a regular file"


def test_fifo_as_index_json_is_refused(ws: Path) -> None:
    make_fifo(ws / "model.safetensors.index.json")
    message = error_of(cli("stats", "model.safetensors.index.json"), 5)
    assert "is a FIFO (named pipe), not a regular file" in message


def test_fifo_config_in_a_model_dir_is_refused(ws: Path) -> None:
    (ws / "lm").mkdir()
    make_fifo(ws / "lm" / "config.json")
    message = error_of(cli("summary", "lm", "--input", "1,4:int32"), 3)
    assert message == "model config lm/config.json is a FIFO (named pipe), not a regular file"


def test_fifo_as_archive_json_is_refused(ws: Path) -> None:
    make_fifo(ws / "a.json")
    assert error_of(cli("build", "a.json", "-o", "r.html"), 1) == \
        "archive a.json is a FIFO (named pipe), not a regular file"
    (ws / "b.json").mkdir()
    assert error_of(cli("diff", "a.json", "b.json"), 1) == \
        "archive a.json is a FIFO (named pipe), not a regular file"
    assert error_of(cli("diff", "net.py", "b.json", "--input", "2,8"), 1) == \
        "archive b.json is a directory, not a regular file"
    assert listing(ws) == ["a.json", "b.json", "net.py"]


def test_fifo_as_weights_stats_is_refused(ws: Path, archive_json: Path) -> None:
    make_fifo(ws / "stats.json")
    message = error_of(cli("build", archive_json, "--weights-stats", "stats.json", "-o", "r.html"), 1)
    assert message == "weight statistics stats.json is a FIFO (named pipe), not a regular file"
    assert not (ws / "r.html").exists()


# --- 2. same-named sibling modules of two model files ------------------------------------------

BLOCKS = HEADER + textwrap.dedent(
    """
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, {width})

        def __call__(self, x):
            return self.fc(x)
    """
)
USES_BLOCKS = HEADER + "from blocks import Block\n\n\ndef build_model():\n    return Block()\n"


def two_versions(root: Path) -> tuple[Path, Path]:
    """v1/model.py and v2/model.py, each importing its own blocks.py (16 vs 32 features)."""
    for version, width in (("v1", 16), ("v2", 32)):
        (root / version).mkdir()
        (root / version / "blocks.py").write_text(BLOCKS.format(width=width))
        (root / version / "model.py").write_text(USES_BLOCKS)
    return root / "v1" / "model.py", root / "v2" / "model.py"


def test_sibling_modules_are_imported_fresh_and_sys_modules_restored(ws: Path) -> None:
    from mlx_report.loading import load_model

    v1, v2 = two_versions(ws)
    path_before, modules_before = list(sys.path), set(sys.modules)
    a, b = load_model(str(v1)), load_model(str(v2))
    assert a.model.fc.weight.shape == (16, 8)
    assert b.model.fc.weight.shape == (32, 8)
    assert sys.path == path_before
    assert "blocks" not in sys.modules
    assert not {m for m in set(sys.modules) - modules_before if m.startswith("mlx_report_user")}


def test_diff_of_two_versions_with_same_named_siblings(ws: Path) -> None:
    two_versions(ws)
    run = cli("diff", "v1/model.py", "v2/model.py", "--input", "2,8", "--format", "json")
    assert run.code == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["totals_a"]["params"] == 8 * 16 + 16
    assert data["totals_b"]["params"] == 8 * 32 + 32


# --- 3. float8 safetensors ---------------------------------------------------------------------

def write_safetensors(path: Path, entries: dict[str, dict], data: bytes) -> Path:
    """A safetensors file from raw header entries and the data bytes after the header."""
    header = json.dumps(entries).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)
    return path


FLOAT8_VALUES = [0.5, -1.0, 2.0, 448.0, 0.0, -0.375]


def float8_checkpoint(path: Path) -> Path:
    """E4M3 (2x3), E5M2 (6), BF16 (2) and F32 (3) tensors in one file."""
    values = mx.array(FLOAT8_VALUES)
    e4m3 = bytes(np.array(mx.to_fp8(values)))
    e5m2 = bytes((np.array(FLOAT8_VALUES, np.float16).view(np.uint16) >> 8).astype(np.uint8))
    bf16 = bytes(np.array(mx.array([1.5, -2.0], dtype=mx.bfloat16).view(mx.uint16)))
    f32 = np.array([1, 2, 3], np.float32).tobytes()
    entries = {"a": {"dtype": "F8_E4M3", "shape": [2, 3], "data_offsets": [0, 6]},
               "b": {"dtype": "F8_E5M2", "shape": [6], "data_offsets": [6, 12]},
               "c": {"dtype": "BF16", "shape": [2], "data_offsets": [12, 16]},
               "d": {"dtype": "F32", "shape": [3], "data_offsets": [16, 28]}}
    return write_safetensors(path, entries, e4m3 + e5m2 + bf16 + f32)


def test_float8_tensors_are_labelled_and_decoded(ws: Path) -> None:
    from mlx_report.checkpoint import read_checkpoint

    ckpt = read_checkpoint(float8_checkpoint(ws / "f8.safetensors"))
    assert [ckpt.dtype_of(k) for k in "abcd"] == ["float8_e4m3", "float8_e5m2", "bfloat16", "float32"]
    assert [ckpt.nbytes_of(k) for k in "abcd"] == [6, 6, 4, 12]
    assert ckpt.arrays["a"].shape == (2, 3)
    assert ckpt.arrays["a"].reshape(-1).tolist() == FLOAT8_VALUES
    assert ckpt.arrays["b"].tolist() == FLOAT8_VALUES
    assert ckpt.arrays["c"].tolist() == [1.5, -2.0]


def test_stats_of_float8_checkpoint(ws: Path) -> None:
    float8_checkpoint(ws / "f8.safetensors")
    run = cli("stats", "f8.safetensors", "--format", "json")
    assert run.code == 0, run.stderr
    tensors = {t["name"]: t for t in json.loads(run.stdout)["tensors"]}
    for name, dtype in (("a", "float8_e4m3"), ("b", "float8_e5m2")):
        t = tensors[name]
        assert (t["dtype"], t["nbytes"], t["min"], t["max"]) == (dtype, 6, -1.0, 448.0)
        assert t["mean"] == pytest.approx(sum(FLOAT8_VALUES) / 6)
    run = cli("diff", "f8.safetensors", "f8.safetensors", "--format", "json")
    assert run.code == 0, run.stderr
    assert "float8_e5m2" in run.stdout and "uint8" not in run.stdout


# --- 4. overlapping, out-of-range and mis-sized tensor offsets ---------------------------------

F32 = lambda shape, start, end: {"dtype": "F32", "shape": shape, "data_offsets": [start, end]}
BAD_LAYOUTS = {
    "shared": ({"a": F32([2], 0, 8), "b": F32([2], 4, 12)}, 12,
               "tensors 'a' and 'b' share bytes 4..8 of the data"),
    "same bytes": ({"a": F32([2], 0, 8), "b": F32([2], 0, 8)}, 8,
                   "tensors 'a' and 'b' share bytes 0..8 of the data"),
    "inside": ({"a": F32([4], 0, 16), "b": F32([1], 4, 8)}, 16,
               "tensors 'a' and 'b' share bytes 4..8 of the data"),
    "past the end": ({"a": F32([2], 0, 8), "b": F32([2], 8, 16)}, 12,
                     "tensor 'b' lies outside the file"),
    "size": ({"a": F32([3], 0, 8)}, 8, "tensor 'a' claims shape (3,) F32 (12 bytes) but spans 8 bytes"),
    "hole": ({"a": F32([1], 0, 4), "b": F32([1], 8, 12)}, 12,
             "bytes 4..8 of the data belong to no tensor (before 'b')"),
    "trailing": ({"a": F32([1], 0, 4)}, 12, "bytes 4..12 at the end of the data belong to no tensor"),
}


@pytest.mark.parametrize("case", sorted(BAD_LAYOUTS))
def test_bad_tensor_offsets_are_refused(ws: Path, case: str) -> None:
    entries, size, expected = BAD_LAYOUTS[case]
    write_safetensors(ws / "bad.safetensors", entries, bytes(size))
    for args in (("stats", "bad.safetensors"), ("summary", "net.py", "--input", "2,8", "--weights",
                                                "bad.safetensors")):
        message = error_of(cli(*args), 5)
        assert message.startswith("bad.safetensors: ") and expected in message, message


def test_empty_tensors_may_share_an_offset(ws: Path) -> None:
    from mlx_report.checkpoint import read_checkpoint

    entries = {"a": F32([0], 0, 0), "b": F32([2], 0, 8), "c": F32([0], 8, 8), "d": F32([0], 8, 8)}
    ckpt = read_checkpoint(write_safetensors(ws / "ok.safetensors", entries, bytes(8)))
    assert sorted(ckpt.arrays) == ["a", "b", "c", "d"]


# --- 5. shard paths of an index confined to its folder -----------------------------------------

def one_tensor(path: Path) -> Path:
    return write_safetensors(path, {"w": F32([2], 0, 8)}, bytes(8))


def write_index(folder: Path, shard: str) -> Path:
    index = folder / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": {"w": shard}}))
    return index


@pytest.mark.parametrize("shard", ["../outside.safetensors", "../../etc/passwd", "/etc/passwd",
                                   "sub/../../outside.safetensors"])
def test_index_shards_outside_the_folder_are_refused(ws: Path, shard: str) -> None:
    (ws / "ckpt").mkdir()
    one_tensor(ws / "outside.safetensors")
    write_index(ws / "ckpt", shard)
    for target in ("ckpt", "ckpt/model.safetensors.index.json"):
        message = error_of(cli("stats", target), 5)
        assert message == (f"model.safetensors.index.json: shard {shard!r} is outside the index's "
                           f"folder: shards must be file names next to the index")


def test_index_shard_symlink_leaving_the_folder_is_refused(ws: Path) -> None:
    (ws / "ckpt").mkdir()
    one_tensor(ws / "outside.safetensors")
    (ws / "ckpt" / "a.safetensors").symlink_to(ws / "outside.safetensors")
    write_index(ws / "ckpt", "a.safetensors")
    message = error_of(cli("stats", "ckpt"), 5)
    assert message.startswith("model.safetensors.index.json: shard 'a.safetensors' is a symlink "
                              "leading outside the index's folder")


def test_index_shards_inside_the_folder_and_the_hf_cache_layout_load(ws: Path) -> None:
    (ws / "ckpt" / "sub").mkdir(parents=True)
    one_tensor(ws / "ckpt" / "sub" / "a.safetensors")
    write_index(ws / "ckpt", "sub/a.safetensors")
    assert cli("stats", "ckpt").code == 0
    # Hugging Face cache: snapshots/<rev>/ holds symlinks into blobs/, the index too.
    blobs, snap = ws / "hub" / "blobs", ws / "hub" / "snapshots" / "abc"
    blobs.mkdir(parents=True)
    snap.mkdir(parents=True)
    one_tensor(blobs / "1111")
    write_index(blobs, "model-00001.safetensors").rename(blobs / "2222")
    (snap / "model-00001.safetensors").symlink_to("../../blobs/1111")
    (snap / "model.safetensors.index.json").symlink_to("../../blobs/2222")
    run = cli("stats", snap)
    assert run.code == 0, run.stderr


# --- 6. transactional archives ----------------------------------------------------------------

ARCHIVE_ARGS = ("--input", "2,8", "--no-diagram")


def archive_state(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_archive_without_weights_leaves_no_stale_statistics(ws: Path) -> None:
    assert cli("build", "net.py", *ARCHIVE_ARGS, "--archive", "rel").code == 0
    assert "weights-stats.json" in archive_state(ws / "rel")
    run = cli("build", "net.py", *ARCHIVE_ARGS, "--archive", "rel", "--no-weights")
    assert run.code == 0, run.stderr
    assert "weights-stats.json" not in archive_state(ws / "rel")
    listed = {f["name"] for f in json.loads((ws / "rel" / "manifest.json").read_text())["files"]}
    assert listed | {"manifest.json"} == set(archive_state(ws / "rel"))
    assert listing(ws) == sorted(["net.py", "rel", *(f"rel/{n}" for n in archive_state(ws / "rel"))])


def test_full_disk_midway_leaves_the_earlier_archive(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import mlx_report.archive as archive

    assert cli("build", "net.py", *ARCHIVE_ARGS, "--archive", "rel").code == 0
    before = archive_state(ws / "rel")
    real, calls = archive._write_file, []

    def full_disk(path: Path, payload: bytes) -> None:
        calls.append(path.name)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path, payload)

    monkeypatch.setattr(archive, "_write_file", full_disk)
    for target in ("rel", "new/deeper/rel"):
        calls.clear()
        message = error_of(cli("build", "net.py", *ARCHIVE_ARGS, "--archive", target, "--title", "v2"), 7)
        assert message == f"cannot write the archive {target}: No space left on device (nothing was changed)"
    assert archive_state(ws / "rel") == before
    assert listing(ws) == sorted(["net.py", "rel", *(f"rel/{n}" for n in before)])  # no staging left


def test_refusals_happen_before_anything_is_written(ws: Path, archive_json: Path) -> None:
    assert cli("build", "net.py", *ARCHIVE_ARGS, "--archive", "rel").code == 0
    before = archive_state(ws / "rel")
    (ws / "other").mkdir()
    (ws / "other" / "stats.json").write_text("{}")
    cases = [
        # an input inside the archive: it would be replaced
        (("build", "rel/model.json", "--archive", "rel"), 7, "refusing to replace the archive rel"),
        (("build", archive_json, "--weights-stats", "rel/weights-stats.json", "--archive", "rel",
          "-o", "r.html"), 7, "refusing to replace the archive rel"),
        # the -o report inside the archive
        (("build", "net.py", *ARCHIVE_ARGS, "--archive", "rel", "-o", "rel/r.html"), 2, "lies inside"),
        # unreadable statistics, bad option: refused before the -o report is written
        (("build", archive_json, "--weights-stats", "other/stats.json", "--archive", "rel",
          "-o", "r.html"), 1, "not an mlx-report weight statistics file"),
        (("build", "net.py", *ARCHIVE_ARGS, "--archive", "rel", "-o", "r.html", "--date", "soon"), 2, ""),
    ]
    for args, code, expected in cases:
        assert expected in error_of(cli(*args), code)
        assert archive_state(ws / "rel") == before
        assert not (ws / "r.html").exists() and not (ws / "rel" / "r.html").exists()
    (ws / "rel" / "notes.txt").write_text("mine")
    message = error_of(cli("build", "net.py", *ARCHIVE_ARGS, "--archive", "rel"), 7)
    assert "holds files that are not part of an archive (notes.txt)" in message


# --- 7. hand-edited archives: a missing key or a wrong type ------------------------------------

def key_paths(data: object, prefix: tuple = ()) -> list[tuple]:
    """Every key path of a JSON value, descending into the first item of each list."""
    out = []
    if isinstance(data, dict):
        for key, value in data.items():
            out.append(prefix + (key,))
            out += key_paths(value, prefix + (key,))
    elif isinstance(data, list) and data:
        out += key_paths(data[0], prefix + (0,))
    return out


def edited(data: object, path: tuple, value: object = None, delete: bool = True) -> object:
    """A deep copy of `data` with the key at `path` deleted (or set to `value`)."""
    copy = json.loads(json.dumps(data))
    holder = copy
    for key in path[:-1]:
        holder = holder[key]
    if delete:
        del holder[path[-1]]
    else:
        holder[path[-1]] = value
    return copy


def one_line_or_success(run: Run, what: str) -> None:
    assert run.exception is None or isinstance(run.exception, SystemExit), (what, repr(run.exception))
    assert "Traceback" not in run.stderr + run.stdout, what
    if run.code != 0:
        assert run.code == 1, (what, run.code, run.stderr)
        lines = [line for line in run.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), (what, run.stderr)


def test_archive_missing_keys_give_one_line(ws: Path, archive_json: Path) -> None:
    data = json.loads(archive_json.read_text())
    paths = key_paths(data)
    assert len(paths) > 60
    for path in paths:
        (ws / "x.json").write_text(json.dumps(edited(data, path)))
        what = f"without {'.'.join(map(str, path))}"
        one_line_or_success(cli("build", "x.json", "-o", "r.html", "--no-diagram"), what)
        one_line_or_success(cli("diff", "x.json", archive_json), what)
    (ws / "r.html").unlink(missing_ok=True)
    (ws / "x.json").write_text(json.dumps(edited(data, ("layers",))))
    assert error_of(cli("build", "x.json", "-o", "r.html"), 1) == \
        "x.json: not a valid mlx-report archive: missing 'layers'"
    assert not (ws / "r.html").exists()


def test_archive_wrong_types_give_one_line(ws: Path, archive_json: Path) -> None:
    data = json.loads(archive_json.read_text())
    for path in key_paths(data):
        for value in ("text", -1, None, [], {}):
            (ws / "x.json").write_text(json.dumps(edited(data, path, value, delete=False)))
            what = f"{'.'.join(map(str, path))} = {value!r}"
            one_line_or_success(cli("diff", "x.json", archive_json), what)
    (ws / "x.json").write_text(json.dumps(edited(data, ("layers", 0, "params"), "many", delete=False)))
    message = error_of(cli("build", "x.json", "-o", "r.html"), 1)
    assert message == "x.json: not a valid mlx-report archive: layers[0].params is a string, not an integer"


def test_weights_stats_missing_keys_give_one_line(ws: Path, archive_json: Path) -> None:
    stats = json.loads((archive_json.parent / "weights-stats.json").read_text())
    for path in key_paths(stats):
        (ws / "s.json").write_text(json.dumps(edited(stats, path)))
        run = cli("build", archive_json, "--weights-stats", "s.json", "-o", "r.html", "--no-diagram")
        one_line_or_success(run, f"without {'.'.join(map(str, path))}")


# --- 8. names too long, names that are not UTF-8 -----------------------------------------------

LONG = "a" * 300
UNDECODABLE = os.fsdecode(b"\xff")  # "\udcff" on Linux: a surrogate-escaped byte


@pytest.mark.parametrize("args", [
    ("summary", "net.py", "--input", "2,8", "-o", f"{LONG}.json"),
    ("build", "net.py", "--input", "2,8", "-o", f"{LONG}.html"),
    ("graph", "net.py", "--input", "2,8", "-o", f"{LONG}.svg"),
    ("export", "net.py", "--input", "2,8", "-o", f"{LONG}.json"),
    ("diff", "net.py", "net.py", "--input", "2,8", "-o", f"{LONG}.json"),
    ("stats", f"{LONG}.safetensors", "-o", f"{LONG}.json"),
    ("build", "net.py", "--input", "2,8", "--archive", LONG),
])
def test_output_name_too_long(ws: Path, args: tuple) -> None:
    message = error_of(cli(*args), 7)
    assert "file name too long (" in message and message.endswith("bytes; the limit is 255)"), message
    assert listing(ws) == ["net.py"]


@pytest.mark.parametrize("args, code, what", [
    (("summary", f"{LONG}.py", "--input", "2,8"), 3, "model file"),
    (("summary", "net.py", "--input", "2,8", "--weights", f"{LONG}.npz"), 5, "checkpoint"),
    (("stats", f"{LONG}.safetensors"), 5, "checkpoint"),
    (("diff", f"{LONG}.json", "net.py", "--input", "2,8"), 1, "archive"),
    (("build", f"{LONG}.json", "-o", "r.html"), 1, "archive"),
])
def test_input_name_too_long(ws: Path, args: tuple, code: int, what: str) -> None:
    message = error_of(cli(*args), code)
    assert message.startswith(f"{what} aaaa") and "file name too long" in message, message
    assert listing(ws) == ["net.py"]


def test_names_that_are_not_utf8(ws: Path, archive_json: Path) -> None:
    (ws / f"{UNDECODABLE}.py").write_text(NET)
    assert error_of(cli("summary", f"{UNDECODABLE}.py", "--input", "2,8"), 3) == \
        "model file \\xff.py: the name is not valid UTF-8; rename it"
    (ws / f"{UNDECODABLE}.json").write_bytes(archive_json.read_bytes())
    assert error_of(cli("build", f"{UNDECODABLE}.json", "-o", "r.html"), 1) == \
        "archive \\xff.json: the name is not valid UTF-8; rename it"
    for args in (("summary", "net.py", "--input", "2,8", "-o", f"{UNDECODABLE}.json"),
                 ("build", "net.py", "--input", "2,8", "-o", f"{UNDECODABLE}.pdf"),
                 ("build", "net.py", "--input", "2,8", "--archive", f"out{UNDECODABLE}")):
        assert "the name is not valid UTF-8; rename it" in error_of(cli(*args), 7)
    assert listing(ws) == sorted(["net.py", f"{UNDECODABLE}.py", f"{UNDECODABLE}.json"])
