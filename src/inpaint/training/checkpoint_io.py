"""Lightning checkpoint I/O that can neither lose nor truncate a checkpoint.

Lightning's default :class:`~lightning_fabric.plugins.io.TorchCheckpointIO` writes through an fsspec transaction: a
temporary file under ``$TMPDIR`` that is then moved onto the target. Where ``$TMPDIR`` is another file system (local
``/tmp``, checkpoints on a shared disk) the move is a copy, and a ``kill -9`` during it leaves a truncated ``last.ckpt``
after the previous good one was already removed, plus a partial file in ``$TMPDIR``.

:class:`AtomicCheckpointIO` writes every checkpoint with :func:`inpaint.io.atomic_output` instead: into a
temporary file in the target's own directory, flushed and fsynced, renamed onto the target (atomic on one file system),
the directory fsynced; the temporary file is removed when the write fails, and temporary files of killed writers are
removed at the next save. It is wired in through ``conf/trainer/default.yaml`` (``plugins:``), so ``last.ckpt``, the
best checkpoint, the preemption checkpoint and ``nonfinite.ckpt`` (all written by ``trainer.save_checkpoint``) use it.
Remote paths (``s3://`` ...) keep Lightning's own behaviour.
"""

from __future__ import annotations

import errno
import logging
import shutil
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning_fabric.utilities.types import _PATH

from inpaint.io import atomic_output, remove_stale_temporaries

__all__ = ["AtomicCheckpointIO", "CheckpointWriteError"]

log = logging.getLogger(__name__)


def _local_path(path: _PATH) -> Path | None:
    """``path`` as a local :class:`~pathlib.Path`, or ``None`` for a URL of another file system."""
    text = str(path)
    if text.startswith("file://"):
        return Path(text[len("file://") :])
    return None if "://" in text else Path(text)


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (a full disk, a read-only folder); the previous file at that path is
    intact. The message names the folder and the cause."""

    def __init__(self, code: int, message: str, path: Path) -> None:
        super().__init__(code, message, str(path))

    def __str__(self) -> str:
        return str(self.strerror)


def _write_error(path: Path, err: BaseException, free: int | None) -> CheckpointWriteError | None:
    """The user's words for a failed checkpoint write, or ``None`` for an error that is not about the disk.

    torch's zip writer reports a full disk as ``RuntimeError: [enforce fail at inline_container.cc:...]`` (``file
    write failed``, ``unexpected pos ...``), without the errno; the free space at the moment of the failure tells.
    """
    out_of_space = getattr(err, "errno", None) == errno.ENOSPC or (free is not None and free < 1 << 20)
    if out_of_space:
        return CheckpointWriteError(
            errno.ENOSPC,
            f"no space left on {path.parent} to write the checkpoint {path.name} (the previous one, if any, is "
            "intact); free some space, then run again in the same directory to resume from the last checkpoint",
            path,
        )
    if isinstance(err, OSError) and err.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
        return CheckpointWriteError(err.errno, f"cannot write the checkpoint {path}: {err.strerror}", path)
    return None


class AtomicCheckpointIO(TorchCheckpointIO):
    """:class:`TorchCheckpointIO` whose local writes are atomic and durable, and whose removals are file-only."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        """Write ``checkpoint`` to ``path`` through a fsynced temporary file in the same directory."""
        local = _local_path(path)
        if local is None or storage_options is not None:
            super().save_checkpoint(checkpoint, path, storage_options)  # remote, or the parent's error
            return
        with atomic_output(local) as tmp:
            try:
                with open(tmp, "wb") as f:
                    torch.save(checkpoint, f)
            except (OSError, RuntimeError) as err:
                free = shutil.disk_usage(local.parent).free  # before the partial file is removed
                raise (_write_error(local, err, free) or err) from None
        removed = remove_stale_temporaries(local.parent)
        if removed:
            log.info(
                "removed %d temporary file(s) left by killed checkpoint writers in %s",
                len(removed),
                local.parent,
            )

    def remove_checkpoint(self, path: _PATH) -> None:
        """Remove one checkpoint file. Unlike the parent (``rm -r``) it never deletes a directory, and a file that is
        already gone is not an error (two callbacks may both clean up the same old checkpoint)."""
        local = _local_path(path)
        if local is None:
            super().remove_checkpoint(path)
            return
        if local.is_dir() and not local.is_symlink():
            log.warning("not removing %s: it is a directory, not a checkpoint file", local)
            return
        local.unlink(missing_ok=True)
        log.debug("removed checkpoint %s", local)
