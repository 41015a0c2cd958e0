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


def test_errors_name_the_target_not_the_temporary_file(tmp_path: Path) -> None:
    import errno

    from tests.disks import full_disk, read_only_dir

    with (
        full_disk(tmp_path / "disk") as disk,
        pytest.raises(OSError) as info,
        atomic_output(disk / "out.bin") as tmp,
    ):
        tmp.write_bytes(b"x" * 100_000)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(disk / "out.bin")
    with (
        read_only_dir(tmp_path / "ro") as ro,
        pytest.raises(OSError) as info,
        atomic_output(ro / "out.bin") as tmp,
    ):
        tmp.write_bytes(b"x")
    assert info.value.filename == str(ro / "out.bin") and ".tmp" not in str(info.value)


def test_a_file_where_a_folder_should_be_is_named(tmp_path: Path) -> None:
    from inpaint.io import blocking_file, describe_os_error

    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"jpeg")
    target = photo / "sub" / "x.png"
    assert blocking_file(target) == photo and blocking_file(tmp_path / "new" / "x.png") is None
    with pytest.raises(NotADirectoryError) as info, atomic_output(target) as tmp:
        tmp.write_bytes(b"x")
    assert describe_os_error(info.value) == f"{target}: {photo} is a file, not a folder"
    assert photo.read_bytes() == b"jpeg"
