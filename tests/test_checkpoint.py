"""Checkpoints: sharded and single safetensors, npz, clear errors, lazy loading, model dirs."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import pytest
from mlx.utils import tree_flatten

from mlx_report.checkpoint import load_into, read_checkpoint
from mlx_report.errors import CheckpointError

ROOT = Path(__file__).resolve().parent.parent

NET = '''
import mlx.nn as nn
class Net(nn.Module):
    def __init__(self, width: int = 16):
        super().__init__()
        self.fc1 = nn.Linear(8, width)
        self.fc2 = nn.Linear(width, 4)
    def __call__(self, x):
        return self.fc2(nn.relu(self.fc1(x)))
'''


def _net_weights(width: int = 16, scale: float = 1.0) -> dict[str, mx.array]:
    return {"fc1.weight": mx.full((width, 8), scale), "fc1.bias": mx.zeros((width,)),
            "fc2.weight": mx.full((4, width), scale), "fc2.bias": mx.zeros((4,))}


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlx_report", *args], cwd=cwd, capture_output=True, text=True)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "net.py").write_text(NET)
    mx.save_safetensors(str(tmp_path / "net.safetensors"), _net_weights())
    return tmp_path


def test_single_file_loads_lazily_into_model(workdir: Path) -> None:
    ckpt = read_checkpoint(workdir / "net.safetensors")
    model = nn.Sequential()
    from mlx_report.loading import load_model
    model = load_model(str(workdir / "net.py")).model
    match = load_into(model, ckpt)
    assert match.ok
    assert model.fc1.weight.shape == (16, 8)
    assert mx.array_equal(model.fc1.weight, mx.full((16, 8), 1.0)).item()


def test_sharded_set_with_index(tmp_path: Path) -> None:
    w = _net_weights()
    mx.save_safetensors(str(tmp_path / "model-00001-of-00002.safetensors"), {k: w[k] for k in ("fc1.weight", "fc1.bias")})
    mx.save_safetensors(str(tmp_path / "model-00002-of-00002.safetensors"), {k: w[k] for k in ("fc2.weight", "fc2.bias")})
    index = {"weight_map": {"fc1.weight": "model-00001-of-00002.safetensors", "fc1.bias": "model-00001-of-00002.safetensors",
                            "fc2.weight": "model-00002-of-00002.safetensors", "fc2.bias": "model-00002-of-00002.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    for target in (tmp_path / "model.safetensors.index.json", tmp_path):
        ckpt = read_checkpoint(target)
        assert sorted(ckpt.arrays) == sorted(w)
        assert len(ckpt.files) == 2


def test_npz(tmp_path: Path) -> None:
    mx.savez(str(tmp_path / "w.npz"), **_net_weights())
    assert sorted(read_checkpoint(tmp_path / "w.npz").arrays) == sorted(_net_weights())


def test_mismatch_lists_missing_unexpected_and_shapes(workdir: Path) -> None:
    w = _net_weights()
    w["fc2.weight"] = mx.zeros((5, 16))
    w["extra.weight"] = mx.zeros((3,))
    del w["fc1.bias"]
    mx.save_safetensors(str(workdir / "bad.safetensors"), w)
    r = run_cli("summary", "net.py", "--input", "2,8", "--weights", "bad.safetensors", cwd=workdir)
    assert r.returncode == 5, r.stderr
    line = r.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "missing 1: fc1.bias [16]" in line
    assert "unexpected 1: extra.weight [3]" in line
    assert "shape mismatch 1: fc2.weight model [4, 16] vs checkpoint [5, 16]" in line
    assert "--no-strict" in line
    loose = run_cli("summary", "net.py", "--input", "2,8", "--weights", "bad.safetensors", "--no-strict", cwd=workdir)
    assert loose.returncode == 0, loose.stderr


def _with_header(header: dict) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + b"\0" * 16


def test_truncated_and_corrupt_files_are_named(workdir: Path) -> None:
    data = (workdir / "net.safetensors").read_bytes()
    cases = {
        "empty.safetensors": b"",
        "short.safetensors": data[:5],
        "truncated.safetensors": data[:-10],
        "badjson.safetensors": struct.pack("<Q", 10) + b"{not json!",
        "huge.safetensors": struct.pack("<Q", 10 * 1024**3) + b"{}",
        "lying.safetensors": _with_header({"w": {"dtype": "F32", "shape": [1000000], "data_offsets": [0, 4000000]}}),
    }
    expected = {"empty": "not a safetensors file", "short": "not a safetensors file",
                "truncated": "lies outside the file", "badjson": "corrupt safetensors header",
                "huge": "header claims", "lying": "lies outside the file"}
    for name, payload in cases.items():
        (workdir / name).write_bytes(payload)
        with pytest.raises(CheckpointError) as e:
            read_checkpoint(workdir / name)
        assert name in str(e.value) and expected[name.split(".")[0]] in str(e.value)
    r = run_cli("summary", "net.py", "--input", "2,8", "--weights", "truncated.safetensors", cwd=workdir)
    assert r.returncode == 5 and "truncated.safetensors" in r.stderr and "Traceback" not in r.stderr


def test_missing_checkpoint(workdir: Path) -> None:
    r = run_cli("summary", "net.py", "--input", "2,8", "--weights", "nope.safetensors", cwd=workdir)
    assert r.returncode == 5 and r.stderr.strip() == "error: checkpoint not found: nope.safetensors"


def test_trace_with_checkpoint_stays_lazy_and_counts_exactly(workdir: Path) -> None:
    from mlx_report.pipeline import trace_target

    traced = trace_target(str(workdir / "net.py"), ["2,8"], weights=workdir / "net.safetensors")
    # fc1: 2*8*16 MACs, fc2: 2*16*4 MACs — counted although the weights are file-backed.
    assert traced.graph.totals.macs == 2 * 8 * 16 + 2 * 16 * 4
    assert traced.graph.meta["weights"] == "net.safetensors"


def _tiny_llama_dir(path: Path) -> Path:
    pytest.importorskip("mlx_lm")
    from mlx_lm.utils import _get_classes

    config = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128,
              "num_attention_heads": 4, "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "vocab_size": 256,
              "tie_word_embeddings": False}
    path.mkdir()
    (path / "config.json").write_text(json.dumps(config))
    model_cls, args_cls = _get_classes(config)
    model = model_cls(args_cls.from_dict(config))
    mx.save_safetensors(str(path / "model.safetensors"), dict(tree_flatten(model.parameters())))
    return path


def test_model_directory_from_tiny_config(tmp_path: Path) -> None:
    model_dir = _tiny_llama_dir(tmp_path / "tiny-llama")
    r = run_cli("summary", str(model_dir), "--input", "1,16:int32", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    d, L, ff, heads, kv, vocab, seq = 64, 2, 128, 4, 2, 256, 16
    head_dim = d // heads
    params = vocab * d + L * (d * d + 2 * d * kv * head_dim + d * d + 3 * d * ff + 2 * d) + d + d * vocab
    assert data["totals"]["params"] == params
    # q, k, v, o projections + attention (scores and values over all heads) + SwiGLU MLP, then the LM head.
    per_layer = seq * d * d + 2 * seq * d * kv * head_dim + seq * d * d + 2 * heads * seq * seq * head_dim + 3 * seq * d * ff
    assert data["totals"]["macs"] == L * per_layer + seq * d * vocab
    assert data["meta"]["weights"] == "tiny-llama"
    assert data["uncounted_ops"] == {}
