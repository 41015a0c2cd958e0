"""Shared helpers for the evaluation / inference tests: a tiny checkpoint, sample photos and hole masks.

``make_tiny_checkpoint`` is the single place that decides what "a tiny checkpoint" is, so the tests can switch from a
hand-built Lightning-format file (random weights) to a really trained one without touching each test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

TINY_LEVELS = 3
TINY_SIZE = 64


def make_tiny_checkpoint(path: Path, levels: int = TINY_LEVELS, seed: int = 0) -> Path:
    """Write a Lightning-format checkpoint of a randomly initialised PConvUNet, as ``inpaint.train`` saves it.

    Layout: ``state_dict`` with the U-Net under ``net.`` plus unrelated ``loss.`` tensors, primitive
    ``hyper_parameters`` with the net config under ``net``. Loadable with ``torch.load(weights_only=True)``.
    """
    from inpaint.models import PConvUNet

    torch.manual_seed(seed)
    net = PConvUNet(levels=levels)
    # Perturb BatchNorm statistics so that a loader ignoring them (or train-mode BN) would change the output.
    for name, buf in net.named_buffers():
        if name.endswith("running_mean"):
            buf.normal_(0, 0.1)
        elif name.endswith("running_var"):
            buf.uniform_(0.5, 1.5)
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    state["loss.dummy.weight"] = torch.zeros(2)
    ckpt = {
        "epoch": 0,
        "global_step": 1,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": state,
        "hyper_parameters": {
            "net": {"_target_": "inpaint.models.PConvUNet", "levels": levels},
            "loss": {"_target_": "inpaint.losses.InpaintingLoss", "vgg_weights": "random"},
            "lr": 2e-4,
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, path)
    return path


def sample_photos(n: int, size: int = TINY_SIZE) -> np.ndarray:
    """``n`` real photos (scikit-image's bundled samples, centre-cropped and resized): (n, size, size, 3) uint8."""
    import skimage.data
    from PIL import Image

    names = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")
    out = []
    for i in range(n):
        img = getattr(skimage.data, names[i % len(names)])()
        h, w = img.shape[:2]
        s = min(h, w)
        # Shift the crop for repeated photos so that images differ.
        off = (i // len(names)) * 17 % max(1, max(h, w) - s + 1)
        crop = img[(h - s) // 2 :, off:][:s, :s] if w > h else img[off:, (w - s) // 2 :][:s, :s]
        out.append(np.asarray(Image.fromarray(crop).resize((size, size), Image.Resampling.BILINEAR)))
    return np.stack(out)


def box_hole_mask(height: int, width: int, ratio: float, seed: int = 0) -> np.ndarray:
    """(H, W) uint8 mask, 255 = hole: random boxes until about ``ratio`` of the pixels are holes."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), np.uint8)
    while (mask > 0).mean() < ratio:
        bh, bw = rng.integers(2, max(3, height // 4)), rng.integers(2, max(3, width // 4))
        y, x = rng.integers(0, height - bh + 1), rng.integers(0, width - bw + 1)
        mask[y : y + bh, x : x + bw] = 255
    return mask


def batches_for(
    images: np.ndarray, ratios: list[float], batch_size: int = 2
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(image (B,3,H,W) [0,1], mask (B,1,H,W) 1 = valid) batches of ``images`` with box masks of ``ratios``."""
    n, h, w = images.shape[:3]
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    m = torch.stack(
        [torch.from_numpy(box_hole_mask(h, w, ratios[i % len(ratios)], seed=i) == 0) for i in range(n)]
    )
    m = m[:, None].float()
    return [(x[i : i + batch_size], m[i : i + batch_size]) for i in range(0, n, batch_size)]


def train_tiny_checkpoint(run_dir: Path, max_steps: int = 4) -> Path:
    """Train the smoke experiment for ``max_steps`` steps in a subprocess (as ``make train`` would) and return its
    ``last.ckpt``. Raises with the training output when no checkpoint is produced."""
    import subprocess
    import sys

    cmd = [
        sys.executable,
        "-m",
        "inpaint.train",
        "+experiment=smoke",
        f"hydra.run.dir={run_dir}",
        f"trainer.max_steps={max_steps}",
        "print_config=false",
    ]
    proc = subprocess.run(cmd, cwd=run_dir.parent, capture_output=True, text=True, timeout=600)
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    if proc.returncode != 0 or not ckpt.is_file():
        raise RuntimeError(
            f"training failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return ckpt
