"""Files in and out: every file the project writes appears whole or not at all, and an input file that cannot be
used is one :class:`InputError` naming it.

A writer gets a temporary path in the target's own directory; on success the file is flushed to disk and renamed onto
the target (``os.replace``), on error removed. Readers never see a half-written file, and an existing file is only
replaced by a complete one, even after ``kill -9`` in the middle of a write.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

__all__ = [
    "InputError",
    "atomic_output",
    "blocking_file",
    "describe_os_error",
    "ensure_writable_dir",
    "remove_stale_temporaries",
    "write_png_atomic",
    "write_text_atomic",
]


class InputError(ValueError):
    """An input the user gave (a photo, a mask, a path) cannot be used. The message is meant for the user as it is:
    it names the file and says what was expected; the tools print it as one line, the page shows it."""


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is flushed to disk and renamed onto ``path``
    (``os.replace``), on error removed. Readers never see a half-written file, and an existing file is only
    replaced by a complete one, even after a crash or ``kill -9`` in the middle of the write.

    The temporary file lives in the target's own directory (a rename within one file system is atomic; a move from
    ``$TMPDIR`` to another disk is a copy that a kill can cut short) and is named ``.<stem>.<pid>-<random>.tmp<suffix>``
    (see :func:`remove_stale_temporaries`); it keeps the suffix of ``path`` so that writers that pick a format from
    it (PIL, OpenCV) work. The result gets the usual umask-respecting permissions (0644 typically), whatever mode
    the writer created it with (safetensors writes 0600).

    An error of the write names ``path``, not the temporary file (a user never chose that name), and a file where
    a parent folder should be is reported as such (``x.jpg/out.png``: "x.jpg is a file, not a folder").
    """
    path = Path(path)
    _make_parent(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(6)}{_TMP_MARK}{path.suffix}")
    try:
        yield tmp
        if tmp.is_file():
            os.chmod(tmp, 0o666 & ~_umask())
            _fsync_path(tmp)
        os.replace(tmp, path)
        _fsync_path(path.parent)  # the rename itself is durable only once the directory is synced
    except OSError as e:
        _remove(tmp)
        named = e.filename is not None and os.fsdecode(e.filename) != str(tmp)  # e.g. an input of the writer
        if e.errno is None or named:
            raise
        raise OSError(e.errno, e.strerror or os.strerror(e.errno), str(path)) from e
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: Path) -> None:
    # On a read-only file system even removing a file that was never created fails (EROFS, not ENOENT); that
    # error must not hide the one that made the write fail.
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)


def blocking_file(path: str | os.PathLike[str]) -> Path | None:
    """The existing file (not folder) among the parents of ``path`` that keeps it from being created, or None."""
    for parent in Path(path).parents:
        if parent.exists() or parent.is_symlink():
            return None if parent.is_dir() else parent
    return None


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = blocking_file(path)
        if blocker is None:
            raise
        raise NotADirectoryError(errno.ENOTDIR, f"{blocker} is a file, not a folder", str(path)) from None


_TMP_MARK = ".tmp"
# .<stem>.<pid>-<12 hex digits>.tmp<suffix>, as atomic_output names its temporary files.
_TMP_RE = re.compile(r"\..*\.(\d+)-[0-9a-f]{12}\.tmp(\.[^.]*)?")


def _fsync_path(path: Path) -> None:
    """Flush a file's (or a directory's entries') data to disk; file systems without directory fsync are fine."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        if not path.is_dir():
            raise
    finally:
        os.close(fd)


def _umask() -> int:
    # Read without changing it: os.umask() sets it, for every thread, until it is set back.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def remove_stale_temporaries(directory: str | os.PathLike[str]) -> list[Path]:
    """Remove what :func:`atomic_output` left in ``directory`` when its writer was killed (``kill -9``, out of
    memory): temporary files whose writing process no longer runs on this machine. Returns the removed paths.
    """
    removed = []
    for tmp in Path(directory).glob(f".*{_TMP_MARK}*"):
        match = _TMP_RE.fullmatch(tmp.name)
        if match and tmp.is_file() and not _process_alive(int(match.group(1))):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_png_atomic(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Write an (H, W, 3) or (H, W) uint8 array as a PNG, atomically."""
    from PIL import Image

    with atomic_output(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def ensure_writable_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` if needed and check that files can be created in it, so that a tool fails at once with a
    clear :class:`OSError` instead of after its work is done. Returns ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    blocker = blocking_file(path / "x")
    if blocker is not None:
        raise NotADirectoryError(errno.ENOTDIR, f"{blocker} is a file, not a folder", str(path))
    path.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(
        dir=path
    ):  # removed on close; permission bits alone would not tell (root, ACLs)
        pass
    return path


def describe_os_error(err: OSError) -> str:
    """``"<file>: <reason>"`` for a failed file operation (e.g. ``"out/x.png: Permission denied"``), for the one-line
    errors of the command-line tools."""
    reason = err.strerror or str(err) or type(err).__name__
    return f"{err.filename}: {reason}" if err.filename else reason
