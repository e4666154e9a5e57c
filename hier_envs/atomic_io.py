"""Atomic file writes: the one implementation every layer uses (STYLE "checkpoints written in place").

A file is written to a temporary name in the target's own directory (``.NAME.<random>.tmp``, so
the rename never crosses a filesystem and the hidden name stays out of globs like ``*.npz``),
flushed and fsynced, then ``os.replace``-d onto the target. Readers therefore see either the
previous file or the complete new one, never a partial write: an exception inside the
``with`` block (``KeyboardInterrupt`` included) removes the temporary file and leaves the
previous file untouched. The directory is fsynced afterwards, best effort, so the rename itself
survives a crash. The file gets the permissions a plain ``open()`` would give (``0o666`` less
the umask), not ``mkstemp``'s ``0o600``.

It lives in the lowest layer (``hier_envs``) because datasets are written here; ``agents`` and
``benchmarks`` import it from here (STYLE: data flows one way).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "write_bytes_atomic", "write_json_atomic", "write_text_atomic"]

WRITE_MODES = ("wb", "w")
"""Modes :func:`atomic_write` accepts: binary, or UTF-8 text."""

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once at import: os.umask can only be read by setting it
_FILE_PERMISSIONS = 0o666 & ~_UMASK
"""What ``open(path, "w")`` would create; ``mkstemp`` alone would give 0o600."""


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Yield a handle on a temporary file that replaces ``path`` when the block exits cleanly.

    ``mode`` is ``"wb"`` (binary handle) or ``"w"`` (UTF-8 text). Parent directories are
    created. On success the data is flushed and fsynced, the file renamed onto ``path`` and the
    directory fsynced (best effort); on any exception the temporary file is removed and the
    exception propagates, leaving any previous ``path`` intact.
    """
    if mode not in WRITE_MODES:
        raise ValueError(f"mode must be one of {WRITE_MODES}, got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as handle:
            os.fchmod(handle.fileno(), _FILE_PERMISSIONS)
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Persist a rename in ``directory`` (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`atomic_write`); returns the path."""
    with atomic_write(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically as UTF-8; returns the path."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike[str], payload: Any, indent: int | None = 2) -> Path:
    """Write ``payload`` as JSON plus a final newline, atomically; returns the path.

    NaN and infinity are refused (``ValueError``) so the file stays strict JSON.
    """
    return write_text_atomic(path, json.dumps(payload, indent=indent, allow_nan=False) + "\n")
