"""The oldest MLX that gives right numbers, and the check the CLI makes at start."""

from __future__ import annotations

import re
from importlib import metadata

from .errors import MlxReportError

# Measured with tests/test_numbers.py against each release (`make test-oldest` runs the
# whole suite on it): up to 0.32.3 quantized Linear layers cannot be exported (their MACs
# drop out of the totals) and the peak of live activations comes out wrong.
MIN_MLX = (0, 32, 4)


def _release(text: str) -> tuple[int, ...]:
    """'0.32.4' -> (0, 32, 4); a suffix such as 'rc1' or '.dev0' is ignored."""
    return tuple(int(part) for part in re.findall(r"\d+", text.split("+")[0])[:3])


def installed_mlx() -> str | None:
    """The installed MLX version, read from its metadata (MLX itself is not imported)."""
    for name in ("mlx", "mlx-cpu", "mlx-metal"):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def check_mlx(version: str | None = None) -> None:
    """MlxReportError naming both versions when MLX is older than MIN_MLX."""
    version = installed_mlx() if version is None else version
    if version is None:
        return  # a source build without metadata: nothing to compare
    if _release(version) < MIN_MLX:
        need = ".".join(map(str, MIN_MLX))
        raise MlxReportError(f"mlx {version} is installed but mlx-report needs mlx >= {need} "
                             f"(older releases give wrong totals): pip install -U 'mlx>={need}'")
