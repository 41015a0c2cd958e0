"""Tiny fake datasets in the real on-disk layouts, for the inpaint.data tests (helpers, not tests)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def photo(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth random colour image (H, W, 3) uint8 that compresses like a photograph."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    img = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(img.astype(np.int16) + rng.integers(-8, 9, img.shape), 0, 255).astype(np.uint8)


def write_jpeg(path: Path, height: int = 40, width: int = 48, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo(height, width, seed)).save(path, quality=90)
    return path


def make_places2(root: Path, n_train: int = 4, n_val: int = 3, size: int = 40, large: bool = False) -> Path:
    """Places365-Standard: data_256/<letter>/<class>/<8 digits>.jpg, val_256/..., test_256/..., file lists."""
    classes = ["a/airfield", "b/bakery/shop"]
    train_dir, val_dir, test_dir = (
        ("data_large", "val_large", "test_large") if large else ("data_256", "val_256", "test_256")
    )
    train_lines, val_lines, test_lines = [], [], []
    for i in range(n_train):
        rel = f"{classes[i % 2]}/{i + 1:08d}.jpg"
        write_jpeg(root / train_dir / rel, size, size, seed=i)
        train_lines.append(f"/{rel} {i % 2}")
    for i in range(n_val):
        name = f"Places365_val_{i + 1:08d}.jpg"
        write_jpeg(root / val_dir / name, size, size, seed=100 + i)
        val_lines.append(f"{name} {i % 2}")
        tname = f"Places365_test_{i + 1:08d}.jpg"
        write_jpeg(root / test_dir / tname, size, size, seed=200 + i)
        test_lines.append(tname)
    (root / "places365_train_standard.txt").write_text("\n".join(train_lines) + "\n")
    (root / "places365_val.txt").write_text("\n".join(val_lines) + "\n")
    (root / "places365_test.txt").write_text("\n".join(test_lines) + "\n")
    (root / "categories_places365.txt").write_text("/a/airfield 0\n/b/bakery/shop 1\n")
    return root


def make_celeba(root: Path, partitions: tuple[int, ...] = (0, 0, 0, 1, 1, 2)) -> Path:
    """CelebA: img_align_celeba/000001.jpg (178x218 scaled down to 89x109) + list_eval_partition.txt."""
    lines = []
    for i, part in enumerate(partitions):
        name = f"{i + 1:06d}.jpg"
        write_jpeg(root / "img_align_celeba" / name, 109, 89, seed=i)
        lines.append(f"{name} {part}")
    (root / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return root


def make_celeba_hq(root: Path, n: int = 6, n_val: int = 2, bare_names: bool = False) -> Path:
    """CelebA-HQ: data256x256/<i>.jpg + train.txt / val.txt."""
    names = []
    for i in range(n):
        write_jpeg(root / "data256x256" / f"{i}.jpg", 32, 32, seed=i)
        names.append(str(i) if bare_names else f"{i}.jpg")
    (root / "train.txt").write_text("\n".join(names[: n - n_val]) + "\n")
    (root / "val.txt").write_text("\n".join(names[n - n_val :]) + "\n")
    return root


def make_messy_folder(root: Path) -> dict[str, Path]:
    """Good JPEGs plus every kind of trouble: corrupt, zero-byte, truncated, CMYK, 16-bit, palette, RGBA, gray, tiny."""
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "good1": write_jpeg(root / "good1.jpg", 40, 40, seed=1),
        "good2": write_jpeg(root / "sub" / "good2.jpg", 40, 40, seed=2),
    }
    files["corrupt"] = root / "corrupt.jpg"
    files["corrupt"].write_bytes(b"this is not a jpeg at all" * 10)
    files["zero"] = root / "zero.png"
    files["zero"].write_bytes(b"")
    full = (root / "good1.jpg").read_bytes()
    files["truncated"] = root / "truncated.jpg"
    files["truncated"].write_bytes(full[: len(full) // 2])
    rgb = photo(40, 40, 3)
    files["cmyk"] = root / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(files["cmyk"])
    files["gray16"] = root / "gray16.png"
    cv2.imwrite(str(files["gray16"]), (photo(40, 40, 4)[:, :, 0].astype(np.uint16) * 257))
    files["rgb16"] = root / "rgb16.png"
    cv2.imwrite(str(files["rgb16"]), photo(40, 40, 5).astype(np.uint16) * 257)
    files["palette"] = root / "palette.png"
    Image.fromarray(rgb).convert("P").save(files["palette"])
    files["rgba"] = root / "rgba.png"
    Image.fromarray(rgb).convert("RGBA").save(files["rgba"])
    files["gray"] = root / "gray.png"
    Image.fromarray(rgb[:, :, 0]).save(files["gray"])
    files["tiny"] = root / "tiny.png"
    Image.fromarray(photo(5, 7, 6)).save(files["tiny"])
    (root / "notes.txt").write_text("not an image extension: ignored by the folder source")
    return files


def nvidia_like_mask(size: int, hole_ratio: float, seed: int) -> np.ndarray:
    """(size, size) bool hole map with roughly the given hole ratio, made of blobs like NVIDIA's masks."""
    rng = np.random.default_rng(seed)
    holes = np.zeros((size, size), np.uint8)
    while holes.mean() / 255 < hole_ratio:
        c = (int(rng.integers(size)), int(rng.integers(size)))
        cv2.circle(holes, c, int(rng.integers(2, max(3, size // 8))), 255, -1)
    return holes > 0


def make_nvidia(root: Path, ratios: tuple[float, ...], size: int = 64, white_hole: bool = True) -> Path:
    """A flat folder of NVIDIA-style PNG masks; ``white_hole=False`` writes the inverted polarity."""
    root.mkdir(parents=True, exist_ok=True)
    for i, r in enumerate(ratios):
        holes = nvidia_like_mask(size, r, seed=i)
        white = holes if white_hole else ~holes
        cv2.imwrite(str(root / f"{i:05d}.png"), white.astype(np.uint8) * 255)
    return root
