"""Real file-system trouble for the tests of the command-line tools: a full disk and a read-only folder.

A full disk is a small tmpfs mounted for the test and filled up (needs root with the right to mount, as in CI's
container and on the development machine); where mounting is impossible the test is skipped with the reason. A
read-only folder is a read-only tmpfs for root (who writes into any ``chmod 555`` folder) and a ``chmod 555`` folder
for everyone else.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount(target: Path, options: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs for this test (needs root allowed to mount): {proc.stderr.strip()}"
        )


def _umount(target: Path) -> None:
    subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)


@contextlib.contextmanager
def full_disk(target: Path, size_kib: int = 256) -> Iterator[Path]:
    """Mount a ``size_kib`` tmpfs on ``target``, fill it to the last byte, and yield ``target``: every write of
    data into it fails with ``ENOSPC`` (creating an empty file still works, as on a real full disk)."""
    if os.geteuid() != 0:
        pytest.skip("a real full disk needs root (to mount a small tmpfs)")
    _mount(target, f"size={size_kib}k")
    try:
        fd = os.open(target / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
        finally:
            os.close(fd)
        yield target
    finally:
        _umount(target)


@contextlib.contextmanager
def read_only_dir(target: Path) -> Iterator[Path]:
    """Yield ``target`` as a folder in which nothing can be created (see the module docstring)."""
    if os.geteuid() == 0:
        _mount(target, "ro,size=64k")
        try:
            yield target
        finally:
            _umount(target)
        return
    target.mkdir(parents=True, exist_ok=True)
    target.chmod(0o555)
    try:
        yield target
    finally:
        target.chmod(0o755)
