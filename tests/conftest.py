"""Fixtures shared by the whole suite.

- ``fake_data``: tiny fake datasets in their real on-disk layouts (Places2, CelebA, CelebA-HQ, NVIDIA masks, a folder
  of broken and odd images) and the photos they are made of.
- ``tiny``: a tiny checkpoint (hand-built or really trained), real sample photos, hole masks and evaluation batches.

Both are session-scoped and stateless: every builder writes where it is told, so module-scoped fixtures can use them.
Every test also gets the root logger back as it found it (``_isolated_logging``).
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image


@pytest.fixture(autouse=True)
def _isolated_logging() -> Iterator[None]:
    """A tool run in-process (Hydra, ``main()``) may bind a handler to the test's captured stream, which is closed
    once the test ends; later tests would log into it. Put the root logger back as it was."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


class FakeData:
    """Builders of tiny fake datasets in the real on-disk layouts, for the inpaint.data tests."""

    @staticmethod
    def photo(height: int, width: int, seed: int) -> np.ndarray:
        """A smooth random colour image (H, W, 3) uint8 that compresses like a photograph."""
        rng = np.random.default_rng(seed)
        small = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
        img = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
        return np.clip(img.astype(np.int16) + rng.integers(-8, 9, img.shape), 0, 255).astype(np.uint8)

    def jpeg(self, path: Path, height: int = 40, width: int = 48, seed: int = 0) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(self.photo(height, width, seed)).save(path, quality=90)
        return path

    def places2(
        self, root: Path, n_train: int = 4, n_val: int = 3, size: int = 40, large: bool = False
    ) -> Path:
        """Places365-Standard: data_256/<letter>/<class>/<8 digits>.jpg, val_256/..., test_256/..., file lists."""
        classes = ["a/airfield", "b/bakery/shop"]
        train_dir, val_dir, test_dir = (
            ("data_large", "val_large", "test_large") if large else ("data_256", "val_256", "test_256")
        )
        train_lines, val_lines, test_lines = [], [], []
        for i in range(n_train):
            rel = f"{classes[i % 2]}/{i + 1:08d}.jpg"
            self.jpeg(root / train_dir / rel, size, size, seed=i)
            train_lines.append(f"/{rel} {i % 2}")
        for i in range(n_val):
            name = f"Places365_val_{i + 1:08d}.jpg"
            self.jpeg(root / val_dir / name, size, size, seed=100 + i)
            val_lines.append(f"{name} {i % 2}")
            tname = f"Places365_test_{i + 1:08d}.jpg"
            self.jpeg(root / test_dir / tname, size, size, seed=200 + i)
            test_lines.append(tname)
        (root / "places365_train_standard.txt").write_text("\n".join(train_lines) + "\n")
        (root / "places365_val.txt").write_text("\n".join(val_lines) + "\n")
        (root / "places365_test.txt").write_text("\n".join(test_lines) + "\n")
        (root / "categories_places365.txt").write_text("/a/airfield 0\n/b/bakery/shop 1\n")
        return root

    def celeba(self, root: Path, partitions: tuple[int, ...] = (0, 0, 0, 1, 1, 2)) -> Path:
        """CelebA: img_align_celeba/000001.jpg (178x218 scaled down to 89x109) + list_eval_partition.txt."""
        lines = []
        for i, part in enumerate(partitions):
            name = f"{i + 1:06d}.jpg"
            self.jpeg(root / "img_align_celeba" / name, 109, 89, seed=i)
            lines.append(f"{name} {part}")
        (root / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
        return root

    def celeba_hq(self, root: Path, n: int = 6, n_val: int = 2, bare_names: bool = False) -> Path:
        """CelebA-HQ: data256x256/<i>.jpg + train.txt / val.txt."""
        names = []
        for i in range(n):
            self.jpeg(root / "data256x256" / f"{i}.jpg", 32, 32, seed=i)
            names.append(str(i) if bare_names else f"{i}.jpg")
        (root / "train.txt").write_text("\n".join(names[: n - n_val]) + "\n")
        (root / "val.txt").write_text("\n".join(names[n - n_val :]) + "\n")
        return root

    def messy_folder(self, root: Path) -> dict[str, Path]:
        """Good JPEGs plus every kind of trouble: corrupt, zero-byte, truncated, CMYK, 16-bit, palette, RGBA, gray,
        tiny; and a text file the folder source must ignore."""
        root.mkdir(parents=True, exist_ok=True)
        files = {
            "good1": self.jpeg(root / "good1.jpg", 40, 40, seed=1),
            "good2": self.jpeg(root / "sub" / "good2.jpg", 40, 40, seed=2),
        }
        files.update(self._broken_files(root, (root / "good1.jpg").read_bytes()))
        files.update(self._odd_images(root))
        (root / "notes.txt").write_text("not an image extension: ignored by the folder source")
        return files

    @staticmethod
    def _broken_files(root: Path, good_jpeg: bytes) -> dict[str, Path]:
        files = {
            "corrupt": root / "corrupt.jpg",
            "zero": root / "zero.png",
            "truncated": root / "truncated.jpg",
        }
        files["corrupt"].write_bytes(b"this is not a jpeg at all" * 10)
        files["zero"].write_bytes(b"")
        files["truncated"].write_bytes(good_jpeg[: len(good_jpeg) // 2])
        return files

    def _odd_images(self, root: Path) -> dict[str, Path]:
        """Readable images in every mode but 8-bit RGB (the 16-bit ones store 8-bit values v as v * 257)."""
        rgb = self.photo(40, 40, 3)
        files = {name: root / name for name in ("cmyk.jpg", "gray16.png", "rgb16.png", "palette.png")}
        files |= {name: root / name for name in ("rgba.png", "gray.png", "tiny.png")}
        Image.fromarray(rgb).convert("CMYK").save(files["cmyk.jpg"])
        cv2.imwrite(str(files["gray16.png"]), (self.photo(40, 40, 4)[:, :, 0].astype(np.uint16) * 257))
        cv2.imwrite(str(files["rgb16.png"]), self.photo(40, 40, 5).astype(np.uint16) * 257)
        Image.fromarray(rgb).convert("P").save(files["palette.png"])
        Image.fromarray(rgb).convert("RGBA").save(files["rgba.png"])
        Image.fromarray(rgb[:, :, 0]).save(files["gray.png"])
        Image.fromarray(self.photo(5, 7, 6)).save(files["tiny.png"])
        return {name.split(".")[0]: path for name, path in files.items()}

    @staticmethod
    def nvidia_like_mask(size: int, hole_ratio: float, seed: int) -> np.ndarray:
        """(size, size) bool hole map with roughly the given hole ratio, made of blobs like NVIDIA's masks."""
        rng = np.random.default_rng(seed)
        holes = np.zeros((size, size), np.uint8)
        while holes.mean() / 255 < hole_ratio:
            c = (int(rng.integers(size)), int(rng.integers(size)))
            cv2.circle(holes, c, int(rng.integers(2, max(3, size // 8))), 255, -1)
        return holes > 0

    def nvidia(self, root: Path, ratios: tuple[float, ...], size: int = 64, white_hole: bool = True) -> Path:
        """A flat folder of NVIDIA-style PNG masks; ``white_hole=False`` writes the inverted polarity."""
        root.mkdir(parents=True, exist_ok=True)
        for i, r in enumerate(ratios):
            holes = self.nvidia_like_mask(size, r, seed=i)
            white = holes if white_hole else ~holes
            cv2.imwrite(str(root / f"{i:05d}.png"), white.astype(np.uint8) * 255)
        return root


class Tiny:
    """A tiny checkpoint, sample photos and hole masks for the evaluation, inference and app tests.

    ``checkpoint`` is the single place that decides what "a tiny checkpoint" is, so the tests can switch from a
    hand-built Lightning-format file (random weights) to a really trained one without touching each test.
    """

    LEVELS = 3
    SIZE = 64

    def checkpoint(
        self, path: Path, levels: int = LEVELS, seed: int = 0, membrane_residual: bool = False
    ) -> Path:
        """Write a Lightning-format checkpoint of a randomly initialised PConvUNet, as ``inpaint.train`` saves it.

        Layout: ``state_dict`` with the U-Net under ``net.`` plus unrelated ``loss.`` tensors, primitive
        ``hyper_parameters`` with the net config under ``net``. Loadable with ``torch.load(weights_only=True)``.
        """
        ckpt = {
            "epoch": 0,
            "global_step": 1,
            "pytorch-lightning_version": "2.4.0",
            "state_dict": self._random_net_state(levels, seed),
            "hyper_parameters": {
                "net": {
                    "_target_": "inpaint.models.PConvUNet",
                    "levels": levels,
                    **({"membrane_residual": True} if membrane_residual else {}),
                },
                "loss": {"_target_": "inpaint.losses.InpaintingLoss", "vgg_weights": "random"},
                "lr": 2e-4,
            },
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(ckpt, path)
        return path

    @staticmethod
    def _random_net_state(levels: int, seed: int) -> dict[str, torch.Tensor]:
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
        return state

    def trained_checkpoint(self, run_dir: Path, max_steps: int = 4) -> Path:
        """Train the smoke experiment for ``max_steps`` steps in a subprocess (as ``make train`` would) and return
        its ``last.ckpt``. Raises with the training output when no checkpoint is produced."""
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

    def photos(self, n: int, size: int = SIZE) -> np.ndarray:
        """``n`` real photos (scikit-image's bundled samples, centre-cropped and resized): (n, size, size, 3) uint8."""
        import skimage.data

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

    @staticmethod
    def hole_mask(height: int, width: int, ratio: float, seed: int = 0) -> np.ndarray:
        """(H, W) uint8 mask, 255 = hole: random boxes until about ``ratio`` of the pixels are holes."""
        rng = np.random.default_rng(seed)
        mask = np.zeros((height, width), np.uint8)
        while (mask > 0).mean() < ratio:
            bh, bw = rng.integers(2, max(3, height // 4)), rng.integers(2, max(3, width // 4))
            y, x = rng.integers(0, height - bh + 1), rng.integers(0, width - bw + 1)
            mask[y : y + bh, x : x + bw] = 255
        return mask

    def batches(
        self, images: np.ndarray, ratios: list[float], batch_size: int = 2
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(image (B,3,H,W) [0,1], mask (B,1,H,W) 1 = valid) batches of ``images`` with box masks of ``ratios``."""
        n, h, w = images.shape[:3]
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
        m = torch.stack(
            [torch.from_numpy(self.hole_mask(h, w, ratios[i % len(ratios)], seed=i) == 0) for i in range(n)]
        )
        m = m[:, None].float()
        return [(x[i : i + batch_size], m[i : i + batch_size]) for i in range(0, n, batch_size)]


@pytest.fixture(scope="session")
def fake_data() -> FakeData:
    return FakeData()


@pytest.fixture(scope="session")
def tiny() -> Tiny:
    return Tiny()
