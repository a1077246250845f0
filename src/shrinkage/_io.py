"""The one way this package writes a file: atomically, durably, with ordinary permissions.

Every file the library or the CLI writes (a model's weights and JSON, a checkpoint chunk,
``results.csv``, ``report.html``, predictions) goes through :func:`atomic_write`: the bytes
go to a temporary file in the destination's folder, are flushed to disk, and the temporary
file is renamed over the destination. A reader sees the old file or the new one, never a
half-written one; an interrupted write leaves the old file and no temporary behind.

``mkstemp`` creates private (0600) files; a file written here gets the permissions any
ordinary file would, ``0666`` minus the user's umask, so that a model or a report can be
shared exactly as the user's other files are.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "fsync_path", "ordinary_mode", "write_csv"]


def ordinary_mode(directory: bool = False) -> int:
    """The mode ``open()`` / ``mkdir()`` would give a new file (or directory): 0666 (0777)
    minus the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def fsync_path(path: str | os.PathLike) -> None:
    """Flush a file or a directory entry to disk, where the platform allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # directories cannot be fsynced on some platforms
    finally:
        os.close(fd)


def atomic_write(
    path: str | os.PathLike,
    data: bytes | str | Callable[[IO[Any]], None],
    *,
    text: bool = False,
) -> Path:
    """Write ``data`` to ``path`` through a temporary sibling and one ``os.replace``.

    Args:
        path: the destination file (its folder must exist).
        data: the bytes, a string (written as UTF-8), or a function that writes to the open
            temporary file (binary, or text with ``newline=""`` when ``text``).
        text: open the temporary file in text mode for a writer function.

    Returns:
        The destination path.
    """
    target = Path(os.fspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.chmod(tmp, ordinary_mode())
        handle = os.fdopen(fd, "w", newline="", encoding="utf-8") if text else os.fdopen(fd, "wb")
        with handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def write_csv(frame: Any, path: str | os.PathLike, **to_csv: Any) -> Path:
    """Write a DataFrame as CSV (no index unless asked) with :func:`atomic_write`."""
    to_csv.setdefault("index", False)
    return atomic_write(path, lambda handle: frame.to_csv(handle, **to_csv), text=True)
