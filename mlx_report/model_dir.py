"""Hugging Face–style model directories (config.json + *.safetensors) through mlx-lm.

The architecture comes from mlx-lm's model classes (the optional extra
`mlx-report[lm]`); the weights are loaded lazily, so tracing never reads them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .checkpoint import read_checkpoint
from .errors import ModelLoadError
from .paths import regular_file


def is_model_dir(path: Path) -> bool:
    """A directory with a config.json (False, not OSError, for a name too long)."""
    try:
        return path.is_dir() and (path / "config.json").exists()
    except (OSError, ValueError):
        return False


def load_model_dir(path: Path, strict: bool = True):
    """Build the model a directory describes; returns (module, config, weight files)."""
    config_path = regular_file(path / "config.json", "model config", ModelLoadError)
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{config_path}: not a readable JSON config ({e})") from None
    try:
        from mlx_lm.utils import load_model as lm_load_model
    except ImportError:
        raise ModelLoadError("model directories need mlx-lm: pip install 'mlx-report[lm]'") from None
    ckpt = read_checkpoint(path)  # validates every shard's header first, with clear errors
    try:
        model, config = lm_load_model(path, lazy=True, strict=strict)
    except Exception as e:
        kind = config.get("model_type", "?")
        raise ModelLoadError(f"{path}: mlx-lm cannot build model_type {kind!r}: "
                             f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    digest = hashlib.sha256(config_path.read_bytes()).hexdigest()
    return model, config, ckpt.files, digest
