"""docs/extending.md as a user follows it: its dataset, mask generator and loss term, written into modules outside the
package, drive the real commands (make_eval_masks, train, evaluate) exactly as the page shows them, and its inference
option is the package's own, used by predict and evaluate as shown."""

from __future__ import annotations

import csv
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.training.conftest import REPO_ROOT

DOC = REPO_ROOT / "docs" / "extending.md"
# Overrides that shrink the documented training command to a few seconds (it is the default demo otherwise).
TINY_RUN = [
    "trainer.max_steps=2",
    "trainer.val_check_interval=2",
    "validate_first=false",
    "data.batch_size=2",
    "data.eval_image_size=64",
    "data.num_workers=0",
    "model.net.base_channels=8",
    "callbacks.image_grids.every_n_steps=0",
    "logger=csv",
]


def _blocks(language: str) -> dict[str, str]:
    """The page's code blocks in ``language``, keyed by their first line (``# my_masks.py``) or their text."""
    text = DOC.read_text()
    return {b.splitlines()[0]: b for b in re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)}


def _command(prefix: str) -> list[str]:
    """The page's bash command that starts with ``prefix``, as argv without the environment assignment."""
    lines = [line for b in _blocks("bash").values() for line in b.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, f"docs/extending.md should show one command starting with {prefix!r}: {lines}"
    argv = shlex.split(lines[0])
    return argv[1:] if "=" in argv[0] else argv


@pytest.fixture
def user_dir(tmp_path: Path, fake_data) -> Path:
    """A user's folder holding the page's my_masks.py, my_squares.yaml and my_photos.py, and a catalogue of photos."""
    (tmp_path / "my_masks.py").write_text(_blocks("python")["# my_masks.py"])
    (tmp_path / "my_squares.yaml").write_text(_blocks("yaml")["# my_squares.yaml"])
    (tmp_path / "my_photos.py").write_text(_blocks("python")["# my_photos.py"])
    (tmp_path / "my_losses.py").write_text(_blocks("python")["# my_losses.py"])
    lines = []
    for i, split in enumerate(["train"] * 6 + ["val"] * 2 + ["test"] * 2):
        fake_data.jpeg(tmp_path / "my_photos" / "pictures" / f"{i}.jpg", 96, 128, seed=i)
        lines.append(f"{split},pictures/{i}.jpg")
    (tmp_path / "my_photos" / "catalogue.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


def _run(argv: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    assert argv[0] == "python", argv
    path = os.pathsep.join(p for p in (".", str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "PYTHONPATH": path, "WANDB_MODE": "offline"}
    return subprocess.run(
        [sys.executable, *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def _hole_ratio(png: Path) -> float:
    return float((np.asarray(Image.open(png).convert("L")) > 127).mean())


def _one_square_hole(png: Path) -> bool:
    holes = np.asarray(Image.open(png).convert("L")) > 127  # mask files: white = hole
    rows, cols = np.flatnonzero(holes.any(axis=1)), np.flatnonzero(holes.any(axis=0))
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    return height == width and holes.sum() == height * width


def test_the_documented_generator_writes_an_evaluation_set_of_squares_in_every_bin(user_dir):
    proc = _run(_command("PYTHONPATH=. python -m inpaint.data.masks.make_eval_masks"), user_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    pngs = sorted((user_dir / "square_masks").rglob("*.png"))
    assert len({p.parent.name for p in pngs}) == 6 and len(pngs) == 12  # --per-bin 2, six NVIDIA bins
    assert all(_one_square_hole(p) for p in pngs)


def test_the_documented_training_command_trains_with_the_users_generator(user_dir):
    proc = _run([*_command("PYTHONPATH=. python -m inpaint.train masks=custom"), *TINY_RUN], user_dir)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    (ckpt,) = user_dir.glob("outputs/train/runs/*/checkpoints/last.ckpt")

    # A misspelt key of the user's class: one line naming the keys it takes.
    argv = [
        a.replace("min_fraction", "min_fractoin")
        for a in _command("PYTHONPATH=. python -m inpaint.train masks=custom")
    ]
    proc = _run([*argv, *TINY_RUN], user_dir)
    output = proc.stdout + proc.stderr  # Hydra's log goes to stdout
    assert proc.returncode == 1
    assert "unknown fields ['min_fractoin']; allowed: ['max_fraction', 'min_fraction']" in output
    assert "Traceback" not in output

    # The documented evaluation on the user's fixed squares, with the model just trained.
    made = _run(_command("PYTHONPATH=. python -m inpaint.data.masks.make_eval_masks"), user_dir)
    assert made.returncode == 0, made.stderr[-3000:]
    argv = [
        *_command("python -m inpaint.evaluate masks=mixed"),
        f"ckpt_path={ckpt}",
        "max_images=4",
        "baselines=[]",
    ]
    proc = _run([*argv, "output_dir=eval", "progress=false"], user_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Every image was scored with one of the user's squares (64² files, scaled 2x to the 128² crops: same ratio).
    squares = {round(_hole_ratio(p), 4) for p in (user_dir / "square_masks").rglob("*.png")}
    with open(user_dir / "eval" / "per_image.csv") as f:
        used = {round(float(row["hole_ratio"]), 4) for row in csv.DictReader(f)}
    assert used and used <= squares, (used, squares)


def test_the_documented_dataset_trains_and_its_keys_are_checked(user_dir):
    argv = _command("PYTHONPATH=. python -m inpaint.train data=custom")
    proc = _run([*argv, *TINY_RUN, "data.image_size=64"], user_dir)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "train: 6 images from Catalogue" in output and "val: 2 images from Catalogue" in output

    proc = _run([*argv, *TINY_RUN, "+data.catalog=list.csv"], user_dir)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in output
    assert "unknown key(s) 'catalog' (did you mean 'catalogue'?)" in output

    proc = _run([*argv, *TINY_RUN, "+data.catalogue=missing.csv"], user_dir)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in output
    assert "missing.csv not found: expected lines 'split,relative/path.jpg'" in output


def test_the_documented_loss_term_is_trained_logged_and_needs_its_weight(user_dir):
    argv = _command("PYTHONPATH=. python -m inpaint.train +loss.extra_terms")
    proc = _run([*argv, *TINY_RUN], user_dir)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (metrics,) = user_dir.glob("outputs/train/runs/*/csv/**/metrics.csv")
    with open(metrics) as f:
        values = [float(row["train/edges"]) for row in csv.DictReader(f) if row.get("train/edges")]
    assert values and all(v > 0 for v in values)  # random fills have gradients the target lacks

    proc = _run([*(a for a in argv if "weights" not in a), *TINY_RUN], user_dir)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in output
    assert "extra loss term(s) ['edges'] have no weight" in output


def test_the_documented_inference_option_is_the_packages_and_its_commands_work(user_dir, tiny):
    (field_block,) = (b for first, b in _blocks("python").items() if first.strip().startswith("grow_hole:"))
    assert field_block in (REPO_ROOT / "src" / "inpaint" / "inference.py").read_text()

    tiny.checkpoint(user_dir / "last.ckpt")
    photo = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(photo).save(user_dir / "photo.jpg", quality=95)
    hole = np.zeros((48, 64), np.uint8)
    hole[20:30, 25:40] = 255
    Image.fromarray(hole).save(user_dir / "photo_mask.png")
    proc = _run(_command("python -m inpaint.predict"), user_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "grow_hole=3" in proc.stderr
    given = np.asarray(Image.open(user_dir / "photo.jpg"))
    changed = (np.asarray(Image.open(user_dir / "filled.png")) != given).any(axis=-1)
    assert not changed[:17].any() and not changed[33:].any() and not changed[:, :22].any()
    assert not changed[:, 43:].any()  # nothing beyond 3 px of the hole changed...
    assert changed[17:20].any() or changed[30:33].any()  # ...and the ring was filled

    argv = [
        *_command("python -m inpaint.evaluate ckpt_path"),
        "max_images=2",
        "baselines=[]",
        "progress=false",
    ]
    proc = _run([*argv, "output_dir=eval"], user_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "grow_hole=2" in (user_dir / "eval" / "metrics.md").read_text()
