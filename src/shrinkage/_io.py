"""The one way this package touches a user's files: atomic writes, bounded reads, path checks.

Every file the library or the CLI writes (a model's weights and JSON, a checkpoint chunk,
``results.csv``, ``report.html``, predictions) goes through :func:`atomic_write`: the bytes
go to a temporary file in the destination's folder, are flushed to disk, and the temporary
file is renamed over the destination. A reader sees the old file or the new one, never a
half-written one; an interrupted write leaves the old file and no temporary behind. Only a
regular file is ever replaced: a symbolic link, a FIFO, a device or a directory at the
destination is refused, and the replaced file keeps its permissions.

``mkstemp`` creates private (0600) files; a new file written here gets the permissions any
ordinary file would, ``0666`` minus the user's umask, so that a model or a report can be
shared exactly as the user's other files are. Directories are made with ``mkdir`` (``0777``
minus the umask), never ``mkdtemp`` (0700).

Every file read from a user or from a directory a user may have edited goes through
:func:`read_bounded` (or :func:`read_json`): it refuses anything but a regular file before
opening it for good (a FIFO would block, ``/dev/zero`` never ends) and never reads more than
its bound. :func:`check_input_file` and :func:`check_output_file` are the checks a command
makes before any work; each problem is one line naming the path and what it is.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from shrinkage.errors import ShrinkageError

__all__ = [
    "atomic_write",
    "check_input_file",
    "check_output_file",
    "check_writable_folder",
    "fsync_path",
    "ordinary_mode",
    "parse_json",
    "path_problem",
    "read_bounded",
    "read_json",
    "write_csv",
]


def ordinary_mode(directory: bool = False) -> int:
    """The mode ``open()`` / ``mkdir()`` would give a new file (or directory): 0666 (0777)
    minus the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def fsync_path(path: str | os.PathLike) -> None:
    """Flush a file or a directory entry to disk, where the platform allows it."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # directories cannot be fsynced on some platforms
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- what a path is


def _kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _shown(path: str | os.PathLike) -> str:
    return os.fspath(path)


def path_problem(path: str | os.PathLike, err: OSError) -> str:
    """Why ``path`` could not be used, from the ``OSError`` that said so: the end of a sentence
    that starts with the path ("does not exist", "is a symbolic link loop", ...)."""
    code = err.errno
    if code == errno.ELOOP:
        return "is a symbolic link loop"
    if code == errno.ENOENT:
        with contextlib.suppress(OSError):  # gone between the two calls: it does not exist
            if stat.S_ISLNK(os.lstat(path).st_mode):
                return f"is a broken symbolic link (to '{os.readlink(path)}')"
        return "does not exist"
    if code == errno.ENOTDIR:
        return "does not exist (a part of it is a file, not a folder)"
    if code in (errno.EACCES, errno.EPERM):
        return "cannot be read (permission denied)"
    if code == errno.ENAMETOOLONG:
        return "has a name too long for the file system"
    return f"cannot be used ({err.strerror or type(err).__name__})"


def check_input_file(path: str | os.PathLike, what: str) -> Path:
    """Check that ``path`` is a regular file that can be read, before anything is read.

    A symbolic link to a regular file is fine; a FIFO, a device, a directory, a broken link
    or a link loop is refused, each by name (a FIFO would block the reader, ``/dev/zero``
    would never end, and neither is "empty").

    Args:
        path: the file.
        what: how the message names it, e.g. ``"The data file"``.

    Returns:
        The path.

    Raises:
        ShrinkageError: one line, naming the path and what is wrong with it.
    """
    shown = _shown(path)
    try:
        info = os.stat(path)
    except OSError as err:
        raise ShrinkageError(f"{what} '{shown}' {path_problem(path, err)}.") from None
    except ValueError:  # a NUL byte in the path
        raise ShrinkageError(f"{what} {shown!r} is not a valid path.") from None
    if stat.S_ISDIR(info.st_mode):
        raise ShrinkageError(f"{what} '{shown}' is a directory, not a file.")
    if not stat.S_ISREG(info.st_mode):
        raise ShrinkageError(f"{what} '{shown}' is {_kind(info.st_mode)}, not a regular file.")
    return Path(shown)


def read_bounded(path: str | os.PathLike, limit: int, what: str, *, head: bool = False) -> bytes:
    """The bytes of the regular file ``path``, refusing one larger than ``limit`` unread.

    The file is opened without blocking and checked to be regular on the open descriptor,
    so a FIFO or a device swapped in after a check is refused too; at most ``limit + 1``
    bytes are ever read.

    Args:
        path: the file.
        limit: the most bytes accepted.
        what: how the message names the file, e.g. ``"The model file"``.
        head: return the first ``limit`` bytes of a larger file instead of refusing it.

    Returns:
        The content (or its head).

    Raises:
        ShrinkageError: a missing, unreadable, non-regular or too large file.
    """
    shown = _shown(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except IsADirectoryError:
        raise ShrinkageError(f"{what} '{shown}' is a directory, not a file.") from None
    except OSError as err:
        raise ShrinkageError(f"{what} '{shown}' {path_problem(path, err)}.") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ShrinkageError(f"{what} '{shown}' is {_kind(info.st_mode)}, not a regular file.")
        if info.st_size > limit and not head:
            raise ShrinkageError(
                f"{what} '{shown}' is {info.st_size} bytes; at most {limit} are expected here."
            )
        try:
            data = handle.read(limit if head else limit + 1)
        except OSError as err:
            raise ShrinkageError(f"{what} '{shown}' {path_problem(path, err)}.") from None
    if len(data) > limit:  # a file that grew, or one whose size st_size does not tell
        raise ShrinkageError(f"{what} '{shown}' is larger than the {limit} bytes expected here.")
    return data


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]} is out of range")
    return value


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


def parse_json(data: bytes, path: str | os.PathLike, what: str) -> Any:
    """Parse JSON bytes read from ``path`` as strictly as this package writes JSON.

    ``NaN``, ``Infinity`` and numbers beyond float64 (``1e400``) are refused, as are
    structures nested too deep for the parser (``"[" * 200000``) and bytes that are not
    UTF-8.

    Args:
        data: the bytes.
        path: where they were read (for the message).
        what: how the message names the file, e.g. ``"The model file"``.

    Returns:
        The parsed value.

    Raises:
        ShrinkageError: not such JSON; the message quotes the parser's reason.
    """
    try:
        text = data.decode("utf-8")
        return json.loads(text, parse_float=_parse_float, parse_constant=_refuse_constant)
    except UnicodeDecodeError as err:
        reason = " ".join(str(err).split())
    except RecursionError:
        reason = "it is nested too deeply"
    except ValueError as err:
        reason = " ".join(str(err).split()) or type(err).__name__
    raise ShrinkageError(f"{what} '{_shown(path)}' is not valid JSON ({reason}).")


def read_json(path: str | os.PathLike, limit: int, what: str) -> Any:
    """Read the JSON file ``path`` (at most ``limit`` bytes) with :func:`read_bounded` and
    parse it with :func:`parse_json`.

    Args:
        path: the file.
        limit: the most bytes accepted.
        what: how the message names the file.

    Returns:
        The parsed value.

    Raises:
        ShrinkageError: the file cannot be read or is not such JSON.
    """
    return parse_json(read_bounded(path, limit, what), path, what)


# --------------------------------------------------------------------------- writing


def _existing_target(target: Path) -> os.stat_result | None:
    """The ``lstat`` of what is at ``target`` (None: nothing); only a regular file may be
    replaced."""
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode):
        raise ShrinkageError(
            f"The output path '{target}' is {_kind(info.st_mode)}; only a regular file is "
            "replaced. Remove it or choose another path."
        )
    return info


def atomic_write(
    path: str | os.PathLike,
    data: bytes | str | Callable[[IO[Any]], None],
    *,
    text: bool = False,
) -> Path:
    """Write ``data`` to ``path`` through a temporary sibling and one ``os.replace``.

    A new file gets the ordinary permissions (``0666`` minus the umask); a replaced file
    keeps its own.

    Args:
        path: the destination file (its folder must exist).
        data: the bytes, a string (written as UTF-8), or a function that writes to the open
            temporary file (binary, or text with ``newline=""`` when ``text``).
        text: open the temporary file in text mode for a writer function.

    Returns:
        The destination path.

    Raises:
        ShrinkageError: something other than a regular file is at ``path`` (a symbolic
            link, a FIFO, a device, a directory): it is left alone.
    """
    target = Path(os.fspath(path))
    existing = _existing_target(target)
    mode = stat.S_IMODE(existing.st_mode) if existing is not None else ordinary_mode()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.chmod(tmp, mode)
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


# --------------------------------------------------------------------------- output checks


def check_writable_folder(folder: str | os.PathLike, what: str) -> Path:
    """Check that files can be created in ``folder`` (or, when it does not exist yet, in the
    nearest folder above it that does), before any work is done.

    Permission bits do not tell (root passes them, ``/proc`` and ``/sys`` refuse anyway), so
    the check creates an empty temporary file there and removes it at once.

    Args:
        folder: where files will be written.
        what: how the message names it, e.g. ``"The '--output' folder"``.

    Returns:
        The folder.

    Raises:
        ShrinkageError: the folder (or the existing one above it) is not a directory or
            refuses new files.
    """
    shown = _shown(folder)
    probe = Path(os.path.abspath(os.fspath(folder)))
    while True:
        try:
            info = os.stat(probe)
            break
        except FileNotFoundError:
            if probe.parent == probe:
                raise ShrinkageError(f"{what} '{shown}' cannot be created.") from None
            probe = probe.parent
        except OSError as err:
            raise ShrinkageError(f"{what} '{shown}' {path_problem(probe, err)}.") from None
    if not stat.S_ISDIR(info.st_mode):
        raise ShrinkageError(
            f"{what} '{shown}' cannot be created: '{probe}' is {_kind(info.st_mode)}."
            if os.fspath(probe) != os.path.abspath(shown)
            else f"{what} '{shown}' is {_kind(info.st_mode)}, not a folder."
        )
    try:
        fd, name = tempfile.mkstemp(prefix=".shrinkage-probe-", dir=probe)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ShrinkageError(f"{what} '{shown}' cannot be written ({reason}).") from None
    os.close(fd)
    os.unlink(name)
    return Path(shown)


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return os.path.realpath(a) == os.path.realpath(b)


def check_output_file(
    path: str | os.PathLike,
    option: str = "--output",
    inputs: Iterable[str | os.PathLike] = (),
) -> Path:
    """Check, before any work, that an output file can be written at ``path``.

    The path must be new, or a regular file that is writable (it is then replaced, keeping
    its permissions), and not one of the ``inputs``; its folder must exist and accept new
    files.

    Args:
        path: the output file.
        option: the option that named it, for the message.
        inputs: files the command reads (an output equal to one is refused).

    Returns:
        The path.

    Raises:
        ShrinkageError: one line naming the option, the path and the problem.
    """
    shown = _shown(path)
    target = Path(shown)
    try:
        info: os.stat_result | None = os.lstat(target)
    except FileNotFoundError:
        info = None
    except OSError as err:
        problem = path_problem(target, err)
        raise ShrinkageError(f"The '{option}' path '{shown}' {problem}.") from None
    except ValueError:
        raise ShrinkageError(f"The '{option}' path {shown!r} is not a valid path.") from None
    if info is not None:
        if stat.S_ISDIR(info.st_mode):
            raise ShrinkageError(f"The '{option}' path '{shown}' is a directory; give a file name.")
        if not stat.S_ISREG(info.st_mode):
            raise ShrinkageError(
                f"The '{option}' path '{shown}' is {_kind(info.st_mode)}; only a regular file "
                "is replaced. Remove it or choose another path."
            )
        if not info.st_mode & 0o222 or not os.access(target, os.W_OK):
            raise ShrinkageError(
                f"The '{option}' file '{shown}' is read-only; it is left as it is. Choose "
                "another path or make it writable."
            )
        for source in inputs:
            if _same_file(target, source):
                raise ShrinkageError(
                    f"The '{option}' file '{shown}' is the input '{_shown(source)}'; writing "
                    "it would destroy what is read. Choose another path."
                )
    folder = target.absolute().parent
    if not folder.is_dir():
        raise ShrinkageError(f"The '{option}' folder '{folder}' does not exist.")
    check_writable_folder(folder, f"The '{option}' folder")
    return target
