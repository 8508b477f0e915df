"""Writing output files atomically: a temporary file beside the target, then a rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

from .errors import OutputError
from .paths import check_encodable, check_name_length, shown


def check_output(path: str | os.PathLike, protect: Iterable[str | os.PathLike] = ()) -> Path:
    """Refuse early an output path that cannot or must not be written; return it.

    A name the file system cannot take (over 255 bytes) or that is not UTF-8 (it would be
    printed and recorded in reports) is refused here, before any work.
    """
    target = Path(path)
    check_encodable(target, "output", OutputError)
    check_name_length(target, "output", OutputError)
    try:
        resolved = target.resolve()
        target.is_dir()
    except OSError as e:  # a path over PATH_MAX, a loop of symlinks
        raise OutputError(f"output {shown(target)[:80]}: {e.strerror or e}") from None
    for p in protect:
        if p is not None and Path(p).resolve() == resolved:
            raise OutputError(f"refusing to overwrite input file {target}: choose another -o path")
    if target.is_dir():
        raise OutputError(f"output path {target} is a directory: give a file name")
    if not target.parent.exists():
        raise OutputError(f"output directory {target.parent} does not exist")
    if not os.access(target.parent, os.W_OK):
        raise OutputError(f"cannot write to directory {target.parent}: permission denied")
    return target


def write_atomic(path: str | os.PathLike, data: str | bytes,
                 protect: Iterable[str | os.PathLike] = ()) -> Path:
    """Write `data` to `path` so that readers see the old file or the whole new one.

    Refuses to overwrite any path in `protect` (the command's input files).
    """
    target = check_output(path, protect)
    payload = data.encode() if isinstance(data, str) else data
    try:
        # A short prefix: the temporary name must stay within the 255-byte limit too.
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:100]}.", suffix=".tmp", dir=target.parent)
    except OSError as e:
        raise OutputError(f"cannot write {target}: {e.strerror or e}") from None
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
