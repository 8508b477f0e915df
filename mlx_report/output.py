"""Writing output files atomically: a temporary file beside the target, then a rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

from .errors import OutputError


def write_atomic(path: str | os.PathLike, data: str | bytes, protect: Iterable[Path] = ()) -> Path:
    """Write `data` to `path` so that readers see the old file or the whole new one.

    Refuses to overwrite any path in `protect` (the command's input files).
    """
    target = Path(path)
    resolved = target.resolve()
    for p in protect:
        if Path(p).resolve() == resolved:
            raise OutputError(f"refusing to overwrite input file {target}: choose another -o path")
    if target.is_dir():
        raise OutputError(f"output path {target} is a directory: give a file name")
    if not target.parent.exists():
        raise OutputError(f"output directory {target.parent} does not exist")
    payload = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError):
            raise OutputError(f"cannot write {target}: {e.strerror or e}") from e
        raise
    return target
