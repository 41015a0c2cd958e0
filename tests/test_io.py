"""Atomic writes (inpaint.io): a failed write keeps the old file, results get normal permissions, and no
temporary file outlives its writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from inpaint.io import atomic_output


def test_atomic_output_keeps_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]
    with atomic_output(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and list(tmp_path.iterdir()) == [target]


def test_atomic_output_uses_normal_permissions(tmp_path: Path) -> None:
    import os

    umask = os.umask(0)
    os.umask(umask)
    target = tmp_path / "out.txt"
    with atomic_output(target) as tmp:
        tmp.write_text("x")
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_remove_stale_temporaries_only_removes_dead_writers(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from inpaint.io import remove_stale_temporaries

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".last.{dead_pid}-0123456789ab.tmp.ckpt"
    live = tmp_path / f".last.{os.getpid()}-0123456789ab.tmp.ckpt"
    other = tmp_path / ".hidden.ckpt"
    for p in (stale, live, other):
        p.write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert sorted(tmp_path.iterdir()) == sorted([live, other])


def test_png_written_atomically_leaves_no_temporary_files(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from inpaint.io import write_png_atomic

    arr = np.random.default_rng(0).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    path = tmp_path / "sub" / "grid.png"
    write_png_atomic(path, arr)
    assert np.array_equal(np.asarray(Image.open(path)), arr)
    assert [p.name for p in path.parent.iterdir()] == ["grid.png"]
