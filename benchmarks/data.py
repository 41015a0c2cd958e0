"""Data-pipeline benchmark: training samples per second of ONE process (= one DataLoader worker) at 256².

The project's pipeline is ``inpaint.data``'s training dataset built from the shipped configs (``conf/data/folder.yaml``
+ ``conf/masks/mixed.yaml``, the default mask mixture): PIL decode of a JPEG, random crop, horizontal flip, mask
generation, tensor conversion. The baseline is a plain ``torchvision.datasets.ImageFolder`` with PIL decoding and
``RandomCrop + RandomHorizontalFlip + ToTensor`` (no mask) on the same files. Both are iterated in the main process,
one sample at a time, interleaved; a DataLoader with ``n`` workers delivers at most ``n`` times this.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from benchmarks.common import Table, interleaved_times, median, spread

log = logging.getLogger(__name__)

__all__ = ["bench_data", "make_jpeg_folder", "pipeline_breakdown", "project_dataset"]

# Colour photographs bundled with scikit-image (no download).
_SAMPLE_PHOTOS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "immunohistochemistry",
    "motorcycle_left",
    "retina",
)


def make_jpeg_folder(
    root: Path, n_images: int, min_side: int = 256, max_side: int = 512, seed: int = 0
) -> Path:
    """Write ``n_images`` JPEGs (quality 90) cut from scikit-image's sample photos into ``root/photos/``.

    Each file is a random crop with sides in ``[min_side, max_side]`` (bounded by the photo; photos smaller than
    ``min_side`` are upscaled first), so decoding cost resembles real 256-512 px datasets.

    Returns:
        the class folder (ImageFolder needs ``root/<class>/``); ``root`` is the dataset root.
    """
    import skimage.data

    rng = np.random.default_rng(seed)
    photos = []
    for name in _SAMPLE_PHOTOS:
        loader = getattr(skimage.data, name, None)
        if loader is None:
            continue
        try:
            arr = np.asarray(loader())
        except Exception as err:  # a missing optional data file: use the others
            log.warning("scikit-image sample %s unavailable (%s); skipped", name, err)
            continue
        if arr.ndim != 3 or arr.shape[2] < 3:
            continue
        img = Image.fromarray(arr[..., :3].astype(np.uint8))
        short = min(img.size)
        if short < min_side:
            f = min_side / short
            img = img.resize((round(img.width * f), round(img.height * f)), Image.BICUBIC)
        photos.append(img)
    if not photos:
        raise RuntimeError(
            "no scikit-image colour sample photo could be loaded to build the benchmark images"
        )
    out = root / "photos"
    out.mkdir(parents=True, exist_ok=True)
    for i in range(n_images):
        img = photos[i % len(photos)]
        w = int(rng.integers(min_side, min(max_side, img.width) + 1))
        h = int(rng.integers(min_side, min(max_side, img.height) + 1))
        x = int(rng.integers(0, img.width - w + 1))
        y = int(rng.integers(0, img.height - h + 1))
        img.crop((x, y, x + w, y + h)).save(out / f"{i:05d}.jpg", quality=90)
    return out


def project_dataset(root: Path, size: int = 256, crop: str = "random_crop", masks: str = "mixed") -> Any:
    """The project's training dataset over the images in ``root``.

    Args:
        root: folder of images (searched recursively).
        size: crop side.
        crop: ``data.train_transform.crop``; ``random_crop`` matches the baseline, ``resize_random_crop`` is the
            folder config's default (shorter side resized to ``size`` first).
        masks: a ``conf/masks`` name.
    """
    from inpaint.config import compose, to_plain
    from inpaint.data import build_datamodule

    # val_root = the same folder: every image is a training image (the default holds 5 % out for validation).
    overrides = [
        f"data.{key}={value}"
        for key, value in {
            "root": root,
            "val_root": root,
            "image_size": size,
            "num_workers": 0,
            "small_images": "resize",
            "seed": 0,
            "train_transform.crop": crop,
            "train_transform.hflip": 0.5,
        }.items()
    ]
    cfg = compose("train", ["data=folder", f"masks={masks}", *overrides])
    return build_datamodule(to_plain(cfg.data), to_plain(cfg.masks)).build_dataset("train")


def baseline_dataset(root: Path, size: int = 256) -> Any:
    """torchvision ImageFolder + PIL + RandomCrop/RandomHorizontalFlip/ToTensor over ``root/<class>/``."""
    from torchvision import datasets, transforms

    tf = transforms.Compose(
        [
            transforms.RandomCrop(size, pad_if_needed=True),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
        ]
    )
    return datasets.ImageFolder(str(root), transform=tf)


def _epoch(ds: Any, n: int) -> Callable[[], None]:
    def run() -> None:
        for i in range(n):
            ds[i]

    return run


def pipeline_breakdown(ds: Any, n: int) -> dict[str, float]:
    """Mean milliseconds per sample of the project's stages: decode, crop + flip, mask, tensor packing.

    Re-implements the order of ``InpaintingDataset.__getitem__`` with its own parts, to show where time goes.
    """
    from inpaint.data._rng import STREAM_TAGS, rng_for
    from inpaint.data.datasets import _IMAGE_TAG, to_sample
    from inpaint.data.imageio import load_rgb
    from inpaint.data.transforms import apply_transform

    acc = {"decode": 0.0, "crop + flip": 0.0, "mask": 0.0, "to tensors": 0.0}
    size = ds.policy.image_size
    for i in range(n):
        rec = ds.records[i % len(ds.records)]
        t0 = time.perf_counter()
        image = ds.policy(load_rgb(rec.path, name=rec.path))
        t1 = time.perf_counter()
        rng = rng_for(ds.seed, _IMAGE_TAG, STREAM_TAGS["train"], 0, i)
        image = apply_transform(ds.transform, image, rng)
        t2 = time.perf_counter()
        mask, key = ds.masks.get(i, 0, size, size)
        t3 = time.perf_counter()
        to_sample(image, mask, rec.path, key)
        t4 = time.perf_counter()
        for k, dt in zip(acc, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            acc[k] += 1000 * dt / n
    return acc


@contextlib.contextmanager
def worker_threads() -> Iterator[None]:
    """Thread settings of a DataLoader worker (torch sets 1 intra-op thread there; the project's worker_init_fn
    turns OpenCV threading off) for in-process measurements; restored afterwards."""
    import cv2

    saved = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(0)
    try:
        yield
    finally:
        torch.set_num_threads(saved[0])
        cv2.setNumThreads(saved[1])


def _loader_epochs(ds: Any, n: int, repeats: int) -> list[float]:
    """Seconds per epoch of ``n`` samples through a DataLoader with one persistent worker (after a warm-up epoch)."""
    from torch.utils.data import DataLoader, Subset

    from inpaint.data.datamodule import seed_worker

    loader = DataLoader(
        Subset(ds, range(n)),
        batch_size=16,
        num_workers=1,
        persistent_workers=True,
        worker_init_fn=seed_worker,
    )
    out = []
    for r in range(repeats + 1):
        t0 = time.perf_counter()
        for _ in loader:
            pass
        if r:
            out.append(time.perf_counter() - t0)
    del loader
    return out


def bench_data(n_images: int = 200, size: int = 256, repeats: int = 5, target: float = 250.0) -> Table:
    """Images/s of one process: project training pipeline vs torchvision baseline, on ``n_images`` fresh JPEGs."""
    with tempfile.TemporaryDirectory(prefix="inpaint-bench-data-") as tmp:
        root = Path(tmp)
        make_jpeg_folder(root, n_images, min_side=size, max_side=2 * size)
        variants = {
            "baseline: torchvision ImageFolder + PIL, crop + flip, no mask": baseline_dataset(root, size),
            "project: random_crop + flip + mixed masks": project_dataset(root, size, "random_crop"),
            "project: resize_random_crop + flip + mixed masks (folder default)": project_dataset(
                root, size, "resize_random_crop"
            ),
        }
        n = min(len(ds) for ds in variants.values())
        fns = {k: _epoch(ds, n) for k, ds in variants.items()}
        with worker_threads():
            for fn in fns.values():  # warm-up: file cache, lazy imports, OpenCV/albumentations initialisation
                fn()
            times = interleaved_times(fns, repeats)
            breakdown = pipeline_breakdown(variants["project: random_crop + flip + mixed masks"], n)
        loader_name = "project random_crop through a DataLoader, 1 worker, batch 16"
        loader_times = _loader_epochs(variants["project: random_crop + flip + mixed masks"], n, repeats)

    base = median(times[next(iter(fns))])
    table = Table(
        f"Data pipeline, {size}x{size} samples, one process (= per worker)",
        ["pipeline", "images/s (median)", "spread", "vs baseline", f"target ≥{target:.0f}/s"],
    )
    for name in fns:
        t = median(times[name])
        rate = n / t
        is_project = name.startswith("project")
        table.add(
            name,
            f"{rate:.0f}",
            f"±{spread(times[name])}",
            f"{base / t:.2f}x",
            ("met" if rate >= target else "MISSED") if is_project else "",
        )
    t = median(loader_times)
    table.add(
        loader_name,
        f"{n / t:.0f}",
        f"±{spread(loader_times)}",
        f"{base / t:.2f}x",
        "met" if n / t >= target else "MISSED",
    )
    parts = ", ".join(f"{k} {v:.2f} ms" for k, v in breakdown.items())
    table.notes += [
        f"{n} JPEG files (quality 90, {size}-{2 * size} px sides, cut from scikit-image sample photos), each read "
        f"once per round from the page cache; median of {repeats} interleaved rounds after one warm-up round",
        f"project per-sample stages (random_crop variant): {parts}",
        "in-process rows run as a DataLoader worker does: 1 torch thread, OpenCV threading off (with 2 torch "
        "threads on a busy machine, torchvision's ToTensor alone took ~20 ms a sample: thread wake-ups)",
        "DataLoader row: persistent worker, one warm-up epoch, includes batching and the inter-process transfer",
    ]
    return table
