"""Image sources: list the images of a split in each supported on-disk layout.

Every function returns :class:`ImageRecord` s (``key``, ``path``) in a deterministic order and raises
:class:`DatasetLayoutError` — one message naming the files it expected — when the root or layout is wrong. Files are
not opened here (Places2 lists 1.8 M entries); unreadable images are skipped later, when they are loaded.
"""

from __future__ import annotations

import csv
import importlib.util
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from inpaint.data._rng import stable_hash
from inpaint.data.config import DataConfig, from_mapping
from inpaint.data.imageio import IMAGE_EXTENSIONS

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
# Share of a folder's images held out for val/test when it has no separate val_root (conf/data/folder.yaml).


class ImageRecord(NamedTuple):
    """One image: ``key`` is a stable identifier (relative path), ``path`` the file to read."""

    key: str
    path: str


class DatasetLayoutError(FileNotFoundError):
    """The dataset root is missing or its layout is not the expected one."""


def _root(root: str | os.PathLike[str] | None, dataset: str, expected: str) -> Path:
    if root is None or str(root) in ("", "???"):
        env = {"places2": "PLACES2_ROOT", "celeba": "CELEBA_ROOT", "celeba_hq": "CELEBA_HQ_ROOT"}.get(dataset)
        how = f"set data.root=... or the {env} environment variable" if env else "set data.root=..."
        raise DatasetLayoutError(f"{dataset}: no root given ({how}); expected {expected}")
    path = Path(os.path.expanduser(str(root)))
    if not path.is_dir():
        raise DatasetLayoutError(f"{dataset}: root {path} does not exist; expected {expected}")
    return path


def _first_existing(candidates: Iterable[Path]) -> Path | None:
    return next((c for c in candidates if c.exists()), None)


def _check_some_exist(records: Sequence[ImageRecord], dataset: str, expected: str, probe: int = 3) -> None:
    """The lists can be right while the images are elsewhere: check a few entries so that layout errors are clear."""
    if not records:
        raise DatasetLayoutError(f"{dataset}: the split is empty; expected {expected}")
    sample = [records[i] for i in sorted({0, len(records) // 2, len(records) - 1})][:probe]
    if not any(os.path.isfile(r.path) for r in sample):
        raise DatasetLayoutError(
            f"{dataset}: listed images are missing (e.g. {sample[0].path}); expected {expected}"
        )


def _split_name(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


# ----------------------------------------------------------------------------------------------------------- Places2

_PLACES_LISTS = {
    ("train", "standard"): "places365_train_standard.txt",
    ("train", "challenge"): "places365_train_challenge.txt",
    ("val", "standard"): "places365_val.txt",
    ("val", "challenge"): "places365_val.txt",
    ("test", "standard"): "places365_test.txt",
    ("test", "challenge"): "places365_test.txt",
}
# Image folders as the official archives unpack them, then torchvision's renamed variants.
_PLACES_DIRS = {
    ("train", "standard", "256"): ("data_256", "data_256_standard"),
    ("train", "standard", "large"): ("data_large", "data_large_standard"),
    ("train", "challenge", "256"): ("data_256", "data_256_challenge"),
    ("train", "challenge", "large"): ("data_large", "data_large_challenge"),
    ("val", "standard", "256"): ("val_256",),
    ("val", "standard", "large"): ("val_large",),
    ("test", "standard", "256"): ("test_256",),
    ("test", "standard", "large"): ("test_large",),
}
_PLACES_LIST_DIRS = ("", "filelist_places365-standard", "filelist_places365-challenge")


def places2_records(
    root: str | os.PathLike[str] | None,
    split: str = "train",
    *,
    variant: str = "standard",
    resolution: str = "256",
) -> list[ImageRecord]:
    """Places365 (Places2) images of a split.

    Layout (docs/data.md, "Datasets on disk"): ``<root>/data_256/a/airfield/00000001.jpg`` (train; ``data_large``
    for the high-resolution variant, ``data_256_standard``/``_challenge`` as torchvision names them),
    ``<root>/val_256/Places365_val_*.jpg``, ``<root>/test_256/...``, with file lists
    ``places365_train_standard.txt`` (or ``_challenge``), ``places365_val.txt``, ``places365_test.txt`` in ``<root>``
    or ``<root>/filelist_places365-standard``.

    Args:
        variant: ``"standard"`` or ``"challenge"`` (training list and folder).
        resolution: ``"256"`` or ``"large"``.
    """
    split = _split_name(split)
    if variant not in ("standard", "challenge"):
        raise ValueError(f"places2 variant must be 'standard' or 'challenge', got {variant!r}")
    resolution = str(resolution)
    if resolution not in ("256", "large"):
        raise ValueError(f"places2 resolution must be '256' or 'large', got {resolution!r}")
    list_name = _PLACES_LISTS[(split, variant)]
    dirs = _PLACES_DIRS[(split, variant if split == "train" else "standard", resolution)]
    expected = f"file list {list_name} and image folder {' or '.join(dirs)}/ under the root"
    base = _root(root, "places2", expected)
    list_file = _first_existing(base / d / list_name for d in _PLACES_LIST_DIRS)
    image_dir = _first_existing(base / d for d in dirs)
    if list_file is None or image_dir is None:
        missing = [list_name] if list_file is None else []
        missing += [f"{' or '.join(dirs)}/"] if image_dir is None else []
        raise DatasetLayoutError(f"places2: missing {', '.join(missing)} in {base}; expected {expected}")
    records = []
    with open(list_file) as fh:
        for line in fh:
            parts = line.split()
            if not parts:
                continue
            rel = parts[0].lstrip("/")
            records.append(ImageRecord(rel, str(image_dir / rel)))
    _check_some_exist(records, "places2", expected)
    return records


# ------------------------------------------------------------------------------------------------------------ CelebA

_CELEBA_PARTITION = {"train": 0, "val": 1, "test": 2}


def celeba_records(root: str | os.PathLike[str] | None, split: str = "train") -> list[ImageRecord]:
    """CelebA aligned images of a split.

    Layout: ``<root>/img_align_celeba/000001.jpg`` (also the doubled ``img_align_celeba/img_align_celeba`` of some
    mirrors) and ``<root>/list_eval_partition.txt`` (lines ``000001.jpg 0``; 0 train, 1 val, 2 test), also accepted
    as ``Eval/list_eval_partition.txt`` or the CSV variant ``list_eval_partition.csv`` (``image_id,partition``).
    """
    split = _split_name(split)
    expected = "img_align_celeba/ and list_eval_partition.txt under the root"
    base = _root(root, "celeba", expected)
    image_dir = _first_existing([base / "img_align_celeba" / "img_align_celeba", base / "img_align_celeba"])
    partition = _first_existing(
        [
            base / "list_eval_partition.txt",
            base / "Eval" / "list_eval_partition.txt",
            base / "list_eval_partition.csv",
        ]
    )
    if image_dir is None or partition is None:
        missing = (["img_align_celeba/"] if image_dir is None else []) + (
            ["list_eval_partition.txt"] if partition is None else []
        )
        raise DatasetLayoutError(f"celeba: missing {', '.join(missing)} in {base}; expected {expected}")
    want = _CELEBA_PARTITION[split]
    records = []
    with open(partition, newline="") as fh:
        if partition.suffix == ".csv":
            rows: Iterable[Sequence[str]] = ((r["image_id"], r["partition"]) for r in csv.DictReader(fh))
        else:
            rows = (line.split() for line in fh)
        for row in rows:
            if len(row) >= 2 and row[1].strip().isdigit() and int(row[1]) == want:
                records.append(ImageRecord(row[0], str(image_dir / row[0])))
    _check_some_exist(records, "celeba", f"{expected} (split {split} = partition {want})")
    return records


# --------------------------------------------------------------------------------------------------------- CelebA-HQ

_CELEBA_HQ_DIRS = (
    "data256x256",
    "data1024x1024",
    "CelebA-HQ-img",
    "CelebAMask-HQ/CelebA-HQ-img",
    "images",
    "",
)
_CELEBA_HQ_LISTS = {
    "train": ("train.txt", "train_shuffled.flist", "train.flist"),
    "val": ("val.txt", "val_shuffled.flist", "val.flist"),
    "test": ("test.txt", "test_shuffled.flist", "test.flist"),
}


def _list_images_flat(folder: Path) -> list[Path]:
    with os.scandir(folder) as it:
        return sorted(
            Path(e.path) for e in it if e.is_file() and Path(e.name).suffix.lower() in IMAGE_EXTENSIONS
        )


def _read_list(list_file: Path) -> list[str]:
    with open(list_file) as fh:
        return [line.split()[0] for line in fh if line.strip() and not line.lstrip().startswith("#")]


def _resolve_listed(names: Sequence[str], image_dir: Path) -> list[ImageRecord]:
    """List entries may be absolute paths, paths relative to the image folder, or names without an extension."""
    by_stem: dict[str, Path] | None = None
    records = []
    for name in names:
        p = Path(name)
        if p.is_absolute():
            records.append(ImageRecord(p.name, str(p)))
            continue
        if p.suffix.lower() in IMAGE_EXTENSIONS:
            records.append(ImageRecord(name, str(image_dir / p)))
            continue
        if by_stem is None:  # only scan the folder when the list uses bare names
            by_stem = {f.stem: f for f in _list_images_flat(image_dir)}
        found = by_stem.get(name)
        records.append(ImageRecord(name, str(found) if found else str(image_dir / name)))
    return records


def celeba_hq_records(
    root: str | os.PathLike[str] | None,
    split: str = "train",
    *,
    image_dir: str | None = None,
    list_file: str | None = None,
) -> list[ImageRecord]:
    """CelebA-HQ images of a split, chosen by a file list.

    Layout: an image folder (``image_dir``, relative to the root; default: the first of ``data256x256``,
    ``data1024x1024``, ``CelebA-HQ-img``, ``images`` or the root itself that holds images) and a list per split
    (``list_file``; default ``train.txt``/``val.txt``/``test.txt`` or LaMa's ``*_shuffled.flist`` in the root), one
    entry per line: file name, path relative to the image folder, absolute path, or name without extension.
    """
    split = _split_name(split)
    lists = (list_file,) if list_file else _CELEBA_HQ_LISTS[split]
    dirs = (image_dir,) if image_dir else _CELEBA_HQ_DIRS
    expected = f"an image folder ({' or '.join(d or '<root>' for d in dirs)}) and a list {' or '.join(lists)}"
    base = _root(root, "celeba_hq", expected)
    folder = None
    for d in dirs:
        cand = base / d if d else base
        if cand.is_dir() and _list_images_flat(cand):
            folder = cand
            break
    found_list = _first_existing(base / name for name in lists)
    if folder is None or found_list is None:
        missing = (["image folder"] if folder is None else []) + (
            [" or ".join(lists)] if found_list is None else []
        )
        raise DatasetLayoutError(f"celeba_hq: missing {', '.join(missing)} in {base}; expected {expected}")
    records = _resolve_listed(_read_list(found_list), folder)
    _check_some_exist(records, "celeba_hq", expected)
    return records


# ------------------------------------------------------------------------------------------------------------ folder


def folder_records(
    root: str | os.PathLike[str] | None,
    *,
    file_list: str | os.PathLike[str] | None = None,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
) -> list[ImageRecord]:
    """All images under ``root`` (recursive, sorted, by extension), or those named in ``file_list``.

    ``file_list`` entries are paths relative to ``root`` (or absolute), one per line; a relative ``file_list`` is
    looked up in ``root``.
    """
    expected = "a folder containing images (" + ", ".join(extensions) + ")"
    base = _root(root, "folder", expected)
    exts = {e.lower() for e in extensions}
    if file_list is not None:
        lf = Path(file_list)
        lf = lf if lf.is_absolute() or lf.is_file() else base / lf
        if not lf.is_file():
            raise DatasetLayoutError(f"folder: file list {lf} not found")
        records = _resolve_listed(_read_list(lf), base)
        _check_some_exist(records, "folder", f"the images listed in {lf}")
        return records
    records = []
    for dirpath, _dirnames, filenames in os.walk(base, followlinks=True):
        for name in filenames:
            if os.path.splitext(name)[1].lower() in exts:
                path = os.path.join(dirpath, name)
                records.append(ImageRecord(os.path.relpath(path, base), path))
    if not records:
        raise DatasetLayoutError(f"folder: no images found under {base}; expected {expected}")
    records.sort(key=lambda r: r.key)  # one total order, independent of how the file system lists entries
    return records


def holdout_split(
    records: Sequence[ImageRecord], split: str, val_fraction: float, test_fraction: float = 0.0
) -> list[ImageRecord]:
    """Deterministic train/val/test split by a hash of each key, stable when files are added or removed.

    A key's hash picks its slice: ``val`` = the first ``val_fraction`` of the hash range, ``test`` = the next
    ``test_fraction`` (with ``test_fraction=0``, ``test`` is the ``val`` slice), ``train`` = the rest. The held-out
    slices come in hash order, so any prefix of them (``limit_val_batches``) is a random sample rather than the first
    classes of a sorted list; ``train`` keeps the input order.
    """
    if not 0.0 < val_fraction < 1.0 or not 0.0 <= test_fraction < 1.0 - val_fraction:
        raise ValueError(
            f"need 0 < val_fraction < 1 and 0 <= test_fraction < 1 - val_fraction, got {val_fraction}, {test_fraction}"
        )
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    v_end = int(val_fraction * 10_000)
    t_end = v_end + int(test_fraction * 10_000)
    lo, hi = {
        "train": (t_end if test_fraction else v_end, 10_000),
        "val": (0, v_end),
        "test": (v_end, t_end),
    }[split]
    if split == "test" and not test_fraction:
        lo, hi = 0, v_end
    hashed = [(stable_hash(r.key) % 10_000, r) for r in records]
    chosen = [(h, r) for h, r in hashed if lo <= h < hi]
    if split != "train":
        chosen.sort(key=lambda hr: (hr[0], hr[1].key))
    return [r for _, r in chosen]


# ----------------------------------------------------------------------------------------------------------- samples

# Every photograph that the project's own dependencies install (no download, works offline), as
# (package, file inside the package's data folder). gradio comes with the `app` extra, which `make install`
# installs; without it those six are skipped with a warning. Synthetic graphics (colour wheel, chessboards, logos,
# silhouettes, tiny thumbnails, screenshots) are left out. Grayscale photos are converted to RGB when loaded.
BUNDLED_PHOTOS: tuple[tuple[str, str], ...] = (
    ("skimage", "astronaut.png"),
    ("skimage", "brick.png"),
    ("skimage", "camera.png"),
    ("skimage", "cell.png"),
    ("skimage", "chelsea.png"),
    ("skimage", "clock_motion.png"),
    ("skimage", "coffee.png"),
    ("skimage", "coins.png"),
    ("skimage", "grass.png"),
    ("skimage", "gravel.png"),
    ("skimage", "hubble_deep_field.jpg"),
    ("skimage", "ihc.png"),
    ("skimage", "moon.png"),
    ("skimage", "motorcycle_left.png"),
    ("skimage", "motorcycle_right.png"),
    ("skimage", "page.png"),
    ("skimage", "retina.jpg"),
    ("skimage", "rocket.jpg"),
    ("skimage", "text.png"),
    ("sklearn", "china.jpg"),
    ("sklearn", "flower.jpg"),
    ("matplotlib", "grace_hopper.jpg"),
    ("gradio", "media_assets/images/cheetah.jpg"),
    ("gradio", "media_assets/images/cheetah1.jpg"),
    ("gradio", "media_assets/images/groot.jpeg"),
    ("gradio", "media_assets/images/lion.jpg"),
    ("gradio", "media_assets/images/tower.jpg"),
    ("gradio", "test_data/cheetah2.jpg"),
)
# Held out from training for validation (every choice of the demo's recipe, options and checkpoint is made on them):
# two outdoor scenes, an indoor still life and a launch against the sky, chosen for variety before any result was
# seen.
SAMPLE_VAL_PHOTOS = ("sklearn/china.jpg", "sklearn/flower.jpg", "skimage/coffee.png", "skimage/rocket.jpg")
# Held out from training and from every choice, for the test numbers only: an animal close-up indoors, a tower against
# a clear sky, an animal on rock. None has a near-duplicate among the training photos (the cheetahs are other photos).
SAMPLE_TEST_PHOTOS = (
    "skimage/chelsea.png",
    "gradio/media_assets/images/tower.jpg",
    "gradio/media_assets/images/lion.jpg",
)


def _package_data_dir(package: str) -> Path | None:
    """Where ``package`` keeps its bundled photos, or None if it is not installed."""
    try:
        if package == "skimage":
            import skimage

            return Path(skimage.__file__).parent / "data"
        if package == "sklearn":
            import sklearn

            return Path(sklearn.__file__).parent / "datasets" / "images"
        if package == "matplotlib":
            import matplotlib

            return Path(matplotlib.get_data_path()) / "sample_data"
        if package == "gradio":  # located, not imported: importing gradio takes seconds
            spec = importlib.util.find_spec("gradio")
            return None if spec is None or spec.origin is None else Path(spec.origin).parent
    except ImportError:
        return None
    raise ValueError(f"unknown photo package {package!r}")


def bundled_photos() -> list[ImageRecord]:
    """The bundled photographs present in this installation, keyed ``<package>/<file>`` (e.g. ``sklearn/china.jpg``)."""
    records, missing = [], []
    for package, name in BUNDLED_PHOTOS:
        folder = _package_data_dir(package)
        if folder is not None and (folder / name).is_file():
            records.append(ImageRecord(f"{package}/{name}", str(folder / name)))
        else:
            missing.append(f"{package}/{name}")
    if missing:
        log.warning("bundled photos not found in this installation (skipped): %s", missing)
    return records


def _resolve_photo_keys(names: Sequence[str], known: Sequence[str], field: str) -> set[str]:
    """``names`` as full keys; a bare file name (``coffee.png``) is accepted when it names one photo."""
    out = set()
    for name in names:
        matches = [k for k in known if k == name or k.split("/", 1)[1] == name]
        if len(matches) != 1:
            raise ValueError(f"samples: {field} entry {name!r} is not among the bundled photos {list(known)}")
        out.add(matches[0])
    return out


def sample_records(
    split: str = "train",
    *,
    val_images: Sequence[str] = SAMPLE_VAL_PHOTOS,
    test_images: Sequence[str] = SAMPLE_TEST_PHOTOS,
) -> list[ImageRecord]:
    """The bundled photographs (:data:`BUNDLED_PHOTOS`): ``val_images`` for validation, ``test_images`` for test
    (the two must not overlap), the rest for training."""
    split = _split_name(split)
    present = bundled_photos()
    known = [f"{p}/{n}" for p, n in BUNDLED_PHOTOS]
    held = {
        "val": _resolve_photo_keys(val_images, known, "val_images"),
        "test": _resolve_photo_keys(test_images, known, "test_images"),
    }
    if held["val"] & held["test"]:
        raise ValueError(f"samples: {sorted(held['val'] & held['test'])} in both val_images and test_images")
    keys = held[split] if split != "train" else set(known) - held["val"] - held["test"]
    chosen = [r for r in present if r.key in keys]
    if not chosen:
        raise DatasetLayoutError(
            f"samples: no bundled photos for split {split!r} (found {[r.key for r in present]}, "
            f"val_images {sorted(held['val'])}, test_images {sorted(held['test'])}); are scikit-image, scikit-learn "
            "and matplotlib installed?"
        )
    return chosen


# -------------------------------------------------------------------------------------------------------- dispatcher

SOURCES = ("places2", "celeba", "celeba_hq", "folder", "samples")


def build_records(data: DataConfig | Mapping[str, Any], split: str) -> list[ImageRecord]:
    """The image records of ``split`` for a data config (its ``source`` picks the layout).

    ``split`` is a split of the source (``train``, ``val``, ``test``) or ``holdout``: a fixed hash slice of
    ``holdout_fraction`` of the source's train split, which ``train`` then excludes. The holdout serves checkpoint
    selection where the source's own ``val`` split is the benchmark's test set (Places2, CelebA-HQ), so that test
    numbers are not selection-biased.

    Args:
        data: a :class:`~inpaint.data.config.DataConfig` or a mapping that becomes one.
        split: ``train``, ``val``, ``test`` or ``holdout``.
    """
    cfg = from_mapping(DataConfig, data, "data config")
    if split == "holdout":
        if not cfg.holdout_fraction:
            raise ValueError(
                "the 'holdout' split needs data.holdout_fraction > 0 (a fraction of the train split)"
            )
        train = _source_records(cfg, "train")
        held = holdout_split(train, "val", cfg.holdout_fraction)
        if not held:
            raise DatasetLayoutError(
                f"{cfg.source}: data.holdout_fraction={cfg.holdout_fraction} of the {len(train)} train images in "
                f"{cfg.root} holds out none for validation (the smallest fraction that holds out one is "
                f"{min_val_fraction(train)}); raise data.holdout_fraction"
            )
        return held
    records = _source_records(cfg, split)
    return (
        holdout_split(records, "train", cfg.holdout_fraction)
        if split == "train" and cfg.holdout_fraction
        else records
    )


def _source_records(cfg: DataConfig, split: str) -> list[ImageRecord]:
    if cfg.source == "places2":
        return places2_records(cfg.root, split, variant=cfg.variant, resolution=str(cfg.resolution))
    if cfg.source == "celeba":
        return celeba_records(cfg.root, split)
    if cfg.source == "celeba_hq":
        return celeba_hq_records(cfg.root, split, image_dir=cfg.image_dir, list_file=cfg.split_list(split))
    if cfg.source == "folder":
        return _folder_split(cfg, split)
    if cfg.source == "samples":
        return sample_records(
            split,
            val_images=tuple(cfg.val_images or SAMPLE_VAL_PHOTOS),
            test_images=tuple(cfg.test_images or SAMPLE_TEST_PHOTOS),
        )
    raise ValueError(f"unknown data source {cfg.source!r}; expected one of {SOURCES} (or 'shards')")


def _folder_split(cfg: DataConfig, split: str) -> list[ImageRecord]:
    if split == "train":
        recs = folder_records(cfg.root, file_list=cfg.file_list)
        return recs if cfg.val_root else holdout_split(recs, "train", cfg.val_fraction, cfg.test_fraction)
    if cfg.val_root:
        return folder_records(cfg.val_root, file_list=cfg.val_file_list)
    recs = folder_records(cfg.root, file_list=cfg.file_list)
    held = holdout_split(recs, split, cfg.val_fraction, cfg.test_fraction)
    if not held:
        fraction = "test_fraction" if split == "test" and cfg.test_fraction else "val_fraction"
        raise DatasetLayoutError(
            f"folder: the {split} share ({fraction}) of the {len(recs)} images in {cfg.root} holds out none (the "
            f"smallest that holds out one is {min_val_fraction(recs)}); raise {fraction} or set val_root"
        )
    return held


def min_val_fraction(records: Sequence[ImageRecord]) -> float:
    """The smallest ``val_fraction`` for which :func:`holdout_split` puts at least one of ``records`` in val."""
    return (min(stable_hash(r.key) % 10_000 for r in records) + 1) / 10_000
