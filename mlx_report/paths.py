"""Checks on paths before they are opened: regular files only, names the OS can take.

Opening a FIFO blocks until a writer comes, /dev/zero never ends, and a name with
undecodable bytes or over the file system's limit fails deep inside a writer; every
reader and writer asks here first, so each case is one clear error line instead.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .errors import MlxReportError

_NAME_MAX = 255   # Linux and macOS file systems: bytes per path component
_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def shown(path: str | os.PathLike) -> str:
    """The path as printable text: undecodable bytes appear as \\xff escapes."""
    raw = os.fsencode(path)
    return raw.decode("utf-8", "backslashreplace")


def check_encodable(path: str | os.PathLike, what: str, error: type[MlxReportError]) -> None:
    """Refuse a path whose name is not valid UTF-8 (it cannot be written into JSON or HTML)."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        raise error(f"{what} {shown(path)}: the name is not valid UTF-8; rename it") from None


def check_name_length(path: str | os.PathLike, what: str, error: type[MlxReportError]) -> None:
    """Refuse a path with a component longer than the file system takes (ENAMETOOLONG)."""
    for part in Path(path).parts:
        if len(os.fsencode(part)) > _NAME_MAX:
            raise error(f"{what} {shown(path)[:60]}…: file name too long "
                        f"({len(os.fsencode(part))} bytes; the limit is {_NAME_MAX})")


def file_kind(path: str | os.PathLike) -> str | None:
    """None for a regular file (after symlinks), "missing", or what it is: "a FIFO (named pipe)"…

    OSError for anything else stat refuses (too long a name, permission denied).
    """
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    except ValueError:  # an embedded NUL byte
        raise OSError(errno.EINVAL, "invalid path") from None
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


def probe(path: str | os.PathLike, what: str, error: type[MlxReportError]) -> str | None:
    """`file_kind` of `path`, with a bad name or a failing stat raised as `error`."""
    check_encodable(path, what, error)
    try:
        return file_kind(path)
    except OSError as e:
        if e.errno == errno.ENAMETOOLONG:
            check_name_length(path, what, error)
        raise error(f"{what} {shown(path)}: {e.strerror or e}") from None


def regular_file(path: str | os.PathLike, what: str, error: type[MlxReportError],
                 missing: str | None = None) -> Path:
    """`path` when it names a regular file (symlinks followed); else `error` with one line.

    `missing` is the message for a path that does not exist (default: "<what> not found").
    """
    kind = probe(path, what, error)
    if kind == "missing":
        raise error(missing or f"{what} not found: {shown(path)}")
    if kind is not None:
        raise error(f"{what} {shown(path)} is {kind}, not a regular file")
    return Path(path)


def is_dir(path: str | os.PathLike) -> bool:
    """Path.is_dir that says False (not OSError) for a name too long or unreadable."""
    try:
        return Path(path).is_dir()
    except (OSError, ValueError):
        return False
