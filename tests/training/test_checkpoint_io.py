"""Checkpoints are written atomically: a kill mid-save keeps the previous checkpoint, nothing leaks into $TMPDIR."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from inpaint.training.checkpoint_io import AtomicCheckpointIO

# The child builds the trainer from the project's trainer config (composed by the parent, so the test follows what
# `python -m inpaint.train` uses), saves a small good checkpoint, then a large one through a writer slowed to ~1 MB
# per 10 ms; the parent kills it mid-write.
CHILD = textwrap.dedent(
    """
    import builtins, sys, time
    import hydra, torch
    from omegaconf import OmegaConf

    target, trainer_yaml = sys.argv[1], sys.argv[2]
    cfg = OmegaConf.load(trainer_yaml)
    trainer = hydra.utils.instantiate(cfg, logger=False, callbacks=[], enable_progress_bar=False)
    io = trainer.strategy.checkpoint_io
    io.save_checkpoint({"state_dict": {"w": torch.ones(1000)}, "tag": "good"}, target)

    real_open = builtins.open

    class SlowFile:
        announced = False

        def __init__(self, f):
            self._f = f

        def write(self, data):
            view = memoryview(data).cast("B")
            if not SlowFile.announced and len(view) > 0:
                SlowFile.announced = True
                print("writing", flush=True)
            for i in range(0, len(view), 1 << 20):
                self._f.write(view[i : i + (1 << 20)])
                self._f.flush()
                time.sleep(0.01)
            return len(view)

        def __getattr__(self, name):
            return getattr(self._f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

    def slow_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        return SlowFile(f) if "w" in mode and "b" in mode else f

    builtins.open = slow_open
    io.save_checkpoint({"state_dict": {"w": torch.zeros(32_000_000)}, "tag": "big"}, target)  # 128 MB
    print("finished", flush=True)
    """
)


def test_trainer_config_writes_checkpoints_atomically(train_config, tmp_path: Path) -> None:
    for trainer in ("cpu", "ddp_cpu"):
        cfg = train_config.compose(["+experiment=smoke", *train_config.TINY, f"trainer={trainer}"], tmp_path)
        built = hydra.utils.instantiate(cfg.trainer, logger=False, callbacks=[], enable_progress_bar=False)
        assert isinstance(built.strategy.checkpoint_io, AtomicCheckpointIO), trainer


def test_kill_mid_save_keeps_the_previous_checkpoint(train_config, tmp_path: Path) -> None:
    ckpt_dir, tmpdir = tmp_path / "run" / "checkpoints", tmp_path / "tmpdir"
    tmpdir.mkdir()
    target = ckpt_dir / "last.ckpt"
    cfg = train_config.compose(["+experiment=smoke", *train_config.TINY], tmp_path / "run")
    trainer_yaml = tmp_path / "trainer.yaml"
    OmegaConf.save(cfg.trainer, trainer_yaml, resolve=True)
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(target), str(trainer_yaml)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = child.stdout.readline() if child.stdout else ""
        assert line.strip() == "writing", f"child did not start the slow save: {line!r} {child.stderr.read()}"  # type: ignore[union-attr]
        time.sleep(0.3)  # well inside the ~1.3 s write
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL

    # The previous checkpoint is intact and loadable, and no partial file took its place.
    ckpt = torch.load(target, weights_only=True)
    assert ckpt["tag"] == "good" and torch.equal(ckpt["state_dict"]["w"], torch.ones(1000))
    assert list(tmpdir.iterdir()) == []  # nothing written (or left) in $TMPDIR
    leftovers = [p for p in ckpt_dir.iterdir() if p != target]
    assert all(p.name.startswith(".last.") and ".tmp" in p.name for p in leftovers), leftovers

    # The next save removes what the killed writer left behind.
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "tag": "next"}, target)
    assert list(ckpt_dir.iterdir()) == [target]
    assert torch.load(target, weights_only=True)["tag"] == "next"


def test_failed_save_removes_its_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"tag": "good"}, target)
    with pytest.raises(Exception, match="pickle|serializ|Can't"):
        io.save_checkpoint({"tag": "bad", "fn": lambda: None}, target)  # unpicklable: fails mid-write
    assert list(tmp_path.iterdir()) == [target]
    assert torch.load(target, weights_only=True)["tag"] == "good"
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_remove_checkpoint_only_removes_files(tmp_path: Path) -> None:
    io = AtomicCheckpointIO()
    folder = tmp_path / "looks_like.ckpt"
    (folder / "inner").mkdir(parents=True)
    io.remove_checkpoint(folder)  # Lightning's default would rm -r it
    assert (folder / "inner").is_dir()
    io.remove_checkpoint(tmp_path / "already_gone.ckpt")  # no error
    f = tmp_path / "old.ckpt"
    io.save_checkpoint({"tag": 1}, f)
    io.remove_checkpoint(f)
    assert not f.exists()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
